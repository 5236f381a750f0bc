"""The file parsers on small samples in each real format (no database)."""

from __future__ import annotations

import gzip
import io
from datetime import date
from decimal import Decimal

import pytest

from forecasting import importers
from forecasting.tests.conftest import SAMPLES

TODAY = date(2026, 11, 25)


def parse(data: bytes, **kwargs):
    return importers.parse(io.BytesIO(data), today=TODAY, max_bytes=10_000_000, **kwargs)


def test_focus_export_is_aggregated_to_day_service_account_region():
    parsed = parse((SAMPLES / "focus_1_0.csv").read_bytes())
    assert parsed.ok and parsed.format == "focus" and parsed.currency == "USD"
    assert parsed.lines == 6
    ec2 = "Amazon Elastic Compute Cloud"
    # Two half-day rows of the same instance add up; the credit is netted against the next day.
    assert parsed.costs[(date(2025, 1, 1), ec2, "210987654321", "eu-west-1")] == Decimal("25.000000")
    assert parsed.costs[(date(2025, 1, 2), ec2, "210987654321", "eu-west-1")] == Decimal("20.000000")
    assert parsed.costs[
        (date(2025, 1, 2), "Amazon Relational Database Service", "345678901234", "us-east-1")
    ] == Decimal("7.75")
    assert (parsed.first_date, parsed.last_date) == (date(2025, 1, 1), date(2025, 1, 2))


def test_aws_cur_hourly_lines_become_daily_rows_with_tax_and_credits():
    parsed = parse((SAMPLES / "aws_cur.csv").read_bytes())
    assert parsed.ok and parsed.format == "aws_cur" and parsed.currency == "USD"
    assert parsed.costs[(date(2025, 1, 1), "AmazonEC2", "222222222222", "eu-west-1")] == Decimal("0.214")
    assert parsed.costs[(date(2025, 1, 1), "AmazonS3", "222222222222", "eu-west-1")] == Decimal("0.0736")
    # Tax and credit lines carry no region; scientific notation is a number like any other.
    assert parsed.costs[(date(2025, 1, 2), "AmazonEC2", "222222222222", "")] == Decimal("0.03")
    assert parsed.costs[(date(2025, 1, 2), "AmazonEC2", "222222222222", "eu-west-1")] == Decimal("0.107")


def test_cur_2_snake_case_headers_and_gzip_are_recognised():
    text = (
        "line_item_usage_start_date,line_item_product_code,line_item_unblended_cost,line_item_currency_code,"
        "line_item_usage_account_id,product_region_code\n"
        "2025-03-01T05:00:00.000Z,AmazonEC2,1.5,USD,1234,us-east-1\n"
        "2025-03-01T06:00:00.000Z,AmazonEC2,2.5,USD,1234,us-east-1\n"
    )
    parsed = parse(gzip.compress(text.encode()))
    assert parsed.format == "aws_cur"
    assert parsed.costs == {(date(2025, 3, 1), "AmazonEC2", "1234", "us-east-1"): Decimal("4")}


def test_utilisation_file():
    parsed = parse((SAMPLES / "utilization.csv").read_bytes())
    assert parsed.ok and parsed.format == "utilization"
    row = parsed.utilization[(date(2025, 1, 2), "i-0a1b2c3d")]
    assert row.avg_cpu_percent == Decimal("1.90") and row.avg_memory_percent is None and row.cost == Decimal("25")


def test_charge_period_start_is_taken_in_utc():
    text = "ChargePeriodStart,ServiceName,BilledCost,BillingCurrency\n2025-01-01T23:30:00-02:00,Compute,1,EUR\n"
    assert list(parse(text.encode()).costs) == [(date(2025, 1, 2), "Compute", "", "")]


def test_a_bom_and_extra_columns_are_fine():
    text = "\ufeffChargePeriodStart,ServiceName,BilledCost,BillingCurrency,x-Custom\n2025-01-01,Compute,1,EUR,zz\n"
    assert parse(text.encode()).ok


