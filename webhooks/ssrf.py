"""Which webhook URLs we are willing to call, and which addresses we are willing to connect to.

Threat model
------------
A webhook URL is chosen by a customer, and our workers will POST to it from inside our
network. Without checks that is server-side request forgery (SSRF): a customer could point an
endpoint at the cloud metadata service (``169.254.169.254``, ``metadata.google.internal``) and
read instance credentials from the attempt log, or at PostgreSQL, Redis, the Django admin on a
private address, or anything else only our network can reach. Attempt logs show response
bodies, so even a "blind" request is an exfiltration channel.

What we defend against, and how:

* **Addresses, not names, are what matter.** A name is only a pointer; we resolve it
  ourselves once, check *every* address it resolves to (one bad address blocks the URL: the
  OS may pick any of them), and then connect to a checked address ourselves
  (``webhooks.transport``). No second lookup happens between check and connect, so DNS
  rebinding (a name answering a public address to the check and ``127.0.0.1`` to the
  connection) has nothing to race against.
* **Every non-public range is refused**: loopback, RFC 1918/ULA private, link-local (where
  metadata services live), carrier-grade NAT, multicast, reserved, unspecified (``0.0.0.0``
  reaches the local host on Linux), documentation/benchmark ranges, and the known metadata
  addresses by name. Python 3.11's ``ipaddress.is_global`` misses some of these (multicast,
  ``192.0.0.0/24``, site-local), so the checks are explicit.
* **IPv6 forms that carry an IPv4 address** are judged by the IPv4 address inside them:
  IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96`` and 6to4 ``2002::/16``.
  The deprecated IPv4-compatible ``::a.b.c.d``, local-use NAT64 and Teredo are refused
  outright.
* **Ambiguous spellings of IPv4** (``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
  ``127.1``) are refused at validation: resolvers, proxies and HTTP libraries disagree about
  them, and a legitimate endpoint never needs them. Should one reach resolution anyway, the
  address it resolves to is checked like any other.
* **URL parser confusion**: userinfo (``https://good@evil``), backslashes, whitespace and
  control characters, zone ids, percent-encoded hosts and non-http(s) schemes are refused
  rather than normalised, because a different parser downstream might read them differently.
* **Internal names** (single-label names expanded by resolver search domains, ``localhost``,
  ``*.internal``, ``*.local`` …) are refused by name too, for a clear message; the address
  check is what actually protects us.

Not covered here: redirects (``webhooks.transport`` never follows them), internal services
that sit on public addresses (firewall them), and egress filtering at the network layer,
which remains the right second line of defence.

Loopback can be allowed for local development and tests only (``UrlPolicy.allow_loopback``);
even then only ``127.0.0.0/8`` and ``::1`` written plainly, never private, link-local or
metadata addresses, and never loopback disguised inside an IPv6 form.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's shape: (host, port, family=0, type=0, proto=0, flags=0) -> [(family,
# type, proto, canonname, sockaddr), ...]. Tests inject fakes with the same shape.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What the deployment allows beyond the safe default (public https only).

    Both flags exist for local development and tests, where receivers run on the developer's
    machine; production settings must leave them off.
    """

    allow_http: bool = False
    allow_loopback: bool = False


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A URL that passed :func:`validate_url`, in the pieces a connection needs."""

    scheme: str
    host: str  # ASCII: IDNA for names, the compressed form (no brackets) for IP literals
    port: int
    request_target: str  # path and query exactly as sent in the request line
    ip: IPAddress | None = None  # set when the URL names an address rather than a host

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised URL: what we store and show back to the customer."""
        return f"{self.scheme}://{self.host_header}{self.request_target}"


class BlockedUrl(ValueError):
    """A URL or address we refuse to call. ``str(exc)`` is a message fit for a form error."""


class ResolutionError(OSError):
    """The host name did not resolve: a transient, network-level failure, not a policy one."""


_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")

# Known cloud metadata endpoints; most sit in ranges refused anyway, but naming them makes the
# message obvious and keeps them refused should a range rule ever be relaxed.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)

