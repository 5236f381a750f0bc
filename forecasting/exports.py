"""The forecast page as CSV, JSON and PDF (the PDF embeds the page's own SVG chart, as vectors).

PDF: reportlab draws the document and svglib turns the chart's SVG into reportlab shapes; both are
pure Python wheels (no system libraries).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from forecasting import charts, conf, periods, selectors
from forecasting.selectors import ForecastPage

CSV_FIELDS = [
    "service",
    "month",
    "kind",
    "amount",
    *[f"{side}_{level}" for level in conf.LEVELS for side in ("lower", "upper")],
    "model",
    "backtest_mape",
]


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (a service named ``=HYPERLINK(...)``)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _number(value: Decimal | float | None) -> str:
    return "" if value is None else f"{Decimal(str(value)).quantize(Decimal('0.01')):f}"


def _series_names(page: ForecastPage) -> list[str]:
    return [selectors.TOTAL, *page.history.services]


def export_csv(page: ForecastPage) -> str:
    """Long format: one row per series and month, actual months then forecast months."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for name in _series_names(page):
        label = _cell(selectors.scope_label(name))
        for month in page.history.months:
            if month in page.history.series.get(name, {}):
                writer.writerow(
                    {
                        "service": label,
                        "month": periods.label(month),
                        "kind": "actual",
                        "amount": _number(page.history.series[name][month]),
                    }
                )
        if page.history.partial_month and name in page.history.partial:
            writer.writerow(
                {
                    "service": label,
                    "month": periods.label(page.history.partial_month),
                    "kind": "month_to_date",
                    "amount": _number(page.history.partial[name]),
                }
            )
        for point in page.points_by_service.get(name, []):
            row = {
                "service": label,
                "month": periods.label(point.month),
                "kind": "forecast",
                "amount": _number(point.mean),
                "model": point.model,
                "backtest_mape": "" if point.backtest_mape is None else f"{point.backtest_mape:.2f}",
            }
            for level in conf.LEVELS:
                lower, upper = point.bounds(level)
                row[f"lower_{level}"], row[f"upper_{level}"] = _number(lower), _number(upper)
            writer.writerow(row)
    return out.getvalue()


def export_data(page: ForecastPage, *, organization: Any) -> dict[str, Any]:
    run = page.state.ready if page.ready else None
    series = []
    for name in _series_names(page):
        points = page.points_by_service.get(name, [])
        summary = selectors._summary(points[0]) if points else None
        series.append(
            {
                "service": name or None,
                "label": selectors.scope_label(name),
                "model": summary.model if summary else None,
                "backtest_mape": summary.backtest_mape if summary else None,
                "coverage": {str(k): v for k, v in summary.coverage.items()} if summary else None,
                "trend": summary.trend if summary else None,
                "history": [
                    {"month": periods.label(m), "amount": _number(v)}
                    for m, v in sorted(page.history.series.get(name, {}).items())
                ],
                "month_to_date": (
                    {"month": periods.label(page.history.partial_month), "amount": _number(page.history.partial[name])}
                    if page.history.partial_month and name in page.history.partial
                    else None
                ),
                "forecast": [
                    {
                        "month": periods.label(p.month),
                        "mean": _number(p.mean),
                        "bounds": {
                            str(level): [_number(p.bounds(level)[0]), _number(p.bounds(level)[1])]
                            for level in conf.LEVELS
                        },
                    }
                    for p in points
                ],
            }
        )
    return {
        "organization": organization.slug,
        "currency": page.currency,
        "horizon": page.horizon,
        "level": page.level,
        "service": page.service or None,
        "generated_at": run.generated_at.isoformat() if run and run.generated_at else None,
        "notes": page.notes,
        "series": series,
        "breakdown": [_breakdown(row) for row in page.breakdown],
        "total": _breakdown(page.total_row) if page.total_row else None,
        "anomalies": [
            {
                "id": str(a.public_id),
                "service": a.service,
                "granularity": a.granularity,
                "date": a.date.isoformat(),
                "actual": _number(a.actual),
                "expected": _number(a.expected),
                "impact": _number(a.impact),
                "impact_percent": a.impact_percent,
            }
            for a in page.anomalies
        ],
    }


def _breakdown(row: selectors.BreakdownRow) -> dict[str, Any]:
    return {
        "service": row.service or None,
        "last_month": _number(row.last_month),
        "previous_month": _number(row.previous_month),
        "mom_change": _number(row.mom_change),
        "mom_percent": None if row.mom_percent is None else round(row.mom_percent, 2),
        "trend": row.trend or None,
        "next_month": _number(row.next_month),
        "horizon_total": _number(row.horizon_total),
        "share_percent": None if row.share_percent is None else round(row.share_percent, 2),
    }


