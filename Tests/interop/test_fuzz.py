"""A seeded fuzz of the HAN link: random and mutated frames over many connections.

The daemon must answer every frame per the contract or close the link with an ERROR, and never
send a frame the contract does not allow; after each batch a fresh link still gets WELCOME and a
Basic read, the control API still answers, no connection leaks, and at the end SIGTERM exits 0.

SMETSD_FUZZ_SEED picks another seed; SMETSD_FUZZ_BATCHES another number of batches. A failure
prints the seed, the batch, the connection and the bytes sent, so it can be replayed.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import time

import zigpy.zcl.foundation as foundation

import hanlink as h
from conftest import DEVICES_UNDER_FUZZ
from hanlink import Basic, HanLink, Messaging, Prepayment, DeviceManagement

SEED = int(os.environ.get("SMETSD_FUZZ_SEED", "20240627"))
BATCHES = int(os.environ.get("SMETSD_FUZZ_BATCHES", "12"))
CONNECTIONS_PER_BATCH = 40
LAB_EUIS = {h.eui(d).serialize() for d in DEVICES_UNDER_FUZZ}
SERVED_CLUSTERS = [0x0000, 0x0019, 0x0702, 0x0703, 0x0705, 0x0708]


def valid_zcl_corpus(rng: random.Random) -> list[tuple[int, bytes]]:
    """Well-formed requests, built with zigpy, that the mutations start from."""
    code = f"{rng.randrange(10**15):015d}{rng.randrange(10**5):05d}".encode()
    return [
        (0x0000, h.build_read_attributes([0x0000, 0x0004, 0x4000, 0x0010])[1]),
        (0x0702, h.build_read_attributes([0x0000, 0x0300, 0x0400])[1]),
        (0x0705, h.build_read_attributes([0x0001, 0x0002])[1]),
        (0x0019, h.build_read_attributes([0x0002, 0x0006])[1]),
        (0x0703, h.build_cluster_command(Messaging, "display_message", message_id=rng.randrange(2**32),
                                         message_control=rng.choice([0, 0x80]), start_time=0,
                                         duration_in_minutes=rng.randrange(2**16), message="fuzz")[1]),
        (0x0703, h.build_cluster_command(Messaging, "cancel_message", message_id=rng.randrange(8), message_control=0)[1]),
        (0x0703, h.build_cluster_command(Messaging, "get_last_message")[1]),
        (0x0705, h.build_cluster_command(Prepayment, "consumer_top_up", originating_device=2, top_up_code=code)[1]),
        (0x0705, h.build_cluster_command(Prepayment, "get_top_up_log", latest_end_time=0xFFFFFFFF, number_of_records=3)[1]),
        (0x0708, h.build_cluster_command(DeviceManagement, "publish_change_of_supplier", current_provider_id=1,
                                         issuer_event_id=2, tariff_type=0, proposed_provider_id=3,
                                         provider_change_implementation_time=0, provider_change_control=0,
                                         proposed_provider_name=b"x", proposed_provider_contact_details=b"y")[1]),
    ]


def data_frame(source: bytes, destination: bytes, cluster: int, zcl: bytes, profile: int = 0x0109,
               src_ep: int = 1, dst_ep: int = 1) -> bytes:
    body = source + destination + struct.pack("<HHBB", profile, cluster, src_ep, dst_ep) + zcl
    return h.encode_frame(h.DATA, body)


def flip_bits(rng: random.Random, data: bytes, count: int) -> bytes:
    mutable = bytearray(data)
    for _ in range(count):
        index = rng.randrange(len(mutable))
        mutable[index] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def random_zcl(rng: random.Random) -> bytes:
    control = rng.choice([0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, rng.randrange(256)])
    header = bytes([control])
    if control & 0x04 and rng.random() < 0.8:
        header += struct.pack("<H", rng.randrange(65536))
    header += bytes([rng.randrange(256), rng.choice([0x00, 0x01, 0x03, 0x04, 0x08, 0x0A, 0x0B, rng.randrange(256)])])
    return header + rng.randbytes(rng.choice([0, 1, 2, 5, 13, 17, rng.randrange(300)]))


def make_connection(rng: random.Random, daemon, corpus) -> tuple[str, list[bytes], str]:
    """One connection's plan: (socket path, chunks to send, a label)."""
    device_id = rng.choice(DEVICES_UNDER_FUZZ)
    device = h.eui(device_id).serialize()
    per_device = rng.random() < 0.25
    path = daemon.device_path(device_id) if per_device else daemon.han_path
    hello = h.encode_hello(h.ZERO_EUI if per_device else h.eui(device_id))
    kind = rng.choice(["blob", "random_length", "truncated", "bitflip", "random_zcl", "random_zcl", "mixed"])
    frames: list[bytes] = []
    if kind == "blob":
        frames.append(rng.randbytes(rng.randrange(1, 300)))
    elif kind == "random_length":
        length = rng.choice([0, 1, 2, 17, 18, 19, 25, 4096, 4097, rng.randrange(65536)])
        frame_type = rng.choice([0x01, 0x02, 0x10, 0x7F, rng.randrange(256)])
        frames.append(struct.pack("<HB", length, frame_type) + rng.randbytes(rng.randrange(0, 200)))
    elif kind == "truncated":
        cluster, zcl = rng.choice(corpus)
        whole = hello + data_frame(h.RIG_EUI.serialize(), device, cluster, zcl)
        frames.append(whole[: rng.randrange(1, len(whole))])
    elif kind == "bitflip":
        frames.append(hello)
        for _ in range(rng.randrange(1, 6)):
            cluster, zcl = rng.choice(corpus)
            frames.append(flip_bits(rng, data_frame(h.RIG_EUI.serialize(), device, cluster, zcl), rng.randrange(1, 4)))
    elif kind == "random_zcl":
        frames.append(hello)
        for _ in range(rng.randrange(1, 12)):
            source = rng.choice([h.RIG_EUI.serialize()] * 6 + [rng.randbytes(8), device, h.eui(rng.choice(DEVICES_UNDER_FUZZ)).serialize()])
            destination = device if rng.random() < 0.9 else rng.randbytes(8)
            cluster = rng.choice(SERVED_CLUSTERS * 3 + [rng.randrange(65536)])
            profile = 0x0109 if rng.random() < 0.9 else rng.randrange(65536)
            dst_ep = 1 if rng.random() < 0.9 else rng.randrange(256)
            frames.append(data_frame(source, destination, cluster, random_zcl(rng), profile, rng.randrange(256), dst_ep))
    else:  # mixed: valid frames around one bad one, maybe before the HELLO
        frames.append(hello)
        for _ in range(rng.randrange(1, 5)):
            cluster, zcl = rng.choice(corpus)
            frames.append(data_frame(h.RIG_EUI.serialize(), device, cluster, zcl))
        bad = rng.choice([rng.randbytes(rng.randrange(1, 40)), flip_bits(rng, hello, 1), b"\x00\x00", hello])
        frames.insert(rng.randrange(len(frames) + 1), bad)
    stream = b"".join(frames)
    # Deliver as one write, or in random pieces (frames split across reads).
    if rng.random() < 0.3 and len(stream) > 1:
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randrange(1, 8))))
        chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    else:
        chunks = [stream]
    return path, chunks, f"{kind}{' per-device' if per_device else ''} {device_id}"


