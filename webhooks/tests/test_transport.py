"""One attempt against real sockets on 127.0.0.1: well-behaved, misbehaving and forbidden receivers."""

import ipaddress
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook

from webhooks import signing, ssrf, transport
from webhooks.tests.receiver import Receiver, Reply, TcpListener, forbid_outside_connections, tls_material
from webhooks.transport import Outcome

DEV = ssrf.UrlPolicy(allow_http=True, allow_loopback=True)  # local development and tests
HTTP_ONLY = ssrf.UrlPolicy(allow_http=True)  # loopback refused, as in production
BODY = b'{"type":"ticket.created","data":{"ticket":"T-42"}}'
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch):
    forbid_outside_connections(monkeypatch)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def listener():
    with TcpListener() as running:
        yield running


def resolver_for(answers: dict[str, list[str]], calls: list[str] | None = None):
    """A getaddrinfo stand-in: each name resolves to the given addresses (any port)."""

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    return resolve


def post(url: str, **kwargs) -> transport.AttemptResult:
    options = {"body": BODY, "headers": {"Content-Type": "application/json"}, "policy": DEV, "timeout": 5.0}
    return transport.send(url=url, **{**options, **kwargs})


# --- a delivery that works -------------------------------------------------------------------


def test_a_signed_delivery_arrives_intact_and_verifies_with_standardwebhooks_during_rotation(receiver):
    old, new = signing.secret_generate(), signing.secret_generate()
    msg_id = signing.message_id_new()
    headers = {
        "Content-Type": "application/json",
        **signing.headers_build(msg_id=msg_id, timestamp=int(time.time()), body=BODY, secrets=[new, old]),
    }

    result = post(receiver.url("/hooks/in?source=securebase"), headers=headers)

    assert result.outcome is Outcome.SUCCESS
    assert (result.status, result.error_class, result.remote_address) == (200, None, "127.0.0.1")
    [request] = receiver.requests
    assert (request.method, request.target, request.body) == ("POST", "/hooks/in?source=securebase", BODY)
    assert request.header("host") == f"127.0.0.1:{receiver.port}"
    assert request.header("content-length") == str(len(BODY))
    assert request.header("connection") is None  # HTTP/1.1: the connection may be kept for the next attempt
    assert request.header("webhook-id") == msg_id
    assert dict(request.headers) == result.request_headers  # the log shows exactly what was sent
    assert Webhook(old).verify(request.body, request.header_map) == {
        "type": "ticket.created",
        "data": {"ticket": "T-42"},
    }
    Webhook(new).verify(request.body, request.header_map)


def test_retries_keep_the_message_id_and_carry_a_fresh_timestamp(receiver):
    secret = signing.secret_generate()
    msg_id = signing.message_id_new()
    receiver.enqueue(Reply(status=503), Reply(status=200))
    outcomes = []
    for timestamp in (int(time.time()) - 60, int(time.time())):
        headers = signing.headers_build(msg_id=msg_id, timestamp=timestamp, body=BODY, secrets=[secret])
        outcomes.append(post(receiver.url("/"), headers=headers).outcome)

    first, second = receiver.requests
    assert outcomes == [Outcome.RETRY, Outcome.SUCCESS]
    assert first.header("webhook-id") == second.header("webhook-id") == msg_id
    assert first.header("webhook-timestamp") != second.header("webhook-timestamp")
    for request in (first, second):
        Webhook(secret).verify(request.body, request.header_map)


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(receiver, monkeypatch):
    # The resolver answers loopback the first time and a private address afterwards (DNS
    # rebinding). The transport must resolve once, check, and dial that address itself.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def rebinding(host, port, **kwargs):
        calls.append(host)
        return resolver_for({host: next(answers)})(host, port)

    def no_more_lookups(*args, **kwargs):
        raise AssertionError("the transport looked the name up again")

    monkeypatch.setattr(socket, "getaddrinfo", no_more_lookups)
    monkeypatch.setattr(socket, "create_connection", no_more_lookups)

    result = post(receiver.url("/h", host="hooks.example.com"), resolver=rebinding)

    assert result.outcome is Outcome.SUCCESS
    assert calls == ["hooks.example.com"]
    assert receiver.requests[0].header("host") == f"hooks.example.com:{receiver.port}"


