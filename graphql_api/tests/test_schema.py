"""docs/schema.graphql is the schema: a change to one without the other fails here."""

import pytest
from django.core.management import CommandError, call_command

from graphql_api.management.commands.graphql_schema import SCHEMA_PATH, schema_sdl


def test_the_exported_schema_matches_the_code():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_sdl(), (
        "docs/schema.graphql drifted: run `python manage.py graphql_schema` and commit it."
    )


def test_the_check_command_fails_on_drift(tmp_path):
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { old: Int }\n")
    with pytest.raises(CommandError, match="out of date"):
        call_command("graphql_schema", "--check", "--path", str(stale))
    call_command("graphql_schema", "--path", str(stale))
    call_command("graphql_schema", "--check", "--path", str(stale))
