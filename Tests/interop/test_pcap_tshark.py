"""Every ZCL frame of a HAN link session, written as IEEE 802.15.4 / Zigbee NWK / APS into a pcap and
decoded by Wireshark's dissectors (tshark): the emulator's ZCL must read as Zigbee to a third party.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from zigpy.zcl.foundation import Status

import hanlink as h
from conftest import P1_ESME, P1_PPMID
from hanlink import Basic, DeviceManagement, HanLink, Messaging, Metering, OnOff, Ota, Prepayment

LINKTYPE_IEEE802_15_4_WITHFCS = 195
PAN_ID = 0x1A62


def crc16_kermit(data: bytes) -> int:
    """The 802.15.4 FCS: CRC-16/ITU-T as the MAC sends it (reflected, initial 0, sent LSB first)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


class Capture:
    """Wraps HAN link DATA frames as the 802.15.4 frames they stand for."""

    def __init__(self) -> None:
        self.short: dict[bytes, int] = {}
        self.mac_seq = self.nwk_seq = self.aps_counter = 0
        self.records: list[tuple[float, bytes]] = []

    def short_address(self, eui: h.t.EUI64) -> int:
        key = eui.serialize()
        if key not in self.short:
            self.short[key] = 0x1001 + len(self.short)
        return self.short[key]

    def frame(self, header: h.DataHeader, zcl: bytes) -> bytes:
        src, dst = self.short_address(header.source), self.short_address(header.destination)
        self.mac_seq = (self.mac_seq + 1) & 0xFF
        self.nwk_seq = (self.nwk_seq + 1) & 0xFF
        self.aps_counter = (self.aps_counter + 1) & 0xFF
        # MAC: data frame, no security, PAN ID compression, short destination and source, 2003.
        fcf = 0x0001 | 0x0040 | (0b10 << 10) | (0b10 << 14)
        mac = struct.pack("<HBHHH", fcf, self.mac_seq, PAN_ID, dst, src)
        # NWK: data frame, protocol version 2 (PRO), no security, both IEEE addresses present.
        nwk_fcf = 0x0000 | (2 << 2) | (1 << 11) | (1 << 12)
        nwk = struct.pack("<HHHBB", nwk_fcf, dst, src, 30, self.nwk_seq)
        nwk += header.destination.serialize() + header.source.serialize()
        # APS: data frame, unicast, no security, no ack: endpoints, cluster, profile, counter.
        aps = struct.pack("<BBHHBB", 0x00, header.destination_endpoint, header.cluster_id, header.profile_id,
                          header.source_endpoint, self.aps_counter)
        psdu = mac + nwk + aps + zcl
        return psdu + struct.pack("<H", crc16_kermit(psdu))

    def add(self, exchanged: h.Exchanged) -> None:
        self.records.append((exchanged.time, self.frame(exchanged.header, exchanged.zcl)))

    def write(self, path: Path) -> None:
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_IEEE802_15_4_WITHFCS))
            for stamp, data in self.records:
                out.write(struct.pack("<IIII", int(stamp), int((stamp % 1) * 1e6), len(data), len(data)))
                out.write(data)


