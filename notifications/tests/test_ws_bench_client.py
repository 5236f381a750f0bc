"""The benchmark's lean WebSocket client (bench/ws_lean.py): frames, handshake, pings and closes.

The parser is checked over frames built by hand (masked and not, 7/16/64-bit lengths, fragments
with a ping between them); pongs and closes over a real socket pair; the handshake, the close of an
unknown token (4401), server frames of every length and a masked client message against the live
stack's Daphne.
"""

import importlib.util
import json
import multiprocessing
import os
import selectors
import socket
import sys
import time
from pathlib import Path

import pytest

from notifications.tests.conftest import push_message_for
from portal import realtime
from portal import services as portal_services
from portal.tests.factories import MembershipFactory

_PATH = Path(__file__).resolve().parents[2] / "bench" / "ws_lean.py"
_spec = importlib.util.spec_from_file_location("ws_lean", _PATH)
ws_lean = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("ws_lean", ws_lean)
_spec.loader.exec_module(ws_lean)

OP = ws_lean


def server_frame(opcode, payload, *, fin=True):
    return ws_lean.encode_frame(opcode, payload, fin=fin, mask=False)


def read_frames(sock, count, timeout=5):
    """Frames a client wrote, decoded by the same parser (they are masked: it unmasks)."""
    parser = ws_lean.FrameParser()
    got, raw = [], b""
    sock.settimeout(timeout)
    while len(got) < count:
        chunk = sock.recv(65536)
        assert chunk, "the client closed the socket early"
        raw += chunk
        got += parser.feed(chunk)
    return got, raw


# --- the parser over bytes --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
@pytest.mark.parametrize("masked", [False, True])
def test_parser_reads_7_16_and_64_bit_lengths_masked_or_not(size, masked):
    payload = os.urandom(size)
    frame = ws_lean.encode_frame(OP.OP_BINARY, payload, mask=masked, mask_key=b"\x01\x02\x03\x04")
    header = 2 + (0 if size < 126 else 2 if size < 65536 else 8) + (4 if masked else 0)
    assert len(frame) == header + size
    assert frame[1] & 0x7F == (size if size < 126 else 126 if size < 65536 else 127)
    if masked and size:
        assert frame[header:] != payload
    parser = ws_lean.FrameParser()
    # Byte by byte for the small ones, in uneven chunks for the others: a frame may end anywhere.
    step = 1 if size < 200 else 4093
    out = []
    for start in range(0, len(frame), step):
        out += parser.feed(frame[start : start + step])
    assert out == [(OP.OP_BINARY, payload)]
    assert parser.buf == bytearray()


def test_parser_reassembles_fragments_with_a_ping_in_between_and_keeps_the_order():
    text = json.dumps({"type": "metrics_update", "data": {"metrics": {"wsb_key": 7}}}).encode()
    stream = (
        server_frame(OP.OP_TEXT, text[:10], fin=False)
        + server_frame(OP.OP_PING, b"hb")
        + server_frame(OP.OP_CONT, text[10:30], fin=False)
        + server_frame(OP.OP_CONT, text[30:])
        + server_frame(OP.OP_TEXT, b'{"type": "ping"}')
        + server_frame(OP.OP_CLOSE, (1001).to_bytes(2, "big") + b"going away")
    )
    parser = ws_lean.FrameParser()
    assert parser.feed(stream[:5]) == []
    out = parser.feed(stream[5:])
    assert out == [
        (OP.OP_PING, b"hb"),
        (OP.OP_TEXT, text),
        (OP.OP_TEXT, b'{"type": "ping"}'),
        (OP.OP_CLOSE, b"\x03\xe9going away"),
    ]


@pytest.mark.parametrize(
    "stream",
    [
        server_frame(OP.OP_CONT, b"x"),  # continuation of nothing
        server_frame(OP.OP_TEXT, b"a", fin=False) + server_frame(OP.OP_TEXT, b"b"),  # new message mid-fragment
        server_frame(OP.OP_PING, b"x" * 126),  # control frames carry at most 125 bytes
        server_frame(OP.OP_PING, b"x", fin=False),  # and are never fragmented
        bytes([0x80 | 0x40 | OP.OP_TEXT, 1]) + b"x",  # RSV1 without a negotiated extension
        bytes([0x80 | 0x3, 0]),  # reserved opcode
    ],
)
def test_parser_refuses_protocol_errors(stream):
    with pytest.raises(ws_lean.ProtocolError):
        ws_lean.FrameParser().feed(stream)


