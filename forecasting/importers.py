"""Cost and utilisation files → rows aggregated to their natural keys. Pure parsing: no database.

Formats, recognised by their header row (extra columns are ignored):

- **FOCUS 1.x** (FinOps Open Cost and Usage Specification): ``ChargePeriodStart``, ``ServiceName``,
  ``BilledCost``, ``BillingCurrency``; optional ``SubAccountId``, ``RegionId`` (``Region`` in 1.0-preview),
  ``ChargeCategory``.
- **AWS Cost and Usage Report**, legacy CSV (``lineItem/UsageStartDate``, ``lineItem/ProductCode``,
  ``lineItem/UnblendedCost``, ``lineItem/CurrencyCode``; optional ``lineItem/UsageAccountId``,
  ``product/region``, ``lineItem/LineItemType``) or CUR 2.0 with the same columns in snake_case
  (``line_item_usage_start_date``, ..., ``product_region_code``).
- **Utilisation** (ours): ``date``, ``service``, ``resource_id``, ``avg_cpu_percent``; optional
  ``avg_memory_percent``, ``account``, ``region``, ``cost``.

Files may be gzip-compressed (CUR exports usually are). A file is accepted whole or not at all: every bad
row is reported with its line number and reason, and nothing is returned to write.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO

from forecasting.models import ACCOUNT_MAX, REGION_MAX, RESOURCE_MAX, SERVICE_MAX

FOCUS = "focus"
AWS_CUR = "aws_cur"
UTILIZATION = "utilization"
FORMAT_LABELS = {FOCUS: "FOCUS 1.x", AWS_CUR: "AWS Cost and Usage Report", UTILIZATION: "Resource utilisation"}

MAX_AMOUNT = Decimal("1e12")
SIX_PLACES = Decimal("0.000001")
TWO_PLACES = Decimal("0.01")
PROGRESS_EVERY = 5000  # lines
# A gzip file may expand to at most this many times the upload limit (a "zip bomb" is a file error).
MAX_EXPANSION = 20
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Only these kinds of line may carry a negative amount; a negative usage charge is a broken export.
FOCUS_NEGATIVE_OK = {"credit", "adjustment"}
CUR_NEGATIVE_OK = {
    "credit",
    "refund",
    "edpdiscount",
    "bundleddiscount",
    "privateratediscount",
    "distributordiscount",
    "sppdiscount",
    "savingsplannegation",
    "riveeecredit",
}


class FileRejected(ValueError):
    """The file as a whole cannot be read (empty, unknown format, not text, too large)."""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "message": self.message}


@dataclass(frozen=True)
class Utilization:
    service: str
    account: str
    region: str
    avg_cpu_percent: Decimal
    avg_memory_percent: Decimal | None
    cost: Decimal | None


CostKey = tuple[date, str, str, str]  # date, service, account, region


@dataclass
class Parsed:
    format: str
    currency: str = ""
    costs: dict[CostKey, Decimal] = field(default_factory=dict)
    utilization: dict[tuple[date, str], Utilization] = field(default_factory=dict)
    lines: int = 0  # data lines read
    first_date: date | None = None
    last_date: date | None = None
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def row_count(self) -> int:
        return len(self.costs) if self.format != UTILIZATION else len(self.utilization)


@dataclass(frozen=True)
class _Column:
    names: tuple[str, ...]  # accepted spellings, compared case-insensitively
    required: bool = True


@dataclass(frozen=True)
class _Layout:
    format: str
    columns: dict[str, _Column]

    def resolve(self, header: list[str]) -> tuple[dict[str, int], list[str]]:
        """Column positions by role, and the required columns that are missing."""
        positions = {name.strip().lower(): i for i, name in enumerate(header)}
        found: dict[str, int] = {}
        missing: list[str] = []
        for role, column in self.columns.items():
            index = next((positions[n.lower()] for n in column.names if n.lower() in positions), None)
            if index is not None:
                found[role] = index
            elif column.required:
                missing.append(column.names[0])
        return found, missing


LAYOUTS = (
    _Layout(
        FOCUS,
        {
            "date": _Column(("ChargePeriodStart",)),
            "service": _Column(("ServiceName",)),
            "amount": _Column(("BilledCost",)),
            "currency": _Column(("BillingCurrency",)),
            "account": _Column(("SubAccountId",), required=False),
            "region": _Column(("RegionId", "Region"), required=False),
            "kind": _Column(("ChargeCategory",), required=False),
        },
    ),
    _Layout(
        AWS_CUR,
        {
            "date": _Column(("lineItem/UsageStartDate", "line_item_usage_start_date")),
            "service": _Column(("lineItem/ProductCode", "line_item_product_code")),
            "amount": _Column(("lineItem/UnblendedCost", "line_item_unblended_cost")),
            "currency": _Column(("lineItem/CurrencyCode", "line_item_currency_code")),
            "account": _Column(("lineItem/UsageAccountId", "line_item_usage_account_id"), required=False),
            "region": _Column(("product/region", "product_region_code", "product_region"), required=False),
            "kind": _Column(("lineItem/LineItemType", "line_item_line_item_type"), required=False),
        },
    ),
    _Layout(
        UTILIZATION,
        {
            "date": _Column(("date",)),
            "service": _Column(("service",)),
            "resource": _Column(("resource_id",)),
            "cpu": _Column(("avg_cpu_percent",)),
            "memory": _Column(("avg_memory_percent",), required=False),
            "account": _Column(("account",), required=False),
            "region": _Column(("region",), required=False),
            "cost": _Column(("cost",), required=False),
        },
    ),
)
# The column that says which format a header is trying to be (for a precise "missing column" message).
_SIGNATURES = {FOCUS: ("chargeperiodstart", "billedcost", "servicename", "billingcurrency")}
_SIGNATURES[AWS_CUR] = ("lineitem/", "line_item_")
_SIGNATURES[UTILIZATION] = ("resource_id", "avg_cpu_percent")


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from ``raw`` (for the progress bar) and refuses to read past ``limit``."""

    def __init__(self, raw: IO[bytes], *, limit: int | None = None) -> None:
        self.raw, self.count, self.limit = raw, 0, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise FileRejected("The file expands to more than the size limit once decompressed.")
        return n