# Ranges that are not for us to call, beyond what ipaddress flags (or flags inconsistently
# across Python versions). Order matters only for the wording of the message.
_BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), description)
    for network, description in (
        ("0.0.0.0/8", "in 0.0.0.0/8, which reaches this host"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/96", "a deprecated IPv4-compatible IPv6 address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("2001::/32", "a Teredo tunnel address"),
        ("fec0::/10", "a deprecated site-local address"),
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Names that only ever mean something inside a network (RFC 6761, RFC 6762, RFC 8375, ICANN's
# .internal) plus metadata aliases.
_BLOCKED_NAME_SUFFIXES = ("internal", "local", "localdomain", "home.arpa", "lan")
_BLOCKED_NAMES = frozenset({"metadata.goog", "metadata.google.internal"})
_LOOPBACK_NAMES = ("localhost",)

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# WHATWG URL's "ends in a number": such hosts are IPv4 in browsers whatever their spelling.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")

_STRICT = UrlPolicy()


def validate_url(url: str, *, policy: UrlPolicy) -> ParsedTarget:
    """Parse a webhook URL and refuse anything we would not call; raises :class:`BlockedUrl`.

    This checks the URL's text and any IP literal in it, but resolves nothing: call
    :func:`resolve_checked` (on save, and again on every attempt) for names.
    """
    if not isinstance(url, str) or not url:
        raise BlockedUrl("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise BlockedUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if _FORBIDDEN_URL_CHARS.search(url):
        # urlsplit silently drops tabs and newlines; other parsers treat "\" as "/".
        raise BlockedUrl("The URL contains spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedUrl(f"This is not a valid URL ({exc}).") from exc

    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BlockedUrl("The URL must start with https://.")
    if scheme == "http" and not policy.allow_http:
        raise BlockedUrl("The URL must use https://, not http://.")
    if "@" in parts.netloc:
        raise BlockedUrl('The URL must not contain a user name or password ("user@").')
    if port == 0:
        raise BlockedUrl("The URL's port must be between 1 and 65535.")

    raw_host = parts.hostname or ""
    if not raw_host:
        raise BlockedUrl("The URL has no host name.")
    if "%" in raw_host:
        raise BlockedUrl("The host name must not contain '%' (percent-encoding or an IPv6 zone).")

    target_port = port or DEFAULT_PORTS[scheme]
    request_target = _request_target(path=parts.path, query=parts.query)
    if parts.netloc.startswith("["):
        ip = _parse_ipv6_literal(raw_host)
        _raise_if_blocked(ip=ip, host=raw_host, policy=policy)
        return ParsedTarget(scheme=scheme, host=ip.compressed, port=target_port, request_target=request_target, ip=ip)

    host = _normalise_name(raw_host)
    last_label = host.rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last_label):
        try:
            ipv4 = ipaddress.IPv4Address(host)
        except ValueError:
            raise BlockedUrl(
                f"{raw_host} looks like an IP address in an unusual notation; write IPv4 addresses "
                "as four decimal numbers (for example 203.0.113.10)."
            ) from None
        _raise_if_blocked(ip=ipv4, host=host, policy=policy)
        return ParsedTarget(scheme=scheme, host=str(ipv4), port=target_port, request_target=request_target, ip=ipv4)

    _check_name(host=host, policy=policy)
    return ParsedTarget(scheme=scheme, host=host, port=target_port, request_target=request_target)


def resolve_checked(target: ParsedTarget, *, policy: UrlPolicy, resolver: Resolver | None = None) -> list[IPAddress]:
    """Resolve ``target`` once and return its addresses, all of them checked.

    Raises :class:`BlockedUrl` if any address is refused (the OS could pick any of them, and a
    mix of public and private answers is a rebinding setup), :class:`ResolutionError` if the
    name does not resolve. Connect to the returned addresses, never to the name again.
    ``resolver`` defaults to :func:`socket.getaddrinfo`, looked up at call time so tests can
    replace it.
    """
    if target.ip is not None:
        _raise_if_blocked(ip=target.ip, host=target.host, policy=policy)
        return [target.ip]

    resolve = resolver or socket.getaddrinfo
    try:
        infos = resolve(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise ResolutionError(f"Could not resolve {target.host} ({exc}).") from exc

    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise BlockedUrl(f"{target.host} resolves to an address that is not IPv4 or IPv6.")
        try:
            # A scope id ("fe80::1%eth0") only ever comes with link-local/multicast, refused below.
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise BlockedUrl(f"{target.host} resolves to an address we cannot read.") from None
        _raise_if_blocked(ip=ip, host=target.host, policy=policy)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise ResolutionError(f"{target.host} has no IPv4 or IPv6 address.")
    return addresses


def address_check(ip: IPAddress, *, policy: UrlPolicy, host: str | None = None) -> None:
    """Raise :class:`BlockedUrl` if we must not connect to ``ip`` (e.g. a pinned address)."""
    _raise_if_blocked(ip=ip, host=host or str(ip), policy=policy)


def address_block_reason(ip: IPAddress, *, policy: UrlPolicy) -> str | None:
    """Why ``ip`` is refused ("a loopback address", ...), or None when we may connect to it."""
    if policy.allow_loopback and ((isinstance(ip, ipaddress.IPv4Address) and ip in _LOOPBACK_V4) or ip == _LOOPBACK_V6):
        return None
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata service address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, ipv4 = embedded
            # Loopback stays refused inside IPv6 forms even when allowed plainly: no
            # legitimate local setup spells 127.0.0.1 as ::ffff:127.0.0.1.
            inner = address_block_reason(ipv4, policy=_STRICT)
            # A public IPv4 inside is fine: Python 3.11 files all of ::/8 (NAT64 included)
            # as "reserved", which would refuse valid NAT64 routes to public hosts.
            return f"{form} of {ipv4}, {inner}" if inner else None
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    for network, description in _BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return description
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 form", ip.ipv4_mapped
    if ip in _NAT64:
        return "a NAT64 IPv6 form", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "a 6to4 IPv6 form", ip.sixtofour
    return None


def _raise_if_blocked(*, ip: IPAddress, host: str, policy: UrlPolicy) -> None:
    reason = address_block_reason(ip, policy=policy)
    if reason is None:
        return
    where = str(ip) if host == str(ip) else f"{host} ({ip})"
    raise BlockedUrl(f"{where} is {reason}; webhooks can only be sent to public addresses.")


def _parse_ipv6_literal(host: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        raise BlockedUrl(f"[{host}] is not a valid IPv6 address.") from None


def _normalise_name(raw_host: str) -> str:
    try:
        # IDNA first, classification after: nameprep maps look-alikes such as fullwidth
        # digits and dots (U+FF11, U+FF0E) to ASCII, and the result is what gets resolved.
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BlockedUrl(f"{raw_host} is not a valid host name.") from None
    # One trailing dot marks an absolute name; drop it so "metadata.google.internal." is
    # recognised and TLS/Host see the usual spelling.
    host = host.removesuffix(".")
    if not host or len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise BlockedUrl(f"{raw_host} is not a valid host name.")
    return host


def _check_name(*, host: str, policy: UrlPolicy) -> None:
    if host in _LOOPBACK_NAMES or host.endswith(tuple(f".{name}" for name in _LOOPBACK_NAMES)):
        if policy.allow_loopback:
            return  # still resolved and address-checked like any other name
        raise BlockedUrl(f"{host} is this machine; webhooks can only be sent to public hosts.")
    if host in _BLOCKED_NAMES or any(
        host == suffix or host.endswith(f".{suffix}") for suffix in _BLOCKED_NAME_SUFFIXES
    ):
        raise BlockedUrl(f"{host} is an internal host name; webhooks can only be sent to public hosts.")
    if "." not in host:
        # Single-label names are completed by the resolver's search domains: internal hosts.
        raise BlockedUrl(f"{host} is not a fully qualified domain name (for example hooks.example.com).")


def _request_target(*, path: str, query: str) -> str:
    # Non-ASCII would not survive the request line; percent-encode it and leave existing
    # escapes and reserved characters alone so the customer's URL means the same thing.
    safe = "!$&'()*+,;=:@/%~-._"
    target = quote(path or "/", safe=safe)
    if query:
        target += "?" + quote(query, safe=safe + "?")
    return target
