"""The forecast chart as inline SVG, drawn on the server: the page and the PDF export show the same drawing.

No script, no inline style (the CSP allows neither): only SVG presentation attributes. Every point
carries a ``<title>``, which browsers show as a tooltip on hover; the page puts the same numbers in
a data table for screen readers and keyboard users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 800, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 36, 56
ACTUAL = "#0b5cad"  # brand blue: 6.6:1 on white
FORECAST = "#8a5300"  # dark amber: 6.1:1 on white
BAND = "#0b5cad"
ANOMALY = "#b3261e"  # 6.5:1 on white
GRID = "#d5dbe3"
INK = "#1b2330"
MUTED = "#4f5b6b"
FONT = "Helvetica, Arial, sans-serif"
HISTORY_MONTHS = 24  # months of history drawn before the forecast


@dataclass(frozen=True)
class ForecastMark:
    month: date
    mean: Decimal
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True)
class AnomalyMark:
    month: date
    text: str


def money(value: Decimal | float | None, currency: str = "") -> str:
    if value is None:
        return "–"
    return f"{Decimal(str(value)):,.2f}{' ' + currency if currency else ''}"


def compact(value: float) -> str:
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:.0f}" if magnitude >= 10 or value == 0 else f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value < high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _attrs(**attrs: object) -> str:
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v), quote=True)}"' for k, v in attrs.items())


def forecast_chart(
    *,
    title: str,
    history: Sequence[tuple[date, Decimal]],
    forecast: Sequence[ForecastMark],
    level: int,
    currency: str,
    partial: tuple[date, Decimal] | None = None,
    anomalies: Sequence[AnomalyMark] = (),
    fixed_size: bool = False,
    chart_id: str = "forecast-chart",
) -> SafeString:
    """History (solid), forecast mean (dashed), the ``level`` % band (shaded) and anomaly markers.

    ``fixed_size``: width and height in pixels (for the PDF); otherwise the drawing scales to its container.
    """
    history = list(history)[-HISTORY_MONTHS:]
    forecast = list(forecast)
    months = [m for m, _ in history] + [p.month for p in forecast]
    if partial and partial[0] not in months:
        months.append(partial[0])
    months = sorted(set(months))
    size = _attrs(width=WIDTH, height=HEIGHT) if fixed_size else _attrs(width="100%")
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" {size} role="img" '
        f'aria-labelledby="{title_id} {desc_id}" class="forecast-chart" id="{chart_id}" font-family="{FONT}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(_description(history, forecast, level, currency, anomalies))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    if not months:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="14" fill="{MUTED}">No data yet</text></svg>'
        )
        return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped

    values = [float(v) for _, v in history] + [float(p.upper) for p in forecast] + [float(p.lower) for p in forecast]
    if partial:
        values.append(float(partial[1]))
    low = min(0.0, *values)
    ticks = nice_ticks(low, max(values) * 1.05 if max(values) > 0 else 1.0)
    y_min, y_max = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    index = {m: i for i, m in enumerate(months)}
    step = plot_w / max(len(months) - 1, 1)

    def x(month: date) -> float:
        return round(LEFT + index[month] * step, 1) if len(months) > 1 else LEFT + plot_w / 2

    def y(value: Decimal | float) -> float:
        return round(TOP + plot_h - (float(value) - y_min) / (y_max - y_min) * plot_h, 1)

    # Grid and axes.
    for tick in ticks:
        parts.append(
            f"<line {_attrs(x1=LEFT, x2=WIDTH - RIGHT, y1=y(tick), y2=y(tick), stroke=GRID, stroke_width=1)}/>"
        )
        parts.append(
            f"<text {_attrs(x=LEFT - 8, y=y(tick) + 4, text_anchor='end', font_size=11, fill=MUTED)}>{escape(compact(tick))}</text>"
        )
    label_every = max(1, math.ceil(len(months) / 12))
    for i, month in enumerate(months):
        if i % label_every == 0 or (i == len(months) - 1 and len(months) <= 13):
            parts.append(
                f"<text {_attrs(x=x(month), y=HEIGHT - BOTTOM + 18, text_anchor='middle', font_size=11, fill=MUTED)}>"
                f"{month:%b %y}</text>"
            )
    parts.append(
        f"<text {_attrs(x=14, y=TOP - 14, font_size=11, fill=MUTED)}>{escape(currency or '')} per month</text>"
    )

    # The band, from the last actual month so the shape joins the history line.
    if forecast:
        anchor = history[-1] if history else None
        upper = [(x(p.month), y(p.upper)) for p in forecast]
        lower = [(x(p.month), y(p.lower)) for p in forecast]
        if anchor is not None:
            upper.insert(0, (x(anchor[0]), y(anchor[1])))
            lower.insert(0, (x(anchor[0]), y(anchor[1])))
        polygon = " ".join(f"{px},{py}" for px, py in upper + lower[::-1])
        parts.append(
            f'<polygon {_attrs(points=polygon, fill=BAND, fill_opacity="0.16", stroke="none")} class="forecast-band"/>'
        )
        start = x(forecast[0].month) - step / 2 if len(months) > 1 else LEFT
        parts.append(
            f"<line {_attrs(x1=round(start, 1), x2=round(start, 1), y1=TOP, y2=HEIGHT - BOTTOM, stroke=MUTED, stroke_width=1, stroke_dasharray='2 3')}/>"
        )
        parts.append(f"<text {_attrs(x=round(start, 1) + 4, y=TOP + 12, font_size=11, fill=MUTED)}>Forecast</text>")

    # History: a solid line with a point per month.
    if history:
        line = " ".join(f"{x(m)},{y(v)}" for m, v in history)
        parts.append(
            f'<polyline {_attrs(points=line, fill="none", stroke=ACTUAL, stroke_width=2.5)} class="forecast-actual"/>'
        )
        for month, value in history:
            parts.append(
                f'<circle {_attrs(cx=x(month), cy=y(value), r=3, fill=ACTUAL)} class="chart-point">'
                f"<title>{month:%b %Y}: {escape(money(value, currency))}</title></circle>"
            )
    if partial:
        month, value = partial
        parts.append(
            f'<circle {_attrs(cx=x(month), cy=y(value), r=4, fill="#ffffff", stroke=ACTUAL, stroke_width=2)} class="chart-point">'
            f"<title>{month:%b %Y} so far: {escape(money(value, currency))}</title></circle>"
        )

    # Forecast mean: dashed, from the last actual month.
    if forecast:
        points = [(x(p.month), y(p.mean)) for p in forecast]
        if history:
            points.insert(0, (x(history[-1][0]), y(history[-1][1])))
        line = " ".join(f"{px},{py}" for px, py in points)
        parts.append(
            f'<polyline {_attrs(points=line, fill="none", stroke=FORECAST, stroke_width=2.5, stroke_dasharray="7 4")} class="forecast-mean"/>'
        )
        parts.extend(
            f'<circle {_attrs(cx=x(p.month), cy=y(p.mean), r=3, fill=FORECAST)} class="chart-point">'
            f"<title>{p.month:%b %Y} forecast: {escape(money(p.mean, currency))} "
            f"({level} %: {escape(money(p.lower))} – {escape(money(p.upper))})</title></circle>"
            for p in forecast
        )

    # Anomalies: a red triangle above the month (shape and colour, so colour is not the only cue).
    actual_by_month = dict(history)
    for mark in anomalies:
        if mark.month not in index:
            continue
        base = actual_by_month.get(mark.month, partial[1] if partial and partial[0] == mark.month else None)
        cy = y(base) - 10 if base is not None else TOP + 8
        cx = x(mark.month)
        triangle = f"{cx},{cy - 7} {cx - 7},{cy + 5} {cx + 7},{cy + 5}"
        parts.append(
            f'<polygon {_attrs(points=triangle, fill=ANOMALY, stroke="#ffffff", stroke_width=1)} class="chart-anomaly">'
            f"<title>{escape(mark.text)}</title></polygon>"
        )

    parts.append(_legend(level=level, has_forecast=bool(forecast), has_anomalies=bool(anomalies)))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


def _legend(*, level: int, has_forecast: bool, has_anomalies: bool) -> str:
    y0 = HEIGHT - 18
    items = [("line", ACTUAL, "Actual")]
    if has_forecast:
        items += [("dash", FORECAST, "Forecast"), ("band", BAND, f"{level} % band")]
    if has_anomalies:
        items.append(("triangle", ANOMALY, "Anomaly"))
    out, x0 = [], LEFT
    for kind, colour, text in items:
        if kind == "line":
            out.append(f"<line {_attrs(x1=x0, x2=x0 + 22, y1=y0, y2=y0, stroke=colour, stroke_width=2.5)}/>")
        elif kind == "dash":
            out.append(
                f"<line {_attrs(x1=x0, x2=x0 + 22, y1=y0, y2=y0, stroke=colour, stroke_width=2.5, stroke_dasharray='7 4')}/>"
            )
        elif kind == "band":
            out.append(f"<rect {_attrs(x=x0, y=y0 - 6, width=22, height=12, fill=colour, fill_opacity='0.16')}/>")
        else:
            out.append(
                f"<polygon {_attrs(points=f'{x0 + 11},{y0 - 7} {x0 + 4},{y0 + 5} {x0 + 18},{y0 + 5}', fill=colour)}/>"
            )
        out.append(f"<text {_attrs(x=x0 + 28, y=y0 + 4, font_size=12, fill=INK)}>{escape(text)}</text>")
        x0 += 40 + 7 * len(text)
    return "".join(out)


def _description(history, forecast, level: int, currency: str, anomalies) -> str:
    sentences = []
    if history:
        sentences.append(
            f"Monthly spend from {history[0][0]:%B %Y} to {history[-1][0]:%B %Y}, last {money(history[-1][1], currency)}."
        )
    if forecast:
        first, last = forecast[0], forecast[-1]
        sentences.append(
            f"Forecast for {first.month:%B %Y}: {money(first.mean, currency)} ({level} % band {money(first.lower)} to "
            f"{money(first.upper)}); for {last.month:%B %Y}: {money(last.mean, currency)} ({money(last.lower)} to "
            f"{money(last.upper)})."
        )
    if anomalies:
        sentences.append(f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'} marked.")
    sentences.append("The same numbers are in the data table below the chart.")
    return " ".join(sentences)
