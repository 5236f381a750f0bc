"""Cost optimisation advice: plain rules over utilisation, cost history, forecasts and anomalies.

Pure functions (their inputs come from ``forecasting.selectors.recommendation_list``). The rules are
deliberately simple and say why they fired, so a customer can check them:

- **idle resource**: average CPU below 5 % (and memory below 10 % when reported) over at least 7 of the
  last 14 days → stop or delete it; saving = its whole monthly cost.
- **low utilisation**: average CPU below 20 % (memory below 40 % when reported) → one size smaller;
  saving ≈ half its monthly cost (each size step halves the price on the major clouds).
- **fast-growing service**: the next three forecast months average ≥ 20 % above the last three actual
  months (or, without a forecast, the last three months ≥ 20 % above the three before), at ≥ 100 a month.
- **anomaly**: every spike detected in the last 30 days, with its $ and % impact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

IDLE_CPU, IDLE_MEMORY = 5.0, 10.0
LOW_CPU, LOW_MEMORY = 20.0, 40.0
RIGHTSIZE_SAVING = Decimal("0.5")
MIN_DAYS = 7
GROWTH_PERCENT = 20.0
GROWTH_MIN_MONTHLY = Decimal(100)
DAYS_PER_MONTH = Decimal("30.4")
_SEVERITY = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Recommendation:
    kind: str  # idle_resource, low_utilization, fast_growth, anomaly
    severity: str  # high, medium, low
    title: str
    detail: str
    service: str
    resource_id: str = ""
    estimated_monthly_savings: Decimal | None = None
    currency: str = ""


def _money(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}".strip()


def _monthly(cost: Decimal | None, days: int) -> Decimal | None:
    if cost is None or days <= 0:
        return None
    return (cost / days * DAYS_PER_MONTH).quantize(Decimal("0.01"))


def resource_rules(usage: Sequence[Any], *, currency: str) -> list[Recommendation]:
    out = []
    for resource in usage:
        if resource.days < MIN_DAYS:
            continue
        memory = resource.avg_memory
        monthly = _monthly(resource.cost, resource.days)
        what = f"average CPU {resource.avg_cpu:.1f} %" + (f", memory {memory:.1f} %" if memory is not None else "")
        if resource.avg_cpu < IDLE_CPU and (memory is None or memory < IDLE_MEMORY):
            out.append(
                Recommendation(
                    kind="idle_resource",
                    severity="high",
                    title=f"{resource.resource_id} looks idle",
                    detail=f"{what} over {resource.days} days. Stop or delete it if nothing needs it"
                    + (f"; it costs about {_money(monthly, currency)} a month." if monthly else "."),
                    service=resource.service,
                    resource_id=resource.resource_id,
                    estimated_monthly_savings=monthly,
                    currency=currency,
                )
            )
        elif resource.avg_cpu < LOW_CPU and (memory is None or memory < LOW_MEMORY):
            saving = (monthly * RIGHTSIZE_SAVING).quantize(Decimal("0.01")) if monthly else None
            out.append(
                Recommendation(
                    kind="low_utilization",
                    severity="medium",
                    title=f"{resource.resource_id} is over-provisioned",
                    detail=f"{what} over {resource.days} days. One size smaller would still leave headroom"
                    + (f" and save about {_money(saving, currency)} a month." if saving else "."),
                    service=resource.service,
                    resource_id=resource.resource_id,
                    estimated_monthly_savings=saving,
                    currency=currency,
                )
            )
    return out


def growth_rules(history: Any, ahead: Mapping[str, Decimal], *, currency: str) -> list[Recommendation]:
    """``ahead``: per service, the mean of its next three forecast months (absent without a forecast)."""
    out = []
    months = history.months
    if len(months) < 3:
        return out
    for service in history.services:
        values = history.series.get(service, {})
        recent = sum((values.get(m, Decimal(0)) for m in months[-3:]), Decimal(0)) / 3
        if service in ahead:
            future, base, basis = ahead[service], recent, "the next three months' forecast"
        elif len(months) >= 6:
            future = recent
            base = sum((values.get(m, Decimal(0)) for m in months[-6:-3]), Decimal(0)) / 3
            basis = "the last three months"
        else:
            continue
        if base <= 0 or future < GROWTH_MIN_MONTHLY:
            continue
        growth = float((future - base) / base * 100)
        if growth >= GROWTH_PERCENT:
            out.append(
                Recommendation(
                    kind="fast_growth",
                    severity="high" if growth >= 2 * GROWTH_PERCENT else "medium",
                    title=f"{service} is growing fast (+{growth:.0f} %)",
                    detail=f"{basis.capitalize()} average {_money(future, currency)} a month against "
                    f"{_money(base, currency)} before. Check that the growth is intended; consider "
                    "commitments (reserved capacity, savings plans) if it is.",
                    service=service,
                    currency=currency,
                )
            )
    return out


def anomaly_rules(anomalies: Sequence[Any]) -> list[Recommendation]:
    return [
        Recommendation(
            kind="anomaly",
            severity="high" if a.impact_percent >= 100 else "medium",
            title=f"Unusual spend on {a.service} ({a.get_granularity_display().lower()} of {a.date:%d %b %Y})",
            detail=f"{_money(a.actual, a.currency)} against {_money(a.expected, a.currency)} expected: "
            f"+{_money(a.impact, a.currency)} (+{a.impact_percent:.0f} %). Find what changed and whether it stays.",
            service=a.service,
            currency=a.currency,
        )
        for a in anomalies
    ]


def recommend(
    *,
    usage: Sequence[Any],
    history: Any,
    ahead: Mapping[str, Decimal],
    anomalies: Sequence[Any],
    currency: str,
) -> list[Recommendation]:
    found = [
        *resource_rules(usage, currency=currency),
        *growth_rules(history, ahead, currency=currency),
        *anomaly_rules(anomalies),
    ]
    return sorted(
        found,
        key=lambda r: (
            -(r.estimated_monthly_savings or Decimal(0)),
            _SEVERITY.get(r.severity, 9),
            r.service,
            r.resource_id,
        ),
    )