def run_session(daemon, recorder: list[h.Exchanged]) -> int:
    """A session touching every cluster and command the emulated devices serve."""
    with HanLink(daemon.han_path, recorder=recorder) as link:
        link.attach(P1_PPMID)
        link.read_attributes(Basic, [0x0000, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x4000, 0x0010])
        link.read_attributes(Ota, [0x0000, 0x0001, 0x0002, 0x0004, 0x0006, 0x0007, 0x0008])
        link.request(OnOff, h.build_cluster_command(OnOff, "toggle"))  # Default Response 0xC3
        # The PPMID as OTA client: Image Notify, its Query Next Image Request, NO_IMAGE_AVAILABLE.
        link.send_zcl(Ota.cluster_id, h.build_cluster_command(
            Ota, "image_notify", payload_type=3, query_jitter=100, manufacturer_code=0x1234, image_type=0x0001,
            new_file_version=0x01030000, disable_default_response=True)[1])
        _, query = link.recv_zcl(Ota)
        assert query.name == "query_next_image", query
        link.send_zcl(Ota.cluster_id, h.build_cluster_command(
            Ota, "query_next_image_response", tsn=query.header.tsn, status=Status.NO_IMAGE_AVAILABLE,
            disable_default_response=True)[1])
        link.request(Messaging, h.build_cluster_command(Messaging, "display_message", message_id=42, message_control=0,
                                                        start_time=0, duration_in_minutes=30, message="Hello from the supplier"))
        link.request(Messaging, h.build_cluster_command(Messaging, "display_message", message_id=42, message_control=0x80,
                                                        start_time=0, duration_in_minutes=0xFFFF, message="Confirm please",
                                                        extended_message_control=0))
        link.request(Messaging, h.build_cluster_command(Messaging, "cancel_message", message_id=42, message_control=0))
        link.request(DeviceManagement, h.build_cluster_command(
            DeviceManagement, "publish_change_of_supplier", current_provider_id=1, issuer_event_id=2, tariff_type=0,
            proposed_provider_id=3, provider_change_implementation_time=0, provider_change_control=0,
            proposed_provider_name=b"New Energy", proposed_provider_contact_details=b"0800 000 000"))
        link.request(DeviceManagement, h.build_cluster_command(
            DeviceManagement, "publish_change_of_tenancy", provider_id=1, issuer_event_id=3, tariff_type=0,
            implementation_date_time=0, proposed_tenancy_change_control=(1 << 8) | (1 << 10)))
    with HanLink(daemon.han_path, recorder=recorder) as link:
        link.attach(P1_ESME)
        link.read_attributes(Metering, [0x0000, 0x0200, 0x0300, 0x0301, 0x0302, 0x0306, 0x0308, 0x0400])
        link.read_attributes(Prepayment, [0x0000, 0x0001, 0x0002, 0x0005])
        code = b"00000000000000102500"
        reply = link.request(Prepayment, h.build_cluster_command(Prepayment, "consumer_top_up", originating_device=0,
                                                                 top_up_code=code))
        assert reply.payload.result_type == 0
        credit = int(reply.payload.credit_remaining)
        link.request(Prepayment, h.build_cluster_command(Prepayment, "get_top_up_log", latest_end_time=0xFFFFFFFF,
                                                         number_of_records=5))
        link.request(Messaging, h.build_cluster_command(Messaging, "get_last_message"))
    return credit


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: scripts/setup installs it")
    return path


