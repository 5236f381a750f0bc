"""SecureBase Portal settings.

Every setting that varies between machines is read from the environment here, and only here.
Development (``DEBUG=1``, what ``make run`` and ``make test`` set) has safe local defaults;
production (``DEBUG`` unset or ``0``) requires its variables and stops with one clear line
naming the first one that is missing or malformed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def _fail(message: str) -> None:
    # SystemExit with a string prints exactly that line and exits 1: no traceback to scroll.
    raise SystemExit(f"portal: configuration error: {message}")


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required:
        _fail(f"{name} is required (DEBUG is off); set it in the environment.")
    return default or ""


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    _fail(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")
    return default  # unreachable


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        _fail(f"{name} must be an integer, got {raw!r}.")
    return default  # unreachable


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
PRODUCTION = not DEBUG

SECRET_KEY = env_str(
    "SECRET_KEY",
    # Development only: a fixed, obviously-insecure key so sessions survive restarts.
    "dev-insecure-secret-key-not-for-production-use-0123456789abcdefghijklmnop",
    required=PRODUCTION,
)
if PRODUCTION and len(SECRET_KEY) < 50:
    _fail("SECRET_KEY must be at least 50 characters long.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
if PRODUCTION and not os.environ.get("ALLOWED_HOSTS", "").strip():
    _fail("ALLOWED_HOSTS is required (DEBUG is off); set it in the environment.")

PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000", required=PRODUCTION).rstrip("/")
if urlsplit(PORTAL_BASE_URL).scheme not in {"http", "https"} or not urlsplit(PORTAL_BASE_URL).netloc:
    _fail(f"PORTAL_BASE_URL must be an absolute http(s) URL, got {PORTAL_BASE_URL!r}.")

# --- Applications -------------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and WebSocket in development
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "corsheaders",
    "axes",
    "csp",
    "portal",
    # Subscribers marked pushes=True run first (portal.events.subscribers_for); the rest run in
    # this order: webhook fan-out, then the slower e-mail rendering, so neither a push nor a
    # webhook's first attempt waits for e-mail (ADR 0019, bench/webhooks_RESULTS.md).
    "notifications",
    "webhooks",
    "tickets",
    "forecasting",
    "graphql_api",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    # Early: a NUL byte in the URL is a 400 before anything reaches the database.
    "portal.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.HtmxSignInMiddleware",
    "portal.middleware.OrganizationMiddleware",
    # Last: axes needs the authenticated user and answers lockouts itself.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "portal.context_processors.portal",
                "notifications.context_processors.inbox",
            ],
        },
    },
]
# Django's widget templates, the common ones rendered in Python with the same output (ADR 0021).
FORM_RENDERER = "portal.form_renderer.FormRenderer"

# --- Data stores ----------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", required=PRODUCTION)
if not DATABASE_URL:
    _fail("DATABASE_URL is not set: run through `make run` / `make test`, or export it.")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
except ValueError as exc:
    _fail(f"DATABASE_URL is malformed: {exc}")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    _fail("DATABASE_URL must point at PostgreSQL (postgres://...).")
# Django's backend with psycopg's C loader for timestamptz columns (portal/postgresql/base.py).
DATABASES["default"]["ENGINE"] = "portal.postgresql"
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Server-side parameter binding, so psycopg prepares a statement the fifth time a connection runs it
# and PostgreSQL stops parsing and planning the same page queries on every request (a list page: 6.3
# → 3.7 ms of database CPU; ADR 0020). Off behind a transaction-pooling PgBouncer without
# max_prepared_statements (docs/deployment.md).
if env_bool("DATABASE_PREPARED_STATEMENTS", True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", required=PRODUCTION)
if not REDIS_URL:
    _fail("REDIS_URL is not set: run through `make run` / `make test`, or export it.")
if urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    _fail(f"REDIS_URL must be a redis:// URL, got {REDIS_URL!r}.")


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


# Parallel test workers (pytest-xdist) each get their own Redis database so caches, throttles,
# channel groups and Celery queues never leak between them.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
REDIS_DB = env_int("REDIS_DB", 0) + (int(_xdist_worker.removeprefix("gw")) + 1 if _xdist_worker else 0)
REDIS_URL = _redis_db(REDIS_URL, REDIS_DB)

CACHES = {
    "default": {
        # Django's Redis backend with one connection pool per process (portal/cache.py).
        "BACKEND": "portal.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "portal",
        "TIMEOUT": 300,
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 caps a pool at 100 and then fails: a reconnect storm of 1,000 sockets
            # needs more (and socket_timeout=None, or consumers crash every few seconds).
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 2000}],
            "capacity": 1500,
            "expiry": 30,
            "group_expiry": 86400,
            "prefix": "portal-ws",
        },
    }
}

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a request when Redis is down: the outbox sweeper catches up.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 1}
CELERY_TASK_PUBLISH_RETRY = False
# A worker keeps its database connection across tasks (Celery's default closes it after every task:
# a new PostgreSQL connection, ~10 ms, per push or delivery); portal.celery checks it before each task
# the way Django does before each request (CONN_MAX_AGE, health check).
CELERY_DB_REUSE_MAX = 200
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.tasks.worker_heartbeat_task", "schedule": 15.0},
    "events-sweep": {"task": "portal.tasks.events_sweep_task", "schedule": 60.0},
    "tickets-sla-sweep": {"task": "tickets.tasks.sla_sweep_task", "schedule": 60.0},
    "tickets-purge-closed": {"task": "tickets.tasks.tickets_purge_closed_task", "schedule": 24 * 3600.0},
    "notifications-pushes-sweep": {"task": "notifications.tasks.pushes_sweep_task", "schedule": 30.0},
    "notifications-email-immediate": {"task": "notifications.tasks.notification_emails_task", "schedule": 60.0},
    "notifications-email-hourly": {
        "task": "notifications.tasks.notification_emails_task",
        "schedule": 3600.0,
        "args": ["hourly"],
    },
    "notifications-email-daily": {
        "task": "notifications.tasks.notification_emails_task",
        "schedule": crontab(hour=7, minute=0),
        "args": ["daily"],
    },
    "notifications-purge": {"task": "notifications.tasks.notifications_purge_task", "schedule": 24 * 3600.0},
    "forecasting-nightly": {"task": "forecasting.tasks.forecasts_nightly_task", "schedule": crontab(hour=2, minute=30)},
    "forecasting-purge": {"task": "forecasting.tasks.forecasts_purge_task", "schedule": 24 * 3600.0},
    "webhooks-sweep": {"task": "webhooks.tasks.deliveries_sweep_task", "schedule": 2.0},
    "webhooks-purge": {"task": "webhooks.tasks.webhooks_purge_task", "schedule": 24 * 3600.0},
}

# --- Auth and sessions ----------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading the signed-in user with their memberships in one query.
    "portal.auth_backends.MembershipsModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# Lock the account, not the address: behind the reverse proxy every customer shares one
# REMOTE_ADDR, and an address lockout would lock them all out at once (hence axes.W006 off).
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Sessions read through the Redis cache, written to PostgreSQL too (a cache flush signs nobody
# out): one query fewer on every signed-in page.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PORTAL_BASE_URL])

INVITATION_TTL = timedelta(days=env_int("INVITATION_TTL_DAYS", 7))
TICKET_RETENTION_DAYS = env_int("TICKET_RETENTION_DAYS", 90)
NOTIFICATION_RETENTION_DAYS = env_int("NOTIFICATION_RETENTION_DAYS", 90)
# --- Webhooks ---
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)  # local development only
WEBHOOK_ALLOW_LOOPBACK = env_bool("WEBHOOK_ALLOW_LOOPBACK", False)  # local development and tests only
if PRODUCTION and (WEBHOOK_ALLOW_HTTP or WEBHOOK_ALLOW_LOOPBACK):
    _fail("WEBHOOK_ALLOW_HTTP and WEBHOOK_ALLOW_LOOPBACK must be off when DEBUG is off.")
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
try:
    WEBHOOK_SCHEDULE = [int(s) for s in env_list("WEBHOOK_SCHEDULE", ["0", "5", "300", "1800", "7200", "18000"])]
except ValueError:
    _fail("WEBHOOK_SCHEDULE must be comma-separated whole seconds, e.g. 0,5,300,1800,7200,18000.")
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5)
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 90)
# Seals endpoint signing secrets at rest; comma-separated, current first. Empty: SECRET_KEY (+ fallbacks).
WEBHOOK_SECRET_KEY = env_str("WEBHOOK_SECRET_KEY", "")
WEBHOOK_MAX_PARALLEL = env_int("WEBHOOK_MAX_PARALLEL", 50)
WEBHOOK_MAX_ENDPOINTS_PER_ORGANIZATION = env_int("WEBHOOK_MAX_ENDPOINTS_PER_ORGANIZATION", 100)
# --- Forecasting ---
FORECAST_IMPORT_MAX_BYTES = env_int("FORECAST_IMPORT_MAX_MB", 200) * 1024 * 1024
FORECAST_IMPORT_INLINE_MAX_BYTES = env_int("FORECAST_IMPORT_INLINE_MAX_KB", 2048) * 1024
FORECAST_IMPORT_MAX_ERRORS = env_int("FORECAST_IMPORT_MAX_ERRORS", 100)
FORECAST_TTL_DAYS = env_int("FORECAST_TTL_DAYS", 90)
FORECAST_RUN_STALE_SECONDS = env_int("FORECAST_RUN_STALE_SECONDS", 600)
FORECAST_PARALLEL_SERIES = env_int("FORECAST_PARALLEL_SERIES", 3)
FORECAST_ANOMALY_LEVEL = env_int("FORECAST_ANOMALY_LEVEL", 95)  # 65, 80 or 95
FORECAST_ANOMALY_MIN_PERCENT = env_int("FORECAST_ANOMALY_MIN_PERCENT", 20)
FORECAST_ANOMALY_MIN_AMOUNT = env_str("FORECAST_ANOMALY_MIN_AMOUNT", "10")
FORECAST_ANOMALY_DAILY_LOOKBACK_DAYS = env_int("FORECAST_ANOMALY_DAILY_LOOKBACK_DAYS", 14)
FORECAST_ANOMALY_MONTHLY_LOOKBACK_MONTHS = env_int("FORECAST_ANOMALY_MONTHLY_LOOKBACK_MONTHS", 2)
# Live sockets: server heartbeat interval (clients reconnect after ~60 s of silence).
WEBSOCKET_HEARTBEAT_SECONDS = env_int("WEBSOCKET_HEARTBEAT_SECONDS", 25)

# --- Security headers (check --deploy clean when DEBUG is off) ---------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF, "ws:" if DEBUG else "wss:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- CORS: closed unless origins are listed ----------------------------------------------------

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False

# --- API ------------------------------------------------------------------------------------

API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "100/hour")
SERVICE_THROTTLE_RATE = env_str("SERVICE_THROTTLE_RATE", "6000/hour")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.permissions.IsOrganizationMember"],
    "DEFAULT_THROTTLE_CLASSES": ["portal.throttling.OrganizationRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"organization": API_THROTTLE_RATE, "service": SERVICE_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "SecureBase Portal API",
    "DESCRIPTION": "The customer portal's REST API. Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The default enum hook, then the error answers every operation shares (portal/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.schema.add_error_responses",
    ],
}

# Bodies over 1 MiB are refused before any parsing (400 with a clear message).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Email ----------------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "SecureBase Portal <portal@securebase.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- I18N, static, media --------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages come from npm (package-lock.json) and are served as they ship.
    ("vendor", BASE_DIR / "node_modules"),
]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

# --- Logging: one JSON object per line, with the request id ---------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "portal.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
