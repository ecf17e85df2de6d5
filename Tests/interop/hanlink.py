"""A rig's side of the HAN link (shared/spec/han-link.md, version 1), built on zigpy.

Only the link framing (length, frame type, HELLO/WELCOME/DATA/ERROR bodies) is written here, from the
contract. Every ZCL frame is built and parsed with zigpy: zigpy.zcl.foundation for headers and global
commands, zigpy's cluster classes for attribute types, and zigpy.types for the payloads of the Smart
Energy commands that zigpy declares clusters for but no commands (Messaging, Prepayment, Device
Management): those are declared below the way zigpy quirks extend a cluster.
"""

from __future__ import annotations

import dataclasses
import itertools
import select
import socket
import struct
import time
from typing import Any, Iterable

import zigpy.types as t
import zigpy.zcl.foundation as foundation
from zigpy.zcl import Cluster
from zigpy.zcl.clusters import general as zgeneral
from zigpy.zcl.clusters import smartenergy as zse
from zigpy.zcl.foundation import ZCLAttributeDef, ZCLCommandDef

# ---------------------------------------------------------------------------------------------------
# The contract's constants
# ---------------------------------------------------------------------------------------------------

VERSION = 1
MAX_LENGTH = 4096
HELLO, WELCOME, DATA, ERROR = 0x01, 0x02, 0x10, 0x7F
FRAME_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", DATA: "DATA", ERROR: "ERROR"}
SMART_ENERGY_PROFILE = 0x0109
DEVICE_ENDPOINT = 1

# ERROR codes and whether the daemon closes the link after sending them.
ERR_UNSUPPORTED_VERSION = 1
ERR_UNKNOWN_DEVICE = 2
ERR_MALFORMED_FRAME = 3
ERR_FRAME_TOO_LARGE = 4
ERR_NOT_ATTACHED = 5
ERR_TOO_MANY_CONNECTIONS = 6
ERR_NOT_AUTHORISED = 7
ERROR_CLOSES = {1: True, 2: True, 3: True, 4: True, 5: False, 6: True, 7: True}

ZERO_EUI = t.EUI64([0] * 8)
RIG_EUI = t.EUI64.convert("00:0D:6F:00:0A:BC:DE:F0")  # not a lab device


def eui(text: str) -> t.EUI64:
    """`00-DB-12-34-56-78-90-A1` (the project's notation) as a zigpy EUI64."""
    return t.EUI64.convert(text.replace("-", ":"))


def eui_text(value: t.EUI64) -> str:
    return str(value).replace(":", "-").upper()


# ---------------------------------------------------------------------------------------------------
# Link frame bodies, as zigpy structs (wire order is the contract's)
# ---------------------------------------------------------------------------------------------------


class HelloBody(t.Struct):
    version: t.uint8_t
    rig_node: t.EUI64
    target: t.EUI64


class WelcomeBody(t.Struct):
    version: t.uint8_t
    device: t.EUI64
    device_type: t.uint8_t
    smets_mode: t.uint8_t
    manufacturer_code: t.uint16_t
    image_type: t.uint16_t
    current_file_version: t.uint32_t


class DataHeader(t.Struct):
    source: t.EUI64
    destination: t.EUI64
    profile_id: t.uint16_t
    cluster_id: t.uint16_t
    source_endpoint: t.uint8_t
    destination_endpoint: t.uint8_t


DATA_HEADER_LENGTH = 22


def encode_frame(frame_type: int, body: bytes) -> bytes:
    """Length prefix (type + body), type byte, body."""
    return struct.pack("<HB", 1 + len(body), frame_type) + body


def encode_hello(target: t.EUI64, rig: t.EUI64 = RIG_EUI, version: int = VERSION) -> bytes:
    return encode_frame(HELLO, HelloBody(version=version, rig_node=rig, target=target).serialize())


def encode_data(header: DataHeader, zcl: bytes) -> bytes:
    return encode_frame(DATA, header.serialize() + zcl)


