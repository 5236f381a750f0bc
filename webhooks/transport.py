"""One webhook delivery attempt over the network: POST, classify, never raise for the network.

Built on the standard library (``socket`` + ``ssl`` + ``http.client``) because the attempt
needs control that HTTP client libraries hide:

* **Connect to the checked address.** The URL's host is resolved once by
  :func:`webhooks.ssrf.resolve_checked`; we dial those addresses ourselves, send the original
  ``Host`` header, and for https verify the certificate against the URL's host name (SNI and
  hostname check use the name, the TCP connection uses the checked address). A second DNS
  lookup between check and connect would reopen DNS rebinding.
* **One deadline for the whole attempt.** Every socket operation gets the time *remaining*
  rather than a fresh timeout, so a receiver that trickles one byte at a time cannot hold a
  worker past ``timeout``. (DNS resolution is the exception: ``getaddrinfo`` cannot be
  interrupted; its time still counts against the deadline.)
* **Bounded reads.** At most ``max_response_bytes`` of body are read and logged; a larger
  body is truncated, not an error, and the rest is never read. Header size and count are
  bounded by ``http.client``. Compressed bodies are not decompressed (no decompression bombs):
  we ask for ``identity`` and log what we get.
* **No redirects.** A 3xx is a failed attempt: following it would let a public receiver
  bounce us to an internal address, and a moved endpoint should be updated by its owner.

Outcome rules (the delivery layer maps them to retry/dead/disable):

=========================  ===========  ===================================================
what happened              outcome      why
=========================  ===========  ===================================================
2xx                        success
3xx                        fail         redirects are not followed
408, 429, 5xx              retry        the receiver says "later"; 408 is a timeout on the
                                        receiver's side, transient by definition (RFC 9110)
410 Gone                   gone         the receiver asks us to stop: disable the endpoint
other 4xx                  fail         the receiver rejected the message; retrying the same
                                        bytes will not change its answer
other status (1xx, 6xx+)   fail         not a valid final answer
URL or address refused     blocked      SSRF policy (webhooks.ssrf)
DNS, connect, TLS, reset,  retry        network-level trouble is usually transient;
timeout, malformed or                   an incomplete response is not an answer, even
incomplete response                     after a 2xx status line
=========================  ===========  ===================================================
"""

from __future__ import annotations

import enum
import functools
import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from webhooks import ssrf

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 20 * 1024
USER_AGENT = "SecureBase-Webhooks/1.0"

# We set these ourselves: letting a caller (or, later, a customer's custom headers) set them
# would allow request smuggling or break our framing and connection handling.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "expect", "trailer"}
)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MAX_ERROR_MESSAGE = 500


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    FAIL = "fail"
    GONE = "gone"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """Everything an attempt log row needs. ``status`` is None when no response arrived."""

    outcome: Outcome
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""  # decoded as UTF-8 (invalid bytes replaced), at most the cap
    latency_ms: int = 0  # wall time of the whole attempt, DNS included
    error_class: str | None = None  # see ERROR_CLASSES
    error_message: str | None = None
    retry_after_seconds: float | None = None  # from Retry-After on a retry outcome, unbounded
    request_headers: dict[str, str] = field(default_factory=dict)  # exactly as sent
    remote_address: str | None = None  # the checked address we connected to
    response_truncated: bool = False


ERROR_CLASSES = frozenset(
    {
        "blocked",  # SSRF policy refused the URL or an address
        "invalid_request",  # the caller's headers cannot be sent safely
        "dns_error",
        "connection_error",  # refused, unreachable, reset or closed before a response
        "timeout",  # the attempt's deadline passed
        "tls_error",  # handshake or certificate verification failed
        "invalid_response",  # not parseable as HTTP/1.x
        "incomplete_response",  # closed or reset in the middle of the body
        "redirect",  # 3xx, not followed
    }
)


