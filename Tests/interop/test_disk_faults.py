"""Disk faults under the real daemon: a state folder that fails fsync or writes with EIO, ENOSPC or
EROFS (an LD_PRELOAD shim, Tests/faults/faultfs.c), or that is really full (a small tmpfs), each
while the daemon runs.

Each test checks the same promises (docs/reliability.md, "Disk and resource faults"): a caller gets a
named error (control API 1020 `storage_unavailable`; HAN FAILURE / top-up result 3), one log line and
a `STATUS=degraded: ...` to systemd; the daemon stays up and serves reads; nothing acknowledged is
lost (checked after a restart); and writes resume by themselves once the disk recovers.
"""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import LAB, P1_PPMID, ControlClient, RPCError, copy_lab

ROOT = Path(__file__).resolve().parents[2]
SHIM_SOURCE = ROOT / "Tests/faults/faultfs.c"


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faultfs") / "faultfs.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out), str(SHIM_SOURCE), "-ldl"], check=True)
    return out


class Notify:
    """A stand-in for systemd's notify socket: collects what the daemon sends."""

    def __init__(self, directory: Path):
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def statuses(self) -> list[str]:
        return [line[7:] for message in self.drain() for line in message.split("\n") if line.startswith("STATUS=")]


class FaultyDaemon:
    def __init__(self, binary: Path, lab: Path, state: Path, env: dict[str, str], notify: Notify):
        self.binary, self.lab, self.state, self.extra_env, self.notify = binary, lab, state, env, notify
        self.runtime = Path(tempfile.mkdtemp(prefix="smf-", dir="/tmp"))
        self.log = Path(tempfile.mkdtemp(prefix="smetsd-faults-")) / "smetsd.log"
        self.process: subprocess.Popen | None = None
        self.client: ControlClient | None = None

    def start(self) -> "FaultyDaemon":
        env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC")}
        env.update(self.extra_env)
        env["NOTIFY_SOCKET"] = self.notify.path
        self.process = subprocess.Popen([str(self.binary), "--lab", str(self.lab), "--state", str(self.state), "--runtime", str(self.runtime),
                                         "--log-format", "json"], stdin=subprocess.DEVNULL, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs()
            try:
                self.client = ControlClient(str(self.runtime / "control.sock"))
                if self.client.call("daemon.status")["ready"]:
                    return self
            except (OSError, RPCError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError("not ready\n" + self.logs())

    def rpc(self, method: str, params: dict | None = None):
        return self.client.call(method, params)

    def refusal(self, method: str, params: dict) -> RPCError:
        with pytest.raises(RPCError) as caught:
            self.rpc(method, params)
        return caught.value

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        if self.client:
            self.client.close()
        self.process.terminate()
        return self.process.wait(timeout=60)

    def wait_for(self, predicate, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} did not happen within {timeout}s\n{self.logs()[-3000:]}")


def budget(daemon: FaultyDaemon) -> str | None:
    return daemon.rpc("display.settings", {"device": P1_PPMID})["settings"].get("budget")


def check_degraded_then_recovered(daemon: FaultyDaemon, start_fault, end_fault, fault_names: set[str]) -> None:
    """The common course of every fault: acknowledged write, fault, refused writes with reads served,
    recovery by the probe, and (after a restart) exactly the acknowledged writes."""
    assert daemon.rpc("display.settings", {"device": P1_PPMID, "set": {"budget": "100"}})["settings"]["budget"] == "100"
    start_fault()
    error = daemon.refusal("display.settings", {"device": P1_PPMID, "set": {"budget": "200"}})
    assert error.code == 1020 and error.data["reason"] == "storage_unavailable", error
    assert error.data["fault"] in fault_names, error
    assert "nothing was changed" in error.message
    # Reads are served, with the acknowledged value and not the refused one.
    assert budget(daemon) == "100"
    status = daemon.rpc("daemon.status")
    assert status["ready"] and status["storage"]["writable"] is False and status["storage"]["fault"] in fault_names, status
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["id"] == P1_PPMID
    # The HAN side: a top-up the meter cannot keep is result 3, and not kept.
    topup = daemon.rpc("han.topUp", {"device": P1_PPMID, "code": "12345678901234500150"})
    assert topup["result"] == 3, topup
    # Logged and told to systemd from the daemon's own queue, just after the refusal.
    daemon.wait_for(lambda: '"event":"store.degraded"' in daemon.logs(), "the store.degraded log line")
    daemon.wait_for(lambda: any(s.startswith("degraded: ") for s in daemon.notify.statuses()), "STATUS=degraded")
    # Every write still refused, not a crash or a hang, while the fault lasts.
    for _ in range(3):
        assert daemon.refusal("display.settings", {"device": P1_PPMID, "set": {"budget": "300"}}).code == 1020

    end_fault()
    daemon.wait_for(lambda: daemon.rpc("daemon.status")["storage"]["writable"], "recovery by the probe")
    daemon.wait_for(lambda: '"event":"store.recovered"' in daemon.logs(), "the store.recovered log line")
    daemon.wait_for(lambda: not daemon.notify.statuses()[-1].startswith("degraded"), "STATUS back to normal")
    assert daemon.rpc("display.settings", {"device": P1_PPMID, "set": {"budget": "400"}})["settings"]["budget"] == "400"
    assert daemon.rpc("han.topUp", {"device": P1_PPMID, "code": "12345678901234500151"})["result"] == 0
    assert daemon.stop() == 0
    daemon.start()
    assert budget(daemon) == "400"
    # The refused top-up left nothing: its code is new to the meter.
    assert daemon.rpc("han.topUp", {"device": P1_PPMID, "code": "12345678901234500150"})["result"] == 0
    assert daemon.stop() == 0


def faulty(smetsd_binary: Path, tmp_path: Path, state: Path, env: dict[str, str] | None = None, settings: dict | None = None) -> FaultyDaemon:
    lab = copy_lab(tmp_path / "lab", settings={"storageProbeSeconds": 0.2, **(settings or {})})
    return FaultyDaemon(smetsd_binary, lab, state, env or {}, Notify(tmp_path)).start()


# EROFS is what writes get once the kernel remounts a failing disk read-only (errors=remount-ro); a
# plain `mount -o remount,ro` is refused while the daemon holds the database open for writing.
@pytest.mark.parametrize("mode,faults", [("fsync EIO", {"io_error"}), ("write EIO", {"io_error"}), ("write ENOSPC", {"full"}),
                                         ("write EROFS", {"io_error", "read_only"})])
def test_a_failing_disk_refuses_writes_serves_reads_and_recovers(smetsd_binary, shim, tmp_path, mode, faults):
    state = tmp_path / "state"
    control = tmp_path / "fault"
    control.write_text("")
    daemon = faulty(smetsd_binary, tmp_path, state, {"LD_PRELOAD": str(shim), "FAULTFS_DIR": str(state), "FAULTFS_CONTROL": str(control)})
    check_degraded_then_recovered(daemon, lambda: control.write_text(mode), lambda: control.write_text(""), faults)


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_state_folder_refuses_writes_and_resumes_when_space_returns(smetsd_binary, tmp_path, small_tmpfs):
    state = small_tmpfs / "state"
    filler = small_tmpfs / "filler"

    def fill():
        # Leave SQLite no page: write until the tmpfs says ENOSPC.
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass

    daemon = faulty(smetsd_binary, tmp_path, state)
    check_degraded_then_recovered(daemon, fill, lambda: filler.unlink(), {"full"})
