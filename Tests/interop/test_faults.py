"""HAN faults and live captures (docs/faults.md), against the real daemon with a zigpy-built rig.

- a 256 KiB OTA transfer completes under 10 % drop and 5 ms +- 5 ms delay, with the rig's retries,
  and the device holds the right image;
- a power cycle in the middle of a transfer loses the download (RAM) and the next one restarts at 0;
- mute: the rig's request times out while the link stays open; removing the rule restores it;
- a rule limited to one cluster leaves the others untouched;
- a rule on one HAN link (its ID from han.links) leaves another link to the same device unimpaired;
- a power cycle closes the device's links and announces it again (device.powerCycled);
- clock.advance releases delayed answers due by the new time, in due order, without their timers;
- malformed rules are refused with clear errors;
- the same seed twice gives byte-identical captures, another seed another capture;
- the capture of a hub's OTA transfer and a Change of Tenancy decodes in tshark with no malformed packet;
- the same as pcapng: byte-identical for two seeded runs, decoded by tshark with no malformed packet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from zigpy.zcl.foundation import Status

import hanlink as h
from conftest import P1_CHF, P1_PPMID, RPCError
from hanlink import Basic, HanLink, LinkClosed, Ota
from test_ota_zigpy import ACME, ACME_KEY, IMAGE_TYPE, MANUFACTURER, NEW_VERSION, build, smetsctl  # noqa: F401 (fixture)

RIG_A, RIG_B = h.eui("00-0D-6F-00-00-00-00-0A"), h.eui("00-0D-6F-00-00-00-00-0B")  # two rigs, not lab devices
ROUND_TRIP = 0.1  # what the rig waits for an answer before it retries (the delay rule adds at most 10 ms each way)


class Events:
    """`events.subscribe` on its own control connection: the events of `types` from now on."""

    def __init__(self, daemon, *types: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(daemon.control_path)
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": {"types": list(types)}}).encode() + b"\n")
        self.file = self.sock.makefile("rb")
        assert "result" in json.loads(self.file.readline())
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for line in self.file:
                message = json.loads(line)
                if message.get("method") == "event":
                    self.events.append(message["params"])
        except (OSError, ValueError):
            pass

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events

    def close(self) -> None:
        self.sock.close()


class Capture:
    """`han.capture` on its own control connection: the pcap header, then every record pushed."""

    def __init__(self, daemon, **params):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(daemon.control_path)
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "han.capture", "params": params}).encode() + b"\n")
        self.file = self.sock.makefile("rb")
        answer = json.loads(self.file.readline())
        assert "result" in answer, answer
        self.header = base64.b64decode(answer["result"]["header"])
        self.records: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.file:
            message = json.loads(line)
            if message.get("method") == "capture":
                self.records.append(base64.b64decode(message["params"]["record"]))

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> bytes:
        time.sleep(0.2)  # the last records are pushed after the answers the rig read
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)
        return self.header + b"".join(self.records)


def notify(link: HanLink, version: int = NEW_VERSION) -> None:
    link.send_zcl(Ota.cluster_id, h.build_cluster_command(
        Ota, "image_notify", payload_type=3, query_jitter=100, manufacturer_code=MANUFACTURER, image_type=IMAGE_TYPE,
        new_file_version=version, disable_default_response=True)[1])


def answer(link: HanLink, message, image: bytes, version: int = NEW_VERSION) -> None:
    if message.name == "query_next_image":
        link.send_zcl(Ota.cluster_id, h.build_cluster_command(
            Ota, "query_next_image_response", tsn=message.header.tsn, status=Status.SUCCESS, manufacturer_code=MANUFACTURER,
            image_type=IMAGE_TYPE, file_version=version, image_size=len(image), disable_default_response=True)[1])
    elif message.name == "image_block":
        offset = message.payload.file_offset
        link.send_zcl(Ota.cluster_id, h.build_cluster_command(
            Ota, "image_block_response", tsn=message.header.tsn, status=Status.SUCCESS, manufacturer_code=MANUFACTURER,
            image_type=IMAGE_TYPE, file_version=version, file_offset=offset,
            image_data=image[offset : offset + message.payload.maximum_data_size], disable_default_response=True)[1])


def serve_with_retries(link: HanLink, image: bytes, daemon) -> tuple[int, list[int]]:
    """A rig as OTA server on a lossy HAN: it answers what arrives; when nothing arrives in time it
    asks the daemon whether the download completed, else notifies again (the device then queries and
    resumes from its FileOffset). Returns the retries and the offsets asked."""
    notify(link)
    retries, offsets = 0, []
    while True:
        try:
            _, message = link.recv_zcl(Ota, timeout=ROUND_TRIP)
        except TimeoutError:
            retries += 1
            assert retries < 5000, "no progress"
            # The Upgrade End Request itself may be the frame lost: ask the device's status out of band.
            if daemon.rpc("firmware.version", {"device": P1_PPMID})["imageUpgradeStatus"] == 2:
                return retries, offsets
            notify(link)
            continue
        if message.name == "upgrade_end":
            return retries, offsets
        if message.name == "image_block":
            offsets.append(message.payload.file_offset)
        answer(link, message, image)


def test_a_256_kib_transfer_completes_under_drop_and_delay(daemon, smetsctl, tmp_path):  # noqa: F811
    image, payload = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY),
                           size=256 * 1024)
    drop = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "drop", "probability": 0.1, "seed": 11})
    delay = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "delay", "delayMs": 5, "jitterMs": 5, "seed": 12})
    assert drop["id"] != delay["id"] and delay["distribution"] == "uniform"
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        retries, offsets = serve_with_retries(link, image, daemon)
    rules = {rule["id"]: rule for rule in daemon.rpc("faults.list")["rules"]}
    dropped = rules[drop["id"]]["counters"]
    assert dropped["applied"] > 0 and retries > 0, (dropped, retries)
    # About one frame in ten of those the rule saw.
    assert 0.05 < dropped["applied"] / dropped["matched"] < 0.15, dropped
    assert rules[delay["id"]]["counters"]["applied"] > len(image) // ACME["maxImageBlockBytes"]
    assert offsets[-1] == (len(image) - 1) // ACME["maxImageBlockBytes"] * ACME["maxImageBlockBytes"]
    held = daemon.rpc("firmware.version", {"device": P1_PPMID})
    assert held["held"]["fileVersion"] == "01030000", held
    assert held["held"]["hash"] == hashlib.sha256(payload).hexdigest(), held
    assert held["fileOffset"] == len(image)
    assert "fault.applied" in daemon.logs()


def test_a_power_cycle_mid_transfer_loses_the_download_and_the_next_restarts(daemon, smetsctl, tmp_path):  # noqa: F811
    image, _ = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY), size=40_000)
    # The device reboots on the frame after the 100th Image Block Response it receives: its 101st request.
    rule = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "powerCycle", "limit": 1,
                                     "after": {"cluster": "0019", "command": "05", "count": 100}})
    asked = []
    events = Events(daemon, "device.powerCycled", "han.attached")
    with HanLink(daemon.han_path) as link, HanLink(daemon.han_path) as bystander:
        link.attach(P1_PPMID)
        bystander.attach(P1_PPMID, rig=RIG_B)  # another rig on the device: its link goes down too
        attached = [e["data"]["link"] for e in events.wait_for(2) if e["type"] == "han.attached"]
        assert len(attached) == 2, events.events
        notify(link)
        with pytest.raises(LinkClosed):
            while True:
                _, message = link.recv_zcl(Ota, timeout=5)
                if message.name == "image_block":
                    asked.append(message.payload.file_offset)
                answer(link, message, image)
        assert bystander.is_closed(timeout=2)
    assert len(asked) == 100, len(asked)  # the 101st request was the frame the reboot lost
    # The re-announce the HAN link contract allows (it has no Device_annce): the links closed, an
    # event naming them and the identity a new link's WELCOME carries, and the device answering again.
    cycled = [e for e in events.wait_for(3) if e["type"] == "device.powerCycled"]
    events.close()
    assert len(cycled) == 1 and cycled[0]["device"] == P1_PPMID, events.events
    assert sorted(cycled[0]["data"]["linksClosed"]) == sorted(attached), cycled
    assert cycled[0]["data"]["firmware"] == "01020300" and cycled[0]["data"]["deviceType"] == "PPMID", cycled
    assert daemon.rpc("han.links", {"device": P1_PPMID})["links"] == []
    state = daemon.rpc("firmware.version", {"device": P1_PPMID})
    # The acme model keeps no download across a power cycle: FileOffset 0, status normal, no image held.
    assert state["fileOffset"] == 0 and state["imageUpgradeStatus"] == 0 and state["held"] is None, state
    assert [r for r in daemon.rpc("faults.list")["rules"] if r["id"] == rule["id"]][0]["counters"]["expired"]
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(P1_PPMID)  # the device is back: a new link is welcomed
        assert welcome.current_file_version == 0x01020300
        notify(link)
        _, query = link.recv_zcl(Ota)
        answer(link, query, image)
        _, first = link.recv_zcl(Ota)
        assert first.name == "image_block" and first.payload.file_offset == 0, first


def test_mute_times_the_rig_out_with_the_link_open_and_removal_restores(daemon):
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        assert link.read(Basic, "sw_build_id") == "01020300"
        rule = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "mute"})
        with pytest.raises(TimeoutError):
            link.request(Basic, h.build_read_attributes([0x4000]), timeout=0.5)
        assert not link.is_closed(timeout=0.3)
        assert daemon.rpc("faults.remove", {"id": rule["id"]}) == {"removed": rule["id"]}
        assert link.read(Basic, "sw_build_id") == "01020300"
    assert daemon.rpc("faults.list")["rules"] == []


def test_a_rule_for_one_cluster_leaves_the_others_untouched(daemon):
    daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "drop", "cluster": "0019"})
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        for _ in range(5):
            assert link.read(Basic, "sw_build_id") == "01020300"
        with pytest.raises(TimeoutError):
            link.request(Ota, h.build_read_attributes([0x0002]), timeout=0.5)
        assert daemon.rpc("faults.clear") == {"removed": 1}
        assert link.read(Ota, "current_file_version") == 0x01020300


def link_id(daemon, rig) -> int:
    """The ID of the link a rig attached with its node EUI-64, as han.links shows it."""
    links = daemon.rpc("han.links", {"device": P1_PPMID})["links"]
    return next(link["id"] for link in links if link["rig"] == h.eui_text(rig))


def test_a_rule_on_one_link_leaves_another_link_to_the_device_unimpaired(daemon):
    with HanLink(daemon.han_path) as a, HanLink(daemon.han_path) as b:
        a.attach(P1_PPMID, rig=RIG_A)
        b.attach(P1_PPMID, rig=RIG_B)
        link_a, link_b = link_id(daemon, RIG_A), link_id(daemon, RIG_B)
        assert link_a != link_b
        links = {link["id"]: link for link in daemon.rpc("han.links")["links"]}
        assert links[link_a]["device"] == P1_PPMID and links[link_a]["pid"] > 0
        rule = daemon.rpc("faults.add", {"link": link_a, "kind": "drop"})
        assert rule["link"] == link_a and "device" not in rule
        # A's requests never reach the device; B's do, and B gets its answers, every time.
        with pytest.raises(TimeoutError):
            a.request(Basic, h.build_read_attributes([0x4000]), timeout=0.5)
        for _ in range(5):
            assert b.read(Basic, "sw_build_id") == "01020300"
        # The device sends every answer to both links; the rule drops A's leg only.
        with pytest.raises(TimeoutError):
            a.recv_frame(timeout=0.3)
        counters = daemon.rpc("faults.list")["rules"][0]["counters"]
        assert counters["applied"] == counters["matched"] == 6, counters  # A's request, and the 5 answers on A's leg
        # Only answers on their way out: A's request reaches the device, its answer does not reach A.
        daemon.rpc("faults.clear")
        daemon.rpc("faults.add", {"link": link_a, "kind": "drop", "direction": "from"})
        with pytest.raises(TimeoutError):
            a.request(Basic, h.build_read_attributes([0x4000], tsn=201), timeout=0.5)
        trace = daemon.rpc("han.trace", {"device": P1_PPMID, "limit": 2})["frames"]
        assert [f["direction"] for f in trace] == ["in", "out"] and trace[0]["sequence"] == 201, trace
        assert b.read(Basic, "sw_build_id") == "01020300"
        # A disconnect rule on B (on its next Basic frame) closes B only; A stays attached and, the
        # rules gone, is answered again.
        daemon.rpc("faults.clear")
        daemon.rpc("faults.add", {"link": link_b, "kind": "disconnect", "direction": "to", "cluster": "0000"})
        b.send_zcl(Basic.cluster_id, h.build_read_attributes([0x4000])[1])
        assert b.is_closed(timeout=2)
        daemon.rpc("faults.clear")
        assert a.read(Basic, "sw_build_id") == "01020300"
        assert [link["id"] for link in daemon.rpc("han.links", {"device": P1_PPMID})["links"]] == [link_a]


def test_clock_steps_release_delayed_answers_in_due_order(daemon):
    # Three answers held 60 s, 20 s and 40 s: one delay rule per frame, each spent on that frame.
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        for tsn, delay in [(1, 60_000), (2, 20_000), (3, 40_000)]:
            rule = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "delay", "delayMs": delay, "direction": "from", "limit": 1})
            link.send_zcl(Basic.cluster_id, h.build_read_attributes([0x4000], tsn=tsn)[1])
            deadline = time.monotonic() + 5
            while not next(r for r in daemon.rpc("faults.list")["rules"] if r["id"] == rule["id"])["counters"]["expired"]:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        with pytest.raises(TimeoutError):
            link.recv_frame(timeout=0.5)
        daemon.rpc("clock.advance", {"seconds": 30})  # past 20 s: frame 2 only
        assert h.parse_zcl(Basic, link.recv_frame(timeout=2).data()[1]).header.tsn == 2
        with pytest.raises(TimeoutError):
            link.recv_frame(timeout=0.3)
        daemon.rpc("clock.advance", {"seconds": 40})  # past 60 s: frames 3 then 1, without their timers
        assert [h.parse_zcl(Basic, link.recv_frame(timeout=2).data()[1]).header.tsn for _ in range(2)] == [3, 1]


def test_link_rules_are_refused_for_a_closed_link_and_for_kinds_about_the_device(daemon, smetsctl):  # noqa: F811
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID, rig=RIG_A)
        open_id = link_id(daemon, RIG_A)
        for kind in ["powerCycle", "refuseLinks"]:
            with pytest.raises(RPCError) as refused:
                daemon.rpc("faults.add", {"link": open_id, "kind": kind})
            assert refused.value.code == -32602 and "name the device" in refused.value.message
        env = {"SMETSD_SOCKET": daemon.control_path, "PATH": "/usr/bin:/bin"}
        added = subprocess.run([str(smetsctl), "fault", "add", "delay", "--link", str(open_id), "--delay", "1", "--json"],
                               capture_output=True, text=True, timeout=60, env=env)
        assert added.returncode == 0 and json.loads(added.stdout)["link"] == open_id, added.stderr
        listed = subprocess.run([str(smetsctl), "han", "links"], capture_output=True, text=True, timeout=60, env=env).stdout
        assert h.eui_text(RIG_A) in listed and P1_PPMID in listed
        assert f"link {open_id}" in subprocess.run([str(smetsctl), "fault", "list"], capture_output=True, text=True, timeout=60,
                                                    env=env).stdout
        # A disconnect on a link with no window closes that link now, as one on a device does.
        now = daemon.rpc("faults.add", {"link": open_id, "kind": "disconnect"})
        assert now == {"applied": "disconnect", "device": P1_PPMID, "link": open_id, "rule": None}, now
        assert link.is_closed(timeout=2)
    with pytest.raises(RPCError) as closed:
        daemon.rpc("faults.add", {"link": open_id, "kind": "drop"})
    assert closed.value.code == 1008 and "han.links" in closed.value.message, closed.value


@pytest.mark.parametrize("params, code, words", [
    ({"device": "00-DB-12-34-56-78-99-99", "kind": "drop"}, 1001, "no device"),
    ({"premises": "P9999", "kind": "drop"}, 1003, "no premises"),
    ({"device": P1_PPMID, "kind": "drop", "probability": 1.5}, -32602, "probability must be between 0 and 1"),
    ({"device": P1_PPMID, "kind": "duplicate", "probability": -0.5}, -32602, "probability must be between 0 and 1"),
    ({"device": P1_PPMID, "kind": "delay", "delayMs": -5}, -32602, "delayMs must not be negative"),
    ({"device": P1_PPMID, "kind": "delay", "delayMs": 5, "jitterMs": -1}, -32602, "jitterMs must not be negative"),
    ({"device": P1_PPMID, "kind": "delay", "distribution": "pareto"}, -32602, "distribution must be"),
    ({"device": P1_PPMID, "kind": "explode"}, -32602, "kind must be one of"),
    ({"device": P1_PPMID, "kind": "drop", "direction": "sideways"}, -32602, "direction must be"),
    ({"device": P1_PPMID, "kind": "reorder", "window": 1}, -32602, "window must be"),
    ({"device": P1_PPMID, "kind": "drop", "cluster": "zz"}, -32602, "cluster must be 4 hex digits"),
    ({"device": P1_PPMID, "kind": "drop", "limit": 0}, -32602, "limit must be at least 1"),
    ({"kind": "drop"}, -32602, "name one of device, premises"),
    ({"link": 999999, "kind": "drop"}, 1008, "no HAN link 999999 is open"),
    ({"link": 1, "device": P1_PPMID, "kind": "drop"}, -32602, "name one of device, premises, link"),
])
def test_malformed_rules_are_refused_with_the_reason(shared_daemon, params, code, words):
    with pytest.raises(RPCError) as refused:
        shared_daemon.rpc("faults.add", params)
    assert refused.value.code == code and words in refused.value.message, refused.value
    assert shared_daemon.rpc("faults.list")["rules"] == []


def seeded_capture(daemon, seed: int, format: str = "pcap", corrupt: bool = True) -> bytes:
    """Fixed traffic (40 Basic reads with fixed sequence numbers) under seeded drop and corrupt rules,
    captured with the logical clock. Each read waits until the drop rule has seen the request and,
    unless it dropped it, the answer, so that the rules see the frames in the same order every run."""
    drop = daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "drop", "probability": 0.3, "seed": seed})["id"]
    if corrupt:
        daemon.rpc("faults.add", {"device": P1_PPMID, "kind": "corrupt", "probability": 0.3, "bits": 3, "seed": seed + 1})

    def counters():
        return next(r for r in daemon.rpc("faults.list")["rules"] if r["id"] == drop)["counters"]

    def wait_until(condition):
        deadline = time.monotonic() + 10
        while not condition(current := counters()):
            assert time.monotonic() < deadline, current
            time.sleep(0.005)
        return current

    capture = Capture(daemon, device=P1_PPMID, clock="logical", format=format)
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        seen = counters()
        for tsn in range(40):
            link.send_zcl(Basic.cluster_id, h.build_read_attributes([0x0004, 0x0005, 0x4000], tsn=tsn)[1])
            after = wait_until(lambda c: c["matched"] > seen["matched"])
            if after["applied"] == seen["applied"]:  # the request arrived: its answer goes through the rules too
                after = wait_until(lambda c: c["matched"] > seen["matched"] + 1)
            seen = after
    data = capture.close()
    daemon.rpc("faults.clear")
    return data


def test_the_same_seed_gives_byte_identical_captures(daemon):
    first, second, other = seeded_capture(daemon, 7), seeded_capture(daemon, 7), seeded_capture(daemon, 8)
    assert len(first) > 24 + 40 * 16
    assert first == second
    assert first != other


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: scripts/setup installs it")
    return path


def test_a_capture_of_an_ota_transfer_and_a_change_of_tenancy_decodes_in_tshark(daemon, smetsctl, tshark, tmp_path):  # noqa: F811
    image, _ = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY), size=3000)
    # Attached late: the capture starts after the daemon has been running and serving.
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        link.read(Basic, "sw_build_id")
    capture = Capture(daemon, premises="P0001")
    update = daemon.rpc("firmware.update", {"image": base64.b64encode(image).decode(), "targets": [P1_PPMID], "activate": "later"})
    assert update["results"][0]["outcome"] == "waiting", update
    daemon.rpc("tenancy.change", {"premises": "P0001"})
    blocks = -(-len(image) // ACME["maxImageBlockBytes"])
    capture.wait_for(2 * blocks + 6)
    pcap = tmp_path / "ota-and-tenancy.pcap"
    pcap.write_bytes(capture.close())
    verbose = subprocess.run([tshark, "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    text = verbose.stdout
    assert "Malformed Packet" not in text
    assert "Expert Info (Error" not in text and "Expert Info (Warning" not in text
    assert "Incorrect" not in text
    for needle in ["Image Notify", "Query Next Image Request", "Query Next Image Response", "Image Block Request",
                   "Image Block Response", "Upgrade End Request", "Publish Change Of Tenancy"]:
        assert needle.lower() in text.lower(), f"tshark did not decode {needle!r}"
    assert text.lower().count("image block response") >= blocks
    assert P1_CHF.replace("-", ":").lower() in text.lower()


def test_smetsctl_sets_lists_and_clears_rules_and_writes_a_capture_tshark_reads(daemon, smetsctl, tshark, tmp_path):  # noqa: F811
    env = {"SMETSD_SOCKET": daemon.control_path, "PATH": "/usr/bin:/bin"}

    def ctl(*args, check=True):
        result = subprocess.run([str(smetsctl), *args], capture_output=True, text=True, timeout=60, env=env)
        assert not check or result.returncode == 0, result.stderr
        return result

    added = json.loads(ctl("fault", "add", "corrupt", "--device", P1_PPMID, "--cluster", "0000", "--bits", "2", "--seed", "5",
                           "--json").stdout)
    assert added["kind"] == "corrupt" and added["bits"] == 2 and added["cluster"] == "0000"
    refused = ctl("fault", "add", "drop", "--device", P1_PPMID, "--probability", "2", check=False)
    assert refused.returncode == 1 and "probability must be between 0 and 1" in refused.stderr
    assert ctl("fault", "add", "drop", check=False).returncode == 2  # no target named
    assert "corrupt" in ctl("fault", "list").stdout
    pcap = tmp_path / "cli.pcap"
    capture = subprocess.Popen([str(smetsctl), "han", "capture", "--device", P1_PPMID, "-w", str(pcap), "--count", "4"], env=env)
    deadline = time.monotonic() + 10
    while not pcap.exists() or pcap.stat().st_size < 24:  # the header is written once the capture is on
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        link.request(Basic, h.build_read_attributes([0x0004, 0x4000]))  # corrupted both ways, answered all the same
        link.read(Ota, "current_file_version")  # another cluster: untouched
    assert capture.wait(timeout=10) == 0
    decoded = subprocess.run([tshark, "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=60).stdout
    assert decoded.count("ZigBee Cluster Library") == 4 and "Malformed" not in decoded, decoded
    rule = json.loads(ctl("fault", "list", "--json").stdout)["rules"][0]
    assert rule["counters"]["applied"] == 2 and rule["counters"]["matched"] == 2, rule
    assert "removed 1 rules" in ctl("fault", "clear").stdout


def test_pcapng_is_byte_identical_for_the_same_seed_and_decodes_in_tshark(daemon, tshark, tmp_path):
    first, second, other = (seeded_capture(daemon, seed, "pcapng") for seed in (7, 7, 8))
    assert first[:4] == b"\x0a\x0d\x0d\x0a" and first[8:12] == b"\x4d\x3c\x2b\x1a"  # SHB, little-endian
    assert first == second and first != other
    # Decoded: seeded drops only (flipped payload bits would make the ZCL itself malformed, by design).
    clean = seeded_capture(daemon, 7, "pcapng", corrupt=False)
    assert clean == seeded_capture(daemon, 7, "pcapng", corrupt=False)
    path = tmp_path / "seeded.pcapng"
    path.write_bytes(clean)
    verbose = subprocess.run([tshark, "-r", str(path), "-V"], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    text = verbose.stdout
    assert "Malformed Packet" not in text and "Expert Info (Error" not in text, text[:4000]
    assert "Encapsulation type: IEEE 802.15.4 Wireless PAN (104)" in text or "802.15.4" in text
    assert text.count("ZigBee Cluster Library") >= 40, text.count("ZigBee Cluster Library")
    # The interface: link type 195 and microsecond resolution, as tshark reads them from the IDB.
    info = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-c", "2"], capture_output=True, text=True,
                          timeout=60).stdout.split()
    assert [float(t) for t in info] == [946684800.001, 946684800.002], info  # logical clock: frame n at n ms after 2000-01-01
    # The same frames as the pcap of the same run.
    pcap = tmp_path / "seeded.pcap"
    pcap.write_bytes(seeded_capture(daemon, 7, corrupt=False))
    fields = ["-T", "fields", "-e", "frame.time_epoch", "-e", "zbee_zcl.cmd.tsn", "-e", "frame.len"]
    as_pcap = subprocess.run([tshark, "-r", str(pcap), *fields], capture_output=True, text=True, timeout=60).stdout
    as_pcapng = subprocess.run([tshark, "-r", str(path), *fields], capture_output=True, text=True, timeout=60).stdout
    assert as_pcap == as_pcapng and as_pcap.count("\n") >= 40


def test_smetsctl_writes_a_pcapng_capture_tshark_reads(daemon, smetsctl, tshark, tmp_path):  # noqa: F811
    env = {"SMETSD_SOCKET": daemon.control_path, "PATH": "/usr/bin:/bin"}
    path = tmp_path / "cli.pcapng"
    capture = subprocess.Popen([str(smetsctl), "han", "capture", "--format", "pcapng", "--device", P1_PPMID, "-w", str(path),
                                "--count", "4"], env=env)
    deadline = time.monotonic() + 10
    while not path.exists() or path.stat().st_size < 28:  # the SHB and IDB are written once the capture is on
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        link.read(Basic, "sw_build_id")
        link.read(Ota, "current_file_version")
    assert capture.wait(timeout=10) == 0
    decoded = subprocess.run([tshark, "-r", str(path), "-V"], capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.count("ZigBee Cluster Library") == 4 and "Malformed" not in decoded.stdout, decoded.stdout
    bad = subprocess.run([str(smetsctl), "han", "capture", "--format", "erf", "-w", str(tmp_path / "x")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--format must be pcap or pcapng" in bad.stderr