def test_connect_to_pins_the_address_and_is_still_checked(receiver, listener):
    def must_not_resolve(*args, **kwargs):
        raise AssertionError("connect_to must replace resolution")

    pinned = post(receiver.url("/", host="hooks.example.com"), connect_to=LOOPBACK, resolver=must_not_resolve)
    refused = post(
        listener.url(host="hooks.example.com"),
        connect_to=ipaddress.ip_address("10.0.0.1"),
        resolver=must_not_resolve,
    )
    not_loopback_now = post(listener.url(), connect_to=LOOPBACK, policy=HTTP_ONLY)

    assert pinned.outcome is Outcome.SUCCESS
    assert receiver.requests[0].header("host") == f"hooks.example.com:{receiver.port}"
    assert (refused.outcome, refused.error_class) == (Outcome.BLOCKED, "blocked")
    assert not_loopback_now.outcome is Outcome.BLOCKED
    assert listener.connection_count == 0


def test_response_status_headers_and_body_are_captured(receiver):
    receiver.reply_with(
        Reply(
            status=202,
            headers=[("X-Request-Id", "r-1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            body=b"accepted \xff\xfe",
        )
    )

    result = post(receiver.url("/"))

    assert (result.outcome, result.status) == (Outcome.SUCCESS, 202)
    assert result.response_headers["x-request-id"] == "r-1"
    assert result.response_headers["set-cookie"] == "a=1, b=2"
    assert result.response_body == "accepted \ufffd\ufffd"  # invalid UTF-8 is replaced, not fatal
    assert result.response_truncated is False
    assert 0 <= result.latency_ms < 2000


# --- what each answer means --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (201, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (299, Outcome.SUCCESS),
        (400, Outcome.FAIL),
        (401, Outcome.FAIL),
        (403, Outcome.FAIL),
        (404, Outcome.FAIL),
        (409, Outcome.FAIL),
        (413, Outcome.FAIL),
        (418, Outcome.FAIL),
        (422, Outcome.FAIL),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (410, Outcome.GONE),
        (500, Outcome.RETRY),
        (501, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (599, Outcome.RETRY),
        (101, Outcome.FAIL),
        (600, Outcome.FAIL),
    ],
)
def test_status_codes_map_to_outcomes(receiver, status, outcome):
    receiver.reply_with(Reply(status=status))

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (outcome, status, None)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_fail_and_are_never_followed(receiver, status):
    with Receiver() as elsewhere:
        receiver.reply_with(Reply.redirect(elsewhere.url("/stolen"), status=status))

        result = post(receiver.url("/"))

        assert (result.outcome, result.status, result.error_class) == (Outcome.FAIL, status, "redirect")
        assert elsewhere.url("/stolen") in (result.error_message or "")
        assert len(receiver.requests) == 1
        assert elsewhere.connection_count == 0


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", 120.0),
        (503, "0", 0.0),
        (503, "soon", None),
        (503, "-5", None),
        (500, None, None),
        (200, "120", None),  # only a retry outcome carries it
        (400, "120", None),
    ],
)
def test_retry_after_in_seconds_is_reported_on_retries(receiver, status, retry_after, expected):
    receiver.reply_with(Reply(status=status, headers={"Retry-After": retry_after} if retry_after else {}))

    assert post(receiver.url("/")).retry_after_seconds == expected


def test_retry_after_as_an_http_date_is_converted_to_seconds(receiver):
    when = datetime.now(tz=UTC) + timedelta(seconds=90)
    receiver.reply_with(Reply(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)}))

    result = post(receiver.url("/"))

    assert result.outcome is Outcome.RETRY
    assert 85 <= (result.retry_after_seconds or 0) <= 90


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42.0),
        ("  7 ", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: now
        ("1.5", None),
        ("-1", None),
        ("tomorrow", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_parse(value, expected):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)

    assert transport.retry_after_parse(value=value, now=now) == expected


# --- receivers that misbehave ----------------------------------------------------------------


def test_a_receiver_that_never_answers_times_out_on_time(receiver):
    receiver.reply_with(Reply.hanging())
    started = time.monotonic()

    result = post(receiver.url("/"), timeout=0.3)

    elapsed = time.monotonic() - started
    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, None, "timeout")
    assert 0.3 <= elapsed < 1.0
    assert len(receiver.requests) == 1


