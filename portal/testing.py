"""Test helpers every app reuses (imported only by tests)."""

from __future__ import annotations

import importlib.util
import socket
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from django.apps import apps
from django.db import models
from django.forms.models import model_to_dict


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def assert_cross_org_404(
    client: Any,
    method: str,
    url: str,
    data: Any = None,
    *,
    unchanged: list[models.Model] = (),
    **extra: Any,
) -> Any:
    """Request another organization's object: it must be a plain 404 with no side effect.

    No table gains or loses rows (events included), and each object in ``unchanged`` keeps
    every field value. Works with Django's test client and DRF's APIClient.
    """
    before_counts = _row_counts()
    before_values = [model_to_dict(obj) for obj in unchanged]
    kwargs = {"data": data} if data is not None else {}
    if hasattr(client, "credentials") and data is not None:
        kwargs["format"] = "json"
    response = getattr(client, method.lower())(url, **kwargs, **extra)
    assert response.status_code == 404, f"{method} {url} answered {response.status_code}, expected 404"
    assert _row_counts() == before_counts, f"{method} {url} changed the database"
    for obj, values in zip(unchanged, before_values, strict=True):
        obj.refresh_from_db()
        assert model_to_dict(obj) == values, f"{method} {url} changed {obj!r}"
    return response


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@cache
def run_script() -> ModuleType:
    """``scripts/run.py`` (what ``make run`` executes) loaded as a module, for tests of its pieces."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "run.py"
    spec = importlib.util.spec_from_file_location("portal_run_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def token_client(membership: Any, *, name: str = "tests", **client_kwargs: Any) -> Any:
    """A DRF test client authenticated with a fresh API token of ``membership``."""
    from rest_framework.test import APIClient

    from portal import services

    _, key = services.api_token_create(membership=membership, name=name)
    client = APIClient(**client_kwargs)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