@dataclasses.dataclass
class Frame:
    type: int
    body: bytes

    @property
    def name(self) -> str:
        return FRAME_NAMES.get(self.type, f"0x{self.type:02X}")

    # ERROR
    @property
    def error_code(self) -> int:
        assert self.type == ERROR, f"expected ERROR, got {self.name} {self.body.hex()}"
        return self.body[0]

    @property
    def error_reason(self) -> str:
        return self.body[1:].decode("utf-8", "replace")

    # WELCOME
    def welcome(self) -> WelcomeBody:
        assert self.type == WELCOME, f"expected WELCOME, got {self.name} {self.body!r}"
        assert len(self.body) == 19, f"WELCOME body is {len(self.body)} bytes, the contract says 19"
        body, rest = WelcomeBody.deserialize(self.body)
        assert rest == b""
        return body

    # DATA
    def data(self) -> tuple[DataHeader, bytes]:
        assert self.type == DATA, f"expected DATA, got {self.name} {self.body!r}"
        header, zcl = DataHeader.deserialize(self.body)
        return header, zcl

    def __repr__(self) -> str:
        if self.type == ERROR and self.body:
            return f"ERROR({self.body[0]}, {self.error_reason!r})"
        return f"{self.name}({self.body.hex()})"


class LinkClosed(Exception):
    pass


# ---------------------------------------------------------------------------------------------------
# Smart Energy clusters zigpy declares without commands: commands added the zigpy-quirk way
# ---------------------------------------------------------------------------------------------------


class TopUpRecord(t.Struct):
    top_up_code: t.LVBytes
    top_up_amount: t.int32s
    top_up_time: t.UTCTime


class DebtRecord(t.Struct):
    collection_time: t.UTCTime
    amount_collected: t.uint32_t
    debt_type: t.uint8_t
    outstanding_debt: t.uint32_t


class Messaging(zse.Messaging):
    _skip_registry = True

    class ServerCommandDefs(zse.Messaging.ServerCommandDefs):  # received by the server (meter)
        get_last_message = ZCLCommandDef(id=0x00, schema={})
        message_confirmation = ZCLCommandDef(
            id=0x01,
            schema={
                "message_id": t.uint32_t,
                "confirmation_time": t.UTCTime,
                "message_confirmation_control?": t.bitmap8,
                "message_response?": t.LVBytes,
            },
        )

    class ClientCommandDefs(zse.Messaging.ClientCommandDefs):  # received by the client (display)
        display_message = ZCLCommandDef(
            id=0x00,
            schema={
                "message_id": t.uint32_t,
                "message_control": t.bitmap8,
                "start_time": t.UTCTime,
                "duration_in_minutes": t.uint16_t,
                "message": t.CharacterString,
                "extended_message_control?": t.bitmap8,
            },
        )
        cancel_message = ZCLCommandDef(id=0x01, schema={"message_id": t.uint32_t, "message_control": t.bitmap8})
        cancel_all_messages = ZCLCommandDef(id=0x03, schema={"implementation_date_time": t.UTCTime})


class Prepayment(zse.Prepayment):
    _skip_registry = True

    class AttributeDefs(zse.Prepayment.AttributeDefs):
        payment_control_configuration = ZCLAttributeDef(id=0x0000, type=t.bitmap16)
        credit_remaining = ZCLAttributeDef(id=0x0001, type=t.int32s)
        emergency_credit_remaining = ZCLAttributeDef(id=0x0002, type=t.int32s)
        accumulated_debt = ZCLAttributeDef(id=0x0005, type=t.int32s)

    class ServerCommandDefs(zse.Prepayment.ServerCommandDefs):
        consumer_top_up = ZCLCommandDef(id=0x04, schema={"originating_device": t.enum8, "top_up_code": t.LVBytes})
        get_top_up_log = ZCLCommandDef(id=0x08, schema={"latest_end_time": t.UTCTime, "number_of_records": t.uint8_t})
        get_debt_repayment_log = ZCLCommandDef(
            id=0x0A, schema={"latest_end_time": t.UTCTime, "number_of_debts": t.uint8_t, "debt_type": t.enum8}
        )

    class ClientCommandDefs(zse.Prepayment.ClientCommandDefs):
        consumer_top_up_response = ZCLCommandDef(
            id=0x03,
            schema={
                "result_type": t.enum8,
                "top_up_value": t.int32s,
                "source_of_top_up": t.enum8,
                "credit_remaining": t.int32s,
            },
        )
        publish_top_up_log = ZCLCommandDef(
            id=0x05,
            schema={"command_index": t.uint8_t, "total_number_of_commands": t.uint8_t, "top_ups": t.List[TopUpRecord]},
        )
        publish_debt_log = ZCLCommandDef(
            id=0x06,
            schema={"command_index": t.uint8_t, "total_number_of_commands": t.uint8_t, "debts": t.List[DebtRecord]},
        )


