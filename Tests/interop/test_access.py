"""Access control against the real daemon: every role x method cell of docs/access.md, with clients
running as other uids (setpriv), and the DP181 asset scoping rules."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = "/usr/bin/python3"  # the system Python: readable by every uid, unlike a per-user install

RIG, MAP_ALPHA, MAP_BETA, MFR_ACME, MFR_BRIGHTVIEW, NOBODY = 41001, 41002, 41003, 41004, 41005, 41006
ROLES = {
    f"uid:{RIG}": "rig",
    f"uid:{MAP_ALPHA}": "map:MAP-ALPHA",
    f"uid:{MAP_BETA}": "map:MAP-BETA",
    f"uid:{MFR_ACME}": "manufacturer:1234",
    f"uid:{MFR_BRIGHTVIEW}": "manufacturer:5678",
}

# Every method of the control API and the params a call needs to pass validation.
PPMID = "00-DB-12-34-56-78-00-05"
SPARE = "00-DB-12-34-56-78-00-07"
HUB = "00-DB-12-34-56-78-00-01"
METHODS = {
    "daemon.status": {},
    "devices.list": {},
    "devices.get": {"id": PPMID},
    "devices.create": {"type": "IHD", "premises": "P0001", "model": "brightview-ihd"},
    "devices.remove": {"id": "00-DB-12-34-56-78-99-99"},
    "han.join": {"device": SPARE, "hub": HUB},
    "han.leave": {"device": SPARE},
    "inventory.correct": {"device": PPMID},
    "han.send": {"from": "00-DB-12-34-56-78-00-02", "to": PPMID, "cluster": "0000", "zcl": "000100000004"},
    "han.trace": {"device": PPMID},
    "han.topUp": {"device": PPMID, "code": "12345678901234500150"},
    "display.settings": {"device": PPMID},
    "meter.debt": {"device": "00-DB-12-34-56-78-00-02"},
    "clock.get": {},
    "clock.set": {"time": "2030-01-01T00:00:00Z"},
    "clock.advance": {"seconds": 1},
    "events.subscribe": {},
    "events.unsubscribe": {},
    "lab.generate": {"premises": 1},
    "tenancy.change": {"premises": "P0002"},
    "supplier.change": {"premises": "P0002", "provider": "0000ABCD"},
    "assets.list": {},
    "assets.get": {"id": PPMID},
    "assets.transfer": {"id": "00-DB-12-34-56-79-00-06", "owner": "MAP-GAMMA"},
    "firmware.version": {"device": PPMID},
    "firmware.update": {},
    "firmware.activate": {},
    "firmware.check": {},
    "firmware.images": {},
    "firmware.upload.begin": {"size": 1},
    "firmware.upload.chunk": {},
    "firmware.upload.commit": {},
    "firmware.upload.discard": {},
    "duis.responses": {},
    "duis.submit": {"path": "serviceD", "xml": "<x/>"},
}
PUBLIC = {"daemon.status"}
RIG_METHODS = PUBLIC | {"devices.list", "devices.get", "han.send", "han.trace", "han.topUp", "display.settings", "clock.get",
                        "events.subscribe", "events.unsubscribe", "firmware.version", "duis.responses"}
ASSET_METHODS = PUBLIC | {"assets.list", "assets.get"}
# HAN faults (docs/faults.md): admin and rig. A drop with probability 0 changes nothing for the other calls.
METHODS.update({"faults.add": {"device": PPMID, "kind": "drop", "probability": 0}, "faults.list": {},
                "faults.remove": {"id": 999999}, "faults.clear": {}, "han.capture": {"device": PPMID}, "han.links": {}})
RIG_METHODS |= {"faults.add", "faults.list", "faults.remove", "faults.clear", "han.capture", "han.links"}

CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
for i, line in enumerate(sys.stdin):
    method, params = json.loads(line)
    f.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode()); f.flush()
    while True:  # notifications (a capture's records, subscribed events) are not the answer
        answer = f.readline().decode().strip()
        if not answer or "id" in json.loads(answer):
            break
    print(answer, flush=True)
"""


