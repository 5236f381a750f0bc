"""Write the GraphQL schema to docs/schema.graphql (or, with --check, fail if it drifted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "schema.graphql"


def schema_sdl() -> str:
    from graphql_api.schema import schema

    return schema.as_str() + "\n"


class Command(BaseCommand):
    help = "Export the GraphQL schema (SDL) to docs/schema.graphql."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the file differs from the schema.")
        parser.add_argument("--path", default=str(SCHEMA_PATH))

    def handle(self, *args: Any, check: bool, path: str, **options: Any) -> None:
        target = Path(path)
        sdl = schema_sdl()
        if check:
            current = target.read_text(encoding="utf-8") if target.exists() else ""
            if current != sdl:
                raise CommandError(f"{target} is out of date: run `python manage.py graphql_schema`.")
            self.stdout.write(f"{target} is up to date.")
            return
        target.write_text(sdl, encoding="utf-8")
        self.stdout.write(f"Wrote {target}.")