class DeviceManagement(zse.DeviceManagement):
    _skip_registry = True

    class ClientCommandDefs(zse.DeviceManagement.ClientCommandDefs):
        publish_change_of_tenancy = ZCLCommandDef(
            id=0x00,
            schema={
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "tariff_type": t.bitmap8,
                "implementation_date_time": t.UTCTime,
                "proposed_tenancy_change_control": t.bitmap32,
            },
        )
        publish_change_of_supplier = ZCLCommandDef(
            id=0x01,
            schema={
                "current_provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "tariff_type": t.bitmap8,
                "proposed_provider_id": t.uint32_t,
                "provider_change_implementation_time": t.UTCTime,
                "provider_change_control": t.bitmap32,
                "proposed_provider_name": t.LVBytes,
                "proposed_provider_contact_details": t.LVBytes,
            },
        )


Basic = zgeneral.Basic
Ota = zgeneral.Ota
Metering = zse.Metering
OnOff = zgeneral.OnOff


def utc_now_zigbee() -> int:
    return int(time.time()) - 946684800


# ---------------------------------------------------------------------------------------------------
# ZCL with zigpy: build and parse
# ---------------------------------------------------------------------------------------------------

_tsn = itertools.count(1)


def next_tsn() -> int:
    return next(_tsn) & 0xFF


def build_general(command: foundation.GeneralCommand, *args, tsn: int | None = None,
                  direction: foundation.Direction = foundation.Direction.Client_to_Server,
                  manufacturer: int | None = None, **kwargs) -> tuple[foundation.ZCLHeader, bytes]:
    """A global command frame: zigpy header plus zigpy's schema for the command."""
    tsn = next_tsn() if tsn is None else tsn
    hdr = foundation.ZCLHeader.general(tsn, command, manufacturer=manufacturer, direction=direction)
    payload = foundation.GENERAL_COMMANDS[command].schema(*args, **kwargs).serialize()
    return hdr, hdr.serialize() + payload


def build_read_attributes(attribute_ids: Iterable[int], tsn: int | None = None) -> tuple[foundation.ZCLHeader, bytes]:
    return build_general(foundation.GeneralCommand.Read_Attributes,
                         attribute_ids=[t.uint16_t(a) for a in attribute_ids], tsn=tsn)


def build_cluster_command(cluster: type[Cluster], name: str, *args, tsn: int | None = None,
                          disable_default_response: bool = False, **kwargs) -> tuple[foundation.ZCLHeader, bytes]:
    """A cluster-specific frame for the command `name` of zigpy cluster class `cluster`.

    The wire direction follows zigpy's grouping: commands in ServerCommandDefs are received by the
    server, so they travel client-to-server; those in ClientCommandDefs travel server-to-client.
    (zigpy's own ZCLCommandDef.direction field is not the wire bit, so it is not used here.)
    """
    command = cluster.commands_by_name[name]
    if cluster.server_commands.get(command.id) is command:
        direction = foundation.Direction.Client_to_Server
    else:
        assert cluster.client_commands.get(command.id) is command
        direction = foundation.Direction.Server_to_Client
    tsn = next_tsn() if tsn is None else tsn
    frame_control = foundation.FrameControl(
        frame_type=foundation.FrameType.CLUSTER_COMMAND,
        is_manufacturer_specific=False,
        direction=direction,
        disable_default_response=disable_default_response,
        reserved=0,
    )
    hdr = foundation.ZCLHeader(frame_control=frame_control, tsn=tsn, command_id=command.id)
    payload = command.schema(*args, **kwargs).serialize()
    return hdr, hdr.serialize() + payload