STATS: dict[str, int] = {}


def count(key: str) -> None:
    STATS[key] = STATS.get(key, 0) + 1


def check_replies(received: bytes, label: str) -> None:
    """Every frame the daemon sent is one the contract allows; nothing follows a closing ERROR."""
    offset = 0
    closed_by_error = None
    while offset < len(received):
        assert closed_by_error is None, f"{label}: frames after ERROR {closed_by_error}, which closes the link"
        assert len(received) - offset >= 3, f"{label}: partial frame at the end: {received[offset:].hex()}"
        (length,) = struct.unpack_from("<H", received, offset)
        assert 1 <= length <= h.MAX_LENGTH, f"{label}: daemon sent length {length}"
        assert len(received) - offset - 2 >= length, f"{label}: daemon frame cut short: {received[offset:offset + 40].hex()}"
        frame_type = received[offset + 2]
        body = received[offset + 3 : offset + 2 + length]
        offset += 2 + length
        count(f"frame 0x{frame_type:02X}")
        if frame_type == h.WELCOME:
            assert len(body) == 19 and body[0] == 1, f"{label}: WELCOME {body.hex()}"
        elif frame_type == h.ERROR:
            assert len(body) >= 1 and 1 <= body[0] <= 7, f"{label}: ERROR {body.hex()}"
            count(f"ERROR {body[0]}")
            body[1:].decode("utf-8")
            if h.ERROR_CLOSES[body[0]]:
                closed_by_error = body[0]
        elif frame_type == h.DATA:
            assert len(body) >= 25, f"{label}: DATA {body.hex()}"
            header, zcl = h.DataHeader.deserialize(body)
            assert header.source.serialize() in LAB_EUIS, f"{label}: DATA from {header.source}"
            assert header.profile_id == 0x0109 and header.source_endpoint == 1
            zcl_header, _ = foundation.ZCLHeader.deserialize(zcl)  # the ZCL header reads in zigpy
            if zcl_header.frame_control.is_general and zcl_header.command_id == foundation.GeneralCommand.Default_Response:
                response, _ = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Default_Response].schema.deserialize(zcl[len(zcl_header.serialize()):])
                count(f"Default Response {response.status.name}")
            else:
                count(f"ZCL cluster 0x{int(header.cluster_id):04X} command 0x{zcl_header.command_id:02X}")
        else:
            raise AssertionError(f"{label}: daemon sent frame type 0x{frame_type:02X}")


