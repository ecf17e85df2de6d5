"""HAN link interoperability: a zigpy-built rig against the real smetsd, per shared/spec/han-link.md.

Every ZCL request is built with zigpy and every answer parsed with zigpy (hanlink.py); only the link
framing is written by hand.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import struct
import time

import pytest
import zigpy.types as t
from zigpy.ota.image import FieldControl as OTAFieldControl, OTAImageHeader
from zigpy.zcl.foundation import DataTypeId, Direction, GeneralCommand, Status

import hanlink as h
from conftest import (LAB, P1_CHF, P1_ESME, P1_GPF, P1_GSME, P1_IHD, P1_PPMID, P1_PPMID_UNJOINED, P2_PPMID,
                      copy_lab)
from hanlink import Basic, DeviceManagement, HanLink, Messaging, Metering, OnOff, Ota, Prepayment

LAB_JSON = json.loads((LAB / "lab.json").read_text())
DEVICES = {d["id"]: d for p in LAB_JSON["premises"] for d in p["devices"]}
MODELS = {path.stem: json.loads(path.read_text()) for path in (LAB / "models").glob("*.json")}
DEVICE_TYPE_NUMBERS = {"GSME": 0, "ESME": 1, "CHF": 2, "GPF": 3, "HCALCS": 4, "PPMID": 5, "IHD": 6}
MODE_NUMBERS = {"undetermined": 0, "SMETS1": 1, "SMETS2+": 2}
RIG_B = h.eui("00-0D-6F-00-0A-BC-DE-F1")


def model_of(device_id: str) -> dict:
    return MODELS[DEVICES[device_id]["model"]]


def utrn(pence: int, serial: int) -> bytes:
    """A 20-digit UTRN as the emulator reads it: the last 5 digits are the value in pence."""
    return f"{serial:015d}{pence:05d}".encode()


def virtual_now(daemon) -> int:
    """The daemon's virtual clock as ZCL UTC (seconds since 2000-01-01T00:00:00Z)."""
    now = datetime.datetime.fromisoformat(daemon.rpc("clock.get")["now"].replace("Z", "+00:00"))
    return int((now - datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds())


def default_response(message: h.ZCLMessage, request_tsn: int, request_command: int) -> Status:
    """Checks a Default Response's framing (zigpy-parsed) and returns its status."""
    assert message.is_general and message.header.command_id == GeneralCommand.Default_Response, f"not a Default Response: {message}"
    assert message.header.tsn == request_tsn
    assert message.payload.command_id == request_command, message.payload
    return message.payload.status


# ---------------------------------------------------------------------------------------------------
# HELLO / WELCOME
# ---------------------------------------------------------------------------------------------------

WELCOME_CASES = [
    # (device, expected device type, expected SMETS mode); the two PPMIDs are the MP202 table's cases.
    (P1_PPMID, 5, 2),  # pre-notified SMETS1, hub SMETS2+ -> SMETS2+
    (P2_PPMID, 5, 1),  # pre-notified SMETS2+, hub SMETS1 -> SMETS1
    (P1_ESME, 1, None),
    (P1_GSME, 0, None),
    (P1_GPF, 3, None),
    (P1_IHD, 6, None),
    (P1_CHF, 2, None),
    (P1_PPMID_UNJOINED, 5, 0),  # never joined: mode not yet determined
]


def check_welcome(daemon, link: HanLink, welcome: h.WelcomeBody, device_id: str, device_type: int, mode: int | None):
    model = model_of(device_id)
    info = daemon.rpc("devices.get", {"id": device_id})
    assert welcome.version == 1
    assert welcome.device == h.eui(device_id)
    assert welcome.device_type == device_type == DEVICE_TYPE_NUMBERS[DEVICES[device_id]["type"]]
    assert welcome.smets_mode == MODE_NUMBERS[info["mode"]]
    if mode is not None:
        assert welcome.smets_mode == mode
    assert welcome.manufacturer_code == int(model["manufacturer"]["code"], 16)
    assert welcome.image_type == int(model["otaImageType"], 16)
    # The firmware the device presents: Basic SWBuildID, as 8 uppercase hex digits, is the same number.
    sw_build_id = link.read(Basic, "sw_build_id")
    assert re.fullmatch(r"[0-9A-F]{8}", sw_build_id), sw_build_id
    assert welcome.current_file_version == int(sw_build_id, 16)
    assert f"{welcome.current_file_version:08X}" == info["presentedFirmwareVersion"]
    assert f"{welcome.current_file_version:08X}" == model["firmwareVersion"]  # the lab's regime is mp202


@pytest.mark.parametrize("device_id,device_type,mode", WELCOME_CASES, ids=[c[0][-5:] for c in WELCOME_CASES])
def test_hello_welcome_over_han_sock(shared_daemon, device_id, device_type, mode):
    with HanLink(shared_daemon.han_path) as link:
        frame = link.hello(device_id)
        assert frame.type == h.WELCOME, frame
        welcome = frame.welcome()
        link.device = welcome.device
        check_welcome(shared_daemon, link, welcome, device_id, device_type, mode)
        if device_id == P1_PPMID:
            assert welcome.manufacturer_code == 0x1234 and welcome.image_type == 0x0001


@pytest.mark.parametrize("device_id,mode", [(P1_PPMID, 2), (P2_PPMID, 1)], ids=["P0001-PPMID", "P0002-PPMID"])
def test_hello_welcome_over_device_socket(shared_daemon, device_id, mode):
    with HanLink(shared_daemon.device_path(device_id)) as link:
        welcome = link.attach(h.ZERO_EUI)  # the target is implied by the socket
        assert welcome.device == h.eui(device_id)
        check_welcome(shared_daemon, link, welcome, device_id, 5, mode)
        # Read over the per-device socket, addressed to the device the WELCOME named.
        assert link.read(Basic, "manufacturer") == model_of(device_id)["manufacturer"]["name"]
    # Naming the implied device itself is accepted too.
    with HanLink(shared_daemon.device_path(device_id)) as link:
        assert link.attach(device_id).device == h.eui(device_id)
    # Naming another device on a per-device socket is an unknown device there: ERROR 2, closed.
    with HanLink(shared_daemon.device_path(device_id)) as link:
        frame = link.hello(P1_ESME)
        assert frame.error_code == h.ERR_UNKNOWN_DEVICE, frame
        assert link.is_closed()


def test_under_interim_regime_the_device_still_reports_the_firmware_it_runs(daemon_factory, tmp_path):
    """han-link.md rev 1.1 and MP202 §2: the dual-mode PPMIDs are identical devices whatever system
    they joined; WELCOME, Basic SWBuildID and OTA CurrentFileVersion name the firmware the device runs,
    while a fictitious SMETS1 version lives only in the DCC's inventory."""
    lab = copy_lab(tmp_path / "devices", lab_changes=lambda lab: lab.update(cplRegime="interim"))
    daemon = daemon_factory(lab)
    for device_id in (P2_PPMID, P1_PPMID):
        runs = int(daemon.rpc("devices.get", {"id": device_id})["firmwareVersion"], 16)
        with HanLink(daemon.han_path) as link:
            welcome = link.attach(device_id)
            assert welcome.current_file_version == runs, f"{device_id}: {welcome.current_file_version:08X}"
            assert link.read(Basic, "sw_build_id") == f"{runs:08X}"
            assert link.read(Ota, "current_file_version") == runs


# ---------------------------------------------------------------------------------------------------
# Basic and OTA client attributes
# ---------------------------------------------------------------------------------------------------

BASIC_IDS = [0x0000, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x4000]
UNKNOWN_ATTRIBUTE = 0x0010  # LocationDescription: zigpy knows it; the emulator does not serve it


@pytest.mark.parametrize("device_id", [P1_PPMID, P2_PPMID, P1_ESME, P1_IHD, P1_CHF])
def test_basic_read_attributes(shared_daemon, device_id):
    model = model_of(device_id)
    with HanLink(shared_daemon.han_path) as link:
        link.attach(device_id)
        built = h.build_read_attributes(BASIC_IDS + [UNKNOWN_ATTRIBUTE])
        response = link.request(Basic, built)
        assert response.header.frame_control.direction == Direction.Server_to_Client
        assert response.header.frame_control.disable_default_response  # a response asks for none
        assert response.rest == b"", f"bytes after the records: {response.rest.hex()}"
        records = {r.attrid: r for r in response.payload.status_records}
        assert list(records) == BASIC_IDS + [UNKNOWN_ATTRIBUTE], "one record per attribute, in the order asked"
        for attrid in BASIC_IDS:
            record = records[attrid]
            assert record.status == Status.SUCCESS, (hex(attrid), record)
            definition = Basic.attributes[attrid]
            # The ZCL data type on the wire is the one zigpy (and the ZCL) declares.
            assert record.value.type == definition.zcl_type, (definition.name, record.value)
        values = h.attribute_values(Basic, response)
        assert values[UNKNOWN_ATTRIBUTE] == (Status.UNSUPPORTED_ATTRIBUTE, None)
        assert 1 <= values[0x0000][1] <= 8  # ZCLVersion
        assert values[0x0003][1] == model["hardwareVersion"]
        assert values[0x0004][1] == model["manufacturer"]["name"]
        assert values[0x0005][1] == model["modelName"]
        assert values[0x0006][1] == model["dateCode"]
        assert values[0x0007][1] == Basic.PowerSource(model["powerSource"])
        assert values[0x4000][1] == shared_daemon.rpc("devices.get", {"id": device_id})["presentedFirmwareVersion"]


def test_ota_client_attributes_match_welcome(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        welcome = link.attach(P1_PPMID)
        ids = [0x0000, 0x0001, 0x0002, 0x0004, 0x0006, 0x0007, 0x0008]
        values = link.read_attributes(Ota, ids)
        assert all(status == Status.SUCCESS for status, _ in values.values()), values
        assert values[0x0000][1] == h.eui(P1_CHF)  # the upgrade server: the hub it joined
        assert values[0x0002][1] == welcome.current_file_version
        assert values[0x0007][1] == welcome.manufacturer_code
        assert values[0x0008][1] == welcome.image_type


# ---------------------------------------------------------------------------------------------------
# Default Responses for bad ZCL; the link stays open
# ---------------------------------------------------------------------------------------------------


def test_default_responses_and_link_stays_open(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)

        # A cluster-specific command the PPMID does not serve on a cluster it does: 0x81.
        hdr, zcl = h.build_cluster_command(Messaging, "display_message", message_id=1, message_control=0,
                                           start_time=0, duration_in_minutes=1, message="x")
        unknown = hdr.replace(command_id=0x42)
        reply = link.request(Messaging, (unknown, unknown.serialize() + zcl[3:]))
        assert default_response(reply, unknown.tsn, 0x42) == Status.UNSUP_CLUSTER_COMMAND
        assert reply.header.frame_control.direction == Direction.Client_to_Server  # reversed

        # Basic's own reset_fact_default is not served by an emulated device: 0x81.
        built = h.build_cluster_command(Basic, "reset_fact_default")
        assert default_response(link.request(Basic, built), built[0].tsn, 0x00) == Status.UNSUP_CLUSTER_COMMAND

        # A cluster the device does not serve (On/Off): 0xC3 UNSUPPORTED_CLUSTER.
        built = h.build_cluster_command(OnOff, "toggle")
        assert default_response(link.request(OnOff, built), built[0].tsn, built[0].command_id) == Status.UNSUPPORTED_CLUSTER
        built = h.build_read_attributes([0x0000])
        assert default_response(link.request(OnOff, built), built[0].tsn, 0x00) == Status.UNSUPPORTED_CLUSTER

        # A payload too short for its command: DisplayMessage with 2 bytes -> 0x80 MALFORMED_COMMAND.
        hdr, zcl = h.build_cluster_command(Messaging, "display_message", message_id=0x01020304, message_control=0,
                                           start_time=0, duration_in_minutes=1, message="short")
        short = zcl[: len(hdr.serialize()) + 2]
        reply = link.request(Messaging, (hdr, short))
        assert default_response(reply, hdr.tsn, 0x00) == Status.MALFORMED_COMMAND

        # Read Attributes with half an attribute ID: 0x80 as well.
        hdr, zcl = h.build_read_attributes([0x0000])
        reply = link.request(Basic, (hdr, zcl + b"\x05"))
        assert default_response(reply, hdr.tsn, 0x00) == Status.MALFORMED_COMMAND

        # A global command the device does not serve (Discover Attributes): a Default Response, not silence.
        built = h.build_general(GeneralCommand.Discover_Attributes, start_attribute_id=0, max_attribute_ids=10)
        status = default_response(link.request(Basic, built), built[0].tsn, GeneralCommand.Discover_Attributes)
        assert status in (Status.UNSUP_CLUSTER_COMMAND, Status.UNSUP_GENERAL_COMMAND)

        # A profile other than Smart Energy: the cluster is not served under it.
        built = h.build_read_attributes([0x0000])
        reply = link.request(Basic, built, profile=0x0104)
        assert default_response(reply, built[0].tsn, 0x00) == Status.UNSUPPORTED_CLUSTER

        # After all that, the link is open and a Read Attributes is answered.
        assert link.read(Basic, "zcl_version") >= 1
        assert not link.is_closed(timeout=0.2)


def test_success_with_default_response_disabled_is_silent(daemon):
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        built = h.build_cluster_command(Messaging, "display_message", message_id=77, message_control=0, start_time=0,
                                        duration_in_minutes=0xFFFF, message="quiet", disable_default_response=True)
        link.send_zcl(Messaging.cluster_id, built[1])
        # The next answer on the link is the one to the read that follows: no Default Response came first.
        assert link.read(Basic, "zcl_version") >= 1
        assert not link.pending, link.pending
        assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 1


# ---------------------------------------------------------------------------------------------------
# Every HAN link error code
# ---------------------------------------------------------------------------------------------------


def test_error_1_unsupported_version_closes(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        frame = link.hello(P1_PPMID, version=2)
        assert frame.type == h.ERROR and frame.error_code == h.ERR_UNSUPPORTED_VERSION, frame
        assert frame.error_reason
        assert link.is_closed()


def test_error_2_unknown_target_closes(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        frame = link.hello("00-DB-12-34-56-78-99-99")
        assert frame.error_code == h.ERR_UNKNOWN_DEVICE, frame
        assert link.is_closed()
    with HanLink(shared_daemon.han_path) as link:  # all-zero target on han.sock: no device either
        assert link.hello(h.ZERO_EUI).error_code == h.ERR_UNKNOWN_DEVICE
        assert link.is_closed()


@pytest.mark.parametrize("raw,case", [
    (b"\x00\x00", "length 0"),
    (b"\x00\x00" + h.encode_hello(h.eui(P1_PPMID)), "length 0 before a valid HELLO"),
    (struct.pack("<HB", 1, 0x42), "unknown frame type, no body"),
    (struct.pack("<HB", 4, 0x42) + b"abc", "unknown frame type with a body"),
    (struct.pack("<HB", 3, h.HELLO) + b"\x01\x00", "HELLO body too short"),
    (h.encode_frame(h.WELCOME, bytes(19)), "a rig sending WELCOME"),
    (h.encode_frame(h.ERROR, b"\x01oops"), "a rig sending ERROR"),
])
def test_error_3_malformed_frame_closes(shared_daemon, raw, case):
    with HanLink(shared_daemon.han_path) as link:
        link.send_raw(raw)
        frame = link.recv_frame()
        assert frame.type == h.ERROR and frame.error_code == h.ERR_MALFORMED_FRAME, (case, frame)
        assert link.is_closed(), case


def test_error_3_short_data_after_hello_closes(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        header = h.DataHeader(source=h.RIG_EUI, destination=h.eui(P1_PPMID), profile_id=0x0109, cluster_id=0,
                              source_endpoint=1, destination_endpoint=1)
        link.send_raw(h.encode_data(header, b"\x00\x01"))  # ZCL of 2 bytes: under the contract's 3
        assert link.recv_frame().error_code == h.ERR_MALFORMED_FRAME
        assert link.is_closed()


@pytest.mark.parametrize("length", [5000, 4097, 0xFFFF])
def test_error_4_frame_too_large_closes(shared_daemon, length):
    with HanLink(shared_daemon.han_path) as link:
        link.send_raw(struct.pack("<HB", length, h.DATA) + b"\x00" * 64)
        frame = link.recv_frame()
        assert frame.type == h.ERROR and frame.error_code == h.ERR_FRAME_TOO_LARGE, frame
        assert link.is_closed()


def test_max_length_4096_is_a_frame(shared_daemon):
    """Length 4096 is inside the limit: a DATA frame that long is read and its ZCL answered."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        hdr, zcl = h.build_cluster_command(Basic, "reset_fact_default")
        hdr = hdr.replace(command_id=0x42)  # an unknown command, with a payload filling the frame
        zcl = hdr.serialize() + bytes(range(256)) * 16
        zcl = zcl[: 4096 - 1 - h.DATA_HEADER_LENGTH]
        link.send_zcl(Basic.cluster_id, zcl)
        header, message = link.recv_zcl(Basic)
        assert default_response(message, hdr.tsn, 0x42) == Status.UNSUP_CLUSTER_COMMAND
        assert not link.is_closed(timeout=0.2)


def test_read_attributes_response_never_exceeds_frame_limit(shared_daemon):
    """DAEMON BUG (HANFrame.encoded writes any DATA length up to 0xFFFF; attributeRecords /
    readAttributesResponse in Engine+ZCL.swift never bound the response to HANData.maxZCLLength).

    A Read Attributes asking for more than one frame can answer must not make the daemon send a
    frame over 4096 bytes (the contract's limit in both directions): it answers with what fits, or a
    Default Response, and the link goes on."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        hdr, zcl = h.build_read_attributes([0x4000] * 1000)  # 13 bytes per answered record: 13000 bytes
        link.send_zcl(Basic.cluster_id, zcl)
        frame_bytes = b""
        deadline = time.monotonic() + 5
        while len(frame_bytes) < 2 and time.monotonic() < deadline:
            link._fill(deadline)
            frame_bytes = link.buffer
        (length,) = struct.unpack_from("<H", link.buffer)
        assert 1 <= length <= h.MAX_LENGTH, (
            f"DAEMON BUG: answered with a frame of length field {length} (> 4096); the first bytes: "
            f"{link.buffer[:40].hex()}")
        header, message = link.recv_zcl(Basic)
        assert message.header.tsn == hdr.tsn
        if message.header.command_id == GeneralCommand.Read_Attributes_rsp:
            assert 0 < len(message.payload.status_records) < 1000
        assert link.read(Basic, "zcl_version") >= 1


def test_error_5_data_before_hello_keeps_link(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        hdr, zcl = h.build_read_attributes([0x4000])
        link.send_zcl(Basic.cluster_id, zcl, destination=h.eui(P1_PPMID))
        frame = link.recv_frame()
        assert frame.type == h.ERROR and frame.error_code == h.ERR_NOT_ATTACHED, frame
        assert not link.is_closed(timeout=0.3)
        link.attach(P1_PPMID)  # the link is still usable
        assert link.read(Basic, "sw_build_id")


def test_error_5_wrong_destination_keeps_link(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        hdr, zcl = h.build_read_attributes([0x4000])
        link.send_zcl(Basic.cluster_id, zcl, destination=h.eui(P1_ESME))  # attached to the PPMID
        frame = link.recv_frame()
        assert frame.error_code == h.ERR_NOT_ATTACHED, frame
        # The emulated device's endpoint is 1: another endpoint is another destination.
        link.send_zcl(Basic.cluster_id, zcl, destination_endpoint=2)
        assert link.recv_frame().error_code == h.ERR_NOT_ATTACHED
        assert link.read(Basic, "sw_build_id")
        assert not link.is_closed(timeout=0.2)


def test_error_6_too_many_links_per_device(daemon_factory, tmp_path):
    daemon = daemon_factory(copy_lab(tmp_path / "devices", settings={"maxLinksPerDevice": 2}))
    first, second = HanLink(daemon.han_path), HanLink(daemon.device_path(P1_PPMID))
    try:
        first.attach(P1_PPMID)
        second.attach(h.ZERO_EUI)  # han.sock and the per-device socket count together
        with HanLink(daemon.han_path) as third:
            frame = third.hello(P1_PPMID)
            assert frame.type == h.ERROR and frame.error_code == h.ERR_TOO_MANY_CONNECTIONS, frame
            assert third.is_closed()
        with HanLink(daemon.device_path(P1_PPMID)) as third:
            assert third.hello(h.ZERO_EUI).error_code == h.ERR_TOO_MANY_CONNECTIONS
            assert third.is_closed()
        # The limit is per device: another device still takes links.
        with HanLink(daemon.han_path) as other:
            other.attach(P1_ESME)
        # The two attached links still work.
        assert first.read(Basic, "zcl_version") and second.read(Basic, "zcl_version")
        # Closing one frees its place.
        first.close()
        deadline = time.monotonic() + 3
        while True:
            with HanLink(daemon.han_path) as again:
                frame = again.hello(P1_PPMID)
                if frame.type == h.WELCOME or time.monotonic() > deadline:
                    assert frame.type == h.WELCOME, frame
                    break
            time.sleep(0.05)
    finally:
        first.close()
        second.close()


def _lab_with_role(tmp_path, role: str):
    lab = copy_lab(tmp_path / "devices")
    (lab / "access.json").write_text(json.dumps({"roles": {f"uid:{os.getuid()}": role}}))
    return lab


@pytest.mark.parametrize("role", ["map:MAP-ALPHA", "manufacturer:1234"])
def test_error_7_not_authorised_closes(daemon_factory, tmp_path, role):
    """access.json gives this test's uid a role that may not attach: HELLO gets ERROR 7 and the close,
    on han.sock and on a per-device socket."""
    daemon = daemon_factory(_lab_with_role(tmp_path, role))
    with HanLink(daemon.han_path) as link:
        frame = link.hello(P1_PPMID)
        assert frame.type == h.ERROR and frame.error_code == h.ERR_NOT_AUTHORISED, frame
        assert link.is_closed()
    with HanLink(daemon.device_path(P1_PPMID)) as link:
        assert link.hello(h.ZERO_EUI).error_code == h.ERR_NOT_AUTHORISED
        assert link.is_closed()
    with HanLink(daemon.han_path) as link:  # DATA without HELLO is still ERROR 5 (not attached), link open
        hdr, zcl = h.build_read_attributes([0x0000])
        link.send_zcl(Basic.cluster_id, zcl, destination=h.eui(P1_PPMID))
        assert link.recv_frame().error_code == h.ERR_NOT_ATTACHED


def test_rig_role_may_attach(daemon_factory, tmp_path):
    daemon = daemon_factory(_lab_with_role(tmp_path, "rig"))
    with HanLink(daemon.han_path) as link:
        assert link.attach(P1_PPMID).device == h.eui(P1_PPMID)
        assert link.read(Basic, "zcl_version") >= 1


def test_second_hello_on_attached_link_is_refused_without_closing(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        frame = link.hello(P1_ESME)
        assert frame.type == h.ERROR and frame.error_code == h.ERR_NOT_ATTACHED, frame
        assert link.read(Basic, "sw_build_id")  # still attached to the PPMID


# ---------------------------------------------------------------------------------------------------
# Messaging
# ---------------------------------------------------------------------------------------------------


def test_messaging_display_confirm_cancel(daemon):
    message_id = 0x00C0FFEE
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 0
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        built = h.build_cluster_command(Messaging, "display_message", message_id=message_id, message_control=0x00,
                                        start_time=0, duration_in_minutes=60, message="Your tariff changes on Monday")
        assert default_response(link.request(Messaging, built), built[0].tsn, 0x00) == Status.SUCCESS

        # Message control bit 7: the supplier wants a confirmation, which comes back as MessageConfirmation.
        before = virtual_now(daemon)
        built = h.build_cluster_command(Messaging, "display_message", message_id=message_id, message_control=0x80,
                                        start_time=0, duration_in_minutes=0xFFFF, message="Please confirm",
                                        extended_message_control=0)
        reply = link.request(Messaging, built)
        assert reply.name == "message_confirmation", reply
        assert not reply.is_general and reply.header.direction == Direction.Client_to_Server
        assert reply.payload.message_id == message_id
        assert before <= reply.payload.confirmation_time <= virtual_now(daemon)  # ZCL UTC on the virtual clock
        assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 1

        built = h.build_cluster_command(Messaging, "cancel_message", message_id=message_id, message_control=0)
        assert default_response(link.request(Messaging, built), built[0].tsn, 0x01) == Status.SUCCESS
        assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 0

        # Cancelling it again: nothing to cancel.
        built = h.build_cluster_command(Messaging, "cancel_message", message_id=message_id, message_control=0)
        assert default_response(link.request(Messaging, built), built[0].tsn, 0x01) == Status.NOT_FOUND

        # CancelAllMessages clears every message.
        for mid in (1, 2):
            built = h.build_cluster_command(Messaging, "display_message", message_id=mid, message_control=0,
                                            start_time=0, duration_in_minutes=5, message=f"m{mid}")
            assert default_response(link.request(Messaging, built), built[0].tsn, 0) == Status.SUCCESS
        assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 2
        built = h.build_cluster_command(Messaging, "cancel_all_messages", implementation_date_time=0)
        assert default_response(link.request(Messaging, built), built[0].tsn, 0x03) == Status.SUCCESS
        assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 0


# ---------------------------------------------------------------------------------------------------
# Metering on the ESME
# ---------------------------------------------------------------------------------------------------


def test_metering_on_esme(daemon):
    with HanLink(daemon.han_path) as link:
        link.attach(P1_ESME)
        ids = [0x0000, 0x0200, 0x0300, 0x0301, 0x0302, 0x0308, 0x0400]
        response = link.request(Metering, h.build_read_attributes(ids))
        records = {r.attrid: r for r in response.payload.status_records}
        # Data types as the SE Metering cluster (and zigpy) declare them.
        expected_types = {0x0000: DataTypeId.uint48, 0x0200: DataTypeId.map8, 0x0300: DataTypeId.enum8,
                          0x0301: DataTypeId.uint24, 0x0302: DataTypeId.uint24, 0x0308: DataTypeId.octstr,
                          0x0400: DataTypeId.int24}
        for attrid, type_id in expected_types.items():
            assert records[attrid].status == Status.SUCCESS, records[attrid]
            assert records[attrid].value.type == type_id, (hex(attrid), records[attrid].value)
        values = h.attribute_values(Metering, response)
        summation = values[0x0000][1]
        assert isinstance(summation, t.uint48_t) and summation > 0
        assert values[0x0300][1] == Metering.AttributeDefs.unit_of_measure.type.Kwh_and_Kwh_binary
        assert values[0x0301][1] == 1
        assert values[0x0302][1] == 1000
        assert values[0x0308][1] == P1_ESME.replace("-", "").encode()
        assert isinstance(values[0x0400][1], t.int24s)

        daemon.rpc("clock.advance", {"hours": 1})
        later = link.read(Metering, "current_summ_delivered")
        assert later > summation, (summation, later)
        assert -(2**23) <= link.read(Metering, "instantaneous_demand") < 2**23

        # Metering is not served by a display.
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        built = h.build_read_attributes([0x0000])
        assert default_response(link.request(Metering, built), built[0].tsn, 0) == Status.UNSUPPORTED_CLUSTER


def test_metering_gas_through_gpf(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_GPF)
        values = link.read_attributes(Metering, [0x0000, 0x0300])
        assert values[0x0000][0] == Status.SUCCESS and values[0x0000][1] > 0
        assert values[0x0300][1] == Metering.AttributeDefs.unit_of_measure.type.Cubic_Meter_and_Cubic_Meter_per_Hour_binary


# ---------------------------------------------------------------------------------------------------
# Prepayment on the ESME
# ---------------------------------------------------------------------------------------------------


def top_up(link: HanLink, code: bytes, origin: int = 0x02) -> h.ZCLMessage:
    built = h.build_cluster_command(Prepayment, "consumer_top_up", originating_device=origin, top_up_code=code)
    reply = link.request(Prepayment, built)
    assert reply.name == "consumer_top_up_response", reply
    assert reply.header.direction == Direction.Server_to_Client and reply.rest == b""
    return reply


def test_prepayment_top_up_over_han(daemon):
    with HanLink(daemon.han_path) as link:
        link.attach(P1_ESME)
        values = link.read_attributes(Prepayment, [0x0000, 0x0001, 0x0002, 0x0005])
        assert all(status == Status.SUCCESS for status, _ in values.values()), values
        credit = values[0x0001][1]
        assert isinstance(credit, t.int32s)

        code = utrn(1234, 700000000000001)
        reply = top_up(link, code)
        assert reply.payload.result_type == 0x00, reply  # accepted
        assert reply.payload.top_up_value == 1234
        assert reply.payload.source_of_top_up == 0x02
        assert reply.payload.credit_remaining == credit + 1234
        assert link.read(Prepayment, "credit_remaining") == credit + 1234

        reply = top_up(link, code)  # the same UTRN again
        assert reply.payload.result_type == 0x02, reply  # rejected: duplicate
        assert reply.payload.top_up_value == 0
        assert link.read(Prepayment, "credit_remaining") == credit + 1234

        for invalid in (b"12345", b"1234567890123456789X", b""):
            reply = top_up(link, invalid)
            assert reply.payload.result_type == 0x01, (invalid, reply)  # rejected: invalid
        assert link.read(Prepayment, "credit_remaining") == credit + 1234

        built = h.build_cluster_command(Prepayment, "get_top_up_log", latest_end_time=0xFFFFFFFF, number_of_records=10)
        log = link.request(Prepayment, built)
        assert log.name == "publish_top_up_log", log
        assert log.rest == b""
        assert log.payload.command_index == 0 and log.payload.total_number_of_commands >= 1
        codes = [bytes(r.top_up_code) for r in log.payload.top_ups]
        assert code in codes, codes
        record = log.payload.top_ups[codes.index(code)]
        assert record.top_up_amount == 1234
        assert abs(record.top_up_time - virtual_now(daemon)) < 60  # ZCL UTC on the virtual clock


def test_prepayment_top_up_through_control_api(daemon):
    code = utrn(500, 123456789012345)
    with HanLink(daemon.han_path) as link:
        link.attach(P1_ESME)
        credit = link.read(Prepayment, "credit_remaining")
        result = daemon.rpc("han.topUp", {"device": P1_PPMID, "code": code.decode()})
        assert result["accepted"] is True and result["value"] == 500, result
        assert result["creditRemaining"] == credit + 500
        assert link.read(Prepayment, "credit_remaining") == credit + 500

        # The rig attached to the ESME saw the meter's answer to the PPMID go out.
        answers = []
        while link.pending:
            frame = link.pending.pop(0)
            header, zcl = frame.data()
            answers.append((header, h.parse_zcl(Prepayment, zcl)))
        assert any(m.name == "consumer_top_up_response" and hd.destination == h.eui(P1_PPMID) for hd, m in answers), answers

    trace = daemon.rpc("han.trace", {"device": P1_ESME})
    commands = [(f["direction"], f["command"]) for f in trace["frames"]]
    assert ("in", "ConsumerTopUp") in commands, commands
    assert ("out", "ConsumerTopUpResponse") in commands, commands
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["topUps"] >= 1
    # The same UTRN through the control API again: duplicate.
    assert daemon.rpc("han.topUp", {"device": P1_PPMID, "code": code.decode()})["result"] == 2


def test_prepayment_client_attributes_on_ppmid_unsupported(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        values = link.read_attributes(Prepayment, [0x0001])
        assert values[0x0001][0] == Status.UNSUPPORTED_ATTRIBUTE


# ---------------------------------------------------------------------------------------------------
# Device Management: Change of Tenancy, Change of Supplier
# ---------------------------------------------------------------------------------------------------

COT_CONTROL = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 13) | (1 << 14)


def test_change_of_tenancy_clears_ppmid(daemon):
    with HanLink(daemon.han_path) as link:
        link.attach(P1_PPMID)
        built = h.build_cluster_command(Messaging, "display_message", message_id=9, message_control=0, start_time=0,
                                        duration_in_minutes=0xFFFF, message="old occupant")
        assert default_response(link.request(Messaging, built), built[0].tsn, 0) == Status.SUCCESS
        before = daemon.rpc("devices.get", {"id": P1_PPMID})["data"]
        assert before["consumptionDays"] == 14, before  # the lab seeds 14 days of history
        assert before["messages"] == 1

        built = h.build_cluster_command(DeviceManagement, "publish_change_of_tenancy", provider_id=0x00000ABC,
                                        issuer_event_id=1, tariff_type=0, implementation_date_time=0,
                                        proposed_tenancy_change_control=COT_CONTROL)
        assert default_response(link.request(DeviceManagement, built), built[0].tsn, 0x00) == Status.SUCCESS
        after = daemon.rpc("devices.get", {"id": P1_PPMID})["data"]
        assert after["consumptionDays"] == 0 and after["messages"] == 0, after
        assert after["topUps"] == 0 and after["debtRecords"] == 0, after

        built = h.build_cluster_command(DeviceManagement, "publish_change_of_supplier", current_provider_id=0xABC,
                                        issuer_event_id=2, tariff_type=0, proposed_provider_id=0xDEF,
                                        provider_change_implementation_time=0, provider_change_control=0,
                                        proposed_provider_name=b"New Energy", proposed_provider_contact_details=b"0800 000")
        assert default_response(link.request(DeviceManagement, built), built[0].tsn, 0x01) == Status.SUCCESS

        # Too short for PublishChangeOfTenancy: malformed.
        hdr, zcl = built = h.build_cluster_command(DeviceManagement, "publish_change_of_tenancy", provider_id=1,
                                                   issuer_event_id=1, tariff_type=0, implementation_date_time=0,
                                                   proposed_tenancy_change_control=0)
        reply = link.request(DeviceManagement, (hdr, zcl[:-3]))
        assert default_response(reply, hdr.tsn, 0x00) == Status.MALFORMED_COMMAND


def test_consumer_settings_written_over_the_han(daemon):
    """A display's consumer settings, written with zigpy's Write Attributes of the manufacturer's
    attribute 0xFF00 and answered with a Write Attributes Response zigpy parses; Change of Tenancy
    bit 9 (SECMP0056 conclusions report, seed 003, "Summary of conclusions") clears them."""
    from zigpy.zcl.foundation import Attribute, TypeValue
    code = int(model_of(P1_IHD)["manufacturer"]["code"], 16)

    def write(link, text, manufacturer=code):
        built = h.build_general(GeneralCommand.Write_Attributes, manufacturer=manufacturer,
                                attributes=[Attribute(0xFF00, TypeValue(DataTypeId.string, t.CharacterString(text)))])
        reply = link.request(Basic, built)
        assert reply.name == "Write_Attributes_rsp", reply
        assert reply.header.manufacturer == manufacturer
        return [(record.status, record.attrid) for record in reply.payload.status_records]

    with HanLink(daemon.han_path) as link:
        link.attach(P1_IHD)
        assert [status for status, _ in write(link, "budget=300")] == [Status.SUCCESS]
        assert daemon.rpc("display.settings", {"device": P1_IHD})["settings"] == {"budget": "300"}
        assert write(link, "no-equals")[0] == (Status.INVALID_VALUE, 0xFF00)
        assert write(link, "budget=1", manufacturer=code ^ 0xFFFF)[0] == (Status.UNSUPPORTED_ATTRIBUTE, 0xFF00)
        assert daemon.rpc("display.settings", {"device": P1_IHD})["settings"] == {"budget": "300"}
        built = h.build_cluster_command(DeviceManagement, "publish_change_of_tenancy", provider_id=1, issuer_event_id=1,
                                        tariff_type=0, implementation_date_time=0, proposed_tenancy_change_control=1 << 9)
        assert default_response(link.request(DeviceManagement, built), built[0].tsn, 0x00) == Status.SUCCESS
        assert daemon.rpc("display.settings", {"device": P1_IHD})["settings"] == {}


def test_change_of_tenancy_at_a_later_implementation_time(daemon):
    """An implementation time in the future: the IHD keeps its data until the virtual clock reaches it."""
    assert daemon.rpc("devices.get", {"id": P1_IHD})["data"]["consumptionDays"] == 14
    with HanLink(daemon.han_path) as link:
        link.attach(P1_IHD)
        built = h.build_cluster_command(DeviceManagement, "publish_change_of_tenancy", provider_id=7, issuer_event_id=8,
                                        tariff_type=0, implementation_date_time=virtual_now(daemon) + 60,
                                        proposed_tenancy_change_control=COT_CONTROL)
        assert default_response(link.request(DeviceManagement, built), built[0].tsn, 0x00) == Status.SUCCESS
    assert daemon.rpc("devices.get", {"id": P1_IHD})["data"]["consumptionDays"] == 14
    daemon.rpc("clock.advance", {"seconds": 120})  # short steps: no day rollover adds a day in between
    deadline = time.monotonic() + 5
    while daemon.rpc("devices.get", {"id": P1_IHD})["data"]["consumptionDays"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.rpc("devices.get", {"id": P1_IHD})["data"]["consumptionDays"] == 0


# ---------------------------------------------------------------------------------------------------
# OTA Upgrade: the display as OTA client, the hub as OTA server (zigpy's own Ota cluster)
# ---------------------------------------------------------------------------------------------------


def ota_file(manufacturer: int, image_type: int, version: int, body: bytes) -> bytes:
    """An OTA upgrade file built with zigpy.ota.image.OTAImageHeader, carrying `body` unsigned."""
    header = OTAImageHeader(upgrade_file_id=OTAImageHeader.MAGIC_VALUE, header_version=0x0100, header_length=56,
                            field_control=OTAFieldControl(0), manufacturer_id=manufacturer,
                            image_type=image_type, file_version=version, stack_version=2,
                            header_string="smetsd interop test image", image_size=56 + len(body))
    raw = header.serialize()
    assert len(raw) == 56
    return raw + body


def test_ota_client_download_of_an_unsigned_image_is_refused(daemon):
    """A rig as OTA server: Image Notify -> the PPMID's Query Next Image Request -> blocks -> Upgrade
    End Request. The image is not signed with the manufacturer's key, so the device refuses it
    (INVALID_IMAGE) and keeps its firmware."""
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(P1_PPMID)
        model = model_of(P1_PPMID)
        new_version = 0x01030000
        image = ota_file(welcome.manufacturer_code, welcome.image_type, new_version, bytes(range(256)) * 2)

        notify = h.build_cluster_command(Ota, "image_notify", payload_type=3, query_jitter=100,
                                         manufacturer_code=welcome.manufacturer_code, image_type=welcome.image_type,
                                         new_file_version=new_version)
        link.send_zcl(Ota.cluster_id, notify[1])
        header, query = link.recv_zcl(Ota)
        assert header.source == h.eui(P1_PPMID) and header.destination == h.RIG_EUI
        assert query.name == "query_next_image", query
        assert query.header.direction == Direction.Client_to_Server
        assert query.payload.manufacturer_code == welcome.manufacturer_code
        assert query.payload.image_type == welcome.image_type
        assert query.payload.current_file_version == welcome.current_file_version
        if query.payload.field_control & 0x01:
            assert query.payload.hardware_version == model["hardwareVersion"]

        response = h.build_cluster_command(Ota, "query_next_image_response", tsn=query.header.tsn, status=Status.SUCCESS,
                                           manufacturer_code=welcome.manufacturer_code, image_type=welcome.image_type,
                                           file_version=new_version, image_size=len(image), disable_default_response=True)
        link.send_zcl(Ota.cluster_id, response[1])
        offsets = []
        while True:
            header, request = link.recv_zcl(Ota)
            if request.name != "image_block":
                break
            assert request.payload.file_version == new_version and request.payload.image_type == welcome.image_type
            assert 0 < request.payload.maximum_data_size <= model["maxImageBlockBytes"]
            offset = request.payload.file_offset
            offsets.append(offset)
            data = image[offset : offset + request.payload.maximum_data_size]
            block = h.build_cluster_command(Ota, "image_block_response", tsn=request.header.tsn, status=Status.SUCCESS,
                                            manufacturer_code=welcome.manufacturer_code, image_type=welcome.image_type,
                                            file_version=new_version, file_offset=offset, image_data=data,
                                            disable_default_response=True)
            link.send_zcl(Ota.cluster_id, block[1])
        assert offsets[0] == 0 and offsets == sorted(offsets) and len(offsets) >= 2, offsets
        assert request.name == "upgrade_end", request
        assert request.payload.status == Status.INVALID_IMAGE, request.payload
        assert request.payload.file_version == new_version

        values = link.read_attributes(Ota, [0x0002, 0x0004, 0x0006])
        assert values[0x0002][1] == welcome.current_file_version  # still the old firmware
        assert values[0x0006][1] == Ota.ImageUpgradeStatus.Normal
    with HanLink(daemon.han_path) as link:
        assert link.attach(P1_PPMID).current_file_version == welcome.current_file_version


def test_ota_image_notify_for_another_manufacturer_is_ignored(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        notify = h.build_cluster_command(Ota, "image_notify", payload_type=1, query_jitter=100,
                                         manufacturer_code=0x5678, disable_default_response=True)
        link.send_zcl(Ota.cluster_id, notify[1])
        assert link.read(Basic, "zcl_version") >= 1
        assert not link.pending, f"the PPMID answered an Image Notify for another manufacturer: {link.pending}"


def test_ota_hub_as_server_without_image(shared_daemon):
    """The CHF is the OTA server: with nothing to offer, Query Next Image gets NO_IMAGE_AVAILABLE."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_CHF)
        query = h.build_cluster_command(Ota, "query_next_image", field_control=0, manufacturer_code=0x1234,
                                        image_type=0x0001, current_file_version=0x01020300)
        reply = link.request(Ota, query)
        assert reply.name == "query_next_image_response", reply
        assert reply.payload.status == Status.NO_IMAGE_AVAILABLE
        block = h.build_cluster_command(Ota, "image_block", field_control=0, manufacturer_code=0x1234, image_type=0x0001,
                                        file_version=0x01030000, file_offset=0, maximum_data_size=64)
        reply = link.request(Ota, block)
        assert reply.name == "image_block_response", reply
        assert reply.payload.status in (Status.NO_IMAGE_AVAILABLE, Status.ABORT)


# ---------------------------------------------------------------------------------------------------
# Several rigs on one device
# ---------------------------------------------------------------------------------------------------


def test_two_rigs_see_each_others_replies(shared_daemon):
    with HanLink(shared_daemon.han_path) as rig_a, HanLink(shared_daemon.device_path(P1_PPMID)) as rig_b:
        rig_a.attach(P1_PPMID)
        rig_b.attach(h.ZERO_EUI, rig=RIG_B)
        built = h.build_read_attributes([0x4000])
        answer_a = rig_a.request(Basic, built)
        header_b, answer_b = rig_b.recv_zcl(Basic)
        assert header_b.source == h.eui(P1_PPMID) and header_b.destination == h.RIG_EUI  # addressed to rig A
        assert answer_b.raw == answer_a.raw
        # And the other way round.
        built = h.build_read_attributes([0x0004])
        answer_b = rig_b.request(Basic, built)
        header_a, answer_a = rig_a.recv_zcl(Basic)
        assert header_a.destination == RIG_B and answer_a.raw == answer_b.raw


def test_reply_addressing(shared_daemon):
    """The answer's DATA header: from the device, to the rig node, Smart Energy, device endpoint 1."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        hdr, zcl = h.build_read_attributes([0x0000])
        link.send_zcl(Basic.cluster_id, zcl)
        header, message = link.recv_zcl(Basic)
        assert header.source == h.eui(P1_PPMID)
        assert header.destination == h.RIG_EUI
        assert header.profile_id == 0x0109 and header.cluster_id == 0x0000
        assert header.source_endpoint == 1
        assert message.header.tsn == hdr.tsn


def test_reply_goes_to_rig_source_endpoint(shared_daemon):
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_PPMID)
        hdr, zcl = h.build_read_attributes([0x0000])
        link.send_zcl(Basic.cluster_id, zcl, source_endpoint=0x0A)
        header, message = link.recv_zcl(Basic)
        assert message.header.tsn == hdr.tsn
        assert header.destination_endpoint == 0x0A, f"reply to endpoint {header.destination_endpoint}, asked from 0x0A"


# ---------------------------------------------------------------------------------------------------
# Link limits and timing
# ---------------------------------------------------------------------------------------------------


def test_error_6_too_many_han_connections(daemon_factory, tmp_path):
    """maxHANConnections counts connections on every HAN socket, before any HELLO: the one over the
    limit gets ERROR 6 at once and is closed."""
    daemon = daemon_factory(copy_lab(tmp_path / "devices", settings={"maxHANConnections": 2}))
    with HanLink(daemon.han_path) as first, HanLink(daemon.device_path(P1_ESME)) as second:
        # Attached first, so both are surely accepted (connect() returns before the daemon accepts).
        first.attach(P1_PPMID)
        second.attach(h.ZERO_EUI)
        for path in (daemon.han_path, daemon.device_path(P1_PPMID)):
            with HanLink(path) as third:
                frame = third.recv_frame()  # without any HELLO
                assert frame.type == h.ERROR and frame.error_code == h.ERR_TOO_MANY_CONNECTIONS, frame
                assert third.is_closed()
        assert first.read(Basic, "zcl_version") and second.read(Basic, "zcl_version")
    # Closed connections give their places back.
    deadline = time.monotonic() + 3
    while daemon.rpc("daemon.status")["connections"]["han"] and time.monotonic() < deadline:
        time.sleep(0.05)
    with HanLink(daemon.han_path) as again:
        assert again.attach(P1_PPMID).device == h.eui(P1_PPMID)


def test_link_without_hello_is_closed_after_hello_timeout(daemon_factory, tmp_path):
    daemon = daemon_factory(copy_lab(tmp_path / "devices", settings={"helloTimeoutSeconds": 0.5}))
    with HanLink(daemon.han_path) as idle:
        started = time.monotonic()
        assert idle.is_closed(timeout=5), "a link that never said HELLO stays open"
        assert 0.3 < time.monotonic() - started < 5
    with HanLink(daemon.han_path) as link:  # a link that said HELLO is not timed out
        link.attach(P1_PPMID)
        time.sleep(1.0)
        assert link.read(Basic, "zcl_version") >= 1


def test_pipelined_requests_are_answered_in_order(shared_daemon):
    """Requests written back to back, some answered from memory and some after a durable write,
    come back in the order asked."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_ESME)
        stream, tsns = b"", []
        for i in range(16):
            if i % 2 == 0:
                hdr, zcl = h.build_cluster_command(Prepayment, "consumer_top_up", originating_device=0,
                                                   top_up_code=utrn(100, 900000000000000 + i))
            else:
                hdr, zcl = h.build_read_attributes([0x0001] if i % 4 == 1 else [0x0000])
            cluster = Prepayment.cluster_id if i % 4 != 3 else Basic.cluster_id
            tsns.append(hdr.tsn)
            stream += h.encode_data(h.DataHeader(source=h.RIG_EUI, destination=h.eui(P1_ESME), profile_id=0x0109,
                                                 cluster_id=cluster, source_endpoint=1, destination_endpoint=1), zcl)
        link.send_raw(stream)
        answered = [link.recv_zcl()[1].header.tsn for _ in tsns]
        assert answered == tsns


def test_reads_written_in_one_go_are_all_answered_in_order(shared_daemon):
    """Read Attributes requests in one write are answered from memory on the event loop, their answers
    flushed once at the end of the read (not per answer): every answer still arrives, in order, and a
    request sent after them is answered too."""
    with HanLink(shared_daemon.han_path) as link:
        link.attach(P1_ESME)
        stream, tsns = b"", []
        for i in range(32):
            hdr, zcl = h.build_read_attributes([0x0000] if i % 2 == 0 else [0x4000])
            tsns.append(hdr.tsn)
            stream += h.encode_data(h.DataHeader(source=h.RIG_EUI, destination=h.eui(P1_ESME), profile_id=0x0109,
                                                 cluster_id=Basic.cluster_id, source_endpoint=1, destination_endpoint=1), zcl)
        link.send_raw(stream)
        answered = [link.recv_zcl()[1].header.tsn for _ in tsns]
        assert answered == tsns
        assert link.read(Basic, "sw_build_id")


def test_welcome_follows_han_leave_and_join(daemon):
    """WELCOME carries the device's current SMETS mode: undetermined after han.leave, the MP202 result
    after han.join."""
    assert daemon.rpc("han.leave", {"device": P1_PPMID})["device"]["mode"] == "undetermined"
    with HanLink(daemon.han_path) as link:
        assert link.attach(P1_PPMID).smets_mode == 0
    assert daemon.rpc("han.join", {"device": P1_PPMID, "hub": P1_CHF})["mode"] == "SMETS2+"
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(P1_PPMID)
        assert welcome.smets_mode == 2
        assert link.read(Ota, "upgrade_server_id") == h.eui(P1_CHF)


# ---------------------------------------------------------------------------------------------------
# Daemon bugs these tests found, fixed since; they stay as regression tests
# ---------------------------------------------------------------------------------------------------


def test_removed_device_link_is_not_left_silent(daemon):
    """After devices.remove, a link attached to the removed device is told (ERROR 2, unknown device)
    and closed: the contract knows no silent drop."""
    device_id = "00-DB-12-34-56-78-00-B0"
    daemon.rpc("devices.create", {"id": device_id, "type": "IHD", "premises": "P0001", "model": "brightview-ihd",
                                  "owner": "MAP-ALPHA", "preNotified": "SMETS2+"})
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(device_id)
        assert welcome.device_type == 6 and welcome.smets_mode == 0
        assert link.read(Basic, "sw_build_id") == "00070002"
        daemon.rpc("devices.remove", {"id": device_id})
        frame = link.recv_frame(timeout=2)
        assert frame.type == h.ERROR and frame.error_code == h.ERR_UNKNOWN_DEVICE, frame
        with pytest.raises(h.LinkClosed):
            link.recv_frame(timeout=2)


def test_meter_get_last_message_returns_what_it_sent(daemon):
    """DAEMON BUG: the ESME's GetLastMessage answer is built from store.messages(device: ESME)
    (Engine+ZCL.swift, Messaging server case), but messages are only ever saved under the receiving
    display's ID (the DisplayMessage case, tx.saveMessage(..., device: id)), so a meter that sent a
    DisplayMessage still answers NOT_FOUND."""
    built = h.build_cluster_command(Messaging, "display_message", message_id=0x5151, message_control=0, start_time=0,
                                    duration_in_minutes=10, message="from the meter")
    sent = daemon.rpc("han.send", {"from": P1_ESME, "to": P1_PPMID, "cluster": "0703", "zcl": built[1].hex()})
    assert sent["sent"] is True
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["data"]["messages"] == 1  # the PPMID has it
    with HanLink(daemon.han_path) as link:
        link.attach(P1_ESME)
        built = h.build_cluster_command(Messaging, "get_last_message")
        reply = link.request(Messaging, built)
        assert reply.name == "display_message", (
            f"DAEMON BUG: GetLastMessage (ZCL {built[1].hex()}) to the ESME that just sent message 0x5151 "
            f"answered {reply.name} {reply.payload}")
        assert reply.payload.message_id == 0x5151 and reply.payload.message == "from the meter"
