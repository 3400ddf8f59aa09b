"""QIP Portal settings: one module, driven by environment variables.

Development defaults are safe and need no services (SQLite, in-process tasks, console
email). Production differs only by environment values; a malformed value stops the
process at start rather than running half-configured.
"""

import datetime
import os
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from qip_portal.env import read_bool, read_int, read_list, read_storage_url

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = read_bool("DEBUG", default=True)

# Used only while DEBUG is on; production refuses to start without its own key.
_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-qip-portal-0000"  # noqa: S105  # nosec B105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters in production.")

ALLOWED_HOSTS = read_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = read_list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute address of the portal, used in links inside emails.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "crispy_forms",
    "crispy_bootstrap5",
    "core",
    "plans",
    "audits",
    "governance",
    "learning",
    "qip_portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before anything reads the body (the CSRF check does): an oversize one is refused
    # from its declared length, with a page that says why (core/uploads.py).
    "core.uploads.RequestSizeLimitMiddleware",
    "core.middleware.SessionLifetimeMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "qip_portal.accounts.middleware.MultiFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, so it sees the outcome of the login view (django-axes' documented order).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Refuses a paused address, then a username that must wait, before the password
    # is even checked (core/security.py).
    "axes.backends.AxesStandaloneBackend",
    "core.security.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "qip_portal.urls"
WSGI_APPLICATION = "qip_portal.wsgi.application"

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
                "qip_portal.context_processors.navigation",
            ],
        },
    },
]
# Django's form renderer, with drop-down lists written in Python (core/renderers.py).
FORM_RENDERER = "core.renderers.FormRenderer"

try:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    }
except Exception as exc:  # environ raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"].get("ENGINE") not in {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}:
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or sqlite:// URL.")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = read_int("DB_CONN_MAX_AGE", default=0)
# Behind pgbouncer in transaction-pooling mode a cursor cannot stay open across
# statements: the exports' chunked reads (.iterator()) then fetch without one.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = read_bool(
    "DB_BEHIND_PGBOUNCER", default=False
)
# A pool of at most this many PostgreSQL connections per process (Django's psycopg pool),
# instead of one kept per thread (DB_CONN_MAX_AGE). For web nodes (gunicorn); 0: none.
DB_POOL_MAX_SIZE = read_int("DB_POOL_MAX_SIZE", default=0)
if DB_POOL_MAX_SIZE:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DB_POOL_MAX_SIZE needs PostgreSQL (DATABASE_URL).")
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DB_POOL_MAX_SIZE and DB_CONN_MAX_AGE cannot both be set: the pool keeps the "
            "connections. Set DB_CONN_MAX_AGE to 0."
        )
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let runserver and the in-process jobs share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "plans.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["qip_portal.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Evidence files are private: stored outside static/, never given a public URL, and
# streamed only by views that check access. There is deliberately no MEDIA_URL route.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "private-media")))
MEDIA_URL = "/private-media-is-not-served/"
EVIDENCE_MAX_UPLOAD_BYTES = read_int("EVIDENCE_MAX_UPLOAD_MB", default=10) * 1024 * 1024
# Counted while a file arrives: past the limit nothing more is stored (core/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "core.uploads.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Where those files live (core/files.py, core/s3.py): MEDIA_ROOT on this server's disk, or, when
# STORAGE_URL is set, an S3-compatible bucket that every web node and worker shares
# (format: qip_portal/env.py, read_storage_url). Either way they have no URL.
STORAGE_OPTIONS = read_storage_url("STORAGE_URL")
STORAGES = {
    "default": (
        {"BACKEND": "core.s3.PrivateS3Storage", "OPTIONS": STORAGE_OPTIONS}
        if STORAGE_OPTIONS
        else {"BACKEND": "core.files.PrivateStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

try:
    _email = env.email_url("EMAIL_URL", default="consolemail://")
except Exception as exc:
    raise ImproperlyConfigured(f"EMAIL_URL is not a valid email URL: {exc}") from exc
if not _email.get("EMAIL_BACKEND"):
    raise ImproperlyConfigured("EMAIL_URL names an unknown email scheme.")
vars().update(_email)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="QIP Portal <qip-portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The outbox (core/outbox.py). One SMTP conversation may wait this long for any answer;
# a claim still "sending" after OUTBOX_CLAIM_TIMEOUT_SECONDS lost its worker and is put
# back, so it must be well above the SMTP timeout or a slow but live sender is raced.
# Temporary failures are retried after 1, 2, 4 ... minutes, at most an hour apart, and
# after OUTBOX_MAX_ATTEMPTS tries (about 4 hours) the alert is failed and shown to
# administrators. Fault tests set small values.
OUTBOX_SMTP_TIMEOUT_SECONDS = read_int("OUTBOX_SMTP_TIMEOUT_SECONDS", default=60, minimum=1)
OUTBOX_CLAIM_TIMEOUT_SECONDS = read_int("OUTBOX_CLAIM_TIMEOUT_SECONDS", default=600, minimum=2)
if OUTBOX_CLAIM_TIMEOUT_SECONDS <= OUTBOX_SMTP_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "OUTBOX_CLAIM_TIMEOUT_SECONDS must be longer than OUTBOX_SMTP_TIMEOUT_SECONDS."
    )
OUTBOX_BACKOFF_FIRST_SECONDS = read_int("OUTBOX_BACKOFF_FIRST_SECONDS", default=60, minimum=1)
OUTBOX_BACKOFF_MAX_SECONDS = read_int("OUTBOX_BACKOFF_MAX_SECONDS", default=3600, minimum=1)
OUTBOX_MAX_ATTEMPTS = read_int("OUTBOX_MAX_ATTEMPTS", default=10, minimum=1)

# Redis: Celery broker and result store, and the shared cache. Without it, tasks run
# in-process (eager) and the cache is a folder of files (CACHE_DIR), shared by every
# process on the machine: `make run`'s scheduled jobs run beside the server in another
# process, and a per-process memory cache would let the plan page show, for up to
# DERIVED_CACHE_SECONDS, a state those jobs had already changed (and emailed about).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://.")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env.str("CACHE_DIR", default=str(BASE_DIR / ".cache")),
        }
    }

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
# Reliability (ARCHITECTURE.md, "Scheduled jobs and alerts"): a task is acknowledged
# only after it finished, so a worker killed mid-task leaves it to be redelivered;
# sweeps and senders are idempotent, so a redelivery is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
# Must exceed the longest task, or Redis redelivers a task that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
# Queueing a task first subscribes to its result on Redis, by default retrying 20 times a
# second apart: with Redis down, each task queued held its request for 19 s (measured;
# three in one request pass gunicorn's 60 s timeout). The portal never waits for a
# result, and a task that could not be queued is picked up by its sweep.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
# Background work whose task was lost or died (imports, evidence packs, closure-report
# PDFs) is found by the "recover_stuck_work" sweep (qip_portal/recovery.py), which queues
# it again or marks it failed; see core/stuck.py. Queued but not started this long: the
# broker lost its task. Started with no progress this long: its task died; this must
# exceed the hard time limit, so that a task still running is never taken for dead.
STUCK_QUEUED_SECONDS = read_int("STUCK_QUEUED_SECONDS", default=10 * 60, minimum=1)
STUCK_STARTED_SECONDS = read_int(
    "STUCK_STARTED_SECONDS", default=CELERY_TASK_TIME_LIMIT + 5 * 60, minimum=1
)
if STUCK_STARTED_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"STUCK_STARTED_SECONDS must exceed the task time limit ({CELERY_TASK_TIME_LIMIT} s): "
        "a slow task that is still running would be taken for dead."
    )