@pytest.fixture(scope="module")
def daemon():
    binary = os.environ.get("SMETSD_BIN") or str(ROOT / ".build/debug/smetsd")
    base = Path(tempfile.mkdtemp(prefix="smetsd-acl-", dir="/tmp"))
    base.chmod(0o755)
    lab = base / "lab"
    shutil.copytree(ROOT / "devices", lab, ignore=shutil.ignore_patterns(".state", ".run"))
    (lab / "access.json").write_text(json.dumps({"roles": ROLES}))
    (lab / "smetsd.json").write_text(json.dumps({"socketMode": "0666"}))
    run = base / "run"
    proc = subprocess.Popen([binary, "--lab", str(lab), "--state", str(base / "state"), "--runtime", str(run), "--log-format", "json"],
                            stderr=open(base / "log", "w"))
    sock = run / "control.sock"
    for _ in range(300):
        if sock.exists():
            try:
                reply = call_as(0, sock, [("daemon.status", {})])[0]
                if reply.get("result", {}).get("ready"):
                    break
            except (OSError, json.JSONDecodeError):
                pass
        time.sleep(0.05)
    yield {"sock": sock, "lab": lab, "log": base / "log", "proc": proc, "base": base}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def call_as(uid, sock, calls):
    """Runs the calls on one connection as `uid` (root stays root), returning the parsed answers."""
    prefix = [] if uid == 0 else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    out = subprocess.run(prefix + [PY, "-c", CLIENT, str(sock)], input="".join(json.dumps(c) + "\n" for c in calls),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def allowed_for(uid):
    if uid == RIG:
        return RIG_METHODS
    if uid in (MAP_ALPHA, MAP_BETA, MFR_ACME, MFR_BRIGHTVIEW):
        return ASSET_METHODS
    return PUBLIC


@pytest.mark.parametrize("uid", [RIG, MAP_ALPHA, MFR_ACME, NOBODY])
def test_every_method_is_allowed_or_refused_as_the_matrix_says(daemon, uid):
    names = sorted(METHODS)
    replies = call_as(uid, daemon["sock"], [(name, METHODS[name]) for name in names])
    for name, reply in zip(names, replies):
        if name in allowed_for(uid):
            assert reply.get("error", {}).get("code") != 1100, f"{name} refused for uid {uid}: {reply}"
        else:
            assert reply.get("error", {}).get("code") == 1100, f"{name} not refused for uid {uid}: {reply}"
            assert reply["error"]["data"]["reason"] == "not_authorised"


def test_admin_root_may_call_everything(daemon):
    names = sorted(METHODS)
    replies = call_as(0, daemon["sock"], [(name, METHODS[name]) for name in names])
    for name, reply in zip(names, replies):
        assert reply.get("error", {}).get("code") != 1100, f"{name}: {reply}"


def test_refusals_are_logged_with_uid_and_method(daemon):
    call_as(NOBODY, daemon["sock"], [("clock.set", {"time": "2031-01-01T00:00:00Z"})])
    time.sleep(0.2)
    lines = [json.loads(l) for l in daemon["log"].read_text().splitlines() if l.startswith("{")]
    refusals = [l for l in lines if l.get("metadata", l).get("event") == "access.refused" or l.get("event") == "access.refused"]
    flat = json.dumps(refusals)
    assert str(NOBODY) in flat and "clock.set" in flat


def assets(uid, sock, **params):
    reply = call_as(uid, sock, [("assets.list", dict(params, limit=1000))])[0]
    assert "result" in reply, reply
    return reply["result"]["assets"]


def test_a_map_sees_exactly_its_own_assets_and_nothing_private(daemon):
    alpha = assets(MAP_ALPHA, daemon["sock"])
    devices = call_as(0, daemon["sock"], [("devices.list", {"limit": 1000})])[0]["result"]["devices"]
    expected = sorted(d["id"] for d in devices if d["owner"] == "MAP-ALPHA")
    assert sorted(a["deviceId"] for a in alpha) == expected and expected
    for record in alpha:
        assert set(record) >= {"deviceId", "deviceType", "manufacturer", "model", "firmwareVersion", "deviceStatus", "cspRegion"}
        assert not {"owner", "supplier", "premises", "consumption", "messages"} & set(record)
    # Another MAP's device: refused, not an empty answer.
    beta_device = next(d["id"] for d in devices if d["owner"] == "MAP-BETA")
    reply = call_as(MAP_ALPHA, daemon["sock"], [("assets.get", {"id": beta_device})])[0]
    assert reply["error"]["code"] == 1100
    # A device that does not exist looks the same as another's: no probing.
    reply = call_as(MAP_ALPHA, daemon["sock"], [("assets.get", {"id": "00-DB-00-00-00-00-00-00"})])[0]
    assert reply["error"]["code"] == 1100


def test_a_manufacturer_sees_exactly_the_devices_it_made(daemon):
    acme = assets(MFR_ACME, daemon["sock"])
    assert acme and all(a["manufacturerId"] == "1234" for a in acme)
    brightview = assets(MFR_BRIGHTVIEW, daemon["sock"])
    assert brightview and all(a["manufacturerId"] == "5678" for a in brightview)
    competitor = brightview[0]["deviceId"]
    reply = call_as(MFR_ACME, daemon["sock"], [("assets.get", {"id": competitor})])[0]
    assert reply["error"]["code"] == 1100
    filtered = assets(MFR_ACME, daemon["sock"], type="PPMID")
    assert filtered and all(a["deviceType"] == "PPMID" for a in filtered)


def test_ownership_transfer_moves_the_asset_between_maps(daemon):
    device = "00-DB-12-34-56-78-00-06"
    assert device in [a["deviceId"] for a in assets(MAP_ALPHA, daemon["sock"])]
    reply = call_as(MAP_ALPHA, daemon["sock"], [("assets.transfer", {"id": device, "owner": "MAP-BETA"})])[0]
    assert reply["error"]["code"] == 1100, "only admin transfers"
    reply = call_as(0, daemon["sock"], [("assets.transfer", {"id": device, "owner": "MAP-BETA"})])[0]
    assert reply["result"]["owner"] == "MAP-BETA"
    assert device not in [a["deviceId"] for a in assets(MAP_ALPHA, daemon["sock"])]
    assert device in [a["deviceId"] for a in assets(MAP_BETA, daemon["sock"])]


def test_han_link_refuses_callers_without_the_rig_role(daemon):
    han = str(Path(daemon["sock"]).parent / "han.sock")
    script = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
target = bytes.fromhex("00DB123456780005")[::-1]
body = bytes([0x01, 1]) + bytes(8) + target
s.sendall(struct.pack("<H", len(body) - 0) + body)
head = s.recv(3); print(head[2], s.recv(4096)[:1][0] if head[2] == 0x7F else "")
"""
    def attach(uid):
        prefix = [] if uid == 0 else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        return subprocess.run(prefix + [PY, "-c", script, han], capture_output=True, text=True, timeout=30, check=True).stdout.split()

    assert attach(RIG)[0] == str(0x02), "a rig is welcomed"
    assert attach(NOBODY) == [str(0x7F), "7"], "an unmapped caller gets ERROR 7"
    assert attach(MAP_ALPHA) == [str(0x7F), "7"]


def test_roles_reload_with_sighup(daemon):
    access = daemon["lab"] / "access.json"
    roles = dict(ROLES)
    roles[f"uid:{NOBODY}"] = "rig"
    access.write_text(json.dumps({"roles": roles}))
    daemon["proc"].send_signal(signal.SIGHUP)
    for _ in range(100):
        reply = call_as(NOBODY, daemon["sock"], [("clock.get", {})])[0]
        if "result" in reply:
            break
        time.sleep(0.05)
    assert "result" in reply, reply
    access.write_text(json.dumps({"roles": ROLES}))
    daemon["proc"].send_signal(signal.SIGHUP)
