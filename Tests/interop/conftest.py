"""Fixtures for the HAN link interoperability tests: the real smetsd binary, in fresh directories.

The binary is $SMETSD_BIN, else the newest of .build/debug/smetsd and .build-interop/debug/smetsd
under the repository (build it with `swift build --scratch-path .build-interop --product smetsd`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "devices"

# Device IDs of the shipped lab (devices/lab.json).
P1_CHF = "00-DB-12-34-56-78-00-01"
P1_ESME = "00-DB-12-34-56-78-00-02"
P1_GSME = "00-DB-12-34-56-78-00-03"
P1_GPF = "00-DB-12-34-56-78-00-04"
P1_PPMID = "00-DB-12-34-56-78-00-05"  # pre-notified SMETS1, joined to a SMETS2+ hub: SMETS2+
P1_IHD = "00-DB-12-34-56-78-00-06"
P1_PPMID_UNJOINED = "00-DB-12-34-56-78-00-07"
P2_CHF = "00-DB-12-34-56-79-00-01"
P2_ESME = "00-DB-12-34-56-79-00-02"
P2_PPMID = "00-DB-12-34-56-79-00-05"  # pre-notified SMETS2+, joined to a SMETS1 hub: SMETS1


def find_binary() -> Path:
    env = os.environ.get("SMETSD_BIN")
    if env:
        path = Path(env)
        if not path.is_file():
            pytest.exit(f"SMETSD_BIN={env} is not a file", returncode=2)
        return path
    candidates = [p for p in (REPO / ".build/debug/smetsd", REPO / ".build-interop/debug/smetsd") if p.is_file()]
    if not candidates:
        pytest.exit("no smetsd binary: set SMETSD_BIN or run "
                    "`swift build --scratch-path .build-interop --product smetsd`", returncode=2)
    return max(candidates, key=lambda p: p.stat().st_mtime)


class RPCError(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')} {error.get('data', '')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class ControlClient:
    """JSON-RPC 2.0 over control.sock: one JSON object per line; notifications are skipped."""

    def __init__(self, path: str, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""
        self.ids = itertools.count(1)

    def call(self, method: str, params: dict | None = None) -> Any:
        request_id = next(self.ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"control socket closed while waiting for {method}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if message.get("id") != request_id:
                continue  # an event notification
            if "error" in message:
                raise RPCError(message["error"])
            return message["result"]

    def close(self) -> None:
        self.sock.close()


@dataclasses.dataclass
class Daemon:
    binary: Path
    lab: Path
    state: Path
    runtime: Path
    log: Path
    process: subprocess.Popen
    _control: ControlClient | None = None

    @property
    def control_path(self) -> str:
        return str(self.runtime / "control.sock")

    @property
    def han_path(self) -> str:
        return str(self.runtime / "han.sock")

    def device_path(self, device_id: str) -> str:
        return str(self.runtime / "devices" / f"{device_id}.sock")

    def rpc(self, method: str, params: dict | None = None) -> Any:
        if self._control is None:
            self._control = ControlClient(self.control_path)
        return self._control.call(method, params)

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"smetsd did not stop within {timeout}s of SIGTERM\n{self.logs()[-4000:]}")
        return self.process.returncode


def copy_lab(destination: Path, settings: dict | None = None, lab_changes: Callable[[dict], None] | None = None) -> Path:
    """A copy of devices/ (without state or sockets), with an optional smetsd.json and lab.json edit."""
    shutil.copytree(LAB, destination, ignore=shutil.ignore_patterns(".state", ".run", "*.sqlite*"))
    if settings is not None:
        (destination / "smetsd.json").write_text(json.dumps(settings))
    if lab_changes is not None:
        lab = json.loads((destination / "lab.json").read_text())
        lab_changes(lab)
        (destination / "lab.json").write_text(json.dumps(lab, indent=2))
    return destination


def start_daemon(binary: Path, lab: Path = LAB, ready_timeout: float = 30.0, state: Path | None = None,
                 env: dict[str, str] | None = None) -> Daemon:
    """smetsd in fresh directories (or on the state folder `state`), with `env` added to its environment."""
    state = state or Path(tempfile.mkdtemp(prefix="smetsd-interop-state-"))
    runtime = Path(tempfile.mkdtemp(prefix="smi-", dir="/tmp"))  # short: socket paths are limited to 107 bytes
    log = state / "smetsd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "--lab", str(lab), "--state", str(state), "--runtime", str(runtime), "--log-format", "text"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC")},
                 **(env or {})},
        )
    daemon = Daemon(binary, lab, state, runtime, log, process)
    deadline = time.monotonic() + ready_timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"smetsd exited with {process.returncode} before it was ready:\n{daemon.logs()[-4000:]}")
        if os.path.exists(daemon.control_path):
            try:
                status = daemon.rpc("daemon.status")
                if status.get("state") == "ready":
                    return daemon
            except (OSError, RPCError, ConnectionError, ValueError) as error:
                last_error = error
                if daemon._control is not None:
                    daemon._control.close()
                    daemon._control = None
        time.sleep(0.05)
    daemon.process.kill()
    raise AssertionError(f"smetsd was not ready within {ready_timeout}s ({last_error}):\n{daemon.logs()[-4000:]}")


def stop_and_check(daemon: Daemon) -> None:
    code = daemon.stop()
    logs = daemon.logs()
    shutil.rmtree(daemon.state, ignore_errors=True)
    shutil.rmtree(daemon.runtime, ignore_errors=True)
    assert code == 0, f"smetsd exited with {code} on SIGTERM, not 0:\n{logs[-4000:]}"


@pytest.fixture(scope="session")
def smetsd_binary() -> Path:
    return find_binary()


@pytest.fixture
def daemon_factory(smetsd_binary: Path) -> Iterator[Callable[..., Daemon]]:
    """Starts daemons (optionally on another devices folder); each is stopped with SIGTERM at the end
    of the test, and must exit 0."""
    started: list[Daemon] = []

    def start(lab: Path = LAB) -> Daemon:
        daemon = start_daemon(smetsd_binary, lab)
        started.append(daemon)
        return daemon

    yield start
    failures = []
    for daemon in started:
        try:
            stop_and_check(daemon)
        except AssertionError as error:
            failures.append(str(error))
    assert not failures, "\n".join(failures)


@pytest.fixture
def daemon(daemon_factory) -> Daemon:
    """A fresh daemon on the shipped lab, in fresh state and runtime directories."""
    return daemon_factory()


@pytest.fixture(scope="module")
def shared_daemon(smetsd_binary: Path) -> Iterator[Daemon]:
    """One daemon for a module's read-only tests."""
    daemon = start_daemon(smetsd_binary)
    yield daemon
    stop_and_check(daemon)

# Devices the fuzz aims at: every type that serves something different.
DEVICES_UNDER_FUZZ = [P1_PPMID, P1_ESME, P2_PPMID, P1_IHD, P1_GPF, P1_CHF, P1_GSME]
