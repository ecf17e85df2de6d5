#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Tests/fuzz/TARGET/corpus).

ZCL frames and HAN link frames are built with zigpy through the interop suite's helpers
(Tests/interop/hanlink.py), so the seeds are what an independent implementation sends; firmware images
are built by `smetsctl firmware build` (--smetsctl PATH); the devices-folder seeds are the shipped
files. Each seed starts with the control byte(s) its target reads first (see Sources/SMETSFuzz).

    python3 Tests/fuzz/make-seeds.py --smetsctl .build/debug/smetsctl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FUZZ = ROOT / "Tests" / "fuzz"
sys.path.insert(0, str(ROOT / "Tests" / "interop"))

import zigpy.types as t  # noqa: E402
import zigpy.zcl.foundation as foundation  # noqa: E402

import hanlink as h  # noqa: E402
from hanlink import Basic, DeviceManagement, Messaging, Ota, Prepayment  # noqa: E402

# The zcl target's selector: cluster index in bits 0-2, device type (GBCS number) from bit 3.
CLUSTER_INDEX = {0x0000: 0, 0x0019: 1, 0x0702: 2, 0x0703: 3, 0x0705: 4, 0x0708: 5}
GSME, ESME, CHF, GPF, PPMID, IHD = 0, 1, 2, 3, 5, 6
PPMID_EUI = h.eui("00-DB-12-34-56-78-00-05")
ESME_EUI = h.eui("00-DB-12-34-56-78-00-02")