FOCUS_HEAD = "ChargePeriodStart,ServiceName,BilledCost,BillingCurrency,ChargeCategory\n"


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        ("2025-01-01,Compute,abc,USD,Usage\n", 2, "BilledCost 'abc' is not a number"),
        ("2025-01-01,Compute,-3.00,USD,Usage\n", 2, "negative amount -3.00 on a Usage line"),
        ("1999-12-31,Compute,1,USD,Usage\n", 2, "out of range"),
        ("2027-01-01,Compute,1,USD,Usage\n", 2, "out of range"),
        ("01/02/2025,Compute,1,USD,Usage\n", 2, "is not a date"),
        ("2025-01-01,,1,USD,Usage\n", 2, "service name is empty"),
        ("2025-01-01,Compute,1,usd dollars,Usage\n", 2, "not a three-letter ISO 4217 code"),
        ("2025-01-01,Compute,1,USD,Usage\n2025-01-02,Compute,1,EUR,Usage\n", 3, "currency EUR differs from USD"),
        ("2025-01-01,Compute,NaN,USD,Usage\n", 2, "not a finite number"),
        ("2025-01-01,Compute,1e15,USD,Usage\n", 2, "implausibly large"),
        ("\n\n2025-01-01,Compute,x,USD,Usage\n", 4, "is not a number"),
        ("2025-01-01,Com\x00pute,1,USD,Usage\n", 2, "NUL bytes"),
    ],
)
def test_bad_rows_are_reported_with_their_line_number(rows, line, message):
    parsed = parse((FOCUS_HEAD + rows).encode())
    assert not parsed.ok
    assert parsed.errors[0].line == line
    assert message in parsed.errors[0].message


def test_every_bad_row_is_counted_but_the_report_is_capped():
    rows = "".join(f"2025-01-01,Compute,x{i},USD,Usage\n" for i in range(30))
    parsed = parse((FOCUS_HEAD + rows).encode(), max_errors=5)
    assert parsed.error_count == 30 and len(parsed.errors) == 5
    assert [e.line for e in parsed.errors] == [2, 3, 4, 5, 6]


def test_negative_credits_are_allowed_and_quoted_multiline_fields_keep_line_numbers():
    text = FOCUS_HEAD + '2025-01-01,"Compute\nservice",-2,USD,Credit\n2025-01-01,Compute,bad,USD,Usage\n'
    parsed = parse(text.encode())
    assert parsed.error_count == 1 and parsed.errors[0].line == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"\n\n", "The file is empty"),
        (FOCUS_HEAD.encode(), "no data rows"),
        (b"date,amount\n2025-01-01,3\n", "Unrecognised file"),
        (b"ChargePeriodStart,ServiceName,BilledCost\n2025-01-01,x,1\n", "BillingCurrency are missing"),
        (b"lineItem/UsageStartDate,lineItem/ProductCode\n2025-01-01,x\n", "looks like a AWS Cost and Usage Report"),
        (FOCUS_HEAD.encode() + "2025-01-01,Caf\xe9,1,USD,Usage\n".encode("latin-1"), "not UTF-8"),
        (b"\x1f\x8b\x08\x00garbage", "damaged"),
    ],
)
def test_unreadable_files_are_rejected_as_a_whole(data, message):
    with pytest.raises(importers.FileRejected, match=message):
        parse(data)


def test_a_gzip_bomb_is_refused():
    bomb = gzip.compress(FOCUS_HEAD.encode() + b"2025-01-01,Compute,1,USD,Usage\n" * 20_000)
    with pytest.raises(importers.FileRejected, match="expands"):
        importers.parse(io.BytesIO(bomb), today=TODAY, max_bytes=len(bomb) // importers.MAX_EXPANSION)


def test_utilisation_rows_are_checked():
    text = (
        "date,service,resource_id,avg_cpu_percent,avg_memory_percent,cost\n"
        "2025-01-01,EC2,i-1,120,10,1\n"
        "2025-01-01,EC2,i-2,10,,-4\n"
        "2025-01-01,EC2,i-3,10,,\n"
        "2025-01-01,EC2,i-3,11,,\n"
    )
    parsed = parse(text.encode())
    assert [(e.line, e.message) for e in parsed.errors] == [
        (2, "avg_cpu_percent '120' is not between 0 and 100"),
        (3, "cost -4 is negative"),
        (5, "resource i-3 appears twice for 2025-01-01"),
    ]


def test_progress_is_reported_in_bytes_and_lines():
    rows = "".join(f"2025-01-01,Service {i % 7},1.5,USD,Usage\n" for i in range(12_000))
    data = (FOCUS_HEAD + rows).encode()
    seen = []
    parse(data, progress=lambda done, lines: seen.append((done, lines)))
    assert seen[-1] == (len(data), 12_000)
    assert [lines for _, lines in seen[:2]] == [5000, 10000]