@dataclasses.dataclass
class ZCLMessage:
    """A parsed ZCL frame: zigpy header, the zigpy command definition (or None) and its payload."""

    header: foundation.ZCLHeader
    command: ZCLCommandDef | None
    payload: Any  # a zigpy CommandSchema, or the raw bytes when the command is unknown
    raw: bytes
    rest: bytes = b""

    @property
    def is_general(self) -> bool:
        return self.header.frame_control.is_general

    @property
    def name(self) -> str:
        if self.is_general:
            try:
                return foundation.GeneralCommand(self.header.command_id).name
            except ValueError:
                return f"general_0x{self.header.command_id:02X}"
        return self.command.name if self.command else f"cluster_0x{self.header.command_id:02X}"


def parse_zcl(cluster: type[Cluster] | None, zcl: bytes) -> ZCLMessage:
    """Parses a ZCL frame with zigpy, as zigpy.zcl.Cluster.deserialize does, without a device."""
    hdr, rest = foundation.ZCLHeader.deserialize(zcl)
    if hdr.frame_control.is_general:
        try:
            command = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(hdr.command_id)]
        except (ValueError, KeyError):
            return ZCLMessage(hdr, None, rest, zcl)
    else:
        if cluster is None:
            return ZCLMessage(hdr, None, rest, zcl)
        commands = cluster.client_commands if hdr.direction == foundation.Direction.Server_to_Client else cluster.server_commands
        command = commands.get(hdr.command_id)
        if command is None:
            return ZCLMessage(hdr, None, rest, zcl)
    payload, remaining = command.schema.deserialize(rest)
    return ZCLMessage(hdr, command, payload, zcl, remaining)


def attribute_values(cluster: type[Cluster], response: ZCLMessage) -> dict[int, tuple[foundation.Status, Any]]:
    """A Read Attributes Response's records as {attribute id: (status, value typed as zigpy declares)}."""
    assert response.header.command_id == foundation.GeneralCommand.Read_Attributes_rsp, response
    out: dict[int, tuple[foundation.Status, Any]] = {}
    for record in response.payload.status_records:
        value = None
        if record.status == foundation.Status.SUCCESS:
            value = record.value.value
            definition = cluster.attributes.get(record.attrid)
            if definition is not None:
                value = definition.type(value)
        out[int(record.attrid)] = (record.status, value)
    return out


# ---------------------------------------------------------------------------------------------------
# A link: one Unix-socket connection to the daemon
# ---------------------------------------------------------------------------------------------------

CLUSTERS: dict[int, type[Cluster]] = {
    c.cluster_id: c for c in (Basic, Ota, Metering, Messaging, Prepayment, DeviceManagement, OnOff)
}


@dataclasses.dataclass
class Exchanged:
    """A DATA frame that crossed the link, for captures: 'tx' rig to daemon, 'rx' daemon to rig."""

    direction: str
    header: DataHeader
    zcl: bytes
    time: float