def test_trickled_response_headers_cannot_hold_the_worker_past_the_deadline(receiver):
    # One byte every 50 ms: each read succeeds well within any per-read timeout, so only a
    # deadline for the whole attempt stops it.
    receiver.reply_with(
        Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: aaaaaaaaaaaa\r\n\r\nok", trickle=0.05)
    )
    started = time.monotonic()

    result = post(receiver.url("/"), timeout=0.4)

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "timeout")
    assert time.monotonic() - started < 1.0


def test_a_trickled_body_is_cut_at_the_deadline_and_logged_so_far(receiver):
    receiver.reply_with(Reply(body=b"y" * 200, trickle=0.02, trickle_bytes=1))
    started = time.monotonic()

    result = post(receiver.url("/"), timeout=0.5)

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, 200, "timeout")
    assert time.monotonic() - started < 1.2
    assert 0 < len(result.response_body) < 200
    assert set(result.response_body) == {"y"}


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_body_is_truncated_at_the_cap_without_reading_the_rest(receiver, chunked):
    receiver.reply_with(Reply.huge(200 * 1024 * 1024, chunked=chunked))  # 200 MB: never read whole
    started = time.monotonic()

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.SUCCESS, 200, None)
    assert len(result.response_body) == 20 * 1024
    assert result.response_truncated is True
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(("size", "truncated"), [(999, False), (1000, False), (1001, True)])
def test_the_cap_is_exact(receiver, size, truncated):
    receiver.reply_with(Reply(body=b"z" * size))

    result = post(receiver.url("/"), max_response_bytes=1000)

    assert (len(result.response_body), result.response_truncated) == (min(size, 1000), truncated)


def test_a_reset_before_any_response_is_a_connection_error(receiver):
    receiver.reply_with(Reply(close_after=0))

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, None, "connection_error")


def test_a_reset_in_the_middle_of_the_body_is_an_incomplete_response(receiver):
    receiver.reply_with(Reply(body=b"b" * 5000, close_after=1000))

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, 200, "incomplete_response")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=b"short", content_length=100), id="content-length-longer-than-body"),
        pytest.param(
            Reply(raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nonly a little"), id="chunk-cut-short"
        ),
    ],
)
def test_a_body_that_ends_early_is_an_incomplete_response_even_after_a_2xx(receiver, reply):
    receiver.reply_with(reply)

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, 200, "incomplete_response")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-Many: header\r\n" * 150 + b"\r\n", id="too-many-headers"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", id="header-line-too-long"),
        pytest.param(b"HTTP/1.1 2OO OK\r\n\r\n", id="bad-status"),
    ],
)
def test_malformed_responses_are_invalid_responses(receiver, raw):
    receiver.reply_with(Reply(raw=raw))

    result = post(receiver.url("/"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, None, "invalid_response")


def test_a_refused_connection_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    result = post(f"http://127.0.0.1:{port}/")

    assert (result.outcome, result.error_class, result.remote_address) == (
        Outcome.RETRY,
        "connection_error",
        "127.0.0.1",
    )


def test_an_unresolvable_name_is_a_dns_error_and_retried():
    result = post("http://nxdomain.example.com/", resolver=resolver_for({}))

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "dns_error")
    assert "nxdomain.example.com" in (result.error_message or "")


