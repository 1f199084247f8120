"""Settings for ``make test``: the real services (Redis, a Celery worker, PostgreSQL when
DATABASE_URL says so), nothing eager or mocked."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
ALLOWED_HOSTS = ["*"]
# Test-only tasks (a slow run for the fault tests), imported by the test workers. Production
# code has no test path: the tests send these tasks themselves.
CELERY_IMPORTS = ["tests.worker_tasks"]
ENGINE_QUEUED_RESEND_AFTER = 2
ENGINE_RATE_LIMIT = env("ENGINE_RATE_LIMIT", default="1000/m")
# The browser tests log in often from one address; the account tests set their own limits.
ACCOUNTS_LOGIN_RATE_PER_IP = ACCOUNTS_LOGIN_RATE_PER_ACCOUNT = "1000/m"

# The tests use their own Redis database (15 by default), so that a `make run` worker on the
# same server never takes a test's task.
_redis = env("TEST_REDIS_URL", default=REDIS_URL.rsplit("/", 1)[0] + "/15")  # noqa: F405
REDIS_URL = CELERY_BROKER_URL = _redis
CACHES["default"]["LOCATION"] = _redis  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = "test"  # noqa: F405

# SQLite: a file, not memory, so that the Celery worker process sees the test database too.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    (BASE_DIR / ".run").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".run" / "test.sqlite3")}  # noqa: F405
CONTENT_VERSION_CHECK_S = 0  # read the content version on every request: no stale test pages
WHITENOISE_USE_FINDERS = True  # serve static/ without collectstatic
WHITENOISE_AUTOREFRESH = True