def test_session_decodes_in_tshark(daemon, tshark, tmp_path):
    recorder: list[h.Exchanged] = []
    credit_after_top_up = run_session(daemon, recorder)
    assert sum(1 for e in recorder if e.direction == "tx") >= 13
    assert sum(1 for e in recorder if e.direction == "rx") >= 13
    capture = Capture()
    for exchanged in recorder:
        capture.add(exchanged)
    pcap = tmp_path / "han-session.pcap"
    capture.write(pcap)
    keep = Path(os.environ.get("SMETSD_INTEROP_ARTIFACTS", tmp_path))  # where the pcap and decode are kept
    keep.mkdir(parents=True, exist_ok=True)
    if keep != tmp_path:
        shutil.copy(pcap, keep / pcap.name)

    verbose = subprocess.run([tshark, "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=60)
    (keep / "han-session.txt").write_text(verbose.stdout)
    assert verbose.returncode == 0, verbose.stderr
    text = verbose.stdout
    assert "Malformed Packet" not in text, _context(text, "Malformed Packet")
    assert "Expert Info (Error" not in text, _context(text, "Expert Info (Error")
    assert "Expert Info (Warning" not in text, _context(text, "Expert Info (Warning")
    assert text.count("FCS: 0x") == len(recorder) and "(Correct)" in text and "Incorrect" not in text

    # Per packet: tshark's reading agrees with zigpy's (layers, sequence number, command name).
    fields = ["frame.number", "frame.protocols", "zbee_aps.profile", "zbee_aps.cluster", "zbee_zcl.cmd.tsn", "_ws.col.Info"]
    summary = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
                             + [arg for f in fields for arg in ("-e", f)], capture_output=True, text=True, timeout=60)
    rows = [line.split("|") for line in summary.stdout.splitlines()]
    assert len(rows) == len(recorder)
    for row, exchanged in zip(rows, recorder):
        message = h.parse_zcl(h.CLUSTERS.get(int(exchanged.header.cluster_id)), exchanged.zcl)
        where = f"frame {row[0]} ({exchanged.direction} {message.name}): {row}"
        assert row[1].startswith("wpan:zbee_nwk:zbee_aps:zbee_zcl"), where
        assert int(row[2], 16) == 0x0109 and int(row[3], 16) == exchanged.header.cluster_id, where
        assert int(row[4]) == message.header.tsn, where
        expected = TSHARK_GENERAL_NAMES.get(message.name, message.name.replace("_", " "))
        assert expected.lower() in row[5].lower(), where

    # Attribute IDs and values, as tshark reads them, are the ones zigpy read, in the same order.
    packets = _packets(tshark, pcap)
    assert len(packets) == len(recorder)
    for packet, exchanged in zip(packets, recorder):
        message = h.parse_zcl(h.CLUSTERS.get(int(exchanged.header.cluster_id)), exchanged.zcl)
        if message.name == "Read_Attributes":
            ids = [int(a) for a in message.payload.attribute_ids]
        elif message.name == "Read_Attributes_rsp":
            ids = [int(r.attrid) for r in message.payload.status_records]
            strings = [r.value.value for r in message.payload.status_records
                       if r.status == Status.SUCCESS and isinstance(r.value.value, str)]
            assert [v for k, v in packet if k == "zbee_zcl.attr.str"] == strings, packet
        else:
            continue
        decoded = [int(v, 16) for k, v in packet if k.endswith(".attr_id") or k == "zbee_zcl.attr.id"]
        assert decoded == ids, (message.name, decoded, ids)
    top_up = _fields(tshark, pcap, "zbee_zcl_se.pp.consumer_top_up_response.top_up_value",
                     "zbee_zcl_se.pp.consumer_top_up_response.credit_remaining")
    assert top_up == [f"2500|{credit_after_top_up}"], top_up

    for needle in [
        # ZCL general commands
        "Read Attributes", "Read Attributes Response", "Default Response", "Unsupported Attribute", "Not Found",
        "Unsupported Cluster",
        # Basic attributes, by the names Wireshark gives them
        "ZCL Version", "HW Version", "Manufacturer Name", "Model Identifier", "Date Code", "Power Source",
        "Software Build Id",
        # OTA client attributes
        "OTA Upgrade", "Upgrade Server ID", "Current File Version", "Image Type ID", "Image Notify",
        "Query Next Image Request", "Query Next Image Response", "No Image Available",
        # Smart Energy clusters, attributes and commands
        "Simple Metering", "Current Summation Delivered", "Unit of Measure", "Multiplier", "Divisor",
        "Instantaneous Demand", "Meter Serial Number",
        "Cluster: Message", "Display Message", "Message Confirmation", "Cancel Message", "Get Last Message",
        "Pre-Payment", "Credit Remaining", "Consumer Top Up", "Consumer Top Up Response", "Get Top Up Log",
        "Publish Top Up Log",
        "Device Management", "Publish Change Of Tenancy", "Publish Change Of Supplier",
    ]:
        assert needle.lower() in text.lower(), f"tshark did not decode {needle!r}"


TSHARK_GENERAL_NAMES = {"Read_Attributes": "Read Attributes", "Read_Attributes_rsp": "Read Attributes Response",
                        "Default_Response": "Default Response",
                        # zigpy's OTA command names against Wireshark's
                        "query_next_image": "Query Next Image Request"}


def _packets(tshark: str, pcap: Path) -> list[list[tuple[str, str]]]:
    """Each packet's (field, value) pairs in tree order, duplicates kept, from tshark -T json."""
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pairs_of_packets = json.loads(out.stdout, object_pairs_hook=lambda pairs: pairs)

    def walk(node, found):
        if isinstance(node, list):
            for item in node:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                    key, value = item
                    if isinstance(value, str):
                        found.append((key, value))
                    else:
                        walk(value, found)
                else:
                    walk(item, found)
        return found

    return [walk(packet, []) for packet in pairs_of_packets]


def _fields(tshark: str, pcap: Path, *names: str) -> list[str]:
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
                         + [arg for n in names for arg in ("-e", n)], capture_output=True, text=True, timeout=60)
    return [line for line in out.stdout.splitlines() if line.strip("|")]


def _context(text: str, needle: str, width: int = 3000) -> str:
    index = text.find(needle)
    return text[max(0, index - width) : index + 200]
