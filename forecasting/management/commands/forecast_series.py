"""``manage.py forecast_series FILE.csv --horizon 12 --levels 65,80,95 --format json|csv``

Reads a ``month,value`` CSV (month as ``YYYY-MM``), forecasts it with ``forecasting.engine.forecast`` and prints
one record per future month: ``month, mean, lower_65, upper_65, ...`` for the levels asked for, rounded to
two decimals. Any problem with the input is one line on stderr starting with ``forecast_series: `` and exit
code 2, so a script can tell "your file is wrong" (2) from "the command crashed" (1).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, handle_default_options
from django.db import connections

from forecasting.engine import ALLOWED_HORIZONS, ALLOWED_LEVELS, NotEnoughData, forecast

PREFIX = "forecast_series: "
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _fail(message: str) -> CommandError:
    return CommandError(PREFIX + message, returncode=2)


def read_series(path: Path) -> list[tuple[str, Decimal]]:
    """The (month, value) rows of the CSV, validated; a CommandError naming the line otherwise."""
    if not path.is_file():
        raise _fail(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in ("month", "value") if name not in header]
    if missing:
        raise _fail(f"missing column(s) {', '.join(missing)} in {path.name} (expected a header row 'month,value')")
    reader.fieldnames = header
    rows: list[tuple[str, Decimal]] = []
    seen: set[str] = set()
    for record in reader:
        line = reader.line_num
        month = (record.get("month") or "").strip()
        raw = (record.get("value") or "").strip()
        match = _MONTH.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise _fail(f"line {line}: bad month {month!r} (expected YYYY-MM)")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            raise _fail(f"line {line}: value {raw!r} is not a number")
        if month in seen:
            raise _fail(f"line {line}: duplicate month {month}")
        seen.add(month)
        rows.append((month, value))
    return rows


def parse_levels(raw: str) -> list[int]:
    allowed = ",".join(str(level) for level in ALLOWED_LEVELS)
    try:
        levels = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or any(level not in ALLOWED_LEVELS for level in levels):
        raise _fail(f"--levels must be a comma-separated subset of {allowed}, got {raw!r}")
    return sorted(set(levels))


def parse_horizon(raw: str) -> int:
    allowed = ", ".join(str(h) for h in ALLOWED_HORIZONS)
    try:
        horizon = int(raw)
    except ValueError:
        horizon = -1
    if horizon not in ALLOWED_HORIZONS:
        raise _fail(f"--horizon must be one of {allowed} (months), got {raw!r}")
    return horizon


class Command(BaseCommand):
    help = "Forecast a monthly month,value CSV with the forecasting engine (mean and bands per future month)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV with a header row and columns month (YYYY-MM) and value")
        # Strings, validated in handle(): argparse's own errors print usage plus a message (two lines).
        parser.add_argument("--horizon", default="12", help="months to forecast: 3, 6, 12 or 24 (default 12)")
        parser.add_argument("--levels", default="65,80,95", help="interval levels, any of 65,80,95 (default all)")
        parser.add_argument("--format", default="json", choices=["json", "csv"], dest="output_format")
        parser.add_argument(
            "--missing",
            default="error",
            choices=["error", "zero"],
            help="months absent from the file: an error (default) or zero spend",
        )

    def run_from_argv(self, argv: list[str]) -> None:
        """BaseCommand's, except that every failure is one ``forecast_series: ...`` line and exit code 2."""
        self._called_from_command_line = True
        parser = self.create_parser(argv[0], argv[1])
        # Make argparse raise CommandError (caught below) instead of printing usage and exiting.
        parser.called_from_command_line = False
        options = None
        try:
            options = parser.parse_args(argv[2:])
            cmd_options = vars(options)
            args = cmd_options.pop("args", ())
            handle_default_options(options)
            self.execute(*args, **cmd_options)
        except CommandError as exc:
            if options is not None and options.traceback:
                raise
            message = str(exc)
            if not message.startswith(PREFIX):
                message = PREFIX + message.removeprefix("Error: ")
            self.stderr.write(message.replace("\n", " "), style_func=lambda text: text)
            sys.exit(2)
        finally:
            connections.close_all()

    def handle(self, *args: Any, **options: Any) -> None:
        horizon = parse_horizon(str(options["horizon"]))
        levels = parse_levels(str(options["levels"]))
        rows = read_series(Path(options["file"]))
        try:
            result = forecast(rows, horizon=horizon, levels=levels, missing=options["missing"])
        except NotEnoughData as exc:
            raise _fail(str(exc)) from exc
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        fields = ["month", "mean"] + [f"{side}_{level}" for level in levels for side in ("lower", "upper")]
        records = []
        for point in result.points:
            record: dict[str, Any] = {"month": point.label, "mean": round(point.mean, 2)}
            for level in levels:
                lower, upper = point.bounds[level]
                record[f"lower_{level}"] = round(lower, 2)
                record[f"upper_{level}"] = round(upper, 2)
            records.append(record)
        if options["output_format"] == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            for record in records:
                writer.writerow({k: (v if k == "month" else f"{v:.2f}") for k, v in record.items()})
            self.stdout.write(out.getvalue(), ending="")
        else:
            self.stdout.write(json.dumps(records, indent=2))