def write(target: str, name: str, data: bytes) -> None:
    folder = FUZZ / target / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def zcl_frames() -> list[tuple[str, int, int, bytes]]:
    """(name, cluster, device type, ZCL frame) for every command the devices take or send."""
    cmd = h.build_cluster_command
    frames = [
        ("read-basic", 0x0000, PPMID, h.build_read_attributes([0x0000, 0x0004, 0x0005, 0x4000, 0x0007])[1]),
        ("read-metering", 0x0702, ESME, h.build_read_attributes([0x0000, 0x0300, 0x0301, 0x0302, 0x0400])[1]),
        ("read-prepayment", 0x0705, ESME, h.build_read_attributes([0x0001, 0x0002, 0x0005])[1]),
        ("read-ota", 0x0019, PPMID, h.build_read_attributes([0x0000, 0x0001, 0x0002, 0x0006, 0x0007, 0x0008])[1]),
        ("read-odd", 0x0000, IHD, h.build_read_attributes([0x0000])[1] + b"\x01"),
        ("read-response", 0x0000, PPMID, h.build_general(
            foundation.GeneralCommand.Read_Attributes_rsp,
            status_records=[foundation.ReadAttributeRecord(attrid=0x4000, status=foundation.Status.SUCCESS,
                                                           value=foundation.TypeValue(type=0x42, value=t.CharacterString("01020300"))),
                            foundation.ReadAttributeRecord(attrid=0x0003, status=foundation.Status.UNSUPPORTED_ATTRIBUTE)],
            direction=foundation.Direction.Server_to_Client)[1]),
        ("default-response", 0x0703, IHD, h.build_general(
            foundation.GeneralCommand.Default_Response, command_id=0x00, status=foundation.Status.SUCCESS,
            direction=foundation.Direction.Server_to_Client)[1]),
        ("manufacturer-specific", 0x0000, PPMID, h.build_general(
            foundation.GeneralCommand.Read_Attributes, attribute_ids=[t.uint16_t(0)], manufacturer=0x1234)[1]),
        ("display-message", 0x0703, PPMID, cmd(Messaging, "display_message", message_id=7, message_control=0x80,
                                              start_time=0, duration_in_minutes=60, message="Top up soon")[1]),
        ("display-message-extended", 0x0703, IHD, cmd(Messaging, "display_message", message_id=8, message_control=0,
                                                      start_time=0, duration_in_minutes=0xFFFF, message="£5 left",
                                                      extended_message_control=1)[1]),
        ("cancel-message", 0x0703, PPMID, cmd(Messaging, "cancel_message", message_id=7, message_control=0)[1]),
        ("cancel-all", 0x0703, IHD, cmd(Messaging, "cancel_all_messages", implementation_date_time=0)[1]),
        ("get-last-message", 0x0703, ESME, cmd(Messaging, "get_last_message")[1]),
        ("message-confirmation", 0x0703, ESME, cmd(Messaging, "message_confirmation", message_id=7,
                                                   confirmation_time=100, message_confirmation_control=2,
                                                   message_response=b"yes")[1]),
        ("consumer-top-up", 0x0705, ESME, cmd(Prepayment, "consumer_top_up", originating_device=2,
                                              top_up_code=b"12345678901234500150")[1]),
        ("get-top-up-log", 0x0705, GPF, cmd(Prepayment, "get_top_up_log", latest_end_time=0xFFFFFFFF,
                                            number_of_records=5)[1]),
        ("get-debt-log", 0x0705, ESME, cmd(Prepayment, "get_debt_repayment_log", latest_end_time=0xFFFFFFFF,
                                           number_of_debts=3, debt_type=0xFF)[1]),
        ("top-up-response", 0x0705, PPMID, cmd(Prepayment, "consumer_top_up_response", result_type=0, top_up_value=500,
                                               source_of_top_up=2, credit_remaining=1500)[1]),
        ("publish-top-up-log", 0x0705, PPMID, cmd(Prepayment, "publish_top_up_log", command_index=0, total_number_of_commands=1,
                                                  top_ups=[h.TopUpRecord(top_up_code=b"12345678901234500150", top_up_amount=500,
                                                                         top_up_time=1000)])[1]),
        ("publish-debt-log", 0x0705, PPMID, cmd(Prepayment, "publish_debt_log", command_index=0, total_number_of_commands=1,
                                                debts=[h.DebtRecord(collection_time=10, amount_collected=20, debt_type=1,
                                                                    outstanding_debt=30)])[1]),
        ("change-of-tenancy", 0x0708, PPMID, cmd(DeviceManagement, "publish_change_of_tenancy", provider_id=1, issuer_event_id=2,
                                                 tariff_type=0, implementation_date_time=0,
                                                 proposed_tenancy_change_control=0x0F)[1]),
        ("change-of-supplier", 0x0708, IHD, cmd(DeviceManagement, "publish_change_of_supplier", current_provider_id=1,
                                                issuer_event_id=2, tariff_type=0, proposed_provider_id=3,
                                                provider_change_implementation_time=0, provider_change_control=0,
                                                proposed_provider_name=b"New Energy", proposed_provider_contact_details=b"0800")[1]),
        ("image-notify", 0x0019, PPMID, cmd(Ota, "image_notify", payload_type=3, query_jitter=100, manufacturer_code=0x1234,
                                            image_type=0x0001, new_file_version=0x01030000)[1]),
        ("query-next-image", 0x0019, CHF, cmd(Ota, "query_next_image", field_control=1, manufacturer_code=0x1234,
                                              image_type=0x0001, current_file_version=0x01020300, hardware_version=2)[1]),
        ("query-next-image-response", 0x0019, PPMID, cmd(Ota, "query_next_image_response", status=foundation.Status.SUCCESS,
                                                         manufacturer_code=0x1234, image_type=1, file_version=0x01030000,
                                                         image_size=1000)[1]),
        ("image-block", 0x0019, CHF, cmd(Ota, "image_block", field_control=3, manufacturer_code=0x1234, image_type=1,
                                         file_version=0x01030000, file_offset=64, maximum_data_size=48,
                                         request_node_addr=PPMID_EUI, minimum_block_period=0)[1]),
        ("image-block-response", 0x0019, PPMID, cmd(Ota, "image_block_response", status=foundation.Status.SUCCESS,
                                                    manufacturer_code=0x1234, image_type=1, file_version=0x01030000,
                                                    file_offset=0, image_data=bytes(range(48)))[1]),
        ("image-block-wait", 0x0019, PPMID, cmd(Ota, "image_block_response", status=foundation.Status.WAIT_FOR_DATA,
                                                current_time=100, request_time=160, minimum_block_period=500)[1]),
        ("upgrade-end", 0x0019, CHF, cmd(Ota, "upgrade_end", status=foundation.Status.SUCCESS, manufacturer_code=0x1234,
                                         image_type=1, file_version=0x01030000)[1]),
        ("upgrade-end-response", 0x0019, PPMID, cmd(Ota, "upgrade_end_response", manufacturer_code=0x1234, image_type=1,
                                                    file_version=0x01030000, current_time=0, upgrade_time=0xFFFFFFFF)[1]),
    ]
    return frames


def data_frame(source, destination, cluster: int, zcl: bytes) -> bytes:
    header = h.DataHeader(source=source, destination=destination, profile_id=h.SMART_ENERGY_PROFILE,
                          cluster_id=cluster, source_endpoint=1, destination_endpoint=1)
    return h.encode_data(header, zcl)


