"""Recommendation rules on plain inputs, and the chart's SVG on its own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from xml.etree import ElementTree

from forecasting import charts, recommendations
from forecasting.selectors import History, ResourceUsage


def usage(resource, cpu, memory=None, cost="140", days=14):
    return ResourceUsage(resource, "EC2", days, cpu, memory, Decimal(cost) if cost else None)


def test_idle_and_over_provisioned_resources():
    found = recommendations.resource_rules(
        [usage("i-idle", 2.0, 5.0), usage("i-small", 12.0), usage("i-busy", 70.0), usage("i-new", 1.0, days=3)],
        currency="USD",
    )
    assert [(r.kind, r.resource_id) for r in found] == [("idle_resource", "i-idle"), ("low_utilization", "i-small")]
    assert found[0].estimated_monthly_savings == Decimal("304.00")  # 140 over 14 days, a 30.4-day month
    assert found[1].estimated_monthly_savings == Decimal("152.00")


def test_memory_keeps_a_low_cpu_resource_off_the_list():
    assert recommendations.resource_rules([usage("i-cache", 3.0, 85.0)], currency="USD") == []


def test_fast_growth_from_the_forecast_or_the_history():
    months = [date(2026, m, 1) for m in range(1, 11)]
    growing = {m: Decimal(100 * 1.1**i) for i, m in enumerate(months)}
    flat = dict.fromkeys(months, Decimal(500))
    history = History(
        currency="USD", months=months, series={"Lambda": growing, "RDS": flat}, services=["RDS", "Lambda"]
    )
    found = recommendations.growth_rules(history, {}, currency="USD")
    assert [r.service for r in found] == ["Lambda"]
    assert [r.service for r in recommendations.growth_rules(history, {"RDS": Decimal(900)}, currency="USD")] == [
        "RDS",
        "Lambda",
    ]


def test_recommendations_are_ordered_by_saving():
    history = History(currency="USD", months=[], series={})
    found = recommendations.recommend(
        usage=[usage("i-small", 12.0, cost="1400"), usage("i-idle", 1.0)],
        history=history,
        ahead={},
        anomalies=[],
        currency="USD",
    )
    assert [r.resource_id for r in found] == ["i-small", "i-idle"]


def test_chart_svg_is_well_formed_and_escapes_names():
    svg = charts.forecast_chart(
        title='<script>alert("x")</script> & co',
        history=[(date(2026, m, 1), Decimal(100 + m)) for m in range(1, 11)],
        forecast=[charts.ForecastMark(date(2026, 11, 1), Decimal(111), Decimal(100), Decimal(120))],
        level=80,
        currency="EUR",
        anomalies=[charts.AnomalyMark(date(2026, 5, 1), "spike <b>")],
        fixed_size=True,
    )
    root = ElementTree.fromstring(str(svg))  # noqa: S314 - our own SVG
    assert root.get("width") == "800" and "<script>" not in str(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text.startswith('<script>alert("x")</script>')  # text, not markup
    assert len(root.findall(f".//{ns}polygon[@class='chart-anomaly']")) == 1


def test_empty_chart_says_so():
    assert "No data yet" in charts.forecast_chart(title="t", history=[], forecast=[], level=80, currency="USD")


def test_nice_ticks():
    assert charts.nice_ticks(0, 23_000) == [0, 5000, 10000, 15000, 20000, 25000]
    assert charts.compact(25_000) == "25k" and charts.compact(1_500_000) == "1.5M" and charts.compact(0.5) == "0.5"