def detect(header: list[str]) -> _Layout:
    """The layout a header row belongs to, or FileRejected naming what is missing."""
    lowered = [h.strip().lower() for h in header]
    for layout in LAYOUTS:
        if not layout.resolve(header)[1]:
            return layout
    for layout in LAYOUTS:
        if any(h.startswith(sig) or h == sig for h in lowered for sig in _SIGNATURES[layout.format]):
            missing = layout.resolve(header)[1]
            raise FileRejected(
                f"This looks like a {FORMAT_LABELS[layout.format]} file but the column(s) "
                f"{', '.join(missing)} are missing from the header row."
            )
    shown = ", ".join(h for h in header[:8] if h) or "(none)"
    raise FileRejected(
        "Unrecognised file: expected a FOCUS 1.x export (ChargePeriodStart, ServiceName, BilledCost, "
        "BillingCurrency, ...), an AWS Cost and Usage Report (lineItem/UsageStartDate, lineItem/ProductCode, "
        "lineItem/UnblendedCost, ...) or a utilisation file (date, service, resource_id, avg_cpu_percent). "
        f"The header row has: {shown}."
    )


def parse_day(raw: str) -> date:
    """A charge period start as a UTC day: ISO dates and date-times with or without an offset."""
    text = raw.strip()
    if not text:
        raise ValueError("the date is empty")
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (expected ISO 8601, e.g. 2025-01-31T00:00:00Z)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def parse_amount(raw: str, *, column: str) -> Decimal:
    text = raw.strip()
    if not text:
        raise ValueError(f"{column} is empty")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column} {raw!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{column} {raw!r} is not a finite number")
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError(f"{column} {raw!r} is implausibly large")
    return amount


def _text(row: list[str], index: int | None, *, limit: int, label: str, required: bool = False) -> str:
    value = row[index].strip() if index is not None and index < len(row) else ""
    if required and not value:
        raise ValueError(f"{label} is empty")
    if len(value) > limit:
        raise ValueError(f"{label} is longer than {limit} characters")
    return value


def _open_text(stream: IO[bytes], *, max_bytes: int) -> tuple[_CountingReader, io.TextIOWrapper]:
    counter = _CountingReader(stream, limit=max_bytes)
    buffered = io.BufferedReader(counter)
    source: IO[bytes] = buffered
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        source = io.BufferedReader(_CountingReader(gzip.GzipFile(fileobj=buffered), limit=max_bytes * MAX_EXPANSION))
    return counter, io.TextIOWrapper(source, encoding="utf-8-sig", newline="")


def parse(
    stream: IO[bytes],
    *,
    today: date,
    max_bytes: int,
    max_errors: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> Parsed:
    """Read a whole cost or utilisation file; rows aggregated, or every problem reported.

    ``progress(bytes_read, lines)`` is called every few thousand lines. Raises FileRejected for problems
    with the file as a whole; row problems are in ``Parsed.errors`` (at most ``max_errors`` of them, all
    counted in ``error_count``).
    """
    counter, text = _open_text(stream, max_bytes=max_bytes)
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise FileRejected("The file is empty: expected a header row and at least one data row.")
        layout = detect(header)
        columns, _ = layout.resolve(header)
        result = Parsed(format=layout.format)
        latest = today + timedelta(days=1)  # a provider a timezone ahead may already bill "tomorrow"
        previous_end = reader.line_num
        for row in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            result.lines += 1
            try:
                if any("\x00" in cell for cell in row):
                    raise ValueError("the line contains NUL bytes (binary data, not text)")
                if layout.format == UTILIZATION:
                    _utilization_row(result, row, columns, latest=latest)
                else:
                    _cost_row(result, row, columns, latest=latest)
            except ValueError as exc:
                result.error_count += 1
                if len(result.errors) < max_errors:
                    result.errors.append(RowError(line, str(exc)))
            if progress is not None and result.lines % PROGRESS_EVERY == 0:
                progress(counter.count, result.lines)
    except UnicodeDecodeError:
        raise FileRejected(
            f"The file is not UTF-8 text (around line {reader.line_num + 1}); export it as CSV in UTF-8."
        ) from None
    except csv.Error as exc:
        raise FileRejected(f"Line {reader.line_num}: the CSV cannot be read ({exc}).") from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise FileRejected(f"The compressed file is damaged or truncated ({exc}).") from None
    if result.lines == 0:
        raise FileRejected("The file has a header row but no data rows.")
    if progress is not None:
        progress(counter.count, result.lines)
    if result.format != UTILIZATION:
        result.costs = {k: v.quantize(SIX_PLACES) for k, v in result.costs.items()}
    return result


def _check_day(day: date, *, latest: date) -> date:
    from forecasting.conf import EARLIEST_DATE

    if day < EARLIEST_DATE or day > latest:
        raise ValueError(
            f"date {day.isoformat()} is out of range ({EARLIEST_DATE.isoformat()} to {latest.isoformat()})"
        )
    return day


def _span(result: Parsed, day: date) -> None:
    if result.first_date is None or day < result.first_date:
        result.first_date = day
    if result.last_date is None or day > result.last_date:
        result.last_date = day


def _cost_row(result: Parsed, row: list[str], columns: dict[str, int], *, latest: date) -> None:
    focus = result.format == FOCUS
    date_label = "ChargePeriodStart" if focus else "lineItem/UsageStartDate"
    amount_label = "BilledCost" if focus else "lineItem/UnblendedCost"
    problems: list[str] = []
    day = amount = None
    try:
        day = _check_day(parse_day(_text(row, columns["date"], limit=40, label=date_label)), latest=latest)
    except ValueError as exc:
        problems.append(f"{date_label}: {exc}")
    try:
        amount = parse_amount(_text(row, columns["amount"], limit=60, label=amount_label), column=amount_label)
    except ValueError as exc:
        problems.append(str(exc))
    service = account = region = ""
    try:
        service = _text(row, columns["service"], limit=SERVICE_MAX, label="service name", required=True)
        account = _text(row, columns.get("account"), limit=ACCOUNT_MAX, label="account id")
        region = _text(row, columns.get("region"), limit=REGION_MAX, label="region")
    except ValueError as exc:
        problems.append(str(exc))
    index = columns["currency"]
    currency = (row[index].strip() if index < len(row) else "").upper()
    if not _CURRENCY.match(currency):
        shown = currency[:20] + ("..." if len(currency) > 20 else "")
        problems.append(f"currency {shown!r} is not a three-letter ISO 4217 code" if currency else "currency is empty")
    elif result.currency and currency != result.currency:
        problems.append(f"currency {currency} differs from {result.currency} used earlier in the file")
    if amount is not None and amount < 0:
        kind = _text(row, columns.get("kind"), limit=60, label="charge category")
        allowed = FOCUS_NEGATIVE_OK if focus else CUR_NEGATIVE_OK
        if kind.lower().replace(" ", "") not in allowed:
            what = f"a {kind} line" if kind else "a line without a charge category"
            problems.append(f"negative amount {amount} on {what} (only credits, refunds and discounts can be negative)")
    if problems:
        raise ValueError("; ".join(problems))
    if not result.currency:
        result.currency = currency
    key = (day, service, account, region)
    result.costs[key] = result.costs.get(key, Decimal(0)) + amount
    _span(result, day)


def _percent(raw: str, *, label: str, required: bool) -> Decimal | None:
    text = raw.strip()
    if not text:
        if required:
            raise ValueError(f"{label} is empty")
        return None
    value = parse_amount(text, column=label)
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError(f"{label} {raw!r} is not between 0 and 100")
    return value.quantize(TWO_PLACES)


def _utilization_row(result: Parsed, row: list[str], columns: dict[str, int], *, latest: date) -> None:
    problems: list[str] = []

    def cell(role: str) -> str:
        index = columns.get(role)
        return row[index] if index is not None and index < len(row) else ""

    day = resource = None
    values: dict[str, object] = {}
    try:
        day = _check_day(parse_day(cell("date")), latest=latest)
    except ValueError as exc:
        problems.append(f"date: {exc}")
    for role, label, limit, required in (
        ("service", "service", SERVICE_MAX, True),
        ("resource", "resource_id", RESOURCE_MAX, True),
        ("account", "account", ACCOUNT_MAX, False),
        ("region", "region", REGION_MAX, False),
    ):
        try:
            values[role] = _text(row, columns.get(role), limit=limit, label=label, required=required)
        except ValueError as exc:
            problems.append(str(exc))
    for role, label, required in (("cpu", "avg_cpu_percent", True), ("memory", "avg_memory_percent", False)):
        try:
            values[role] = _percent(cell(role), label=label, required=required)
        except ValueError as exc:
            problems.append(str(exc))
    cost = None
    if cell("cost").strip():
        try:
            cost = parse_amount(cell("cost"), column="cost")
            if cost < 0:
                problems.append(f"cost {cost} is negative")
        except ValueError as exc:
            problems.append(str(exc))
    resource = values.get("resource")
    if day is not None and resource and (day, resource) in result.utilization:
        problems.append(f"resource {resource} appears twice for {day.isoformat()}")
    if problems:
        raise ValueError("; ".join(problems))
    result.utilization[(day, resource)] = Utilization(
        service=values["service"],
        account=values["account"],
        region=values["region"],
        avg_cpu_percent=values["cpu"],
        avg_memory_percent=values["memory"],
        cost=cost.quantize(SIX_PLACES) if cost is not None else None,
    )
    _span(result, day)