def han_streams(frames) -> None:
    hello = h.encode_hello(PPMID_EUI)
    welcome = h.encode_frame(h.WELCOME, h.WelcomeBody(version=1, device=PPMID_EUI, device_type=PPMID, smets_mode=2,
                                                      manufacturer_code=0x1234, image_type=1,
                                                      current_file_version=0x01020300).serialize())
    data = [data_frame(h.RIG_EUI, PPMID_EUI, cluster, zcl) for _, cluster, _, zcl in frames]
    errors = [h.encode_frame(h.ERROR, bytes([code]) + b"reason") for code in range(1, 8)]
    seeds = {
        "hello": bytes([0x00]) + hello,
        "hello-data-split": bytes([0x03, 1, 5, 30]) + hello + data[0] + data[1],
        "welcome-error-bytewise": bytes([0x40]) + welcome + errors[4],
        "session": bytes([0x02, 17, 2]) + hello + b"".join(data),
        "errors": bytes([0x01, 3]) + b"".join(errors),
        "small-limit": bytes([0x20]) + hello + data[0],
        "empty-length": bytes([0x00]) + hello + b"\x00\x00" + hello,
        "too-large": bytes([0x00]) + struct.pack("<H", 4097) + b"\x10",
        "unknown-type": bytes([0x00]) + h.encode_frame(0x33, b"abc") + hello,
        "short-data": bytes([0x01, 4]) + h.encode_frame(h.DATA, b"\x00" * 24) + hello,
        "error-bad-utf8": bytes([0x00]) + h.encode_frame(h.ERROR, b"\x03\xff\xfe\xc3"),
    }
    for name, seed in seeds.items():
        write("han-stream", name, seed)


def zcl_seeds(frames) -> None:
    for name, cluster, device_type, zcl in frames:
        write("zcl", name, bytes([CLUSTER_INDEX[cluster] | device_type << 3]) + zcl)
    write("zcl", "unknown-cluster", bytes([6 | PPMID << 3]) + h.build_read_attributes([0])[1])
    write("zcl", "typed-values", bytes([0 | IHD << 3]) + b"\x00\x01\x02" + b"\x42\x05hello")


