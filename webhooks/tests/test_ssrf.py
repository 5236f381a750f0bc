"""URL validation and address checks: what the SSRF policy refuses, allows and how it says so.

Nothing here opens a connection: resolution goes through fake resolvers (or the C library's
offline parsing of ``localhost`` and numeric hosts), and ``forbid_outside_connections`` fails
any test that would reach beyond the loopback interface. Proof that blocked URLs open no
connection at all, against a live listener, is in test_transport.py.
"""

import ipaddress
import socket

import pytest

from webhooks import ssrf
from webhooks.tests.receiver import forbid_outside_connections

PUBLIC = ssrf.UrlPolicy()
DEV = ssrf.UrlPolicy(allow_http=True, allow_loopback=True)
HTTP_ONLY = ssrf.UrlPolicy(allow_http=True)


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch):
    forbid_outside_connections(monkeypatch)


class FakeResolver:
    """getaddrinfo's shape, answering from a table and counting calls."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos = []
        for address in self.answers[host]:
            ip = ipaddress.ip_address(address)
            if ip.version == 4:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            else:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        return infos


# --- the URL's text --------------------------------------------------------------------------


def test_a_public_https_url_is_parsed_into_what_a_connection_needs():
    target = ssrf.validate_url("https://Hooks.Example.com/in/bound?x=1&y=%20#frag", policy=PUBLIC)

    assert target == ssrf.ParsedTarget(
        scheme="https", host="hooks.example.com", port=443, request_target="/in/bound?x=1&y=%20", ip=None
    )
    assert target.host_header == "hooks.example.com"
    assert target.url == "https://hooks.example.com/in/bound?x=1&y=%20"


@pytest.mark.parametrize(
    ("url", "host", "port", "host_header", "request_target"),
    [
        ("https://example.com", "example.com", 443, "example.com", "/"),
        ("https://example.com:443/", "example.com", 443, "example.com", "/"),
        ("https://example.com:8443/h", "example.com", 8443, "example.com:8443", "/h"),
        ("https://example.com./h", "example.com", 443, "example.com", "/h"),
        ("https://bücher.example/ä?q=ü", "xn--bcher-kva.example", 443, "xn--bcher-kva.example", "/%C3%A4?q=%C3%BC"),
        ("https://93.184.216.34/", "93.184.216.34", 443, "93.184.216.34", "/"),
        ("https://[2606:2800:220:1::]:8443/", "2606:2800:220:1::", 8443, "[2606:2800:220:1::]:8443", "/"),
    ],
)
def test_urls_are_normalised(url, host, port, host_header, request_target):
    target = ssrf.validate_url(url, policy=PUBLIC)

    assert (target.host, target.port, target.host_header, target.request_target) == (
        host,
        port,
        host_header,
        request_target,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/", "https"),
        ("ftp://example.com/", "https"),
        ("file:///etc/passwd", "https"),
        ("gopher://example.com:6379/_FLUSHALL", "https"),
        ("javascript:alert(1)", "https"),
        ("example.com/hook", "https"),
        ("https://user@example.com/", "user name or password"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://@example.com/", "user name or password"),
        ("https://example.com@169.254.169.254/", "user name or password"),
        ("https://example.com\\@evil.com/", "backslash"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\r\nX-Injected: 1", "control"),
        ("https://exam\tple.com/", "control"),
        ("https://example.com:0/", "port"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com:80a/", "not a valid URL"),
        ("https:///path-only", "no host"),
        ("https://[fe80::1%25eth0]/", "%"),
        ("https://%31%32%37.0.0.1/", "%"),
        ("https://[127.0.0.1]/", "not a valid"),
        ("https://exa_mple..com/", "not a valid host name"),
        ("https://" + "a" * 64 + ".example.com/", "not a valid host name"),
        ("https://example.com/" + "a" * 2048, "longer than"),
        ("", "Enter a URL"),
    ],
)
def test_malformed_or_disguised_urls_are_refused_with_a_clear_message(url, message):
    with pytest.raises(ssrf.BlockedUrl) as excinfo:
        ssrf.validate_url(url, policy=PUBLIC)

    assert message.lower() in str(excinfo.value).lower()


def test_http_is_allowed_only_when_the_policy_says_so():
    with pytest.raises(ssrf.BlockedUrl, match="https"):
        ssrf.validate_url("http://example.com/", policy=PUBLIC)

    assert ssrf.validate_url("http://example.com/", policy=HTTP_ONLY).port == 80


# --- literal addresses and their encodings ---------------------------------------------------

# Every spelling of an address we must not call. The policy below even allows plain loopback:
# none of these may sneak through it.
DISGUISED_LOOPBACK = [
    "http://2130706433/",  # decimal
    "http://0x7f000001/",  # hex
    "http://0X7F000001/",
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",
    "http://127.1/",  # short forms
    "http://127.0.1/",
    "http://0/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # deprecated IPv4-compatible
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://[2002:7f00:1::]/",  # 6to4
]


@pytest.mark.parametrize("url", DISGUISED_LOOPBACK)
def test_disguised_loopback_is_refused_even_when_loopback_is_allowed(url):
    with pytest.raises(ssrf.BlockedUrl):
        ssrf.validate_url(url, policy=DEV)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1./",
        "http://127.8.9.10:8080/",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]:8000/",
        "http://[::]/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://10.255.255.255/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://100.64.0.1/",
        "http://100.100.100.200/",
        "http://192.0.0.192/",
        "http://198.18.0.1/",
        "http://224.0.0.1/",
        "http://239.255.255.250/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://192.0.2.1/",
        "http://[fd00:ec2::254]/",
        "http://[fc00::1]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::808:808]/",  # local-use NAT64
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[2001:db8::1]/",
        "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/",  # fullwidth: IDNA maps it to 127.0.0.1
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
    ],
)
def test_non_public_addresses_are_refused_without_the_loopback_flag(url):
    with pytest.raises(ssrf.BlockedUrl) as excinfo:
        ssrf.validate_url(url, policy=HTTP_ONLY)

    assert "public" in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.0.10/",
        "http://169.254.169.254/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
    ],
)
def test_the_loopback_flag_never_opens_private_link_local_or_metadata_addresses(url):
    with pytest.raises(ssrf.BlockedUrl):
        ssrf.validate_url(url, policy=DEV)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://127.8.9.10/", "http://[::1]:8000/", "http://localhost:8000/"]
)
def test_the_loopback_flag_allows_plain_loopback(url):
    target = ssrf.validate_url(url, policy=DEV)

    with pytest.raises(ssrf.BlockedUrl):
        ssrf.validate_url(url, policy=HTTP_ONLY)
    assert target.host in {"127.0.0.1", "127.8.9.10", "::1", "localhost"}


def test_the_message_names_the_reason():
    cases = {
        "http://169.254.169.254/": "metadata",
        "http://10.0.0.1/": "private",
        "http://127.0.0.1/": "loopback",
        "http://[fe80::1]/": "link-local",
        "http://224.0.0.1/": "multicast",
        "http://[64:ff9b::a00:1]/": "NAT64",
        "http://[2002:a00:1::]/": "6to4",
        "http://[::ffff:127.0.0.1]/": "IPv4-mapped",
        "http://2130706433/": "four decimal numbers",
        "http://metadata.google.internal/": "internal host name",
        "http://intranet/": "fully qualified",
    }
    messages = {}
    for url in cases:
        with pytest.raises(ssrf.BlockedUrl) as excinfo:
            ssrf.validate_url(url, policy=HTTP_ONLY)
        messages[url] = str(excinfo.value)

    assert {url: reason in messages[url] for url, reason in cases.items()} == dict.fromkeys(cases, True)


@pytest.mark.parametrize(
    "url",
    [
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://metadata.google.internal./",
        "https://METADATA.GOOGLE.INTERNAL/",
        "https://metadata.goog/",
        "https://instance-data.ec2.internal/",
        "https://ip-10-0-0-1.eu-west-1.compute.internal/",
        "https://printer.local/",
        "https://api.default.svc.cluster.local/",
        "https://router.home.arpa/",
        "https://nas.localdomain/",
        "https://metadata/",
        "https://instance-data/",
        "https://intranet/",
    ],
)
def test_internal_and_single_label_names_are_refused_before_any_lookup(url):
    resolver = FakeResolver({})

    with pytest.raises(ssrf.BlockedUrl):
        target = ssrf.validate_url(url, policy=DEV)
        ssrf.resolve_checked(target, policy=DEV, resolver=resolver)

    assert resolver.calls == []


# --- address classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
        "::ffff:8.8.8.8",
        "2002:808:808::",
    ],
)
def test_public_addresses_are_allowed_including_nat64_of_a_public_ipv4(address):
    assert ssrf.address_block_reason(ipaddress.ip_address(address), policy=PUBLIC) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
        ("0.1.2.3", "0.0.0.0/8"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.1.1", "carrier-grade NAT"),
        ("224.0.0.251", "multicast"),
        ("ff05::1", "multicast"),
        ("fd12:3456::1", "private"),
        ("::ffff:192.168.1.1", "IPv4-mapped"),
        ("64:ff9b::c0a8:101", "NAT64"),
        ("2002:c0a8:101::", "6to4"),
        ("2001:db8::1", "private"),
    ],
)
def test_address_block_reason_explains_each_refusal(address, reason):
    assert reason in (ssrf.address_block_reason(ipaddress.ip_address(address), policy=PUBLIC) or "")


# --- resolution --------------------------------------------------------------------------------


def test_a_name_resolving_to_public_addresses_returns_all_of_them_once():
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::", "93.184.216.34"]})
    target = ssrf.validate_url("https://hooks.example.com:8443/", policy=PUBLIC)

    addresses = ssrf.resolve_checked(target, policy=PUBLIC, resolver=resolver)

    assert addresses == [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2606:2800:220:1::")]
    assert resolver.calls == [("hooks.example.com", 8443)]


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["192.168.1.20"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::ffff:10.0.0.5"],
        ["64:ff9b::a00:5"],
        ["2002:a00:5::"],
        ["fe80::1%eth0"],
        ["fd00:ec2::254"],
        ["93.184.216.34", "10.0.0.5"],  # one bad answer among good ones: the OS could pick it
        ["2606:2800:220:1::", "127.0.0.1"],
    ],
)
def test_a_name_resolving_to_any_non_public_address_is_refused(answers):
    resolver = FakeResolver({"innocent.example.com": answers})
    target = ssrf.validate_url("https://innocent.example.com/", policy=PUBLIC)

    with pytest.raises(ssrf.BlockedUrl) as excinfo:
        ssrf.resolve_checked(target, policy=PUBLIC, resolver=resolver)

    assert "innocent.example.com" in str(excinfo.value)


def test_a_name_resolving_to_loopback_is_allowed_only_with_the_flag():
    resolver = FakeResolver({"dev.example.com": ["127.0.0.1", "::1"]})
    target = ssrf.validate_url("http://dev.example.com/", policy=DEV)

    assert ssrf.resolve_checked(target, policy=DEV, resolver=resolver) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    with pytest.raises(ssrf.BlockedUrl):
        ssrf.resolve_checked(target, policy=HTTP_ONLY, resolver=resolver)


def test_the_loopback_flag_still_refuses_a_name_resolving_to_a_private_address():
    resolver = FakeResolver({"dev.example.com": ["127.0.0.1", "10.0.0.7"]})
    target = ssrf.validate_url("http://dev.example.com/", policy=DEV)

    with pytest.raises(ssrf.BlockedUrl, match=r"10\.0\.0\.7"):
        ssrf.resolve_checked(target, policy=DEV, resolver=resolver)


def test_localhost_resolved_by_the_system_is_refused_without_the_flag():
    # A name, not a literal: proves the system resolver's answer is what gets checked.
    target = ssrf.ParsedTarget(scheme="http", host="localhost", port=80, request_target="/")

    with pytest.raises(ssrf.BlockedUrl, match="loopback"):
        ssrf.resolve_checked(target, policy=HTTP_ONLY)
    assert all(ip.is_loopback for ip in ssrf.resolve_checked(target, policy=DEV))


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
def test_numeric_hosts_that_slip_past_validation_are_checked_after_resolution(host):
    # Defence in depth: build the target by hand, as if validate_url had missed the form.
    # getaddrinfo parses these offline (inet_aton) into 127.0.0.1, which is then refused.
    target = ssrf.ParsedTarget(scheme="http", host=host, port=80, request_target="/")

    with pytest.raises(ssrf.BlockedUrl, match=r"127\.0\.0\.1"):
        ssrf.resolve_checked(target, policy=HTTP_ONLY)


def test_a_literal_address_is_checked_without_calling_the_resolver():
    resolver = FakeResolver({})

    target = ssrf.validate_url("https://93.184.216.34/", policy=PUBLIC)

    assert ssrf.resolve_checked(target, policy=PUBLIC, resolver=resolver) == [ipaddress.ip_address("93.184.216.34")]
    assert resolver.calls == []


def test_resolution_failures_are_resolution_errors_not_policy_blocks():
    target = ssrf.validate_url("https://nxdomain.example.com/", policy=PUBLIC)

    with pytest.raises(ssrf.ResolutionError, match=r"nxdomain\.example\.com"):
        ssrf.resolve_checked(target, policy=PUBLIC, resolver=FakeResolver({}))
    with pytest.raises(ssrf.ResolutionError):
        ssrf.resolve_checked(target, policy=PUBLIC, resolver=FakeResolver({"nxdomain.example.com": []}))
    assert not issubclass(ssrf.ResolutionError, ssrf.BlockedUrl)


def test_unknown_address_families_fail_closed():
    def resolver(host, port, **kwargs):
        return [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/run/docker.sock")]

    target = ssrf.validate_url("https://odd.example.com/", policy=PUBLIC)

    with pytest.raises(ssrf.BlockedUrl):
        ssrf.resolve_checked(target, policy=PUBLIC, resolver=resolver)


def test_blocked_url_is_a_value_error_for_form_and_api_validation():
    assert issubclass(ssrf.BlockedUrl, ValueError)