class HanLink:
    def __init__(self, path: str, timeout: float = 5.0, recorder: list[Exchanged] | None = None):
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""
        self.device: t.EUI64 | None = None
        self.rig: t.EUI64 = RIG_EUI
        self.recorder = recorder
        self.pending: list[Frame] = []

    # raw I/O --------------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, frame_type: int, body: bytes) -> None:
        self.send_raw(encode_frame(frame_type, body))

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes; False on EOF. Raises TimeoutError at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame from the daemon")
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise TimeoutError("no frame from the daemon")
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def recv_frame(self, timeout: float | None = None) -> Frame:
        """The next frame from the daemon. Raises LinkClosed on EOF, TimeoutError when none comes."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buffer) >= 2:
                (length,) = struct.unpack_from("<H", self.buffer)
                assert 1 <= length <= MAX_LENGTH, f"daemon sent a frame length {length}, outside 1..4096"
                if len(self.buffer) >= 2 + length:
                    frame = Frame(self.buffer[2], bytes(self.buffer[3 : 2 + length]))
                    self.buffer = self.buffer[2 + length :]
                    assert frame.type in (WELCOME, DATA, ERROR), f"daemon sent frame type 0x{frame.type:02X}"
                    if frame.type == DATA:
                        assert len(frame.body) >= DATA_HEADER_LENGTH + 3, f"short DATA from the daemon: {frame}"
                        if self.recorder is not None:
                            header, zcl = frame.data()
                            self.recorder.append(Exchanged("rx", header, zcl, time.time()))
                    return frame
            if not self._fill(deadline):
                if self.buffer:
                    raise AssertionError(f"link closed inside a frame; {len(self.buffer)} bytes left: {self.buffer.hex()}")
                raise LinkClosed()

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True when the daemon closes the link within `timeout` (frames before the close are skipped)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.recv_frame(timeout=max(0.0, deadline - time.monotonic()) or 0.001)
        except LinkClosed:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> HanLink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # HELLO ----------------------------------------------------------------------------------------
    def hello(self, target: t.EUI64 | str, rig: t.EUI64 = RIG_EUI, version: int = VERSION) -> Frame:
        target = eui(target) if isinstance(target, str) else target
        self.rig = rig
        self.send_raw(encode_hello(target, rig, version))
        return self.recv_frame()

    def attach(self, target: t.EUI64 | str, rig: t.EUI64 = RIG_EUI) -> WelcomeBody:
        welcome = self.hello(target, rig).welcome()
        self.device = welcome.device
        return welcome

    # DATA -----------------------------------------------------------------------------------------
    def send_zcl(self, cluster_id: int, zcl: bytes, *, destination: t.EUI64 | None = None,
                 source: t.EUI64 | None = None, profile: int = SMART_ENERGY_PROFILE,
                 source_endpoint: int = DEVICE_ENDPOINT, destination_endpoint: int = DEVICE_ENDPOINT) -> None:
        header = DataHeader(
            source=source or self.rig,
            destination=destination or self.device,
            profile_id=profile,
            cluster_id=cluster_id,
            source_endpoint=source_endpoint,
            destination_endpoint=destination_endpoint,
        )
        if self.recorder is not None:
            self.recorder.append(Exchanged("tx", header, zcl, time.time()))
        self.send_raw(encode_data(header, zcl))

    def recv_zcl(self, cluster: type[Cluster] | None = None, timeout: float | None = None) -> tuple[DataHeader, ZCLMessage]:
        frame = self.recv_frame(timeout)
        header, zcl = frame.data()
        return header, parse_zcl(cluster or CLUSTERS.get(int(header.cluster_id)), zcl)

    def request(self, cluster: type[Cluster], built: tuple[foundation.ZCLHeader, bytes], *,
                cluster_id: int | None = None, timeout: float | None = None, **send) -> ZCLMessage:
        """Sends a ZCL frame and returns the device's answer with the same sequence number.

        Frames that are not that answer are kept for a later recv_frame.
        """
        hdr, zcl = built
        cid = cluster.cluster_id if cluster_id is None else cluster_id
        self.send_zcl(cid, zcl, **send)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        skipped: list[Frame] = []
        try:
            while True:
                frame = self.recv_frame(max(0.001, deadline - time.monotonic()))
                if frame.type != DATA:
                    skipped.append(frame)
                    continue
                header, raw = frame.data()
                message = parse_zcl(cluster, raw)
                if message.header.tsn == hdr.tsn and int(header.cluster_id) == cid and header.destination == (send.get("source") or self.rig):
                    assert header.source == (send.get("destination") or self.device), header
                    assert header.profile_id == SMART_ENERGY_PROFILE
                    assert header.source_endpoint == DEVICE_ENDPOINT
                    return message
                skipped.append(frame)
        finally:
            self.pending = skipped + self.pending

    def read_attributes(self, cluster: type[Cluster], attribute_ids: Iterable[int], **send) -> dict[int, tuple[foundation.Status, Any]]:
        ids = list(attribute_ids)
        response = self.request(cluster, build_read_attributes(ids), **send)
        assert response.is_general and response.header.command_id == foundation.GeneralCommand.Read_Attributes_rsp, response
        assert response.header.direction == foundation.Direction.Server_to_Client
        values = attribute_values(cluster, response)
        assert list(values) == ids, f"records {list(values)} for the attributes asked {ids}"
        return values

    def read(self, cluster: type[Cluster], name: str, **send) -> Any:
        definition = cluster.attributes_by_name[name]
        status, value = self.read_attributes(cluster, [definition.id], **send)[definition.id]
        assert status == foundation.Status.SUCCESS, f"{cluster.__name__}.{name}: {status!r}"
        return value
