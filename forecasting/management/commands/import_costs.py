"""``manage.py import_costs FILE --org SLUG``: import a FOCUS, AWS CUR or utilisation file, with a progress bar.

The same importer as the upload page and the API: the whole file is checked first, and a file with
bad rows is rejected whole (exit code 2, one ``line N: reason`` per problem on stderr). Forecasts and
anomaly checks are then requested from the workers, as after an upload.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from forecasting import services
from forecasting.models import CostImport
from portal.models import Organization


class ProgressBar:
    """``[#####-----]  48 %  120,000 lines`` redrawn in place on a terminal, every 10 % otherwise."""

    WIDTH = 30

    def __init__(self, stream: Any, total: int, *, enabled: bool = True) -> None:
        self.stream, self.total, self.enabled = stream, max(total, 1), enabled
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_step, self.last_draw = -1, 0.0

    def __call__(self, done: int, lines: int) -> None:
        if not self.enabled:
            return
        percent = min(100, int(done * 100 / self.total))
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw < 0.1 and percent < 100:
                return
            self.last_draw = now
            filled = self.WIDTH * percent // 100
            self.stream.write(f"\r[{'#' * filled}{'-' * (self.WIDTH - filled)}] {percent:3d} %  {lines:,} lines")
            self.stream.flush()
        elif percent // 10 > self.last_step:
            self.last_step = percent // 10
            self.stream.write(f"{percent:3d} %  {lines:,} lines\n")

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


class Command(BaseCommand):
    help = "Import a FOCUS 1.x, AWS Cost and Usage Report or utilisation CSV (optionally .gz) for one organization."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the CSV (or .csv.gz) file")
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {options['org']!r}.", returncode=2)
        if not path.is_file():
            raise CommandError(f"File not found: {path}", returncode=2)
        size = os.path.getsize(path)
        # The raw stream: OutputWrapper would end every redraw with a newline.
        bar = ProgressBar(self.stderr._out, size, enabled=not options["no_progress"])
        started = time.monotonic()
        try:
            with path.open("rb") as handle:
                result = services.cost_import_submit(
                    organization=organization,
                    user=None,
                    file=handle,
                    filename=path.name,
                    size=size,
                    source=CostImport.Source.COMMAND,
                    inline=True,
                    progress=bar,
                )
        except ValidationError as exc:
            bar.finish()
            raise CommandError("; ".join(exc.messages), returncode=2) from None
        bar.finish()
        if result.status != CostImport.Status.SUCCEEDED:
            for error in result.errors:
                prefix = f"line {error['line']}: " if error.get("line") else ""
                self.stderr.write(f"{prefix}{error['message']}")
            more = result.error_count - len(result.errors)
            if more > 0:
                self.stderr.write(f"... and {more} more problem{'s' if more != 1 else ''}")
            raise CommandError(
                f"{path.name} rejected: {result.error_count} problem{'s' if result.error_count != 1 else ''}; nothing was imported.",
                returncode=2,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {path.name} ({result.format}) into {organization.slug}: {result.rows_written:,} rows from "
                f"{result.lines_processed:,} lines, {result.first_date} to {result.last_date}, "
                f"in {time.monotonic() - started:.1f} s."
            )
        )
