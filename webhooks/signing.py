"""Signing outgoing webhooks exactly as the Standard Webhooks specification says.

Receivers verify us with any Standard Webhooks library, so nothing here may drift from the
spec (https://www.standardwebhooks.com/): the signed content is ``{id}.{timestamp}.{body}``
with the raw body bytes, the key is the base64-decoded part of a ``whsec_`` secret, and the
``webhook-signature`` header carries one ``v1,<base64 HMAC-SHA256>`` per active secret,
space-separated, so a receiver holding either the old or the new secret accepts a message
sent during rotation.

This module knows nothing about Django models: the delivery layer stores secrets and message
ids and calls these functions once per attempt (the id is stable, the timestamp is not).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as secrets_random
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's public prefix, not a secret)
SECRET_BYTES_DEFAULT = 32
# The spec's bounds: shorter keys are guessable, longer ones gain nothing for HMAC-SHA256 and
# some receivers' libraries refuse them.
SECRET_BYTES_MIN = 24
SECRET_BYTES_MAX = 64

SIGNATURE_VERSION = "v1"
MESSAGE_ID_PREFIX = "msg_"
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

# Crockford's base32: no I, L, O, U, so ids survive being read aloud or retyped, and the
# alphabet is in ASCII order, which keeps encoded ids sortable as plain strings.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class InvalidSecret(ValueError):
    """A webhook secret that is not ``whsec_`` + base64 of 24 to 64 bytes."""


class SignatureInvalid(ValueError):
    """Raised by :func:`verify` when headers are missing, stale, or no signature matches."""


def secret_generate(*, num_bytes: int = SECRET_BYTES_DEFAULT) -> str:
    """A new secret in the Standard Webhooks format: ``whsec_`` + base64 of random bytes."""
    _check_secret_length(num_bytes=num_bytes)
    return SECRET_PREFIX + base64.b64encode(secrets_random.token_bytes(num_bytes)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key inside ``secret``; raises :class:`InvalidSecret` with a human message."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"A webhook secret starts with {SECRET_PREFIX!r}.")
    encoded = secret[len(SECRET_PREFIX) :]
    # Padding is optional in the wild (some generators strip it); the reference libraries add
    # it back before decoding, so accepting both keeps us interoperable without being loose
    # about the alphabet (validate=True refuses anything that is not base64).
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("A webhook secret is base64 after the prefix.") from exc
    _check_secret_length(num_bytes=len(key))
    return key


def sign(*, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: ``v1,<sig>`` per secret, space-separated.

    Pass the new secret first and the old one after it while rotating; receivers accept the
    message if any signature matches the secret they hold.
    """
    _check_signing_input(msg_id=msg_id, timestamp=timestamp, body=body)
    if isinstance(secrets, str) or not secrets:
        # A bare string would be iterated character by character: refuse it loudly.
        raise ValueError("secrets must be a non-empty list of whsec_ secrets.")
    keys = list(dict.fromkeys(secret_bytes(secret) for secret in secrets))
    content = _signed_content(msg_id=msg_id, timestamp=timestamp, body=body)
    return " ".join(f"{SIGNATURE_VERSION},{_hmac_b64(key=key, content=content)}" for key in keys)


def headers_build(*, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets),
    }


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    tolerance_seconds: int = TIMESTAMP_TOLERANCE_SECONDS,
    now: int | None = None,
) -> None:
    """Check a received message the way a receiver should; raises :class:`SignatureInvalid`.

    Our own tests and the customer documentation use this as the reference receiver. It
    accepts the message when any ``v1`` signature matches any of ``secrets`` and the
    timestamp is within ``tolerance_seconds`` of ``now`` (replay protection).
    """
    if isinstance(secrets, str) or not secrets:
        raise ValueError("secrets must be a non-empty list of whsec_ secrets.")
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(HEADER_ID)
    timestamp_raw = lowered.get(HEADER_TIMESTAMP)
    signature_header = lowered.get(HEADER_SIGNATURE)
    if not (msg_id and timestamp_raw and signature_header):
        raise SignatureInvalid("Missing webhook-id, webhook-timestamp or webhook-signature header.")
    if not timestamp_raw.isascii() or not timestamp_raw.isdigit():
        raise SignatureInvalid("webhook-timestamp is not an integer number of seconds.")
    timestamp = int(timestamp_raw)
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureInvalid("webhook-timestamp is outside the tolerance window.")

    content = _signed_content(msg_id=msg_id, timestamp=timestamp, body=body)
    expected = [_hmac_b64(key=secret_bytes(secret), content=content).encode("ascii") for secret in secrets]
    for candidate in signature_header.split(" "):
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        # compare_digest on every expected value: no early exit that would leak which matched.
        matches = [hmac.compare_digest(value.encode("ascii", "replace"), sig) for sig in expected]
        if any(matches):
            return
    raise SignatureInvalid("No matching signature found.")


def message_id_new(*, timestamp_ms: int | None = None) -> str:
    """``msg_`` + a ULID-like id: 48-bit milliseconds then 80 random bits, Crockford base32.

    The id is generated once per message and reused for every attempt, so receivers can
    deduplicate on it. Ids sort as strings in creation order to the millisecond (order within
    one millisecond is random), which keeps database indexes on them append-mostly.
    """
    millis = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    if not 0 <= millis < 2**48:
        raise ValueError("timestamp_ms must fit in 48 bits.")
    value = (millis << 80) | int.from_bytes(secrets_random.token_bytes(10), "big")
    chars = []
    for _ in range(26):  # 26 characters of 5 bits hold all 128 bits
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return MESSAGE_ID_PREFIX + "".join(reversed(chars))


def _check_secret_length(*, num_bytes: int) -> None:
    if not SECRET_BYTES_MIN <= num_bytes <= SECRET_BYTES_MAX:
        raise InvalidSecret(f"A webhook secret holds {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes, not {num_bytes}.")


def _check_signing_input(*, msg_id: str, timestamp: int, body: bytes) -> None:
    if not isinstance(msg_id, str) or not msg_id or not msg_id.isascii() or "." in msg_id or " " in msg_id:
        # A "." would make "{id}.{timestamp}.{body}" ambiguous, and headers must stay ASCII.
        raise ValueError("msg_id must be a non-empty ASCII string without '.' or spaces.")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        # bool is an int subclass: True would sign as "1".
        raise ValueError("timestamp must be a non-negative integer number of seconds.")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("body must be the exact bytes sent on the wire.")


def _signed_content(*, msg_id: str, timestamp: int, body: bytes) -> bytes:
    # Sign the raw bytes, never a re-serialised payload: receivers hash what they received.
    return f"{msg_id}.{timestamp}.".encode() + bytes(body)


def _hmac_b64(*, key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")