def run_batch(rng: random.Random, daemon, corpus, batch: int) -> None:
    plans = [make_connection(rng, daemon, corpus) for _ in range(CONNECTIONS_PER_BATCH)]
    for _, _, label in plans:
        count("plan " + label.split()[0])
    sockets = []
    for path, chunks, label in plans:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        # How this rig leaves: at once after sending (replies still being produced are lost), after
        # the daemon has gone quiet, or abruptly without reading anything.
        sockets.append((sock, chunks, label, rng.choice(["now", "quiet", "quiet", "abandon"])))
    received = {sock: b"" for sock, _, _, _ in sockets}
    for sock, chunks, label, leave in sockets:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the daemon already closed it (a framing ERROR)
        if leave == "now":
            _half_close(sock)
        elif leave == "abandon":
            sock.close()
    listening = {sock for sock, _, _, leave in sockets if leave != "abandon"}
    # Read until nothing has come for 0.3 s, then half-close the rest and read until every link is closed.
    _drain(listening, received, quiet=0.3, deadline=time.monotonic() + 5)
    for sock, _, _, leave in sockets:
        if leave == "quiet":
            _half_close(sock)
    _drain(listening, received, quiet=None, deadline=time.monotonic() + 10)
    for sock, chunks, label, leave in sockets:
        if leave == "abandon":
            continue
        sock.close()
        where = f"seed {SEED} batch {batch} {label} (leaves {leave}); sent {b''.join(chunks).hex()}"
        assert sock not in listening, f"the daemon did not close a half-closed link within 10s: {where}"
        check_replies(received[sock], where)


def _half_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _drain(listening: set, received: dict, quiet: float | None, deadline: float) -> None:
    """Reads from the sockets until EOF on all of them (removed from `listening`), until nothing has come
    for `quiet` seconds, or until the deadline."""
    while listening and time.monotonic() < deadline:
        wait = deadline - time.monotonic() if quiet is None else min(quiet, deadline - time.monotonic())
        ready, _, _ = select.select(list(listening), [], [], max(0.0, wait))
        if not ready:
            if quiet is not None:
                return
            continue
        for sock in ready:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] += chunk
            else:
                listening.discard(sock)


def check_healthy(daemon, batch: int) -> None:
    assert daemon.process.poll() is None, f"smetsd died in batch {batch} (seed {SEED}):\n{daemon.logs()[-4000:]}"
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(DEVICES_UNDER_FUZZ[0])
        assert welcome.device == h.eui(DEVICES_UNDER_FUZZ[0])
        assert link.read(Basic, "sw_build_id"), f"batch {batch}"
    with HanLink(daemon.device_path(DEVICES_UNDER_FUZZ[1])) as link:
        link.attach(h.ZERO_EUI)
        assert link.read(Basic, "zcl_version") >= 1
    status = daemon.rpc("daemon.status")
    assert status["state"] == "ready"
    # Every fuzz connection is closed on both sides: the daemon's count goes back to zero.
    deadline = time.monotonic() + 5
    while status["connections"]["han"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        status = daemon.rpc("daemon.status")
    assert status["connections"]["han"] == 0, f"HAN connections leaked after batch {batch}: {status['connections']}"


def test_fuzz_han_link(daemon):
    rng = random.Random(SEED)
    corpus = valid_zcl_corpus(rng)
    check_healthy(daemon, -1)
    for batch in range(BATCHES):
        run_batch(rng, daemon, corpus, batch)
        check_healthy(daemon, batch)
    print("fuzz coverage:", "; ".join(f"{k}: {v}" for k, v in sorted(STATS.items())))
    assert daemon.stop() == 0, f"smetsd did not exit 0 on SIGTERM after the fuzz:\n{daemon.logs()[-4000:]}"