def send(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: ssrf.UrlPolicy,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    connect_to: ssrf.IPAddress | None = None,
    resolver: ssrf.Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AttemptResult:
    """POST ``body`` to ``url`` once and classify the result; never raises for network trouble.

    ``connect_to`` pins the connection to one address instead of resolving the host (it is
    still checked against ``policy``). ``resolver`` replaces :func:`socket.getaddrinfo`, and
    ``ssl_context`` the default verifying context (tests use both; production passes neither).
    """
    if not isinstance(body, bytes):
        raise TypeError("body must be the exact bytes that were signed.")
    if timeout <= 0 or max_response_bytes < 0:
        raise ValueError("timeout must be positive and max_response_bytes non-negative.")
    started = time.monotonic()
    deadline = started + timeout
    attempt = _Attempt(started=started)

    try:
        request_headers = _request_headers(headers=headers, body=body)
    except ValueError as exc:
        return attempt.result(outcome=Outcome.FAIL, error_class="invalid_request", error_message=str(exc))
    attempt.request_headers = request_headers  # logged even when the URL is then refused

    try:
        target = ssrf.validate_url(url, policy=policy)
        if connect_to is not None:
            ssrf.address_check(connect_to, policy=policy, host=target.host)
            addresses = [connect_to]
        else:
            addresses = ssrf.resolve_checked(target, policy=policy, resolver=resolver)
    except ssrf.BlockedUrl as exc:
        return attempt.result(outcome=Outcome.BLOCKED, error_class="blocked", error_message=str(exc))
    except ssrf.ResolutionError as exc:
        return attempt.result(outcome=Outcome.RETRY, error_class="dns_error", error_message=str(exc))

    request_headers = {"Host": target.host_header, **request_headers}
    attempt.request_headers = request_headers
    sock: socket.socket | None = None
    # A connection kept from an earlier attempt to this very checked address is used first; if
    # the receiver closed it meanwhile (nothing of a response arrived), one fresh connection.
    pool_key = (target.scheme, target.host, target.port, ssl_context is None)

    def exchange(sock: socket.socket) -> tuple[AttemptResult, bool]:
        return _exchange(
            sock=_DeadlineSocket(sock=sock, deadline=deadline),
            target=target,
            headers=request_headers,
            body=body,
            max_response_bytes=max_response_bytes,
            attempt=attempt,
        )

    idle = _POOL.take(pool_key, addresses=addresses)
    try:
        if idle is not None:
            sock, ip = idle
            attempt.remote_address = str(ip)
            try:
                result, reusable = exchange(sock)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                sock.close()
                sock = None
            else:
                if reusable:
                    _POOL.put(pool_key, sock, ip)
                    sock = None
                return result
        sock = _connect(addresses=addresses, port=target.port, deadline=deadline, attempt=attempt)
        if target.scheme == "https":
            attempt.stage = "TLS handshake"
            sock = _tls_wrap(
                sock=sock, host=target.host, context=ssl_context or _default_ssl_context(), deadline=deadline
            )
        result, reusable = exchange(sock)
        if reusable and attempt.remote_address is not None:
            _POOL.put(pool_key, sock, ipaddress.ip_address(attempt.remote_address))
            sock = None
        return result
    except TimeoutError:
        return attempt.result(
            outcome=Outcome.RETRY,
            error_class="timeout",
            error_message=f"No answer within {timeout:g} s ({attempt.stage}).",
        )
    except ssl.SSLCertVerificationError as exc:
        return attempt.result(
            outcome=Outcome.RETRY, error_class="tls_error", error_message=exc.verify_message or str(exc)
        )
    except ssl.SSLError as exc:
        return attempt.result(outcome=Outcome.RETRY, error_class="tls_error", error_message=str(exc))
    except http.client.RemoteDisconnected:
        return attempt.result(
            outcome=Outcome.RETRY, error_class="connection_error", error_message="Connection closed before a response."
        )
    except OSError as exc:
        return attempt.result(
            outcome=Outcome.RETRY, error_class="connection_error", error_message=f"{attempt.stage}: {exc}"
        )
    except http.client.HTTPException as exc:
        return attempt.result(
            outcome=Outcome.RETRY,
            error_class="invalid_response",
            error_message=f"Malformed HTTP response: {type(exc).__name__} {exc}",
        )
    finally:
        if sock is not None:
            sock.close()


def retry_after_parse(*, value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date), or None.

    Dates in the past mean "now" (0). Unparseable values are ignored rather than guessed at.
    Bounding the result is the scheduler's job (``webhooks.schedule``).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(tz=UTC)
    return max(0.0, (when - current).total_seconds())


def outcome_for_status(*, status: int) -> Outcome:
    """The outcome a complete response with ``status`` gets (see the module docstring)."""
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status in (408, 429) or 500 <= status < 600:
        return Outcome.RETRY
    if status == 410:
        return Outcome.GONE
    return Outcome.FAIL


@dataclass(slots=True)
class _Attempt:
    """What we learned so far, so any exit path can build a complete result."""

    started: float
    stage: str = "resolving"
    request_headers: dict[str, str] = field(default_factory=dict)
    remote_address: str | None = None

    def result(self, *, outcome: Outcome, **fields: object) -> AttemptResult:
        message = fields.get("error_message")
        if isinstance(message, str) and len(message) > _MAX_ERROR_MESSAGE:
            fields["error_message"] = message[:_MAX_ERROR_MESSAGE] + "…"
        return AttemptResult(
            outcome=outcome,
            latency_ms=round((time.monotonic() - self.started) * 1000),
            request_headers=self.request_headers,
            remote_address=self.remote_address,
            **fields,  # type: ignore[arg-type]
        )


def _request_headers(*, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"Invalid header name {name!r}.")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"The {name} header is set by the transport.")
        if not isinstance(value, str) or _HEADER_VALUE_FORBIDDEN.search(value):
            raise ValueError(f"Invalid value for header {name}.")
        try:
            value.encode("latin-1")  # what http.client writes on the wire
        except UnicodeEncodeError:
            raise ValueError(f"The value of header {name} is not Latin-1.") from None
        checked[name] = value
    lowered = {name.lower() for name in checked}
    if "user-agent" not in lowered:
        checked["User-Agent"] = USER_AGENT
    if "accept-encoding" not in lowered:
        checked["Accept-Encoding"] = "identity"
    checked["Content-Length"] = str(len(body))
    # HTTP/1.1 connections stay open by default: a connection whose response was read to its
    # end is kept for the next attempt to the same address (see _ConnectionPool).
    return checked


