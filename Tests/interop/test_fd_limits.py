"""Out of file descriptors: the daemon under a low `ulimit -n` (soft and hard, so it cannot raise it).

Past the limit accept(2) fails with EMFILE. The daemon must log it once (`event=accept.backoff`) and
back off, not spin on the still-readable listener nor crash; callers wait in the backlog and are
served once descriptors free (`event=accept.resumed`).
"""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import P1_PPMID, ControlClient, copy_lab
from hanlink import HanLink

LIMIT = 160


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")



def test_running_out_of_descriptors_backs_off_logged_and_recovers(smetsd_binary, tmp_path):
    exhaust(smetsd_binary, tmp_path, measure_cpu=False)


# Out of descriptors the listener must stop being polled (AcceptPauseHandler): NIO's own backoff
# handler left the socket registered and the loop woke ~14,000 times a second.
def test_out_of_descriptors_the_daemon_does_not_spin(smetsd_binary, tmp_path):
    exhaust(smetsd_binary, tmp_path, measure_cpu=True)


def exhaust(smetsd_binary, tmp_path, measure_cpu: bool) -> None:
    lab = copy_lab(tmp_path / "lab", settings={"helloTimeoutSeconds": 3600, "maxPerDeviceSockets": 4})
    runtime = Path(tempfile.mkdtemp(prefix="smfd-", dir="/tmp"))
    log = tmp_path / "smetsd.log"
    process = subprocess.Popen(
        [str(smetsd_binary), "--lab", str(lab), "--state", str(tmp_path / "state"), "--runtime", str(runtime), "--log-format", "json"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT)),
        env={k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")})
    han = str(runtime / "han.sock")
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(runtime / "control.sock") or not os.path.exists(han):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while '"event":"daemon.ready"' not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert '"event":"daemon.fdLimit"' in log.read_text(), "the short limit is named at start"

        # Connect far more links than the daemon has descriptors for; the kernel queues the rest.
        links = []
        for _ in range(LIMIT + 40):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(han)
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                break
            links.append(s)
        deadline = time.monotonic() + 30
        while '"event":"accept.backoff"' not in log.read_text():
            assert time.monotonic() < deadline, "no accept.backoff logged\n" + log.read_text()[-3000:]
            time.sleep(0.1)

        # Out of descriptors, the daemon idles: a spin would burn a whole core in these two seconds.
        time.sleep(1)  # the links it did accept are attaching
        before = cpu_seconds(process.pid)
        time.sleep(2)
        burnt = cpu_seconds(process.pid) - before
        if measure_cpu:
            assert burnt < 0.8, f"{burnt:.2f} s of CPU in 2 s while out of descriptors: something spins"
        assert process.poll() is None
        assert log.read_text().count('"event":"accept.backoff"') <= 2, "one warning per episode, not per failed accept"

        # Free descriptors: the daemon catches up with the backlog and serves new links.
        for s in links:
            s.close()
        deadline = time.monotonic() + 30
        while '"event":"accept.resumed"' not in log.read_text():
            assert time.monotonic() < deadline, "no accept.resumed\n" + log.read_text()[-3000:]
            time.sleep(0.1)
        with HanLink(han) as link:
            assert link.attach(P1_PPMID) is not None
        client = ControlClient(str(runtime / "control.sock"))
        assert client.call("daemon.status")["ready"]
        client.close()
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
