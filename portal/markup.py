"""Helpers for markup built in Python (list rows, notification items): docs/adr/0012.

Template tags that render a row per object in Python escape every interpolated text with ``escape``
and build per-object URLs with ``uuid_url`` (the pattern reversed once per process, not per row).
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.urls import get_script_prefix, reverse

_ZERO = UUID(int=0)


def escape(value: Any) -> str:
    """``conditional_escape`` without its lazy-string wrapper (called ~20 times per row)."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


@lru_cache(maxsize=64)
def _url_parts(name: str, prefix: str) -> tuple[str, str]:
    head, _, tail = reverse(name, args=[_ZERO]).partition(str(_ZERO))
    return head, tail


def uuid_url(name: str, public_id: UUID) -> str:
    """``{% url name public_id %}`` for a pattern whose only argument is a UUID."""
    head, tail = _url_parts(name, get_script_prefix())
    return f"{head}{public_id}{tail}"


def csrf_input(context: Any) -> str:
    """What ``{% csrf_token %}`` renders in ``context`` (nothing outside a request)."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":  # noqa: S105 - Django's marker for "no token", not a secret
        return ""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(token)}">'


@lru_cache(maxsize=64)
def _url(name: str, prefix: str) -> str:
    return reverse(name)


def url(name: str) -> str:
    """``{% url name %}`` for a pattern without arguments, reversed once per process."""
    return _url(name, get_script_prefix())