def page_chart(page: ForecastPage, *, fixed_size: bool = False) -> str:
    points = [charts.ForecastMark(p.month, p.mean, *p.bounds(page.level)) for p in page.points]
    history = sorted(page.history.series.get(page.service, {}).items())
    partial = None
    if page.history.partial_month and page.service in page.history.partial:
        partial = (page.history.partial_month, page.history.partial[page.service])
    marks = [
        charts.AnomalyMark(
            periods.month_start(a.date),
            f"{a.service}: {a.get_granularity_display().lower()} of {a.date:%d %b %Y}, "
            f"{charts.money(a.actual, a.currency)} vs {charts.money(a.expected)} expected (+{a.impact_percent:.0f} %)",
        )
        for a in page.anomalies
    ]
    title = f"{page.scope}: monthly spend" + (
        f" and {page.horizon}-month forecast with its {page.level} % band" if points else ""
    )
    return charts.forecast_chart(
        title=title,
        history=history,
        forecast=points,
        level=page.level,
        currency=page.currency,
        partial=partial,
        anomalies=marks,
        fixed_size=fixed_size,
        chart_id="forecast-chart-pdf" if fixed_size else "forecast-chart",
    )


def export_pdf(page: ForecastPage, *, organization: Any, generated: datetime) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
    from svglib.svglib import svg2rlg

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Cost forecast: {organization.name}",
        author="SecureBase Portal",
    )
    width = A4[0] - 30 * mm
    cur = page.currency

    def para(text: str, style: str = "BodyText") -> Paragraph:
        return Paragraph(xml_escape(text), styles[style])

    story: list[Any] = [
        para(f"Cost forecast: {organization.name}", "Title"),
        para(
            f"{page.scope} · {page.horizon}-month horizon · {page.level} % band · generated {generated:%d %b %Y %H:%M} UTC"
        ),
    ]
    summary = page.summary
    if summary:
        mape = f"{summary.backtest_mape:.1f} %" if summary.backtest_mape is not None else "not measured (short history)"
        coverage = summary.coverage.get(page.level)
        cov = f"{coverage * 100:.0f} %" if coverage is not None else "not measured"
        story.append(
            para(
                f"Model: {summary.model}. Backtest error (MAPE): {mape}. Share of backtest months inside the "
                f"{page.level} % band: {cov}. History: {summary.history_months} months. Trend: {summary.trend}."
            )
        )
    drawing = svg2rlg(io.BytesIO(page_chart(page, fixed_size=True).encode()))
    if drawing is not None:
        scale = width / drawing.width
        drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
        drawing.scale(scale, scale)
        story += [Spacer(1, 4 * mm), drawing, Spacer(1, 4 * mm)]

    grid = TableStyle(
        [
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
            ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor("#1b2330")),
            ("LINEBELOW", (0, 1), (-1, -1), 0.3, colors.HexColor("#d5dbe3")),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    points = page.points_by_service.get(page.service, [])
    if points:
        rows = [["Month", f"Forecast ({cur})", f"Lower {page.level} %", f"Upper {page.level} %"]]
        rows += [
            [
                f"{p.month:%b %Y}",
                charts.money(p.mean),
                charts.money(p.bounds(page.level)[0]),
                charts.money(p.bounds(page.level)[1]),
            ]
            for p in points
        ]
        story += [para(f"Forecast: {page.scope}", "Heading2"), Table(rows, repeatRows=1, style=grid, hAlign="LEFT")]
    if page.breakdown:
        last = page.history.last_month
        rows = [["Service", f"{last:%b %Y}" if last else "Last month", "MoM", "Trend", f"Next {page.horizon} mo."]]
        for row in [*page.breakdown, page.total_row]:
            if row is None:
                continue
            rows.append(
                [
                    Paragraph(xml_escape(selectors.scope_label(row.service)), styles["BodyText"]),
                    charts.money(row.last_month),
                    "–" if row.mom_percent is None else f"{row.mom_percent:+.1f} %",
                    row.trend or "–",
                    charts.money(row.horizon_total),
                ]
            )
        story += [
            Spacer(1, 4 * mm),
            para(f"Breakdown by service ({cur})", "Heading2"),
            Table(rows, repeatRows=1, style=grid, hAlign="LEFT", colWidths=[width * 0.4, None, None, None, None]),
        ]
    if page.anomalies:
        rows = [["Date", "Service", "Actual", "Expected", "Impact"]]
        rows += [
            [
                f"{a.date:%d %b %Y}" if a.granularity == "daily" else f"{a.date:%b %Y}",
                Paragraph(xml_escape(a.service), styles["BodyText"]),
                charts.money(a.actual),
                charts.money(a.expected),
                f"+{charts.money(a.impact)} (+{a.impact_percent:.0f} %)",
            ]
            for a in page.anomalies[:25]
        ]
        story += [
            Spacer(1, 4 * mm),
            para(f"Anomalies ({cur})", "Heading2"),
            Table(rows, repeatRows=1, style=grid, hAlign="LEFT", colWidths=[None, width * 0.35, None, None, None]),
        ]
    if not points and not page.breakdown:
        story.append(para("No forecast yet: it appears once cost data covers at least three complete months."))
    doc.build(story)
    return buffer.getvalue()
