"""Real receivers on 127.0.0.1 for webhook tests and benchmarks.

* :class:`Receiver` is a threaded HTTP/1.1 server (optionally TLS) whose answers are
  programmable per request — status, headers, body, delays, hangs, trickled bytes, huge
  bodies, redirects, abrupt resets, or raw bytes that are not HTTP at all — and which records
  every request it received, before answering, so even a request that was never answered
  can be inspected.
* :class:`TcpListener` speaks no protocol: it accepts and counts connections. SSRF tests
  point blocked URLs at it to prove that no connection was even attempted.
* :func:`forbid_outside_connections` makes any connect or DNS lookup beyond the loopback
  interface fail the test, so a bug in the SSRF checks cannot reach a real network.
* :func:`tls_material` issues a throwaway CA and server certificate for https tests.

Both servers bind an ephemeral port on 127.0.0.1 only, start in a few milliseconds, stop
promptly even with hung or trickling connections, and are safe under pytest-xdist::

    with Receiver() as receiver:
        receiver.enqueue(Reply(status=503, headers={"Retry-After": "7"}))
        ...  # POST to receiver.url("/hook")
        [request] = receiver.requests
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import http
import ipaddress
import selectors
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
_FILLER = b"x" * (64 * 1024)
_DEFAULT_STEP = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    target: str  # path and query as they appeared in the request line
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    client: tuple[str, int]
    received_at: float  # time.monotonic()

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def header_map(self) -> dict[str, str]:
        """Headers with lower-cased names (what webhook verifiers expect)."""
        return {name.lower(): value for name, value in self.headers}

    def header(self, name: str) -> str | None:
        return self.header_map.get(name.lower())


@dataclass(frozen=True, slots=True)
class Reply:
    """How the receiver answers one request.

    By default a well-formed response with ``Content-Length`` (or chunked encoding). The
    misbehaviours combine: e.g. ``raw=...`` with ``trickle`` sends malformed bytes slowly.
    """

    status: int = 200
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    body: bytes = b""
    body_size: int = 0  # filler bytes streamed after ``body``: huge bodies without allocating them
    chunked: bool = False
    content_length: int | None = None  # announce this instead of the real length (a lie, for tests)
    delay: float = 0.0  # seconds before the first byte
    trickle: float = 0.0  # pause between pieces of ``trickle_bytes`` bytes (a slowloris receiver)
    trickle_bytes: int = 1
    stall_after: int | None = None  # write this many bytes, then hold the connection silently
    close_after: int | None = None  # write this many bytes, then reset the connection (RST)
    raw: bytes | None = None  # send these bytes instead of a formatted response

    def __post_init__(self) -> None:
        headers = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple((str(name), str(value)) for name, value in headers))
        if self.stall_after is not None and self.close_after is not None:
            raise ValueError("stall_after and close_after are exclusive")

    @classmethod
    def hanging(cls) -> Reply:
        """Accept the request and never answer (until the receiver stops)."""
        return cls(stall_after=0)

    @classmethod
    def redirect(cls, location: str, *, status: int = 302) -> Reply:
        return cls(status=status, headers={"Location": location})

    @classmethod
    def huge(cls, size: int, *, chunked: bool = False) -> Reply:
        return cls(body_size=size, chunked=chunked, headers={"Content-Type": "text/plain"})


Responder = Reply | Callable[[ReceivedRequest], Reply]


class _Server:
    """Accept loop on 127.0.0.1:0 with prompt, complete shutdown."""

    def __init__(self, *, backlog: int) -> None:
        self._listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listening.bind((HOST, 0))
        self._listening.listen(backlog)
        self.host, self.port = self._listening.getsockname()[:2]
        # A socketpair wakes the selector on stop(): closing a socket another thread is
        # blocked on does not reliably wake it.
        self._wake_read, self._wake_write = socket.socketpair()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._open: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"{type(self).__name__}-{self.port}")
        self._accept_thread.daemon = True
        self._started = False
        self._stopped = False

    def start(self) -> Any:
        if not self._started:
            self._started = True
            self._accept_thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._wake_write.send(b"x")
        if self._started:
            self._accept_thread.join(timeout=5)
        self._listening.close()
        with self._lock:
            sockets, threads = list(self._open), list(self._threads)
        for sock in sockets:
            _shutdown(sock)  # unblocks handler threads waiting in recv
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()
        self._wake_read.close()
        self._wake_write.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listening, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_read:
                        return
                    try:
                        conn, address = self._listening.accept()
                    except OSError:
                        continue
                    # As real servers do: small writes (headers, then body) leave at once instead
                    # of waiting ~40 ms for the client's delayed ACK on a kept-alive connection.
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._accepted(conn, address)

    def _accepted(self, conn: socket.socket, address: tuple[str, int]) -> None:
        raise NotImplementedError

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)


class Receiver(_Server):
    """A threaded HTTP/1.1 receiver; see the module docstring."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        default: Responder = Reply(),  # frozen, so one shared default is safe
        max_request_bytes: int = 8 * 1024 * 1024,
        io_timeout: float = 30.0,
        backlog: int = 128,
    ) -> None:
        super().__init__(backlog=backlog)
        self._ssl_context = ssl_context
        self._default = default
        self._queue: collections.deque[Reply] = collections.deque()
        self._requests: list[ReceivedRequest] = []
        self._connections = 0
        self._max_request_bytes = max_request_bytes
        self._io_timeout = io_timeout
        self.errors: list[BaseException] = []  # unexpected handler failures, for debugging

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context else "http"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """The URL of ``path`` here; ``host`` replaces 127.0.0.1 (a name your resolver maps)."""
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def reply_with(self, responder: Responder) -> None:
        """Answer every request not covered by :meth:`enqueue` with this reply (or callable)."""
        with self._lock:
            self._default = responder

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, then fall back to the default."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def connection_count(self) -> int:
        with self._lock:
            return self._connections

    def wait_for_requests(self, count: int, *, timeout: float = 5.0) -> list[ReceivedRequest]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self._requests)}")
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def _accepted(self, conn: socket.socket, address: tuple[str, int]) -> None:
        thread = threading.Thread(target=self._serve, args=(conn, address), name=f"receiver-{self.port}-conn")
        thread.daemon = True
        with self._lock:
            self._connections += 1
            self._open.add(conn)
            self._threads.add(thread)
            self._changed.notify_all()
        thread.start()

    def _serve(self, conn: socket.socket, address: tuple[str, int]) -> None:
        reader = None
        try:
            conn.settimeout(self._io_timeout)
            if self._ssl_context is not None:
                raw = conn
                conn = self._ssl_context.wrap_socket(raw, server_side=True)
                # wrap_socket took over the descriptor: track the TLS socket instead.
                self._untrack(raw)
                self._track(conn)
            reader = conn.makefile("rb")
            while not self._stopping.is_set():
                try:
                    request = _read_request(
                        reader, client=address, max_body=self._max_request_bytes, stopping=self._stopping
                    )
                except _BadRequest as exc:
                    conn.sendall(f"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n{exc}".encode())
                    return
                if request is None:
                    return
                reply = self._record(request)
                if not self._write(conn, reply=reply, keep_alive=_keep_alive(request)):
                    return
        except (OSError, ValueError):
            # The client hung up, reset, timed out or failed the TLS handshake: all things a
            # webhook test provokes on purpose. ValueError comes from a file closed by stop().
            return
        except Exception as exc:  # a receiver thread must never die silently
            with self._lock:
                self.errors.append(exc)
        finally:
            self._untrack(conn)
            # The reader holds a reference to the socket: close both, or the descriptor (and
            # a pending reset) would wait for the garbage collector.
            if reader is not None:
                reader.close()
            conn.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _record(self, request: ReceivedRequest) -> Reply:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            if self._queue:
                return self._queue.popleft()
            responder = self._default
        return responder if isinstance(responder, Reply) else responder(request)

    def _write(self, conn: socket.socket, *, reply: Reply, keep_alive: bool) -> bool:
        """Send ``reply``; True when the connection may serve another request."""
        if reply.delay and self._stopping.wait(reply.delay):
            return False
        # Raw bytes and a wrong Content-Length are misbehaviours that end the connection.
        keep_alive = keep_alive and reply.raw is None and reply.content_length is None
        limit = reply.close_after if reply.close_after is not None else reply.stall_after
        written = 0
        for index, piece in enumerate(_stream(reply, keep_alive=keep_alive)):
            if index and reply.trickle and self._stopping.wait(reply.trickle):
                return False
            if limit is not None and written + len(piece) >= limit:
                conn.sendall(piece[: limit - written])
                if reply.close_after is not None:
                    # SO_LINGER with a zero timeout turns the close in _serve into a TCP
                    # reset: an abrupt failure, not an orderly end of the response.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    self._stopping.wait()
                return False
            conn.sendall(piece)
            written += len(piece)
        return keep_alive