def test_the_worker_stays_healthy_after_many_failures():
    replies = [
        Reply.hanging(),
        Reply(close_after=0),
        Reply(body=b"b" * 5000, close_after=100),
        Reply(raw=b"garbage\r\n\r\n"),
        Reply.huge(50 * 1024 * 1024),
        Reply(body=b"short", content_length=10),
    ]
    fds_before = len(os.listdir("/proc/self/fd"))
    with Receiver() as receiver:
        outcomes = set()
        for _ in range(3):
            receiver.enqueue(*replies)
            outcomes.update(post(receiver.url("/"), timeout=0.2).outcome for _ in replies)
        receiver.enqueue(Reply(status=200))

        result = post(receiver.url("/"))

        assert receiver.errors == []
    assert outcomes == {Outcome.RETRY, Outcome.SUCCESS}  # the huge body succeeds, the rest retry
    assert result.outcome is Outcome.SUCCESS
    # Measured once the receiver (which holds the server ends) has stopped: every attempt
    # closed its own socket, whatever went wrong; only the last, complete one was kept for reuse.
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1
    transport._POOL.clear()
    assert len(os.listdir("/proc/self/fd")) <= fds_before


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def tls():
    return tls_material(hostnames=["receiver.test"])


@pytest.fixture
def tls_receiver(tls):
    with Receiver(ssl_context=tls.server_context) as running:
        yield running


def test_https_connects_to_the_checked_address_with_sni_and_verifies_the_host_name(tls, tls_receiver):
    server_names = []
    tls.server_context.sni_callback = lambda ssl_socket, name, context: server_names.append(name)
    url = tls_receiver.url("/secure", host="receiver.test")

    result = post(url, resolver=resolver_for({"receiver.test": ["127.0.0.1"]}), ssl_context=tls.client_context)

    assert (result.outcome, result.status, result.error_class) == (Outcome.SUCCESS, 200, None)
    assert server_names == ["receiver.test"]
    assert tls_receiver.requests[0].header("host") == f"receiver.test:{tls_receiver.port}"
    assert tls_receiver.requests[0].body == BODY


@pytest.mark.parametrize(
    ("host", "use_test_ca", "message"),
    [
        ("other.test", True, "mismatch"),  # the certificate is for receiver.test
        ("127.0.0.1", True, "mismatch"),  # an IP literal is checked against IP SANs (none here)
        ("receiver.test", False, "certificate"),  # the default context does not trust the test CA
    ],
)
def test_https_refuses_a_certificate_that_does_not_verify(tls, tls_receiver, host, use_test_ca, message):
    resolver = resolver_for({"other.test": ["127.0.0.1"], "receiver.test": ["127.0.0.1"]})

    result = post(
        tls_receiver.url("/", host=host),
        resolver=resolver,
        ssl_context=tls.client_context if use_test_ca else None,
    )

    assert (result.outcome, result.status, result.error_class) == (Outcome.RETRY, None, "tls_error")
    assert message in (result.error_message or "").lower()
    assert tls_receiver.requests == []  # nothing was sent over an unverified connection


def test_a_tls_handshake_that_never_completes_times_out(listener):
    with TcpListener(hold=True) as silent:
        started = time.monotonic()
        result = post(silent.url(scheme="https"), timeout=0.3)

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "timeout")
    assert "TLS" in (result.error_message or "")
    assert time.monotonic() - started < 1.0


# --- SSRF: a live listener proves that blocked URLs never connect -----------------------------

REFUSED_IN_PRODUCTION = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://[::1]:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://169.254.169.254:{port}/latest/meta-data/",
    "http://metadata.google.internal:{port}/computeMetadata/v1/",
    "http://[64:ff9b::a00:1]:{port}/",
    "http://[2002:a00:1::]:{port}/",
    "http://10.0.0.1:{port}/",
    "http://rebind.example.com:{port}/",  # resolves to 127.0.0.1
    "http://internal.example.com:{port}/",  # resolves to 10.0.0.5
    "http://mixed.example.com:{port}/",  # resolves to a public address and 127.0.0.1
]

# Allowing plain loopback (development) must not allow these.
REFUSED_EVEN_IN_DEVELOPMENT = [
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://169.254.169.254:{port}/",
    "http://internal.example.com:{port}/",
    "http://dev-and-private.example.com:{port}/",  # 127.0.0.1 and 10.0.0.5
    "ftp://127.0.0.1:{port}/",
    "http://user@127.0.0.1:{port}/",
]

