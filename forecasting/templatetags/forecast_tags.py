"""Number formatting for the cost pages: cheaper than ``floatformat`` (hundreds of cells per page)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def money(value: Any, places: int = 2) -> str:
    """``12345.6`` → ``12,345.60``; empty for None."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.{int(places)}f}"
    except (InvalidOperation, ValueError, TypeError):
        return str(value)


_TRENDS = {
    "increasing": ("↗", "increasing"),
    "decreasing": ("↘", "decreasing"),
    "stable": ("→", "stable"),
}


@register.filter
def trend_badge(trend: str) -> str:
    """An arrow (hidden from screen readers) and the word: the colour is never the only cue."""
    if trend not in _TRENDS:
        return mark_safe('<span class="muted">–</span>')
    arrow, word = _TRENDS[trend]
    return format_html('<span class="trend trend-{}"><span aria-hidden="true">{}</span> {}</span>', trend, arrow, word)


@register.simple_tag
def change_badge(change: Any, percent: Any) -> str:
    """Month-over-month change: ``▲ +1,234.00 (+5.2 %)``."""
    if change is None:
        return mark_safe('<span class="muted">–</span>')
    if change == 0:
        return mark_safe('<span class="change">no change</span>')
    up = change > 0
    sign = "+" if up else ""
    share = f" ({sign}{money(percent, 1)} %)" if percent is not None else ""
    return format_html(
        '<span class="change change-{}"><span aria-hidden="true">{}</span> {}{}{}</span>',
        "up" if up else "down",
        "▲" if up else "▼",
        sign,
        money(change),
        share,
    )
