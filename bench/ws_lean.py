"""A lean WebSocket client for bench/ws_bench.py: plain non-blocking sockets and epoll, no asyncio.

``ws_bench.py --client-impl lean`` (the default) runs this in each spawned client process instead of
asyncio + ``websockets``: at 1,000 sockets the websockets clients needed 2.3 times the CPU of the two
Daphne processes they measured, on the same two cores. Only what the bench needs of RFC 6455:

* the opening handshake: an HTTP/1.1 ``GET`` with ``Upgrade: websocket``, a random
  ``Sec-WebSocket-Key`` and the ``Authorization: Token ...`` header; the response must be ``101``
  with ``Upgrade: websocket``, ``Connection: Upgrade`` and the right ``Sec-WebSocket-Accept``; no
  extension is offered, so a response that negotiates one is refused;
* server frames (:class:`FrameParser`): FIN, opcode, 7/16/64-bit lengths, masked or not (servers do
  not mask, the parser does not mind), fragmented messages reassembled, control frames between
  fragments;
* protocol pings answered with a masked pong carrying the same payload (Daphne closes a client that
  does not answer), a close frame answered with a masked close echoing its code, client messages sent
  as masked frames (the bench sends none; the tests send the consumer's JSON ping).

A complete message is timestamped with ``time.monotonic()`` (CLOCK_MONOTONIC, the bench's clock) when
the read that brought its last byte returned: every ready socket is read first, each read stamped,
and only then are the messages decoded, so one socket's decoding never delays another's timestamp.
Only text frames are decoded; the consumer's heartbeat is recognised by its bytes, everything else
goes through ``json.loads`` (the marker is ``data.metrics.wsb_key`` or ``wsb:<key>`` in a title).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import selectors
import socket
import time
from collections import Counter

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PING_BYTES = json.dumps({"type": "ping"}).encode()
KEY_RE = re.compile(r"wsb:(\d+)")
RECV_SIZE = 256 * 1024  # read into one preallocated buffer: recv(n) would allocate n bytes per call
FLUSH_EVERY = 0.05  # s: results go to the controller when the loop goes idle, or this often while busy
MAX_HEAD = 16 * 1024


class ProtocolError(Exception):
    """The server broke RFC 6455 (or sent more than ``max_size``)."""


class InvalidStatus(Exception):  # named like websockets' exception: the bench groups errors by name
    """The server answered the upgrade with something other than 101."""


class InvalidHandshake(Exception):
    """A 101 whose headers do not complete a WebSocket handshake."""


# --- handshake --------------------------------------------------------------------------------


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324 - RFC 6455


def handshake_request(host: str, port: int, path: str, token: str | None, key: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "User-Agent: ws-bench-lean",
    ]
    if token is not None:
        lines.append(f"Authorization: Token {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_handshake_response(head: bytes, key: str) -> dict[str, str]:
    """Validate the response head (up to the blank line, excluded); return its headers (lowercased names)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise InvalidHandshake(f"bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise InvalidHandshake(f"bad header line {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if parts[1] != "101":
        raise InvalidStatus(f"server rejected WebSocket connection: HTTP {parts[1]}")
    if headers.get("upgrade", "").lower() != "websocket":
        raise InvalidHandshake(f"Upgrade header {headers.get('upgrade')!r}")
    if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
        raise InvalidHandshake(f"Connection header {headers.get('connection')!r}")
    if headers.get("sec-websocket-accept") != accept_for(key):
        raise InvalidHandshake(f"Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r} does not match")
    if headers.get("sec-websocket-extensions"):
        raise InvalidHandshake(f"extension not offered: {headers['sec-websocket-extensions']!r}")
    return headers


# --- frames -----------------------------------------------------------------------------------


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, mask_key: bytes | None = None
) -> bytes:
    """One frame; clients mask (RFC 6455 5.3), ``mask=False`` builds server frames (for tests)."""
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 1 << 16:
        head.append(bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return bytes(head) + key + mask_payload(payload, key)


def close_payload(code: int | None, reason: str = "") -> bytes:
    return b"" if code is None else code.to_bytes(2, "big") + reason.encode()


class FrameParser:
    """Incremental RFC 6455 frame parser: ``feed(bytes)`` returns the complete messages and control frames.

    Each item is ``(opcode, payload)``: ``OP_TEXT``/``OP_BINARY`` with a fragmented message's
    payloads joined, or a control frame (``OP_CLOSE``, ``OP_PING``, ``OP_PONG``) as it came, in
    the order they completed.
    """

    __slots__ = ("buf", "frag_opcode", "frag_size", "fragments", "max_size")

    def __init__(self, max_size: int = 2**22) -> None:
        self.buf = bytearray()
        self.fragments: list[bytes] = []
        self.frag_opcode: int | None = None
        self.frag_size = 0
        self.max_size = max_size

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos, end_of_data = 0, len(buf)
        while end_of_data - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70:
                raise ProtocolError("reserved bits set (no extension was negotiated)")
            fin, opcode, length, at = b0 & 0x80, b0 & 0x0F, b1 & 0x7F, pos + 2
            if length == 126:
                if end_of_data - at < 2:
                    break
                length, at = int.from_bytes(buf[at : at + 2], "big"), at + 2
            elif length == 127:
                if end_of_data - at < 8:
                    break
                length, at = int.from_bytes(buf[at : at + 8], "big"), at + 8
                if length >> 63:
                    raise ProtocolError("64-bit length with the most significant bit set")
            mask = None
            if b1 & 0x80:
                if end_of_data - at < 4:
                    break
                mask, at = bytes(buf[at : at + 4]), at + 4
            if opcode >= 8:
                if not fin or length > 125:
                    raise ProtocolError("fragmented or oversized control frame")
            elif length + self.frag_size > self.max_size:
                raise ProtocolError(f"message over {self.max_size} bytes")
            if end_of_data - at < length:
                break
            payload = bytes(buf[at : at + length])
            pos = at + length
            if mask is not None:
                payload = mask_payload(payload, mask)
            if opcode >= 8:
                if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise ProtocolError(f"unknown control opcode {opcode}")
                out.append((opcode, payload))
            elif opcode == OP_CONT:
                if self.frag_opcode is None:
                    raise ProtocolError("continuation frame without a message to continue")
                self.fragments.append(payload)
                self.frag_size += length
                if fin:
                    out.append((self.frag_opcode, b"".join(self.fragments)))
                    self.fragments, self.frag_opcode, self.frag_size = [], None, 0
            elif opcode in (OP_TEXT, OP_BINARY):
                if self.frag_opcode is not None:
                    raise ProtocolError("new message before the fragmented one finished")
                if fin:
                    out.append((opcode, payload))
                else:
                    self.fragments, self.frag_opcode, self.frag_size = [payload], opcode, length
            else:
                raise ProtocolError(f"unknown data opcode {opcode}")
        if pos:
            del buf[:pos]
        return out


def message_marker(payload: bytes) -> tuple:
    """What the bench needs of a text message: ``("ping",)``, ``("k", key, id)``, ``("t", ticket, count, id)``,
    ``("other", type)`` or ``("not-json",)``."""
    if payload == PING_BYTES:
        return ("ping",)
    try:
        message = json.loads(payload)
    except ValueError:
        return ("not-json",)
    if not isinstance(message, dict):
        return ("other", type(message).__name__)
    kind = message.get("type")
    data = message.get("data") or {}
    if kind == "metrics_update":
        key = (data.get("metrics") or {}).get("wsb_key")
        if key is not None:
            return ("k", int(key), message.get("id"))
    elif kind == "notification":
        found = KEY_RE.search((data.get("notification") or {}).get("title", ""))
        if found:
            return ("k", int(found.group(1)), message.get("id"))
    elif kind == "ticket_update":
        return ("t", data.get("ticket"), data.get("comment_count"), message.get("id"))
    elif kind == "ping":
        return ("ping",)
    return ("other", str(kind))


# --- connections ------------------------------------------------------------------------------

TCP, HANDSHAKE, OPEN, CLOSING, CLOSED = range(5)


class Conn:
    __slots__ = (
        "close_code",
        "close_reason",
        "deadline",
        "head",
        "idx",
        "key",
        "out",
        "parser",
        "scheduled",
        "sock",
        "spec",
        "state",
        "t_start",
        "t_tcp",
    )

    def __init__(self, spec: tuple, scheduled: float | None) -> None:
        self.spec = spec
        self.idx = spec[0]
        self.scheduled = scheduled
        self.state = TCP
        self.head = b""
        self.out = b""
        self.parser = FrameParser()
        self.key = new_key()
        self.close_code: int | None = None
        self.close_reason = ""


class LeanClient:
    """One client process's share of the sockets, on one epoll selector and one thread.

    Talks to the controller like ``ws_bench.ClientProcess``: commands on ``cmd_conn``
    (``("connect", plan)``, ``("stats",)``, ``("close",)``), batches of results on ``data_conn``
    sent whenever the loop finds nothing more to read.
    """

    def __init__(
        self, cmd_conn, data_conn, specs: list[tuple], wave: int, open_timeout: float, proc: int, nprocs: int
    ) -> None:
        self.cmd_conn = cmd_conn
        self.data_conn = data_conn
        self.specs = specs  # (idx, host, port, path, token)
        self.wave = max(1, wave)
        self.open_timeout = open_timeout
        self.proc, self.nprocs = proc, nprocs
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}  # idx -> connection, once its handshake succeeded
        self.pending_connects: list[Conn] = []  # TCP or HANDSHAKE
        self.pings: Counter[int] = Counter()
        self.protocol_pings = 0
        self.other: Counter[str] = Counter()
        self.frames = 0
        self.bytes = 0
        self.closing = False
        self.pending: list[tuple] = []
        self.results: list[tuple] = []
        self.plan: dict | None = None
        self.queue_pos = 0
        self.connect_t0 = 0.0
        self.running = True
        self.recv_buf = bytearray(RECV_SIZE)
        self.recv_view = memoryview(self.recv_buf)
        self.last_flush = 0.0

    # -- plumbing ---------------------------------------------------------------------------

    def out(self, item: tuple) -> None:
        self.pending.append(item)

    def _flush(self) -> None:
        # Straight down the pipe, from this thread: a batch is a few tens of kB (under the pipe's
        # buffer) and the controller reads continuously, so this does not block; a sender thread
        # cost more CPU in queue wake-ups and GIL hand-offs than the writes themselves.
        if self.pending:
            batch, self.pending = self.pending, []
            self.data_conn.send(("batch", batch))

    def stats(self) -> dict:
        return {
            "pings": {idx: self.pings.get(idx, 0) for idx in self.conns},
            "open": sum(1 for c in self.conns.values() if c.state == OPEN),
            "frames": self.frames,
            "bytes": self.bytes,
            "other": dict(self.other),
            "extensions": {"none": len(self.conns)} if self.conns else {},
            "protocol_pings": self.protocol_pings,
            "cpu_s": time.process_time(),
            "cpu_sys_s": os.times().system,
        }

    # -- loop -------------------------------------------------------------------------------

    def main(self) -> None:
        self.sel.register(self.cmd_conn.fileno(), selectors.EVENT_READ, None)
        while self.running:
            # With results pending, only poll: send them once nothing is ready (or every
            # FLUSH_EVERY s while busy), not once per pass.
            busy = self.step(0 if self.pending else self.next_timeout())
            if self.pending and (not busy or time.monotonic() - self.last_flush >= FLUSH_EVERY):
                self._flush()
                self.last_flush = time.monotonic()
        self._flush()
        self.sel.close()

    def next_timeout(self) -> float | None:
        timeout = None
        if self.pending_connects or (self.closing and self.conns):
            timeout = 0.05
        if self.plan is not None and self.plan.get("rate") and self.queue_pos < len(self.specs):
            wait = max(0.0, self.slot(self.queue_pos) - time.monotonic())
            timeout = wait if timeout is None else min(timeout, wait)
        return timeout

    def step(self, timeout: float | None) -> int:
        reads = []
        view = self.recv_view
        ready = self.sel.select(timeout)
        for key, mask in ready:
            conn = key.data
            if conn is None:
                self.on_command()
                continue
            if conn.state == TCP:
                self.on_tcp(conn)
                continue
            if mask & selectors.EVENT_WRITE and conn.out:
                self.flush_out(conn)
            if mask & selectors.EVENT_READ:
                recv_into = conn.sock.recv_into
                try:
                    n = recv_into(view)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    n = 0
                reads.append((conn, bytes(view[:n]), time.monotonic()))
        for conn, data, t in reads:
            self.on_data(conn, data, t)
        self.tick()
        return len(ready)

    def on_command(self) -> None:
        try:
            cmd = self.cmd_conn.recv()
        except (EOFError, OSError):
            self.sel.unregister(self.cmd_conn.fileno())
            cmd = ("close",)
        if cmd[0] == "connect":
            self.plan = cmd[1] if len(cmd) > 1 else {}
            self.connect_t0 = self.plan.get("start_at") or time.monotonic()
            self.queue_pos = 0
        elif cmd[0] == "stats":
            self.out(("stats", self.stats()))
        elif cmd[0] == "close":
            self.start_close()

    # -- connecting -------------------------------------------------------------------------

    def slot(self, j: int) -> float:
        """Paced mode: when this process opens its j-th connection (all processes interleaved)."""
        plan = self.plan or {}
        return plan["start_at"] + (j * self.nprocs + self.proc) / plan["rate"]

    def tick(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.pending_connects if now > c.deadline]:
            self.fail(
                conn, f"TimeoutError: timed out during {'TCP connect' if conn.state == TCP else 'opening handshake'}"
            )
        if self.plan is not None:
            if self.plan.get("rate"):
                while self.queue_pos < len(self.specs) and time.monotonic() >= self.slot(self.queue_pos):
                    self.start_connect(self.specs[self.queue_pos], self.slot(self.queue_pos))
                    self.queue_pos += 1
            elif not self.pending_connects and self.queue_pos < len(self.specs):
                for spec in self.specs[self.queue_pos : self.queue_pos + self.wave]:
                    self.start_connect(spec, None)
                self.queue_pos += self.wave
            if self.queue_pos >= len(self.specs) and not self.pending_connects:
                self.out(("connected", self.results, time.monotonic() - self.connect_t0))
                self.plan, self.results = None, []
        if self.closing:
            if any(c.state == CLOSING for c in self.conns.values()) and now < self.close_deadline:
                return
            for conn in self.conns.values():
                self.drop(conn)
            self.out(("stats", self.stats()))
            self.out(("bye",))
            self.running = False

    def start_connect(self, spec: tuple, scheduled: float | None) -> None:
        conn = Conn(spec, scheduled)
        _, host, port, _, _ = spec
        conn.t_start = time.monotonic()
        conn.deadline = conn.t_start + self.open_timeout
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        conn.sock = sock
        self.pending_connects.append(conn)
        err = sock.connect_ex((host, port))
        if err in (errno.EINPROGRESS, errno.EAGAIN):
            self.sel.register(sock, selectors.EVENT_WRITE, conn)
        elif err == 0:
            self.sel.register(sock, selectors.EVENT_WRITE, conn)
            self.on_tcp(conn)
        else:
            self.fail(conn, self.os_error(err))

    @staticmethod
    def os_error(err: int) -> str:
        exc = OSError(err, os.strerror(err))  # the errno's subclass, e.g. ConnectionRefusedError
        return f"{type(exc).__name__}: {exc}"[:200]

    def on_tcp(self, conn: Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(conn, self.os_error(err))
            return
        conn.t_tcp = time.monotonic()
        conn.state = HANDSHAKE
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        _, host, port, path, token = conn.spec
        self.send(conn, handshake_request(host, port, path, token, conn.key))

    def fail(self, conn: Conn, error: str) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.sock.close()
        conn.state = CLOSED
        self.pending_connects.remove(conn)
        self.results.append((conn.idx, None, None, error, conn.t_start, conn.scheduled))

    def on_handshake(self, conn: Conn, data: bytes, t: float) -> None:
        conn.head += data
        end = conn.head.find(b"\r\n\r\n")
        if end < 0:
            if not data:
                self.fail(conn, "InvalidMessage: connection closed during the opening handshake")
            elif len(conn.head) > MAX_HEAD:
                self.fail(conn, "InvalidMessage: response head too long")
            return
        try:
            check_handshake_response(conn.head[:end], conn.key)
        except (InvalidStatus, InvalidHandshake) as exc:
            self.fail(conn, f"{type(exc).__name__}: {exc}"[:200])
            return
        rest, conn.head = conn.head[end + 4 :], b""
        conn.state = OPEN
        self.pending_connects.remove(conn)
        self.conns[conn.idx] = conn
        self.results.append(
            (conn.idx, (conn.t_tcp - conn.t_start) * 1e3, (t - conn.t_start) * 1e3, None, conn.t_start, conn.scheduled)
        )
        if rest:
            self.on_frames(conn, rest, t)

    # -- reading ----------------------------------------------------------------------------

    def on_data(self, conn: Conn, data: bytes, t: float) -> None:
        if conn.state == HANDSHAKE:
            self.on_handshake(conn, data, t)
        elif conn.state in (OPEN, CLOSING):
            if not data:
                self.lost(conn, None, "", t)
                return
            self.on_frames(conn, data, t)

    def on_frames(self, conn: Conn, data: bytes, t: float) -> None:
        try:
            items = conn.parser.feed(data)
        except ProtocolError as exc:
            self.other["protocol-error"] += 1
            if conn.state == OPEN:
                code = 1009 if "over" in str(exc) else 1002
                self.send(conn, encode_frame(OP_CLOSE, close_payload(code)))
            self.lost(conn, None, f"client: {exc}", t)
            return
        for opcode, payload in items:
            if opcode == OP_TEXT:
                self.frames += 1
                self.bytes += len(payload)
                self.on_text(conn.idx, payload, t)
            elif opcode == OP_BINARY:
                self.frames += 1
                self.bytes += len(payload)
                self.other["not-json"] += 1
            elif opcode == OP_PING:
                self.protocol_pings += 1
                if conn.state == OPEN:
                    self.send(conn, encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                reason = payload[2:].decode("utf-8", "replace")
                if conn.state == OPEN:  # the server started the closing handshake: echo its code
                    self.send(conn, encode_frame(OP_CLOSE, payload[:2]))
                self.lost(conn, code, reason, t)
                return

    def on_text(self, idx: int, payload: bytes, t: float) -> None:
        if payload == PING_BYTES:
            self.pings[idx] += 1
            return
        found = message_marker(payload)
        tag = found[0]
        if tag == "k":
            self.out(("k", found[1], idx, time.monotonic(), found[2], t))
        elif tag == "t":
            self.out(("t", found[1], found[2], idx, time.monotonic(), found[3], t))
        elif tag == "ping":
            self.pings[idx] += 1
        elif tag == "not-json":
            self.other["not-json"] += 1
        else:
            self.other[found[1]] += 1

    def lost(self, conn: Conn, code: int | None, reason: str, t: float) -> None:
        """The connection ended (close frame or EOF): report it unless the bench is closing."""
        if not self.closing and conn.state == OPEN:
            self.out(("closed", conn.idx, code, reason, t))
        conn.close_code, conn.close_reason = code, reason
        self.drop(conn)

    def drop(self, conn: Conn) -> None:
        if conn.state == CLOSED:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.sock.close()
        conn.state = CLOSED

    # -- writing ----------------------------------------------------------------------------

    def send(self, conn: Conn, data: bytes) -> None:
        if conn.state == CLOSED:
            return
        if conn.out:
            conn.out += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return  # the read side sees the reset
        if sent < len(data):
            conn.out = data[sent:]
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def flush_out(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            conn.out = b""
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def send_message(self, idx: int, text: str) -> None:
        """A client message as one masked text frame (the bench itself sends none)."""
        self.send(self.conns[idx], encode_frame(OP_TEXT, text.encode()))

    def start_close(self) -> None:
        """Closing handshake on every open socket (code 1000), then the sockets are closed."""
        self.closing = True
        self.close_deadline = time.monotonic() + 10
        for conn in self.conns.values():
            if conn.state == OPEN:
                self.send(conn, encode_frame(OP_CLOSE, close_payload(1000)))
                conn.state = CLOSING


def lean_client_entry(cmd_conn, data_conn, specs, wave, open_timeout, proc, nprocs) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    LeanClient(cmd_conn, data_conn, specs, wave, open_timeout, proc, nprocs).main()
