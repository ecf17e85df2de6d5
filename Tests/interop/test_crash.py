"""Power cuts, not only kills: smetsd runs under scripts/crashshim.c, an LD_PRELOAD library that keeps
beside the state folder the image a power cut would leave (every file as of its last fsync). After a
SIGKILL the daemon restarts on that image. scripts/crash-campaign runs the same at random moments
under a mixed workload; these are the defects and promises it is about, made deterministic.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import hanlink as h
from conftest import P1_PPMID, REPO, start_daemon, stop_and_check
from hanlink import HanLink, Messaging

SHIM = REPO / "scripts" / "crashshim.c"


@pytest.fixture(scope="session")
def shim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shim") / "crashshim.so"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(SHIM),
                    "-ldl", "-pthread"], check=True)
    return out


def under_shim(binary: Path, shim: Path):
    """A fresh daemon whose state folder is mirrored, as of each fsync, into the returned shadow."""
    state = Path(tempfile.mkdtemp(prefix="smetsd-crash-state-")) / "s"
    state.mkdir()
    shadow = Path(tempfile.mkdtemp(prefix="smetsd-crash-shadow-"))
    daemon = start_daemon(binary, state=state, env={"LD_PRELOAD": str(shim), "CRASHSHIM_DIR": str(state), "CRASHSHIM_SHADOW": str(shadow)})
    return daemon, shadow


def power_cut(daemon, shadow: Path) -> Path:
    """SIGKILL, then a state folder holding only what the daemon fsync'd."""
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    if daemon._control is not None:
        daemon._control.close()
        daemon._control = None
    after = Path(tempfile.mkdtemp(prefix="smetsd-crash-after-"))
    for path in shadow.iterdir():
        shutil.copy2(path, after / path.name)
    shutil.rmtree(daemon.state.parent, ignore_errors=True)
    shutil.rmtree(daemon.runtime, ignore_errors=True)
    shutil.rmtree(shadow, ignore_errors=True)
    return after


def files_holding(folder: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and needle in p.read_bytes())


def test_the_shim_drops_what_was_not_synced(shim, tmp_path):
    """Control: the shim keeps a synced commit and loses the commits after an unsynced one."""
    state, shadow = tmp_path / "s", tmp_path / "shadow"
    state.mkdir()
    shadow.mkdir()
    script = ("import sqlite3, os\n"
              f"db = sqlite3.connect('{state}/x.db', isolation_level=None)\n"
              "db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous=FULL')\n"
              "db.execute('CREATE TABLE t (a)')\n"
              "for i in range(50): db.execute('INSERT INTO t VALUES (?)', (i,))\n"
              "db.execute('PRAGMA synchronous=OFF')\n"
              "for i in range(5): db.execute('INSERT INTO t VALUES (?)', (i,))\n"
              "os._exit(0)\n")
    subprocess.run(["python3", "-c", script], check=True,
                   env={**os.environ, "LD_PRELOAD": str(shim), "CRASHSHIM_DIR": str(state), "CRASHSHIM_SHADOW": str(shadow)})
    import sqlite3
    assert sqlite3.connect(state / "x.db").execute("SELECT COUNT(*) FROM t").fetchone() == (55,)
    assert sqlite3.connect(shadow / "x.db").execute("SELECT COUNT(*) FROM t").fetchone() == (50,)


def test_an_acknowledged_top_up_survives_a_power_cut(smetsd_binary, shim):
    """synchronous=FULL: the WAL is fsync'd before the commit returns, so the answer means on disk."""
    daemon, shadow = under_shim(smetsd_binary, shim)
    code = "12345678901234500150"
    assert daemon.rpc("han.topUp", {"device": P1_PPMID, "code": code})["accepted"]
    after = power_cut(daemon, shadow)
    restarted = start_daemon(smetsd_binary, state=after)
    try:
        again = restarted.rpc("han.topUp", {"device": P1_PPMID, "code": code})
        assert not again["accepted"] and again["result"] == 2, f"the acknowledged top-up was lost: {again}"
    finally:
        stop_and_check(restarted)


def test_a_change_of_tenancy_leaves_no_cleared_byte_after_a_power_cut(smetsd_binary, shim):
    """Found by scripts/crash-campaign --power-loss: the scrub's truncating checkpoint empties the WAL
    without an fsync, so after a power cut the WAL came back at its old size with the cleared
    message's page image in it."""
    marker = "POWER-CUT-MARKER-7f3a9c"
    daemon, shadow = under_shim(smetsd_binary, shim)
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        built = h.build_cluster_command(Messaging, "display_message", message_id=77, message_control=0x00,
                                        start_time=0, duration_in_minutes=60, message=marker)
        reply = link.request(Messaging, built)
        assert reply.is_general and reply.payload.status == 0, reply
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 1
    assert files_holding(daemon.state, marker.encode()), "control: the message is on disk before the change"
    result = daemon.rpc("tenancy.change", {"premises": "P0001"})
    assert not result["pending"]
    after = power_cut(daemon, shadow)
    assert files_holding(after, marker.encode()) == [], "a cleared message is still on the disk after a power cut"
    restarted = start_daemon(smetsd_binary, state=after)
    try:
        assert restarted.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 0
    finally:
        stop_and_check(restarted)
