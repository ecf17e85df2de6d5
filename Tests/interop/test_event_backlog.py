"""A stalled event subscriber costs at most `maxEventBacklogBytes` of the daemon's memory.

Events for a client that does not read are dropped past that many unwritten bytes, counted, and the
count reaches the client as an `events.lost` notification before the next event it can take: every
event is either delivered or counted, none silently gone, and the client is still served after.
"""
from __future__ import annotations

import json
import socket
import time

from conftest import P1_PPMID, copy_lab, start_daemon, stop_and_check
from hanlink import Basic, HanLink

ROUND_TRIPS = 3000  # 6,000 han.frame events, ~2 MB: far past the 16 KiB backlog and the socket's buffers


def read_lines(sock: socket.socket, quiet: float) -> list[dict]:
    """Every JSON line that arrives until nothing has come for `quiet` seconds."""
    sock.settimeout(quiet)
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    assert data.endswith(b"\n") or not data, "a partial line"
    return [json.loads(line) for line in data.splitlines()]


def test_a_stalled_subscriber_loses_events_past_its_backlog_and_is_told_how_many(smetsd_binary, tmp_path):
    daemon = start_daemon(smetsd_binary, copy_lab(tmp_path / "lab", settings={"maxEventBacklogBytes": 16384}))
    try:
        subscriber = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        subscriber.connect(daemon.control_path)
        subscriber.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"types":["han.frame"]}}\n')
        answer = read_lines(subscriber, quiet=1.0)
        assert answer == [{"jsonrpc": "2.0", "id": 1, "result": {"subscribed": True}}], answer

        with HanLink(daemon.han_path) as link:
            link.attach(P1_PPMID)
            for _ in range(ROUND_TRIPS):  # the subscriber reads nothing meanwhile
                link.read_attributes(Basic, [0x4000])
            drained = read_lines(subscriber, quiet=1.0)
            link.read_attributes(Basic, [0x4000])  # the next events: the lost count goes out first
            after = read_lines(subscriber, quiet=1.0)

        frames = [m for m in drained + after if m.get("method") == "event"]
        lost = [m["params"]["count"] for m in drained + after if m.get("method") == "events.lost"]
        assert all(m.get("method") in ("event", "events.lost") for m in drained + after)
        assert lost and sum(lost) > 0, "the backlog limit dropped nothing"
        assert len(frames) + sum(lost) == 2 * (ROUND_TRIPS + 1), (len(frames), lost)
        assert [m["method"] for m in after] == ["events.lost", "event", "event"], after
        # Bounded: what was delivered before the drop is the socket's buffers plus at most the limit.
        delivered = sum(len(json.dumps(m)) + 1 for m in drained)
        assert delivered < 16384 + 512 * 1024, delivered
    finally:
        subscriber.close()
        stop_and_check(daemon)
