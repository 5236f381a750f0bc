"""Our signatures must verify with the reference Standard Webhooks library, rotation included."""

import base64
import re
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks import signing

BODY = b'{"type":"ticket.created","data":{"ticket":"T-1","title":"Disk full \xc3\xa9"}}'


@pytest.fixture
def now() -> int:
    return int(time.time())


def _headers(*, msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> dict[str, str]:
    return signing.headers_build(msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets)


# --- secrets -------------------------------------------------------------------------------


def test_secret_generate_is_whsec_base64_of_32_random_bytes():
    secret = signing.secret_generate()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert signing.secret_bytes(secret) == base64.b64decode(secret.removeprefix("whsec_"))
    assert len({signing.secret_generate() for _ in range(50)}) == 50


@pytest.mark.parametrize("num_bytes", [24, 64])
def test_secret_generate_accepts_the_spec_bounds(num_bytes):
    assert len(signing.secret_bytes(signing.secret_generate(num_bytes=num_bytes))) == num_bytes


@pytest.mark.parametrize("num_bytes", [0, 16, 23, 65])
def test_secret_generate_refuses_sizes_outside_24_to_64_bytes(num_bytes):
    with pytest.raises(signing.InvalidSecret):
        signing.secret_generate(num_bytes=num_bytes)


def test_secret_bytes_accepts_unpadded_base64_like_the_reference_library():
    key = bytes(range(25))  # 25 bytes: base64 needs padding
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("=")

    assert signing.secret_bytes(padded.rstrip("=")) == key == signing.secret_bytes(padded)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        base64.b64encode(bytes(32)).decode(),  # no prefix
        "whsk_" + base64.b64encode(bytes(32)).decode(),
        "whsec_",
        "whsec_" + base64.b64encode(bytes(16)).decode(),  # too short
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # too long
        "whsec_not*base64!" + "A" * 30,
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet is not the format
    ],
)
def test_secret_bytes_refuses_malformed_secrets_with_a_message(secret):
    with pytest.raises(signing.InvalidSecret) as excinfo:
        signing.secret_bytes(secret)
    assert "secret" in str(excinfo.value)


# --- signing against the specification and the reference library ----------------------------


def test_sign_matches_the_standard_webhooks_test_vector():
    # The example in the Standard Webhooks specification and its reference test suites.
    signature = signing.sign(
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
        secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_library_verifies_our_signature(now):
    secret = signing.secret_generate()
    msg_id = signing.message_id_new()

    headers = _headers(msg_id=msg_id, timestamp=now, body=BODY, secrets=[secret])

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == msg_id
    assert headers["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "ticket.created",
        "data": {"ticket": "T-1", "title": "Disk full é"},
    }


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda headers, body: (headers, body + b" "), id="body"),
        pytest.param(lambda headers, body: ({**headers, "webhook-id": "msg_other"}, body), id="id"),
        pytest.param(
            lambda headers, body: ({**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}, body),
            id="timestamp",
        ),
    ],
)
def test_reference_library_rejects_a_tampered_message(now, tamper):
    secret = signing.secret_generate()
    headers = _headers(msg_id=signing.message_id_new(), timestamp=now, body=BODY, secrets=[secret])
    Webhook(secret).verify(BODY, headers)  # untampered: fine

    tampered_headers, tampered_body = tamper(headers, BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered_body, tampered_headers)


def test_rotation_signs_with_each_secret_and_both_receivers_verify(now):
    old, new = signing.secret_generate(), signing.secret_generate()

    headers = _headers(msg_id=signing.message_id_new(), timestamp=now, body=BODY, secrets=[new, old])

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", signature) for signature in signatures)
    Webhook(old).verify(BODY, headers)  # a receiver not yet updated
    Webhook(new).verify(BODY, headers)  # a receiver already on the new secret
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_generate()).verify(BODY, headers)


def test_after_rotation_ends_the_old_secret_no_longer_verifies(now):
    old, new = signing.secret_generate(), signing.secret_generate()

    headers = _headers(msg_id=signing.message_id_new(), timestamp=now, body=BODY, secrets=[new])

    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, headers)


def test_sign_deduplicates_a_secret_listed_twice(now):
    secret = signing.secret_generate()

    signature = signing.sign(msg_id="msg_1", timestamp=now, body=BODY, secrets=[secret, secret])

    assert len(signature.split(" ")) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"secrets": []}, ValueError),
        ({"secrets": "whsec_" + "A" * 43}, ValueError),  # a bare string, not a list
        ({"secrets": ["whsec_short"]}, signing.InvalidSecret),
        ({"timestamp": True}, ValueError),
        ({"timestamp": 1.5}, ValueError),
        ({"timestamp": -1}, ValueError),
        ({"msg_id": ""}, ValueError),
        ({"msg_id": "msg.1"}, ValueError),
        ({"body": "text, not bytes"}, TypeError),
    ],
)
def test_sign_refuses_bad_input(kwargs, error):
    arguments = {"msg_id": "msg_1", "timestamp": 1_700_000_000, "body": BODY, "secrets": [signing.secret_generate()]}

    with pytest.raises(error):
        signing.sign(**{**arguments, **kwargs})