def test_parser_refuses_messages_over_max_size_even_in_fragments():
    parser = ws_lean.FrameParser(max_size=100)
    parser.feed(server_frame(OP.OP_TEXT, b"a" * 60, fin=False))
    with pytest.raises(ws_lean.ProtocolError):
        parser.feed(server_frame(OP.OP_CONT, b"a" * 60))


def test_messages_give_the_bench_its_markers():
    marker = ws_lean.message_marker
    assert marker(b'{"type": "ping"}') == ("ping",)
    assert marker(b'{"type":"ping"}') == ("ping",)
    assert marker(json.dumps({"type": "metrics_update", "id": 5, "data": {"metrics": {"wsb_key": 42}}}).encode()) == (
        "k",
        42,
        5,
    )
    note = {"type": "notification", "id": 6, "data": {"notification": {"title": "Reply wsb:43"}}}
    assert marker(json.dumps(note).encode()) == ("k", 43, 6)
    update = {"type": "ticket_update", "id": 7, "data": {"ticket": "T-1", "comment_count": 1}}
    assert marker(json.dumps(update).encode()) == ("t", "T-1", 1, 7)
    assert marker(b'{"type": "pong"}') == ("other", "pong")
    assert marker(b"not json") == ("not-json",)


def test_handshake_response_is_checked():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    assert ws_lean.accept_for(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455, section 1.3
    good = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    )
    ws_lean.check_handshake_response(good, key)
    with pytest.raises(ws_lean.InvalidHandshake):
        ws_lean.check_handshake_response(good.replace(b"s3pP", b"AAAA"), key)
    with pytest.raises(ws_lean.InvalidHandshake):
        ws_lean.check_handshake_response(good + b"\r\nSec-WebSocket-Extensions: permessage-deflate", key)
    with pytest.raises(ws_lean.InvalidStatus, match="HTTP 403"):
        ws_lean.check_handshake_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0", key)
    request = ws_lean.handshake_request("127.0.0.1", 8001, "/ws/", "abc", key).decode()
    assert request.startswith("GET /ws/ HTTP/1.1\r\n") and request.endswith("\r\n\r\n")
    assert "\r\nAuthorization: Token abc\r\n" in request
    assert f"\r\nSec-WebSocket-Key: {key}\r\n" in request


# --- pings and closes over a real socket ------------------------------------------------------


def open_client_on_socketpair(idx=3):
    """A LeanClient holding one OPEN connection whose peer (the "server") is returned."""
    cmd_r, _cmd_w = multiprocessing.Pipe(duplex=False)
    _data_r, data_w = multiprocessing.Pipe(duplex=False)
    client = ws_lean.LeanClient(cmd_r, data_w, [], wave=1, open_timeout=5, proc=0, nprocs=1)
    ours, server = socket.socketpair()
    ours.setblocking(False)
    conn = ws_lean.Conn((idx, "127.0.0.1", 0, "/ws/", None), None)
    conn.sock, conn.state = ours, ws_lean.OPEN
    client.conns[idx] = conn
    client.sel.register(ours, selectors.EVENT_READ, conn)
    return client, conn, server


def test_protocol_pings_get_masked_pongs_and_heartbeats_are_counted():
    client, _conn, server = open_client_on_socketpair()
    server.sendall(server_frame(OP.OP_PING, b"daphne-1") + server_frame(OP.OP_TEXT, b'{"type": "ping"}'))
    client.step(2)
    (pong,), raw = read_frames(server, 1)
    assert pong == (OP.OP_PONG, b"daphne-1")
    assert raw[1] & 0x80, "client frames must be masked"
    assert client.protocol_pings == 1
    assert client.pings[3] == 1
    assert client.stats()["open"] == 1


def test_a_server_close_is_echoed_masked_and_reported_with_its_code():
    client, conn, server = open_client_on_socketpair()
    server.sendall(server_frame(OP.OP_CLOSE, (4003).to_bytes(2, "big") + b"token revoked"))
    client.step(2)
    (close,), raw = read_frames(server, 1)
    assert close == (OP.OP_CLOSE, (4003).to_bytes(2, "big"))
    assert raw[1] & 0x80
    assert [item[:4] for item in client.pending] == [("closed", 3, 4003, "token revoked")]
    assert conn.state == ws_lean.CLOSED
    assert server.recv(10) == b""  # and the socket is closed


def test_a_dropped_connection_is_reported_without_a_code():
    client, _conn, server = open_client_on_socketpair()
    server.close()
    client.step(2)
    assert [item[:4] for item in client.pending] == [("closed", 3, None, "")]


