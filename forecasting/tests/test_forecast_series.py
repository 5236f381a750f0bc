"""``manage.py forecast_series``: output format and every bad-input case (no database needed)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from forecasting.engine import forecast

GOOD = "month,value\n" + "".join(f"2023-{m:02d},{1000 + 25 * m + (m % 3) * 40:.2f}\n" for m in range(1, 13))


def write(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("forecast_series", *args, stdout=out)
    return out.getvalue()


def test_json_output_has_one_record_per_month_with_the_asked_levels(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    records = json.loads(run(str(path), "--horizon", "6", "--levels", "95,80", "--format", "json"))
    assert len(records) == 6
    assert [r["month"] for r in records] == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    for record in records:
        assert list(record) == ["month", "mean", "lower_80", "upper_80", "lower_95", "upper_95"]
        assert record["lower_95"] <= record["lower_80"] <= record["mean"] <= record["upper_80"] <= record["upper_95"]
        assert all(round(v, 2) == v for k, v in record.items() if k != "month")


def test_output_is_exactly_the_engine_rounded(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    records = json.loads(run(str(path), "--horizon", "3", "--levels", "65"))
    rows = list(csv.reader(io.StringIO(GOOD)))[1:]
    expected = forecast([(m, float(v)) for m, v in rows], horizon=3, levels=(65,))
    assert records == [
        {
            "month": p.label,
            "mean": round(p.mean, 2),
            "lower_65": round(p.bounds[65][0], 2),
            "upper_65": round(p.bounds[65][1], 2),
        }
        for p in expected.points
    ]


def test_csv_output_has_a_header_and_two_decimals(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    text = run(str(path), "--horizon", "12", "--format", "csv")
    lines = text.splitlines()
    assert lines[0] == "month,mean,lower_65,upper_65,lower_80,upper_80,lower_95,upper_95"
    assert len(lines) == 13
    for line in lines[1:]:
        month, *numbers = line.split(",")
        assert len(month) == 7 and month[4] == "-"
        assert all(len(n.split(".")[1]) == 2 for n in numbers)


def test_missing_months_can_be_zero_filled(tmp_path: Path) -> None:
    path = write(tmp_path, "month,value\n2024-01,5\n2024-02,6\n2024-04,7\n")
    with pytest.raises(CommandError, match="missing months 2024-03"):
        run(str(path), "--horizon", "3")
    records = json.loads(run(str(path), "--horizon", "3", "--missing", "zero"))
    assert records[0]["month"] == "2024-05"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, (), "file not found"),
        ("month,amount\n2024-01,1\n2024-02,2\n2024-03,3\n", (), "missing column(s) value"),
        ("", (), "missing column(s) month, value"),
        ("month,value\n2024-1,1\n2024-02,2\n2024-03,3\n", (), "line 2: bad month '2024-1'"),
        ("month,value\n2024-01,1\n2024-13,2\n2024-03,3\n", (), "line 3: bad month '2024-13'"),
        ("month,value\n2024-01,1\n2024-02,abc\n2024-03,3\n", (), "line 3: value 'abc' is not a number"),
        ("month,value\n2024-01,1\n2024-02,\n2024-03,3\n", (), "line 3: value '' is not a number"),
        ("month,value\n2024-01,1\n2024-02,NaN\n2024-03,3\n", (), "line 3: value 'NaN' is not a number"),
        ("month,value\n2024-01,1\n2024-02,2\n2024-02,3\n", (), "line 4: duplicate month 2024-02"),
        ("month,value\n2024-01,1\n2024-02,2\n", (), "not enough data: 2 month(s)"),
        (GOOD, ("--horizon", "7"), "--horizon must be one of 3, 6, 12, 24"),
        (GOOD, ("--horizon", "twelve"), "--horizon must be one of 3, 6, 12, 24"),
        (GOOD, ("--levels", "80,90"), "--levels must be a comma-separated subset of 65,80,95"),
        (GOOD, ("--levels", "high"), "--levels must be a comma-separated subset of 65,80,95"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(
    tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "missing.csv" if content is None else write(tmp_path, content)
    with pytest.raises(CommandError) as caught:
        run(str(path), *args)
    assert caught.value.returncode == 2
    text = str(caught.value)
    assert text.startswith("forecast_series: ")
    assert message in text
    assert "\n" not in text


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    manage = Path(settings.BASE_DIR) / "manage.py"
    return subprocess.run(
        [sys.executable, str(manage), "forecast_series", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )


def test_command_line_failure_is_exit_2_and_a_single_stderr_line(tmp_path: Path) -> None:
    path = write(tmp_path, "month,value\n2024-01,1\n2024-01,2\n2024-03,3\n")
    done = _manage(str(path), "--horizon", "12")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines == ["forecast_series: line 3: duplicate month 2024-01"]


def test_command_line_usage_error_is_also_one_line(tmp_path: Path) -> None:
    done = _manage(str(write(tmp_path, GOOD)), "--format", "xml")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("forecast_series: ")