# Beat only triggers sweeps; each derives what is due from the database, so a missed or
# doubled tick is harmless. Times avoid 01:00-02:00, the clock-change hour in London.
from celery.schedules import crontab  # noqa: E402 - kept beside the schedule it builds

CELERY_BEAT_SCHEDULE: dict = {
    # The outbox: send what is due (retries, lost tasks) and recover dead senders' claims.
    "deliver-due-alerts": {"task": "core.tasks.deliver_due", "schedule": crontab()},
    "recover-stuck-alerts": {
        "task": "core.tasks.recover_stuck_claims",
        "schedule": crontab(minute="*/5"),
    },
    # Imports, evidence packs and PDFs whose task was lost or died: queued again or failed.
    "recover-stuck-work": {
        "task": "qip_portal.recovery.recover_stuck_work",
        "schedule": crontab(minute="*/5"),
    },
    # Administrators hear of emails that could not be sent (after the night's jobs).
    "failed-alerts-report": {
        "task": "qip_portal.alerts.send_failed_alerts_report",
        "schedule": crontab(hour=8, minute=0),
    },
    "plans-overdue-actions": {
        "task": "plans.tasks.overdue_actions",
        "schedule": crontab(hour=7, minute=0),
    },
    "plans-stale": {"task": "plans.tasks.stale_plans", "schedule": crontab(hour=7, minute=5)},
    "weekly-digest": {
        "task": "qip_portal.digest.send_weekly_digests",
        "schedule": crontab(day_of_week="mon", hour=7, minute=30),
    },
    # Deterioration is escalated on each new result; this nightly pass is the safety net.
    "audits-deterioration": {
        "task": "audits.tasks.deterioration",
        "schedule": crontab(hour=2, minute=30),
    },
    "audits-monitoring-ended": {
        "task": "audits.tasks.monitoring_ended",
        "schedule": crontab(hour=6, minute=40),
    },
    "audits-ready-for-review": {
        "task": "qip_portal.tasks.announce_ready_plans",
        "schedule": crontab(hour=6, minute=50),
    },
    "audits-reaudits-due": {
        "task": "audits.tasks.reaudits_due",
        "schedule": crontab(hour=7, minute=10),
    },
    "learning-review-schedule": {
        "task": "learning.tasks.schedule_due_reviews",
        "schedule": crontab(hour=6, minute=30),
    },
    "learning-ack-reminders": {
        "task": "learning.tasks.remind_outstanding_acknowledgements",
        "schedule": crontab(hour=7, minute=20),
    },
}

# Sessions end after SESSION_IDLE_MINUTES without a request, after
# SESSION_ABSOLUTE_HOURS whatever happens, and when the browser closes. Changing the
# password or deactivating the account ends every session (Django checks the password
# hash and is_active on each request).
SESSION_COOKIE_AGE = read_int("SESSION_IDLE_MINUTES", default=30, minimum=1) * 60
# Read from Redis, written to the database (core/sessions.py): no session query per
# request. Only with the shared Redis cache; without it, the database alone.
SESSION_ENGINE = "core.sessions" if REDIS_URL else "django.contrib.sessions.backends.db"
# The idle clock restarts when the session is saved: at most once a minute, not on
# every request (a database write per page view), so "idle" is exact to within a minute.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_REFRESH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_ABSOLUTE_SECONDS = read_int("SESSION_ABSOLUTE_HOURS", default=10, minimum=1) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = read_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = read_int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if read_bool("TRUST_X_FORWARDED_PROTO", default=False):
        # Only behind a reverse proxy that sets this header itself.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_SSL_REDIRECT:
        # TLS is terminated by a proxy that redirects http itself; Django cannot see it.
        SILENCED_SYSTEM_CHECKS = ["security.W008"]