def image_seeds(smetsctl: str | None) -> None:
    if not smetsctl:
        print("make-seeds: no --smetsctl, the ota-image seeds are left as they are", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as work:
        body = pathlib.Path(work) / "fw.bin"
        body.write_bytes(bytes(range(256)) * 3 + b"firmware")
        key = ROOT / "devices" / "keys" / "acme-meters-TEST-private.pem"
        builds = {
            "gb-signed": ["--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(key)],
            "gb-unsigned-destination": ["--model", "brightview-ihd", "--version", "00070003", "--unsigned",
                                        "--destination", "00-DB-12-34-56-78-00-06", "--hardware", "1-3"],
            "zigbee": ["--model", "acme-ppmid-dm", "--version", "01030001", "--format", "zigbee", "--unsigned"],
        }
        for name, arguments in builds.items():
            out = pathlib.Path(work) / f"{name}.ota"
            subprocess.run([smetsctl, "firmware", "build", *arguments, "--body", str(body), "--out", str(out),
                            "--lab", str(ROOT / "devices")], check=True, stdout=subprocess.DEVNULL)
            image = out.read_bytes()
            # Options byte: bits 0-1 format (auto, zigbee, gb), bits 2-3 signature (auto, required, absent).
            write("ota-image", name, bytes([0x00]) + image)
            write("ota-image", f"{name}-as-{'zigbee' if name == 'zigbee' else 'gb'}",
                  bytes([0x01 if name == "zigbee" else 0x02 | (0x04 if name == "gb-signed" else 0x08)]) + image)
        write("ota-image", "header-only-limit", bytes([0x10]) + (pathlib.Path(work) / "zigbee.ota").read_bytes()[:56])


def json_seeds() -> None:
    texts = {
        "object": '{"type":"PPMID","limit":2,"cursor":null,"all":true}',
        "nested": '{"a":[1,-2.5e3,0.1,{"b":[[],{}]}],"c":"\\u00e9\\ud83d\\ude00\\n\\"x\\""}',
        "numbers": '[0,-0,1e400,-9223372036854775808,9223372036854775807,9223372036854775808,1.5E-7,123456789012345678901]',
        "strings": '["","\\/\\\\\\b\\f\\r\\t","£€😀"]',
        "deep": "[" * 63 + "]" * 63,
        "scalars": ' \t\r\n true ',
    }
    for name, text in texts.items():
        write("json", name, text.encode())
    rpc = {
        "status": {"jsonrpc": "2.0", "id": 1, "method": "daemon.status"},
        "list": {"jsonrpc": "2.0", "id": "a", "method": "devices.list", "params": {"type": "PPMID", "limit": 2}},
        "notification": {"jsonrpc": "2.0", "method": "events.subscribe", "params": []},
        "result": {"jsonrpc": "2.0", "id": 3, "result": {"devices": [], "next": None}},
        "error": {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad", "data": {"reason": "x"}}},
        "han-send": {"jsonrpc": "2.0", "id": 9, "method": "han.send",
                     "params": {"from": "00-DB-12-34-56-78-00-02", "to": "00-DB-12-34-56-78-00-05", "cluster": "0703",
                                "zcl": "1901000700000080000000003c00"}},
    }
    for name, message in rpc.items():
        write("jsonrpc", name, (json.dumps(message) + "\n").encode())
    write("jsonrpc", "batch", b'[{"jsonrpc":"2.0","id":1,"method":"x"}]')
    write("jsonrpc", "not-json", b'{"jsonrpc":"2.0",')


def devices_seeds() -> None:
    devices = ROOT / "devices"
    write("lab-json", "lab", (devices / "lab.json").read_bytes())
    write("lab-json", "interim", (devices / "lab.json").read_text().replace('"mp202"', '"interim"').encode())
    for model in sorted((devices / "models").glob("*.json")):
        write("model-json", model.stem, model.read_bytes())
    write("cpl-csv", "cpl", (devices / "cpl.csv").read_bytes())
    write("cpl-csv", "crlf", (devices / "cpl.csv").read_bytes().replace(b"\n", b"\r\n"))
    settings = {"maxHANFrameBytes": 4096, "maxHANConnections": 1024, "maxLinksPerDevice": 16, "helloTimeoutSeconds": 10.0,
                "maxPerDeviceSockets": 64, "maxControlConnections": 256, "maxControlLineBytes": 1048576,
                "maxGeneratePremises": 100000, "historyDays": 400, "maxImageBytes": 16777216, "seedHistoryDays": 14,
                "maxTracedDevices": 2048, "socketMode": "0660", "socketGroup": "smetsd"}
    write("settings-json", "all-keys", json.dumps(settings, indent=2).encode())
    write("settings-json", "empty", b"{}")
    write("settings-json", "typo", b'{"maxHanConnections": 10}')
    write("access-json", "roles", json.dumps({"roles": {"uid:1000": "admin", "gid:50": "rig", "user:alice": "map:MAP-ALPHA",
                                                        "group:makers": "manufacturer:1234"}}, indent=2).encode())
    write("access-json", "bad", b'{"roles": {"host:x": "root"}}')


def duis_seeds() -> None:
    """Requests of the DUIS subset as duis.md writes them, plus the refusals the reader must make."""
    def request(counter: int, cv: int, reference: str, variant: str, body: str, target: str = "00-DB-12-34-56-78-00-05") -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" '
                f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.4"><sr:Header>'
                f'<sr:RequestID>90-B3-D5-1F-30-01-00-00:{target}:{counter}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>'
                f'<sr:ServiceReference>{reference}</sr:ServiceReference><sr:ServiceReferenceVariant>{variant}</sr:ServiceReferenceVariant>'
                f'</sr:Header><sr:Body>{body}</sr:Body></sr:Request>').encode()
    write("duis-xml", "read-firmware", request(1, 1, "11.2", "11.2", "<sr:ReadFirmwareVersion/>"))
    write("duis-xml", "inventory", request(2, 8, "8.2", "8.2", "<sr:ReadInventory><sr:DeviceID>00-DB-12-34-56-78-00-05</sr:DeviceID></sr:ReadInventory>",
                                           target="00-00-00-00-00-00-00-00"))
    write("duis-xml", "top-up", request(30064771072, 1, "2.2", "2.2", "<sr:TopUpDevice><sr:UTRN>73951443011611684638</sr:UTRN></sr:TopUpDevice>"))
    write("duis-xml", "han-log", request(3, 1, "8.11", "8.11",
                                         "<sr:UpdateHANDeviceLog><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID><sr:RequestType>Add</sr:RequestType>"
                                         "<sr:AddDeviceToCHFWhitelist><sr:JoinTimePeriod>300</sr:JoinTimePeriod>"
                                         "<sr:InstallCode>8A31C2D4E5F60718293A4B5C6D7E8F90</sr:InstallCode></sr:AddDeviceToCHFWhitelist></sr:UpdateHANDeviceLog>"))
    write("duis-xml", "future-dated", request(4, 1, "3.2", "3.2",
                                              "<sr:RestrictAccessForChangeOfTenancy><sr:ExecutionDateTime>2030-01-15T09:00:00.00Z</sr:ExecutionDateTime>"
                                              "<sr:RestrictionDateTime>2031-06-30T23:00:00+01:00</sr:RestrictionDateTime></sr:RestrictAccessForChangeOfTenancy>"))
    write("duis-xml", "signed", request(5, 1, "11.2", "11.2", "<sr:ReadFirmwareVersion/>").replace(
        b"</sr:Request>", b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></sr:Request>'))
    write("duis-xml", "mixed", b"<?xml version='1.0'?><!-- c --><a xmlns='urn:x' xmlns:p='urn:p' p:k='&lt;&#x41;&#10;'>t<![CDATA[<c>]]><?pi x?><p:b xml:lang='en'/>&amp;</a>")
    write("duis-xml", "doctype", b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')


def han_link_seeds() -> None:
    """Programs for the han-link-sequence target (Sources/SMETSFuzz/HANLinkSequence.swift): one
    operation per byte; 0x01 takes a length and that many bytes of the HAN stream."""
    device = struct.pack("<Q", 0x00DB123456780005)
    rig = struct.pack("<Q", 0x000D6F000ABCDEF0)

    def frame(kind: int, body: bytes) -> bytes:
        return struct.pack("<HB", 1 + len(body), kind) + body

    def received(data: bytes) -> bytes:
        return bytes([0x01, len(data)]) + data

    hello = frame(0x01, bytes([1]) + rig + device)
    data = frame(0x10, rig + device + struct.pack("<HHBB", 0x0109, 0x0000, 1, 1) + bytes([0x00, 0x01, 0x00, 0x00, 0x40]))
    attach = bytes([0x00]) + received(hello) + bytes([0x04, 0x05])
    write("han-link-sequence", "attach-and-read", bytes([0]) + attach + received(data) + bytes([0x08, 0x09, 0x0A]))
    write("han-link-sequence", "blocking-replies", bytes([0]) + attach + received(data + data) + bytes([0x18, 0x08, 0x09, 0x09, 0x0A]))
    write("han-link-sequence", "implied-device", bytes([1, 0x00]) + received(frame(0x01, bytes([1]) + rig + bytes(8))) + bytes([0x04, 0x05, 0x0A]))
    write("han-link-sequence", "not-admitted", bytes([0, 0x10]) + received(hello) + bytes([0x0A]))
    write("han-link-sequence", "data-first", bytes([0, 0x00]) + received(data) + bytes([0x0A]))
    write("han-link-sequence", "hello-timeout", bytes([0, 0x00, 0x06]) + received(hello) + bytes([0x04, 0x0A]))
    write("han-link-sequence", "device-removed", bytes([0]) + attach + bytes([0x07]) + received(data) + bytes([0x0A]))
    write("han-link-sequence", "no-room", bytes([0, 0x00]) + received(hello) + bytes([0x04, 0x15, 0x0A]))
    write("han-link-sequence", "refused-role", bytes([0, 0x00]) + received(hello) + bytes([0x14, 0x0A]))
    write("han-link-sequence", "split-hello", bytes([0, 0x00]) + received(hello[:5]) + received(hello[5:] + data) + bytes([0x04, 0x05, 0x0A]))
    write("han-link-sequence", "garbage", bytes([0, 0x00]) + received(b"\xff\xff\x01junk") + bytes([0x0A]))


def control_lines_seeds() -> None:
    """Streams for the control-lines target (Sources/SMETSFuzz/ControlLines.swift): a control byte
    (bits 0-4 split count, bit 5 the 16-byte limit, bit 6 byte at a time), the split lengths, the
    stream: requests as smetsctl writes them, CRLF, empty lines, a line over the limit."""
    status = b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}'
    listing = b'{"jsonrpc":"2.0","id":2,"method":"devices.list","params":{"limit":2}}'
    write("control-lines", "two-requests", bytes([0x02, 7, 40]) + status + b"\n" + listing + b"\n")
    write("control-lines", "crlf-and-empty", bytes([0x41]) + b"\r\n\n" + status + b"\r\n" + b"tail")
    write("control-lines", "over-tight-limit", bytes([0x21, 3]) + b"short\n" + b"x" * 20 + b"\n" + b"after\n")
    write("control-lines", "unterminated-long", bytes([0x20]) + b"y" * 17)
    write("control-lines", "cr-counts", bytes([0x20]) + b"x" * 16 + b"\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smetsctl", help="smetsctl to build the firmware image seeds with")
    arguments = parser.parse_args()
    frames = zcl_frames()
    han_streams(frames)
    zcl_seeds(frames)
    image_seeds(arguments.smetsctl)
    json_seeds()
    devices_seeds()
    duis_seeds()
    han_link_seeds()
    control_lines_seeds()


if __name__ == "__main__":
    main()
