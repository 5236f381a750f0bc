"""Signing secrets encrypted at rest: AES-256-GCM with keys derived by HKDF.

A database dump (a backup, a read replica, a support export) must not hand out the secrets
that let anyone forge our webhooks. Each secret is sealed with AES-256-GCM; the associated data
names the endpoint it belongs to, so a ciphertext copied onto another endpoint's row does not
decrypt there. The stored form is ``v1:<key id>:<base64(nonce | ciphertext | tag)>``.

Keys come from ``webhooks.conf.secret_keys()`` (``WEBHOOK_SECRET_KEY``, else Django's
``SECRET_KEY`` and its fallbacks). Each configured value is stretched with HKDF-SHA256 into a
32-byte key, so any long random string works; the key id (the first 8 hex digits of a hash of
the derived key) says which key sealed a value, so decryption never has to guess. Rotation:
put the new value first and keep the old one after it, run ``manage.py
webhooks_reencrypt_secrets``, then drop the old value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from webhooks import conf

VERSION = "v1"
_SALT = b"securebase-portal/webhooks"
_INFO = b"endpoint signing secret encryption v1"
_NONCE_BYTES = 12


class SecretDecryptError(Exception):
    """A sealed secret that none of the configured keys opens (wrong key, tampered, garbled)."""


@dataclass(frozen=True)
class _Key:
    key_id: str
    aead: AESGCM


@functools.lru_cache(maxsize=8)
def _derive(material: str) -> _Key:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(material.encode())
    return _Key(key_id=hashlib.sha256(key).hexdigest()[:8], aead=AESGCM(key))


def _keys() -> list[_Key]:
    return [_derive(material) for material in conf.secret_keys()]


def secret_encrypt(plaintext: str, *, context: str) -> str:
    """Seal ``plaintext`` with the current key; ``context`` binds it to one row (its public id)."""
    key = _keys()[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}:{key.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def secret_decrypt(token: str, *, context: str) -> str:
    _version, key_id, payload = _split(token)
    key = next((k for k in _keys() if k.key_id == key_id), None)
    if key is None:
        raise SecretDecryptError(f"The key {key_id} that sealed this secret is not configured (WEBHOOK_SECRET_KEY).")
    try:
        raw = base64.b64decode(payload, validate=True)
        return key.aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise SecretDecryptError("The sealed secret does not open: tampered, or sealed for another row.") from exc


def secret_needs_reencrypt(token: str) -> bool:
    """True when ``token`` was sealed by an older key than the current one."""
    return _split(token)[1] != _keys()[0].key_id


def _split(token: str) -> tuple[str, str, str]:
    parts = (token or "").split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise SecretDecryptError("Not a sealed webhook secret.")
    return parts[0], parts[1], parts[2]