SSRF_NAMES = resolver_for(
    {
        "rebind.example.com": ["127.0.0.1"],
        "internal.example.com": ["10.0.0.5"],
        "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
        "dev-and-private.example.com": ["127.0.0.1", "10.0.0.5"],
    }
)


@pytest.mark.parametrize("template", REFUSED_IN_PRODUCTION)
def test_blocked_urls_open_no_connection(listener, template):
    result = post(template.format(port=listener.port), policy=HTTP_ONLY, resolver=SSRF_NAMES)

    assert (result.outcome, result.status, result.error_class) == (Outcome.BLOCKED, None, "blocked")
    host = template.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
    assert host in (result.error_message or "")  # the message says which host was refused
    assert listener.connection_count == 0


@pytest.mark.parametrize("template", REFUSED_EVEN_IN_DEVELOPMENT)
def test_blocked_urls_open_no_connection_even_when_loopback_is_allowed(listener, template):
    result = post(template.format(port=listener.port), policy=DEV, resolver=SSRF_NAMES)

    assert (result.outcome, result.error_class) == (Outcome.BLOCKED, "blocked")
    assert listener.connection_count == 0


def test_the_listener_does_see_connections_that_are_allowed(listener):
    # The control for the two tests above: the same listener, a URL the policy allows.
    result = post(listener.url(), policy=DEV)

    assert result.outcome is Outcome.RETRY  # the listener hangs up without answering
    assert listener.connection_count == 1


def test_http_is_blocked_unless_allowed(listener):
    result = post(listener.url(), policy=ssrf.UrlPolicy(allow_loopback=True))

    assert (result.outcome, result.error_class) == (Outcome.BLOCKED, "blocked")
    assert "https" in (result.error_message or "")
    assert listener.connection_count == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "internal.example.com"},
        {"Content-Length": "0"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "keep-alive"},
        {"X-Note": "a\r\nX-Injected: 1"},
        {"X-Note": "caf\u00e9 \u2603"},
        {"Bad Name": "x"},
    ],
)
def test_headers_the_transport_cannot_send_safely_fail_without_connecting(listener, headers):
    result = post(listener.url(), headers=headers)

    assert (result.outcome, result.error_class) == (Outcome.FAIL, "invalid_request")
    assert listener.connection_count == 0


# --- connections kept between attempts ------------------------------------------------------------


@pytest.fixture
def empty_pool():
    transport._POOL.clear()  # nothing kept from an earlier test (a receiver may reuse a port)
    yield
    transport._POOL.clear()


def _kept(receiver) -> list:
    key = ("http", "127.0.0.1", receiver.port, True)
    return [sock for sock, _ip, _since in transport._POOL._idle.get(key, [])]


def test_a_complete_response_leaves_the_connection_for_the_next_attempt(receiver, empty_pool):
    first, second = post(receiver.url("/a")), post(receiver.url("/b"))

    assert first.outcome is second.outcome is Outcome.SUCCESS
    one, two = receiver.requests
    assert one.client == two.client  # the same TCP connection carried both
    assert len(_kept(receiver)) == 1


def test_a_kept_connection_the_receiver_has_closed_is_replaced_without_a_failed_attempt(receiver, empty_pool):
    assert post(receiver.url("/a")).outcome is Outcome.SUCCESS
    [kept] = _kept(receiver)
    kept.shutdown(socket.SHUT_RDWR)  # as if the receiver had dropped the idle connection

    result = post(receiver.url("/b"))

    assert (result.outcome, result.status, result.error_class) == (Outcome.SUCCESS, 200, None)
    one, two = receiver.requests
    assert two.path == "/b" and one.client != two.client


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(headers={"Connection": "close"}), id="receiver-asks-to-close"),
        pytest.param(Reply(body=b"b" * (transport.DEFAULT_MAX_RESPONSE_BYTES + 10)), id="body-past-the-cap"),
        pytest.param(Reply(status=503), id="error-status-kept-too"),
    ],
)
def test_only_connections_whose_response_was_read_to_the_end_and_not_closing_are_kept(receiver, reply, empty_pool):
    receiver.reply_with(reply)

    post(receiver.url("/"))

    expected = 1 if reply.status == 503 else 0
    assert len(_kept(receiver)) == expected