# Content Security Policy: scripts only from our own origin or with this response's
# nonce; no inline styles; nothing may frame the portal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# PDF renders (evidence packs; closure-report PDFs tried again) one person may have
# queued or running at once, per kind (core/stuck.py).
PDF_RENDERS_PER_USER = read_int("PDF_RENDERS_PER_USER", default=5, minimum=1)
# Requests one address may make with share links (qip_portal/packs/sharing.py) per minute,
# valid or not: enough for an inspector, too few to guess a token.
SHARE_LINK_REQUESTS_PER_MINUTE = read_int("SHARE_LINK_REQUESTS_PER_MINUTE", default=30, minimum=1)

# Failed sign-ins (core/security.py). Per username: after LOGIN_FAILURE_LIMIT failures in
# a row, each further try waits LOGIN_DELAY_SECONDS after the last failure, doubling up to
# LOGIN_COOLOFF_MINUTES: it slows guessing, never locks; the person can also email
# themselves an unlock link. Per address (django-axes): LOGIN_ADDRESS_FAILURE_LIMIT
# failures in LOGIN_COOLOFF_MINUTES pause that address.
LOGIN_FAILURE_LIMIT = read_int("LOGIN_FAILURE_LIMIT", default=5, minimum=1)
LOGIN_DELAY_SECONDS = read_int("LOGIN_DELAY_SECONDS", default=30, minimum=1)
AXES_FAILURE_LIMIT = read_int("LOGIN_ADDRESS_FAILURE_LIMIT", default=50, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(
    minutes=read_int("LOGIN_COOLOFF_MINUTES", default=15, minimum=1)
)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# Failures expire with the cool-off; a success from the address does not wipe them.
AXES_RESET_ON_SUCCESS = False
# Trimmed to the longest username an account can have before axes stores it.
AXES_USERNAME_CALLABLE = "core.security.lockout_username"
AXES_CLIENT_IP_CALLABLE = "core.security.client_ip"
AXES_WHITELIST_CALLABLE = "core.security.axes_exempt"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The client's address is REMOTE_ADDR unless this names a header (e.g. X-Forwarded-For)
# that the reverse proxy in front sets itself; CLIENT_IP_PROXY_COUNT proxies append to
# it. Off by default: without a proxy, anyone could send the header.
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="")
CLIENT_IP_PROXY_COUNT = read_int("CLIENT_IP_PROXY_COUNT", default=1, minimum=1)

# Multi-factor authentication (TOTP, with recovery codes). Required for these roles
# (and for governance chairs: see qip_portal/accounts/middleware.py); optional for everyone else.
MFA_REQUIRED_ROLES = set(read_list("MFA_REQUIRED_ROLES", default=["administrator"]))
OTP_TOTP_ISSUER = "QIP Portal"
MFA_FAILURE_LIMIT = 5

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Domain tunables.
STALE_PLAN_DAYS = read_int("STALE_PLAN_DAYS", default=60)
# A monitoring period ends well only with enough results: by default one in every due
# interval of each indicator's frequency; above 0, this many per indicator instead.
MONITORING_MIN_RESULTS = read_int("MONITORING_MIN_RESULTS", default=0, minimum=0)
REGISTER_PAGE_SIZE = 25
# Figures derived from many rows (the home page's counts) are cached, keyed on the data
# version that every change moves on (core/freshness.py), and expire after this long
# in any case.
DERIVED_CACHE_SECONDS = read_int("DERIVED_CACHE_SECONDS", default=60)
# Memoised pure computations (core.memo: a chart from its results) are keyed by their
# exact inputs, so they are never stale: they expire only to free the cache.
MEMO_CACHE_SECONDS = read_int("MEMO_CACHE_SECONDS", default=24 * 3600)
# How long a plan remembers the kinds of people who read its page (their classes, with
# one user each), for a worker to render it again for them after a change.
PLAN_VIEWERS_SECONDS = read_int("PLAN_VIEWERS_SECONDS", default=7 * 24 * 3600)
# Part of every cached key (core.freshness.code_version): e.g. the image's commit. When
# unset, a digest of the project's Python files and templates (no .git needed).
CODE_VERSION = os.environ.get("CODE_VERSION", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
