"""Settings for the backend, read from the environment (12-factor).

Every setting has a development default, so the backend runs with no environment at
all: SQLite, DEBUG on, and sandbox mode (Stripe, the push provider and the todo API are
the sandbox service's fakes, reached over HTTP with test keys: docs/sandbox.md).
docs/operations.md lists every variable.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

# The development key is public: backend.checks refuses it when DEBUG is off.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (gunicorn workers, the sandbox's webhook deliveries) write to one
    # SQLite file: take the write lock when a transaction starts and wait for it, instead
    # of failing with "database is locked" when a reader upgrades (Django 5.1+ option).
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- SQLite as a server's database (a file database only) --------------------
# WAL lets readers run beside the writer, and with synchronous=NORMAL a commit no
# longer waits for fsync (a WAL database stays consistent; a power cut may lose the
# last commits, an application crash loses none). BEGIN IMMEDIATE takes the write
# lock when a transaction starts, so two writers queue on the busy timeout instead of
# failing with "database is locked" when a read transaction tries to upgrade.
SQLITE_SERVER_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,  # seconds a writer waits for the lock (sqlite3's busy timeout)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and str(
    DATABASES["default"].get("NAME") or ":memory:"
) not in (":memory:", ""):
    DATABASES["default"]["OPTIONS"] = {
        **SQLITE_SERVER_OPTIONS,
        **DATABASES["default"].get("OPTIONS", {}),
    }
    # Keep each thread's connection (opening one costs more than a health check), unless
    # the URL says otherwise (sqlite:///db.sqlite3?conn_max_age=0).
    DATABASES["default"].setdefault("CONN_MAX_AGE", 600)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # kept for the migration that converts its plain tokens
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "conventions",  # the error envelope, strict input, throttles, schema helpers, pages
    "backend",
    "accounts",
    "payments",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # static files under any WSGI server (gunicorn has none); with DEBUG on straight from
    # the apps' folders, else from STATIC_ROOT after `collectstatic`
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "conventions.errors.ApiErrorPagesMiddleware",
    "conventions.inputs.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
TEST_RUNNER = "backend.test_runner.NetworkGuardedRunner"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise: after `collectstatic`, STATIC_ROOT's files, indexed once (production); until
# then (the sandbox, the tests) each file straight from its app's folder, as runserver does
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = not os.path.isdir(STATIC_ROOT)

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Bodies larger than this are refused with 413 before any view reads them.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

API_THROTTLE_ANON = env.str("API_THROTTLE_ANON", default="120/min")
API_THROTTLE_USER = env.str("API_THROTTLE_USER", default="1200/min")
API_THROTTLE_AUTH = env.str("API_THROTTLE_AUTH", default="20/min")
PAYMENTS_THROTTLE = env.str("PAYMENTS_THROTTLE", default="20/hour")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.DeviceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["conventions.inputs.JSONParser"],  # hardened: see API_MAX_JSON_DEPTH
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "conventions.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "conventions.throttles.AnonThrottle",
        "conventions.throttles.UserThrottle",
    ],
    "EXCEPTION_HANDLER": "conventions.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "conventions.openapi.AutoSchema",  # documents the generic errors too
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

# --- Sign-in: per-device tokens (django-rest-knox), stored as SHA-512 digests ---
AUTH_TOKEN_TTL_DAYS = env.int("AUTH_TOKEN_TTL_DAYS", default=30)  # idle time before expiry
AUTH_TOKEN_MAX_LIFETIME_DAYS = env.int("AUTH_TOKEN_MAX_LIFETIME_DAYS", default=365)
AUTH_MAX_SESSIONS_PER_USER = env.int("AUTH_MAX_SESSIONS_PER_USER", default=10)
# Failed sign-ins per username (any address); API_THROTTLE_AUTH is per address.
AUTH_THROTTLE_USERNAME = env.str("AUTH_THROTTLE_USERNAME", default="10/hour")
KNOX_TOKEN_MODEL = "accounts.DeviceSession"
# knox's own migrations create its default token table even when the model is swapped for
# ours: an unused table (which also blocks PostgreSQL's TRUNCATE of auth_user in test flushes).
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "TOKEN_TTL": timedelta(days=AUTH_TOKEN_TTL_DAYS),
    "AUTO_REFRESH": True,  # every authenticated request slides the expiry...
    "AUTO_REFRESH_MAX_TTL": timedelta(days=AUTH_TOKEN_MAX_LIFETIME_DAYS),  # ...up to this
    "MIN_REFRESH_INTERVAL": 60,  # seconds: at most one write per token per minute
    "AUTH_HEADER_PREFIX": "Token",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Payments & reminders API",
    "DESCRIPTION": "REST API for the mobile app. Every error uses one envelope: "
    '`{"error": {"type", "code", "message", "param", "fields"}}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "TAGS": [
        {
            "name": "auth",
            "description": "Mobile sign-in, one token per device (`Authorization: Token <token>` "
            "or `Bearer <token>`). "
            "1. Sign in: `POST /api/auth/token/` with username, password, device_name, platform; "
            "keep `token`, then register the push token (`POST /api/devices/`) with it. "
            "2. Renew: every authenticated request slides `expires` (at most once a minute), up "
            "to a maximum lifetime; `GET /api/auth/token/` shows it. "
            "3. A 401 `authentication_failed` (expired or signed out): sign in again. "
            "4. Sign out: `DELETE /api/auth/token/` (this device and its push registration). "
            "5. Devices: `GET /api/auth/sessions/`, `DELETE /api/auth/sessions/<id>/`, "
            "`DELETE /api/auth/sessions/` (all but this one); a password change "
            "(`POST /api/auth/password/`) signs out every other device, and a password set "
            "anywhere else (admin, `changepassword`) signs out every device.",
        }
    ],
    "ENUM_NAME_OVERRIDES": {
        "SessionPlatformEnum": "accounts.models.DeviceSession.Platform",
        "DevicePlatformEnum": "notifications.models.Device.Platform",
        # Payment and Refund both have a `status`: name their enums apart.
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "RefundStatusEnum": "payments.models.Refund.Status",
    },
}

# --- Stripe -----------------------------------------------------------------
# Empty STRIPE_SECRET_KEY with DEBUG on means sandbox mode (the sandbox service, below).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Point the stripe library somewhere else, e.g. the sandbox service (`manage.py fakeservices`).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=30.0)
PAYMENTS_CURRENCIES = env.list("PAYMENTS_CURRENCIES", default=["usd", "eur", "gbp"])
PAYMENTS_MAX_AMOUNT = env.int("PAYMENTS_MAX_AMOUNT", default=1_000_000)
# Raw card numbers reach this server only in test mode and sandbox; with a live key the
# app must send a token or PaymentMethod from Stripe's mobile SDK (PCI scope).
PAYMENTS_ALLOW_RAW_CARDS = env.bool(
    "PAYMENTS_ALLOW_RAW_CARDS", default=not STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
)

# --- Mobile checkout (PaymentSheet, saved cards) ------------------------------
# Handed to the app with each sheet; the sandbox's fake accepts any pk_test_ key.
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="pk_test_sandbox")
# The API version the app's Stripe SDK speaks, pinned on its ephemeral keys (the app may
# send its own `stripe_version`); empty means the stripe library's pinned version.
STRIPE_MOBILE_API_VERSION = env.str("STRIPE_MOBILE_API_VERSION", default="")
# Stripe releases an uncaptured card authorisation after 7 days (docs.stripe.com/payments/place-a-hold-on-a-payment-method).
PAYMENTS_HOLD_DAYS = env.int("PAYMENTS_HOLD_DAYS", default=7)

# --- Push provider (Pushwoosh Remote API) and the todo API -------------------
PUSH_API_URL = env.str("PUSH_API_URL", default="https://api.pushwoosh.com/json/1.3/")
PUSH_APPLICATION = env.str("PUSH_APPLICATION", default="")
PUSH_AUTH_KEY = env.str("PUSH_AUTH_KEY", default="")
PUSH_TIMEOUT_SECONDS = env.float("PUSH_TIMEOUT_SECONDS", default=10.0)
PUSH_BATCH_SIZE = env.int("PUSH_BATCH_SIZE", default=100)
# What the todo client calls: JSONPlaceholder unless configured. Sandbox mode points it at
# the sandbox service only when TODOS_SANDBOX is on (by default: when TODOS_API_URL is not
# configured).
PUBLIC_TODOS_API_URL = "https://jsonplaceholder.typicode.com/"
TODOS_API_URL = env.str("TODOS_API_URL", default=PUBLIC_TODOS_API_URL)
TODOS_SANDBOX = env.bool("TODOS_SANDBOX", default="TODOS_API_URL" not in env)
TODOS_TIMEOUT_SECONDS = env.float("TODOS_TIMEOUT_SECONDS", default=10.0)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
# Reminder leases and retries (docs/reminders.md).
# A Celery task (or one step of the commands) sends NOTIFICATIONS_TASK_BATCH reminders,
# PUSH_BATCH_SIZE per createMessage call. Its claim is a lease of NOTIFICATIONS_LEASE_SECONDS
# plus PUSH_TIMEOUT_SECONDS per call (80 s by default): a reminder whose sender died is
# taken over well inside Pushwoosh's 5-minute transactionId window, so it is not doubled.
NOTIFICATIONS_TASK_BATCH = env.int("NOTIFICATIONS_TASK_BATCH", default=500)
NOTIFICATIONS_LEASE_SECONDS = env.float("NOTIFICATIONS_LEASE_SECONDS", default=30.0)
# Retries back off exponentially from the base up to the cap, while the reminder's day lasts;
# a retry after an ambiguous failure (timeout, lost answer) waits at most the short cap,
# so that it lands inside the provider's de-duplication window.
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=30.0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=1800.0)
NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS = env.float(
    "NOTIFICATIONS_AMBIGUOUS_RETRY_MAX_SECONDS", default=60.0
)

# --- Celery (reminders) ------------------------------------------------------
# Without CELERY_BROKER_URL tasks run eagerly in the calling process, so `make run`, the
# management commands and the tests need no broker. Production: redis://host:6379/0.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = True
# The queue tasks go to and workers read (one per deployment sharing a broker).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged when it has finished, so a worker killed mid-batch leaves the
# message to be redelivered (leases and transactionId make the redelivery send nothing twice).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers an unacknowledged task after the visibility timeout: far longer than a
# batch takes (about a second), short enough that a lost worker's batches return the same day.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900)
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "plan-daily-reminders": {
        "task": "notifications.tasks.plan_reminders",
        "schedule": crontab(
            hour=env.int("REMINDERS_HOUR", default=9), minute=env.int("REMINDERS_MINUTE", default=0)
        ),
    },
    "retry-notifications": {
        "task": "notifications.tasks.retry_notifications",
        "schedule": env.float("REMINDERS_RETRY_EVERY_SECONDS", default=60.0),
    },
}
# The real-worker test (SLOW_TESTS=1) needs a test database another process can open.
if env.bool("SLOW_TESTS", default=False) and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, with the server options above (WAL lets the worker process write while the
    # test process reads).
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(BASE_DIR / "test-db.sqlite3")

# --- Sandbox mode (DEBUG on, credentials missing: docs/sandbox.md) -----------
# The sandbox service (fakes.service: `manage.py fakeservices`, or `manage.py sandbox serve`
# with the backend) is Stripe, Pushwoosh and the todo API for this backend: with DEBUG on,
# each provider left without credentials is reached there over HTTP, with test keys, by
# the same client code as in production. Nothing is patched in the process.
SANDBOX_URL = env.str("SANDBOX_URL", default="http://127.0.0.1:8765").rstrip("/")
# Where `fakeservices` / `sandbox serve` keep the service's durable state (a directory:
# journal + snapshots, written by the service alone), or "memory".
SANDBOX_STATE = env.str("SANDBOX_STATE", default=str(BASE_DIR / "sandbox-state"))
# Guards the service's console and control API; required to bind beyond loopback.
SANDBOX_CONSOLE_PASSWORD = env.str("SANDBOX_CONSOLE_PASSWORD", default="")
# The address browsers (phones) reach the service at: its 3-D Secure links use it.
SANDBOX_PUBLIC_URL = env.str("SANDBOX_PUBLIC_URL", default="")
SANDBOX_SERVICES = []  # the providers this configuration reaches on the sandbox service
if DEBUG and not STRIPE_SECRET_KEY and not STRIPE_API_BASE:
    STRIPE_SECRET_KEY = "sk_test_sandbox"
    STRIPE_API_BASE = f"{SANDBOX_URL}/stripe"
    SANDBOX_SERVICES.append("stripe")
if DEBUG and not PUSH_AUTH_KEY:
    from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH

    PUSH_API_URL, PUSH_APPLICATION, PUSH_AUTH_KEY = (
        f"{SANDBOX_URL}/push/",
        FAKE_APPLICATION,
        FAKE_AUTH,
    )
    SANDBOX_SERVICES.append("push")
if DEBUG and TODOS_SANDBOX:
    TODOS_API_URL = f"{SANDBOX_URL}/todos-api/"
    SANDBOX_SERVICES.append("todos")

# --- Tests that talk to real services (skipped unless enabled) --------------
REAL_NETWORK_TESTS = env.bool("REAL_NETWORK_TESTS", default=False)
STRIPE_LIVE_TEST_KEY = env.str("STRIPE_LIVE_TEST_KEY", default="")

# --- Production hardening (only when DEBUG is off) --------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# HSTS preloading is a hard-to-undo decision for the domain's owner, not a default;
# SECURE_HSTS_PRELOAD=true opts in.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # stripe logs request bodies (card numbers in the raw-card flow) at DEBUG.
        "stripe": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # Eager Celery (no broker) would log every task run in commands and tests.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}

# --- Hostile input (conventions.inputs.JSONParser) ----------------------------------
# JSON bodies nested deeper than this (arrays/objects) are refused with 400 parse_error,
# checked before json.loads (which recurses). Stripe's own events stay under 10.
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
