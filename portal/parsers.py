from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE; larger ones are a 400 before parsing.

    DRF reads the raw stream, which bypasses Django's own body-size check, so it lives here.
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
        return super().parse(io.BytesIO(body), media_type, parser_context)
