from __future__ import annotations

import re
from typing import Any

from django.core.paginator import Paginator
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

_PAGE_NUMBER = re.compile(r"[0-9]+")


class PagePagination(PageNumberPagination):
    """``?page=N&page_size=M``: a malformed page is a 400 naming ``page``; one past the end stays a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        page_number = super().get_page_number(request, paginator)
        if isinstance(page_number, int):
            return page_number  # absent (1) or "last"
        # ASCII digits only: str.isdigit() takes superscripts, and int() other scripts' digits.
        if not _PAGE_NUMBER.fullmatch(page_number) or not page_number.strip("0"):
            raise ValidationError({self.page_query_param: ["A page number is a whole number from 1."]})
        return page_number
