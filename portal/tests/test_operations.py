import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from portal import health
from portal.models import Membership, Organization

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "prod-" + "k" * 60,
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal@db.example.com:5432/portal",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "PORTAL_BASE_URL": "https://portal.example.com",
}


def _manage(*args, env):
    # A production process starts from a clean slate: none of the test run's own variables.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 50 characters"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is required"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must point at PostgreSQL"),
        ({"REDIS_URL": "http://nope"}, "REDIS_URL must be a redis:// URL"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is required"),
        ({"PORTAL_BASE_URL": "portal.example.com"}, "PORTAL_BASE_URL must be an absolute http(s) URL"),
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
    ],
)
def test_missing_or_malformed_production_setting_stops_startup_with_one_clear_line(change, expected):
    result = _manage("check", env={**PRODUCTION_ENV, **change})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]] and expected in lines[-1], result.stderr


@pytest.mark.django_db
def test_health_is_ok_with_database_redis_and_a_worker_heartbeat(client):
    health.worker_heartbeat_record()
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["checks"]["celery"]["ok"] is True


@pytest.mark.django_db
def test_health_is_503_without_a_worker(client):
    redis.Redis.from_url(settings.REDIS_URL).delete(health.HEARTBEAT_KEY)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"ok": True},
            "redis": {"ok": True},
            "celery": {"ok": False, "error": "no worker heartbeat"},
        },
    }


@pytest.mark.django_db
def test_every_response_carries_a_request_id_and_security_headers(client):
    response = client.get(reverse("login"))
    assert len(response["X-Request-ID"]) == 32
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert client.get(reverse("login"), HTTP_X_REQUEST_ID="edge-req-12345")["X-Request-ID"] == "edge-req-12345"


@pytest.mark.django_db
def test_request_log_line_is_json_with_the_request_id(client, capsys):
    import json
    import logging

    handler = logging.getLogger().handlers[0]
    record_lines = []
    handler.emit = lambda record: record_lines.append(handler.format(record))
    try:
        response = client.get(reverse("login"))
    finally:
        del handler.emit
    entries = [json.loads(line) for line in record_lines]
    request_entry = next(e for e in entries if e["message"] == "request")
    assert request_entry["request_id"] == response["X-Request-ID"]
    assert request_entry["path"] == "/accounts/login/" and request_entry["status"] == 200


@pytest.mark.django_db
def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert Organization.objects.count() == 2
    assert Membership.objects.count() == 4
    out = capsys.readouterr().out
    assert "alice@acme.example" in out and "securebase-demo" in out


@pytest.mark.django_db
def test_dashboard_shows_recent_activity_in_few_queries(member_client, member, django_assert_max_num_queries):
    from django.db import transaction

    from portal import events

    with transaction.atomic():
        for _ in range(15):
            events.publish(events.METRICS_UPDATED, organization=member.organization, data={"metrics": {"cpu": 1}})
    with django_assert_max_num_queries(8):
        response = member_client.get(reverse("dashboard"))
    assert response.content.decode().count("Platform metrics for the organization changed.") == 10


@pytest.mark.django_db
def test_every_page_names_its_icon_and_favicon_ico_redirects_to_it(client):
    from django.templatetags.static import static

    icon = static("img/favicon.svg")
    login_page = client.get(reverse("login")).content.decode()
    assert f'<link rel="icon" href="{icon}" type="image/svg+xml">' in login_page
    response = client.get("/favicon.ico")  # signed out, as browsers ask on pages that name none (admin)
    assert response.status_code == 301 and response["Location"] == icon
    assert (Path(settings.BASE_DIR) / "static" / "img" / "favicon.svg").read_text().startswith("<svg")