# --- against the live stack's Daphne ----------------------------------------------------------


def _run(client, until, timeout=30):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out; client output so far: {client.pending[:10]}"
        client.step(client.next_timeout() if client.next_timeout() is not None else 0.05)


def _items(client, tag):
    return [item for item in client.pending if item[0] == tag]


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_lean_client_against_daphne(live_stack, member):
    colleague = MembershipFactory(organization=member.organization)
    org = member.organization.pk
    tokens = [portal_services.api_token_create(membership=m, name="ws")[1] for m in (member, colleague)]
    port = int(live_stack.url.rsplit(":", 1)[1])
    specs = [(0, "127.0.0.1", port, "/ws/", tokens[0]), (1, "127.0.0.1", port, "/ws/", tokens[1])]
    specs.append((2, "127.0.0.1", port, "/ws/", "not-a-token"))
    cmd_r, cmd_w = multiprocessing.Pipe(duplex=False)
    _data_r, data_w = multiprocessing.Pipe(duplex=False)
    client = ws_lean.LeanClient(cmd_r, data_w, specs, wave=2, open_timeout=10, proc=0, nprocs=1)
    client.sel.register(cmd_r.fileno(), selectors.EVENT_READ, None)

    cmd_w.send(("connect", {}))
    _run(client, lambda: _items(client, "connected"))
    (connected,) = _items(client, "connected")
    results = {r[0]: r for r in connected[1]}
    assert set(results) == {0, 1, 2}
    for idx in (0, 1, 2):
        _, tcp_ms, open_ms, error, _t_start, _scheduled = results[idx]
        assert error is None
        assert 0 <= tcp_ms <= open_ms
    # An unknown token: the consumer accepts, then closes with 4401 ("don't retry"); the client
    # echoes the close and reports it as an unexpected close with that code.
    _run(client, lambda: _items(client, "closed"))
    assert [c[:3] for c in _items(client, "closed")] == [("closed", 2, realtime.CLOSE_UNAUTHENTICATED)]
    assert client.conns[2].state == ws_lean.CLOSED
    assert client.stats()["open"] == 2

    # Frames of 7-, 16- and 64-bit lengths, org-wide and for one user, each with the bench's marker.
    big = "x" * 200_000
    realtime.group_send(
        realtime.organization_group(org),
        push_message_for(1, org, data={"metrics": {"wsb_key": 101, "pad": big}}),
    )
    realtime.group_send(
        realtime.organization_group(org),
        push_message_for(2, org, event="ticket_update", data={"ticket": "T-9", "comment_count": 1, "pad": "y" * 500}),
    )
    realtime.group_send(
        realtime.user_group(member.user_id),
        push_message_for(
            3, org, user=member.user_id, event="notification", data={"notification": {"title": "Reply wsb:102"}}
        ),
    )
    _run(client, lambda: len(_items(client, "k")) == 3 and len(_items(client, "t")) == 2)
    assert sorted((k[1], k[2], k[4]) for k in _items(client, "k")) == [(101, 0, 1), (101, 1, 1), (102, 0, 3)]
    assert sorted((t[1], t[2], t[3]) for t in _items(client, "t")) == [("T-9", 1, 0), ("T-9", 1, 1)]
    for k in _items(client, "k"):
        assert k[5] <= k[3] <= time.monotonic()  # read off the socket, then handled

    # A client message goes out masked and the consumer answers it.
    client.send_message(0, '{"type": "ping"}')
    _run(client, lambda: client.other.get("pong") == 1)

    # Closing handshake: the bench's own close is not an "unexpected close".
    cmd_w.send(("close",))
    _run(client, lambda: not client.running)
    assert _items(client, "bye")
    assert len(_items(client, "closed")) == 1  # only the 4401 above
    assert all(c.state == ws_lean.CLOSED for c in client.conns.values())
    assert _items(client, "stats")[-1][1]["extensions"] == {"none": 3}


def test_paced_slots_interleave_the_client_processes_at_the_total_rate():
    """``--connect-rate R`` over N processes: process p opens its j-th socket at start + (j*N + p)/R."""
    slots = []
    for proc in range(2):
        client = ws_lean.LeanClient(None, None, [], wave=1, open_timeout=5, proc=proc, nprocs=2)
        client.plan = {"rate": 100.0, "start_at": 1000.0}
        slots += [client.slot(j) for j in range(5)]
    assert sorted(slots) == pytest.approx([1000.0 + i / 100 for i in range(10)])