class TcpListener(_Server):
    """Accepts TCP connections on 127.0.0.1 and counts them; never reads or writes.

    By default each connection is closed as soon as it is accepted, so a client that got
    this far fails fast — and ``connection_count`` is already up to date when its call
    returns. ``hold=True`` keeps connections open (silent) until the listener stops.
    """

    def __init__(self, *, hold: bool = False, backlog: int = 16) -> None:
        super().__init__(backlog=backlog)
        self._hold = hold
        self._peers: list[tuple[str, int]] = []

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._peers)

    @property
    def peers(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._peers)

    def url(self, path: str = "/", *, scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def _accepted(self, conn: socket.socket, address: tuple[str, int]) -> None:
        with self._changed:
            self._peers.append(address)
            self._changed.notify_all()
            if self._hold:
                self._open.add(conn)
                return
        conn.close()


def forbid_outside_connections(monkeypatch: Any) -> None:
    """Fail the test if anything connects to, or resolves, a host beyond the loopback interface.

    Only ``localhost`` and strings the C library parses as addresses without DNS
    (``inet_aton``/``inet_pton``: includes ``2130706433`` and ``0177.0.0.1``) may be resolved,
    and only loopback addresses connected to. Use it in every test that exercises SSRF
    checks: if the checks are broken, the test fails instead of reaching a network.
    """
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        _assert_loopback(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _assert_loopback(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _resolvable_offline(str(host)):
            raise AssertionError(f"test tried to resolve {host!r} through DNS")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext  # trusts the throwaway CA only, verifies host names
    ca_pem: bytes = field(repr=False)


def tls_material(*, hostnames: Sequence[str] = ("receiver.test",), ip_addresses: Sequence[str] = ()) -> TlsMaterial:
    """A throwaway CA and a server certificate for ``hostnames`` (P-256, valid for a day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(tz=datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhooks test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (list(hostnames) or ["receiver"])[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:
        # load_cert_chain only reads files.
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    return TlsMaterial(server_context=server_context, client_context=client_context, ca_pem=ca_pem)


class _BadRequest(Exception):
    pass


def _read_request(
    reader: Any, *, client: tuple[str, int], max_body: int, stopping: threading.Event
) -> ReceivedRequest | None:
    line = reader.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112 lets servers ignore leading empty lines
        line = reader.readline(MAX_LINE + 1)
    if not line or stopping.is_set():
        return None
    if len(line) > MAX_LINE:
        raise _BadRequest("request line too long")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise _BadRequest("malformed request line")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    while True:
        header_line = reader.readline(MAX_LINE + 1)
        if header_line in (b"\r\n", b"\n", b""):
            break
        if len(header_line) > MAX_LINE or len(headers) >= MAX_HEADERS:
            raise _BadRequest("headers too large")
        name, colon, value = header_line.decode("latin-1").partition(":")
        if not colon:
            raise _BadRequest("malformed header")
        headers.append((name.strip(), value.strip()))
    lowered = {name.lower(): value for name, value in headers}
    if "chunked" in lowered.get("transfer-encoding", "").lower():
        body = _read_chunked(reader, max_body=max_body)
    else:
        try:
            length = int(lowered.get("content-length", "0"))
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if not 0 <= length <= max_body:
            raise _BadRequest("body too large")
        body = reader.read(length)
        if len(body) < length:
            return None  # the client went away mid-body
    return ReceivedRequest(
        method=method,
        target=target,
        version=version,
        headers=tuple(headers),
        body=body,
        client=client,
        received_at=time.monotonic(),
    )


def _read_chunked(reader: Any, *, max_body: int) -> bytes:
    body = bytearray()
    while True:
        size_line = reader.readline(MAX_LINE + 1)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while reader.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > max_body:
            raise _BadRequest("body too large")
        body += reader.read(size)
        reader.readline(MAX_LINE + 1)


def _keep_alive(request: ReceivedRequest) -> bool:
    connection = (request.header("connection") or "").lower()
    if request.version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection


def _stream(reply: Reply, *, keep_alive: bool) -> Iterator[bytes]:
    step = max(1, reply.trickle_bytes) if reply.trickle else _DEFAULT_STEP
    if reply.raw is not None:
        yield from _split(reply.raw, step=step)
        return
    try:
        reason = http.HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Unknown"
    names = {name.lower() for name, _ in reply.headers}
    lines = [f"HTTP/1.1 {reply.status} {reason}", *(f"{name}: {value}" for name, value in reply.headers)]
    if reply.chunked:
        lines.append("Transfer-Encoding: chunked")
    elif "content-length" not in names:
        real_length = len(reply.body) + reply.body_size
        lines.append(f"Content-Length: {real_length if reply.content_length is None else reply.content_length}")
    if "connection" not in names and not keep_alive:
        lines.append("Connection: close")
    yield ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for piece in _body_pieces(reply, step=step):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if reply.chunked else piece
    if reply.chunked:
        yield b"0\r\n\r\n"


def _body_pieces(reply: Reply, *, step: int) -> Iterator[bytes]:
    yield from _split(reply.body, step=step)
    remaining = reply.body_size
    while remaining > 0:
        size = min(step, remaining, len(_FILLER))
        yield _FILLER[:size]
        remaining -= size


def _split(data: bytes, *, step: int) -> Iterator[bytes]:
    for start in range(0, len(data), step):
        yield data[start : start + step]


def _shutdown(sock: socket.socket) -> None:
    # Bypass SSLSocket.shutdown, which drops its SSL object under a thread still reading.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _assert_loopback(address: Any) -> None:
    host = address[0] if isinstance(address, tuple) else address
    try:
        if ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback:
            return
    except ValueError:
        pass
    raise AssertionError(f"test tried to connect to {address!r}, which is not a loopback address")


def _resolvable_offline(host: str) -> bool:
    if host == "localhost":
        return True
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    try:
        socket.inet_aton(host)  # the C library's lenient parser, as getaddrinfo uses it
        return True
    except OSError:
        return False
