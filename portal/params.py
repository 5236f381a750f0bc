"""Whole numbers from query strings and form text."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(raw: object) -> int | None:
    """``raw`` as an int when it is 1 to 18 ASCII digits, else None.

    ``str.isdigit()`` is not enough: it accepts "²" and other Unicode digits that ``int()``
    refuses (a 500), and numbers past PostgreSQL's ``bigint``.
    """
    if isinstance(raw, str) and _DIGITS.fullmatch(raw):
        return int(raw)
    return None
