"""Hand-written joins for the lookups every request makes, built once from the models' metadata.

Compiling a ``select_related`` query through the ORM costs about a millisecond of CPU per call
here, and the session's user with their memberships (every page) and an API token with its
membership (every API request and token socket) are the same query every time. A ``Join`` writes
that SELECT once per database, from the models' own table and column names, all quoted, with the
values as parameters. It loads each row's models with ``Model.from_db``, as ``select_related``
loads them, and links them through their foreign keys (ADR 0018).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model


@dataclass(frozen=True)
class Join:
    sql: str
    loaded: tuple[tuple[type[Model], tuple[str, ...]], ...]
    links: tuple[tuple[int, str, int], ...]  # (object index, foreign key name, target object index)

    def rows(self, db: str, params: Sequence[Any]) -> list[list[Model]]:
        """The models of each row, in the order they were named, linked to each other."""
        with connections[db].cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        result = []
        for row in fetched:
            objects, start = [], 0
            for model, attnames in self.loaded:
                objects.append(model.from_db(db, attnames, row[start : start + len(attnames)]))
                start += len(attnames)
            for source, name, target in self.links:
                setattr(objects[source], name, objects[target])
            result.append(objects)
        return result


def build(
    db: str,
    base: tuple[str, type[Model]],
    joins: Sequence[tuple[str, type[Model], str, str]],
    where: Sequence[tuple[str, str, str]],
    order_by: Sequence[tuple[str, str]] = (),
) -> Join:
    """``base`` is (alias, model); each join is (alias, model, from alias, foreign key name on the
    from model); ``where`` items are (alias, field name, ``"= %s"`` or ``"IS NULL"``), ANDed;
    ``order_by`` items are (alias, field name)."""
    quote = connections[db].ops.quote_name
    models = {base[0]: base[1], **{alias: model for alias, model, _, _ in joins}}
    aliases = list(models)
    if not all(alias.isidentifier() for alias in aliases):
        raise ValueError("aliases are plain identifiers")

    def column(alias: str, field: str) -> str:
        return f"{alias}.{quote(models[alias]._meta.get_field(field).column)}"

    fields = {alias: model._meta.concrete_fields for alias, model in models.items()}
    select = ", ".join(f"{alias}.{quote(f.column)}" for alias in aliases for f in fields[alias])
    # Identifiers only: quoted names from the models' metadata and the aliases checked above.
    parts = [f"SELECT {select} FROM {quote(base[1]._meta.db_table)} {base[0]}"]  # noqa: S608
    links = []
    for alias, model, from_alias, fk in joins:
        parts.append(
            f"JOIN {quote(model._meta.db_table)} {alias} ON {alias}.{quote(model._meta.pk.column)} = {column(from_alias, fk)}"
        )
        links.append((aliases.index(from_alias), fk, aliases.index(alias)))
    allowed = ("= %s", "IS NULL")
    if any(op not in allowed for _, _, op in where):
        raise ValueError(f"where operators are {allowed}")
    parts.append("WHERE " + " AND ".join(f"{column(alias, field)} {op}" for alias, field, op in where))
    if order_by:
        parts.append("ORDER BY " + ", ".join(column(alias, field) for alias, field in order_by))
    loaded = tuple((models[alias], tuple(f.attname for f in fields[alias])) for alias in aliases)
    return Join(sql=" ".join(parts), loaded=loaded, links=tuple(links))
