"""Shared fixtures: the glossary in the database, a real Celery worker process, a real Chromium.

Nothing here is mocked or eager: the worker is ``celery -A config worker`` in a subprocess,
talking to the real Redis and to the same test database as the tests.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API + live_server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


# --- content ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def glossary_files():
    """The authored glossary, read, checked and rendered once per test session."""
    from lessons.content import read_glossary

    return read_glossary()


def _load(glossary_files) -> None:
    from lessons.models import Term
    from pages.services import load_content

    if not Term.objects.exists():
        load_content(glossary=glossary_files)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, glossary_files):
    """The test database, with the authored glossary loaded once for the whole session.

    pytest-django runs the tests in transactions first (each rolls back, so the glossary stays),
    then the transactional tests, which flush the database after each test: ``glossary_tx``
    loads it again for those."""
    with django_db_blocker.unblock():
        _load(glossary_files)


@pytest.fixture
def glossary(db):
    """The authored glossary (loaded once per session by ``django_db_setup``)."""


@pytest.fixture
def glossary_tx(transactional_db, glossary_files):
    """The authored glossary for a transactional test (the flush after the last one emptied
    the database)."""
    _load(glossary_files)


# --- a real Celery worker -----------------------------------------------------------------------


def database_url() -> str:
    """The URL of the test database, for a subprocess to use the same one."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """``celery -A config worker -Q inference`` in a subprocess, against ``broker_url``."""

    def __init__(self, *, broker_url: str, name: str, concurrency: int = 1, extra_env=None):
        self.broker_url, self.name, self.concurrency = broker_url, name, concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{name}.log"

    def start(self, timeout: float = 90) -> "Worker":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "TEST_REDIS_URL": self.broker_url,
            "ENGINE_TORCH_THREADS": "1",
            "CELERY_WORKER_CONCURRENCY": str(self.concurrency),
            **self.extra_env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "inference",
            "-c", str(self.concurrency), "-P", "prefork", "-l", "info", "-n", f"{self.name}@%h",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        self.log = open(self.log_path, "ab")  # noqa: SIM115  closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s; see {self.log_path}")

    def child_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """One real worker for the whole session, on the test settings' broker."""
    from django.conf import settings

    worker = Worker(broker_url=settings.CELERY_BROKER_URL, name=f"test{os.getpid()}").start()
    yield worker
    worker.stop()


def wait_for_run(run_id, *, timeout: float = 120, until=("done", "failed")):
    from engine.models import AttentionRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = AttentionRun.objects.get(id=run_id)
        if run.status in until:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")


# --- a real browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.js_errors = errors
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