def _connect(*, addresses: list[ssrf.IPAddress], port: int, deadline: float, attempt: _Attempt) -> socket.socket:
    last_error: OSError | None = None
    for ip in addresses:
        attempt.stage = f"connecting to {ip}"
        attempt.remote_address = str(ip)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            # A numeric address: the kernel connects to exactly what we checked, no lookup.
            sock.connect((str(ip), port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests are written whole
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    assert last_error is not None  # addresses is never empty (resolve_checked guarantees it)
    raise last_error


def _tls_wrap(*, sock: socket.socket, host: str, context: ssl.SSLContext, deadline: float) -> ssl.SSLSocket:
    # server_hostname is the URL's name (SNI and certificate check), while the socket is
    # already connected to the checked address: TLS verifies the name we were asked for.
    tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        tls.settimeout(_remaining(deadline))
        tls.do_handshake()  # the ssl module bounds the whole handshake by the timeout
    except BaseException:
        tls.close()  # wrap_socket took over the file descriptor from sock
        raise
    return tls


def _exchange(
    *,
    sock: _DeadlineSocket,
    target: ssrf.ParsedTarget,
    headers: dict[str, str],
    body: bytes,
    max_response_bytes: int,
    attempt: _Attempt,
) -> tuple[AttemptResult, bool]:
    """The request and its response; True when the connection may carry the next attempt."""
    connection = _PinnedConnection(sock=sock, target=target)
    attempt.stage = "sending the request"
    connection.putrequest("POST", target.request_target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    try:
        connection.endheaders(message_body=body)
    except (BrokenPipeError, ConnectionResetError):
        # A receiver may answer (413, 401) and close before reading the whole body; its
        # answer is still more useful than "broken pipe". If there is none, report the error.
        attempt.stage = "sending the request (receiver closed the connection)"
    attempt.stage = "waiting for the response"
    response = connection.getresponse()

    status = response.status
    response_headers: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        response_headers[key] = f"{response_headers[key]}, {value}" if key in response_headers else value

    attempt.stage = "reading the response body"
    chunks: list[bytes] = []
    received = 0
    incomplete: tuple[str, str] | None = None
    try:
        # One byte past the cap tells "exactly the cap" from "more than the cap"; whatever
        # follows it is deliberately never read.
        ended = False
        while not ended and received <= max_response_bytes:
            # read1: whatever has arrived, so a body cut short by the deadline is still logged.
            data = response.read1(max_response_bytes + 1 - received)
            ended = not data
            chunks.append(data)
            received += len(data)
        if ended and response.length:
            # http.client's read1 returns short at EOF instead of raising when fewer
            # bytes than Content-Length arrived; what is left of the length tells.
            raise http.client.IncompleteRead(b"".join(chunks), response.length)
    except TimeoutError:
        incomplete = ("timeout", "The response body did not arrive before the deadline.")
    except (http.client.IncompleteRead, OSError) as exc:
        incomplete = ("incomplete_response", f"The connection ended in the middle of the response body ({exc!r}).")
    raw_body = b"".join(chunks)
    truncated = len(raw_body) > max_response_bytes
    fields: dict[str, object] = {
        "status": status,
        "response_headers": response_headers,
        "response_body": raw_body[:max_response_bytes].decode("utf-8", "replace"),
        "response_truncated": truncated,
    }

    if incomplete is not None:
        error_class, message = incomplete
        return attempt.result(outcome=Outcome.RETRY, error_class=error_class, error_message=message, **fields), False

    # Reusable only when the whole response was read and the receiver did not ask to close.
    reusable = ended and not truncated and not response.will_close
    outcome = outcome_for_status(status=status)
    if 300 <= status < 400:
        location = response_headers.get("location", "(no Location header)")
        return attempt.result(
            outcome=outcome,
            error_class="redirect",
            error_message=f"Redirect ({status}) to {location} not followed; update the endpoint URL.",
            **fields,
        ), reusable
    if outcome is Outcome.RETRY:
        fields["retry_after_seconds"] = retry_after_parse(value=response_headers.get("retry-after"))
    return attempt.result(outcome=outcome, **fields), reusable


class _ConnectionPool:
    """Idle connections of this process, per (scheme, host, port) and checked address.

    Only a connection whose response was read to its end is kept, for at most
    ``IDLE_SECONDS`` (below the 5 s keep-alive timeout of common servers, so we rarely write
    to a connection the receiver is closing), and it is handed out only for an address that
    passed the SSRF checks of the attempt at hand. Bounded per key and in total.
    """

    IDLE_SECONDS = 4.0
    PER_KEY = 8
    TOTAL = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[tuple[socket.socket, ssrf.IPAddress, float]]] = {}
        self._count = 0

    def take(self, key: tuple, *, addresses: list[ssrf.IPAddress]) -> tuple[socket.socket, ssrf.IPAddress] | None:
        now = time.monotonic()
        stale: list[socket.socket] = []
        found = None
        with self._lock:
            entries = self._idle.get(key, [])
            while entries:
                sock, ip, since = entries.pop()
                self._count -= 1
                if now - since < self.IDLE_SECONDS and ip in addresses:
                    found = (sock, ip)
                    break
                stale.append(sock)
        for sock in stale:
            sock.close()
        return found

    def put(self, key: tuple, sock: socket.socket, ip: ssrf.IPAddress) -> None:
        with self._lock:
            entries = self._idle.setdefault(key, [])
            if len(entries) < self.PER_KEY and self._count < self.TOTAL:
                entries.append((sock, ip, time.monotonic()))
                self._count += 1
                return
        sock.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle, self._count = self._idle, {}, 0
        for entries in idle.values():
            for sock, _ip, _since in entries:
                sock.close()


_POOL = _ConnectionPool()


class _PinnedConnection(http.client.HTTPConnection):
    """http.client's request writing and response parsing on a socket we connected ourselves."""

    def __init__(self, *, sock: _DeadlineSocket, target: ssrf.ParsedTarget) -> None:
        super().__init__(target.host, target.port)
        self.sock = sock  # type: ignore[assignment]

    def connect(self) -> None:
        # http.client would resolve the name again; the connection is made only by send().
        raise http.client.NotConnected("the transport connects to checked addresses itself")


class _DeadlineSocket:
    """The socket surface http.client uses, with every operation bounded by one deadline."""

    def __init__(self, *, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        # socket.sendall's own timeout restarts on every SSL record; loop to keep one deadline.
        view = memoryview(data)
        while view:
            self._sock.settimeout(_remaining(self._deadline))
            sent = self._sock.send(view)
            view = view[sent:]

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(sock=self._sock, deadline=self._deadline))

    def close(self) -> None:
        # http.client closes the connection as soon as headers say "Connection: close", before
        # the body is read; send() owns the real socket and closes it when it is done.
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, *, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline exceeded")
    return remaining


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Built once per process (loading the CA store is slow); SSLContext is safe to share
    # across threads. Certificate and hostname verification are on, TLS 1.2 is the minimum.
    return ssl.create_default_context()