# --- our own verify() (the reference receiver for tests and docs) ---------------------------


def test_verify_accepts_a_fresh_message_with_any_matching_secret(now):
    old, new = signing.secret_generate(), signing.secret_generate()
    headers = _headers(msg_id="msg_1", timestamp=now, body=BODY, secrets=[new, old])

    signing.verify(headers=headers, body=BODY, secrets=[old])
    signing.verify(headers={k.upper(): v for k, v in headers.items()}, body=BODY, secrets=[new])


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-300, True), (300, True), (-301, False), (301, False), (-3600, False)],
)
def test_verify_enforces_the_five_minute_timestamp_tolerance(offset, accepted):
    secret = signing.secret_generate()
    sent_at = 1_700_000_000
    headers = _headers(msg_id="msg_1", timestamp=sent_at, body=BODY, secrets=[secret])

    if accepted:
        signing.verify(headers=headers, body=BODY, secrets=[secret], now=sent_at - offset)
    else:
        with pytest.raises(signing.SignatureInvalid, match="tolerance"):
            signing.verify(headers=headers, body=BODY, secrets=[secret], now=sent_at - offset)


def test_verify_rejects_wrong_secret_tampered_body_and_missing_headers(now):
    secret = signing.secret_generate()
    headers = _headers(msg_id="msg_1", timestamp=now, body=BODY, secrets=[secret])

    with pytest.raises(signing.SignatureInvalid, match="No matching"):
        signing.verify(headers=headers, body=BODY, secrets=[signing.secret_generate()])
    with pytest.raises(signing.SignatureInvalid, match="No matching"):
        signing.verify(headers=headers, body=BODY + b"\n", secrets=[secret])
    with pytest.raises(signing.SignatureInvalid, match="Missing"):
        signing.verify(headers={"webhook-id": "msg_1"}, body=BODY, secrets=[secret])
    with pytest.raises(signing.SignatureInvalid, match="integer"):
        signing.verify(headers={**headers, "webhook-timestamp": "1e9"}, body=BODY, secrets=[secret])


def test_verify_ignores_unknown_signature_versions(now):
    secret = signing.secret_generate()
    headers = _headers(msg_id="msg_1", timestamp=now, body=BODY, secrets=[secret])
    value = headers["webhook-signature"].split(",", 1)[1]

    with pytest.raises(signing.SignatureInvalid):
        signing.verify(headers={**headers, "webhook-signature": f"v1a,{value}"}, body=BODY, secrets=[secret])
    signing.verify(headers={**headers, "webhook-signature": f"v1a,{value} v1,{value}"}, body=BODY, secrets=[secret])


# --- message ids -------------------------------------------------------------------------


def test_message_id_is_msg_prefix_and_26_crockford_base32_characters():
    msg_id = signing.message_id_new()

    assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", msg_id)


def test_message_ids_are_unique_and_sort_by_creation_time():
    base = 1_700_000_000_000
    ids = [signing.message_id_new(timestamp_ms=base + offset) for offset in (0, 1, 2, 1000, 86_400_000)]
    same_millisecond = {signing.message_id_new(timestamp_ms=base) for _ in range(1000)}

    assert sorted(ids) == ids
    assert len(same_millisecond) == 1000
    assert all(msg_id[4:14] == ids[0][4:14] for msg_id in same_millisecond)  # 48-bit time prefix
    assert signing.message_id_new() > ids[-1]  # the real clock is well past 2023


def test_message_id_refuses_timestamps_outside_48_bits():
    with pytest.raises(ValueError):
        signing.message_id_new(timestamp_ms=2**48)


# --- the customer documentation's hand-written verifier -------------------------------------


def test_the_documented_stdlib_verifier_accepts_our_signatures_and_rejects_forgeries(now):
    """Runs the Python snippet from docs/webhooks.md, so the published code cannot rot."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    snippet = re.search(r"```python\n(# verify_webhook: standard library only\n.*?)```", docs, re.DOTALL)
    assert snippet, "docs/webhooks.md lost its standard-library verifier"
    namespace: dict = {}
    exec(compile(snippet.group(1), "docs/webhooks.md", "exec"), namespace)  # noqa: S102 (our own docs)
    verify_webhook = namespace["verify_webhook"]
    old, new = signing.secret_generate(), signing.secret_generate()
    headers = _headers(msg_id="msg_1", timestamp=now, body=BODY, secrets=[new, old])

    verify_webhook(old, headers, BODY)
    verify_webhook(new, headers, BODY)
    with pytest.raises(ValueError):
        verify_webhook(signing.secret_generate(), headers, BODY)
    with pytest.raises(ValueError):
        verify_webhook(old, headers, BODY + b" ")
    stale = _headers(msg_id="msg_1", timestamp=now - 600, body=BODY, secrets=[old])
    with pytest.raises(ValueError):
        verify_webhook(old, stale, BODY)
