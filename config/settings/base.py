"""Settings shared by every environment. Everything that differs between machines comes from the
environment (django-environ); see the README's "Settings" table."""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "django_ratelimit",
    "template_partials",
    "ninja",  # its Swagger UI static files: the API docs page loads nothing from a CDN
    "lessons",
    "quiz",
    "engine",
    "pages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A database outage answers 503 (page, fragment or JSON), and a broken connection is dropped
    # at the end of each request, so the process recovers when the database is back.
    "pages.middleware.DatabaseUnavailableMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it sees the resolved view: visitors' pages from the in-process page cache,
    # ETag / 304, Cache-Control and Vary for the lesson pages (see pages/page_cache.py).
    "pages.page_cache.PageCacheMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
                "lessons.context_processors.site",
                "quiz.context_processors.mastery_levels",
                "pages.page_cache.csrf_placeholder",  # after Django's own csrf processor
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web server and the worker write to one file: WAL lets readers go on while one writes,
    # IMMEDIATE takes the write lock up front, and the timeout waits for it instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that is down or unreachable is known within this many seconds (libpq's
    # connect_timeout), not after the system's TCP timeout: pages answer 503, /healthz says so.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=2
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# The cache is Redis (django-ratelimit needs a shared, atomic cache). Lesson pages never depend on
# it: sessions live in the database, and a cache outage only disables rate limiting (see
# engine.broker.broker_available).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("CACHE_URL", default=REDIS_URL),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# django-ratelimit lists only memcached and django-redis as "official"; Django's own RedisCache
# has the atomic incr() it needs (a test checks that the limit holds).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Log-in attempts, counted before the password is checked: per client (IP, see
# RATELIMIT_IP_META_KEY) and per account named. Past either, a 429 page with Retry-After.
ACCOUNTS_LOGIN_RATE_PER_IP = env("ACCOUNTS_LOGIN_RATE_PER_IP", default="30/m")
ACCOUNTS_LOGIN_RATE_PER_ACCOUNT = env("ACCOUNTS_LOGIN_RATE_PER_ACCOUNT", default="10/10m")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Bad input never reaches a view whole: 256 KiB is far above any form here.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# Our own origin only, and no inline script or style anywhere (htmx is told not to inject its
# indicator style; see templates/base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# What depends only on the content is computed once per content version and language and kept
# in each process (lessons.versioning, pages.page_cache). CONTENT_CACHE=off computes everything
# for every request (the load benchmark's "before"); PAGE_CACHE=off keeps the content parts but
# renders every page (what the parts alone buy). A process trusts the version it read for
# CONTENT_VERSION_CHECK_S seconds: another process's change is seen within that time.
CONTENT_CACHE = env.bool("CONTENT_CACHE", default=True)
PAGE_CACHE = env.bool("PAGE_CACHE", default=True)
CONTENT_VERSION_CHECK_S = env.float("CONTENT_VERSION_CHECK_S", default=1.0)
PAGE_CACHE_ENTRIES = env.int("PAGE_CACHE_ENTRIES", default=2000)  # rendered pages per process
PAGE_CACHE_BYTES = env.int("PAGE_CACHE_BYTES", default=32 * 1024 * 1024)  # and their bytes

CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from the page (hx-headers), not the cookie
CSRF_FAILURE_VIEW = "pages.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None  # results live in the database (AttentionRun), never in Redis
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ROUTES = {"engine.tasks.*": {"queue": "inference"}}
CELERY_TASK_DEFAULT_QUEUE = "inference"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("ENGINE_SOFT_TIME_LIMIT", default=60) or None  # 0: none
CELERY_TASK_TIME_LIMIT = env.int("ENGINE_HARD_TIME_LIMIT", default=90)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message that is not acknowledged within this many seconds is handed out again. It must be
    # longer than the hard time limit, or a slow run would be delivered twice.
    "visibility_timeout": 300,
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "max_retries": 1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-runs": {"task": "engine.tasks.sweep_stale_runs", "schedule": 30.0},
    # anonymous learners inactive for QUIZ_ANONYMOUS_EXPIRY_DAYS: checked every hour
    "expire-anonymous-learners": {
        "task": "quiz.tasks.expire_anonymous_learners",
        "schedule": 60.0 * 60,
    },
}

# --- The learner's data --------------------------------------------------------------------
# An anonymous learner (no account, only a browser session) with no activity for this many days
# is deleted with everything they did; learners with an account never are. 0 keeps them forever.
QUIZ_ANONYMOUS_EXPIRY_DAYS = env.int("QUIZ_ANONYMOUS_EXPIRY_DAYS", default=180)

# --- The live model --------------------------------------------------------------------------
ENGINE_DEVICE = env("ENGINE_DEVICE", default="auto")
# The input limits (characters, word pieces, body size, waits) are engine/limits.py.
ENGINE_TORCH_THREADS = env.int("ENGINE_TORCH_THREADS", default=0)  # 0: cores ÷ concurrency
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=1)
# Celery's Django fixup closes the database connection before and after every task unless this
# is set: a new PostgreSQL connection for every run, about 5 ms of each run's latency. Set, it
# closes them only every 1000 tasks, and config.celery checks them before each task the way
# Django does between requests (CONN_MAX_AGE, CONN_HEALTH_CHECKS): an old or broken connection
# is still replaced, and with CONN_MAX_AGE = 0 (dev, tests) every task still gets a new one.
CELERY_DB_REUSE_MAX = 1000
ENGINE_RATE_LIMIT = env("ENGINE_RATE_LIMIT", default="20/m")
# Which request header holds the client's address for the rate limit. Behind a proxy that sets it
# (and strips what clients send), e.g. HTTP_X_REAL_IP; otherwise every client shares the proxy's.
RATELIMIT_IP_META_KEY = env("RATELIMIT_IP_META_KEY", default="REMOTE_ADDR")
# A queued run that no worker took is sent again after this many seconds (the broker may have
# lost it, or been down when it was submitted), and failed with a message after the second.
ENGINE_QUEUED_RESEND_AFTER = env.int("ENGINE_QUEUED_RESEND_AFTER", default=30)
ENGINE_QUEUED_GIVE_UP_AFTER = env.int("ENGINE_QUEUED_GIVE_UP_AFTER", default=600)
# A worker that finishes a run while the database is down keeps the result and tries to write it
# again, with backoff, for up to this many seconds (inside the run's soft time limit).
ENGINE_RESULT_WRITE_RETRY_S = env.float("ENGINE_RESULT_WRITE_RETRY_S", default=30)
# Micro-batching: a worker that takes a run also claims up to this many queued runs of the same
# model (the run included) and computes them as one padded batch; 1 turns it off. Chosen from
# bench/bench_burst.py (see bench/RESULTS.md); there is no collection window, so a lone run never waits.
ENGINE_BATCH_MAX = env.int("ENGINE_BATCH_MAX", default=8)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
