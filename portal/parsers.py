from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE; larger ones are a 400 before parsing.

    DRF reads the raw stream, which bypasses Django's own body-size check, so it lives here.
    Two more things every JSON body is refused for (400, never a 500 further in): nesting too
    deep for Python's parser, and a NUL character in any string (PostgreSQL text and jsonb can't
    hold one).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        too_big = exceptions.ParseError(f"Request body is larger than the {limit // 1024 // 1024} MiB limit.")
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise too_big
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise too_big
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON nested too deeply.") from None
        _check_strings_and_depth(data)
        return data


# Deeper than any body of ours needs; a fixed limit, rather than wherever Python's recursion
# limit happens to fall under the current stack, keeps deep data out of the serializers, the
# renderer and jsonb, which recurse too.
MAX_DEPTH = 100


def _check_strings_and_depth(data: Any) -> None:
    """400 for a NUL in any string (keys too) or nesting past MAX_DEPTH. Iterative: no recursion."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise exceptions.ParseError("JSON strings must not contain the NUL character (\\u0000).")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise exceptions.ParseError(f"JSON nested too deeply (more than {MAX_DEPTH} levels).")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((value, depth + 1) for value in item.values())
            else:
                pending.extend((value, depth + 1) for value in item)
