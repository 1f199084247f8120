"""A PostgreSQL outage, survived. The test starts its own PostgreSQL (``initdb`` in a temporary
directory, on a spare port), points this process (the web side) and a real ``celery worker`` at
it, stops it with ``pg_ctl stop -m fast`` while the worker is computing a run, and starts it
again. Nothing is restarted but the database: the same web process and the same worker must
answer clearly while it is down and recover when it is back. It runs on its own Redis too, so
that no other worker of the session takes its runs."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import environ
import pytest
from django.core.management import call_command
from django.db import connections
from django.db.utils import load_backend

from engine import redis_server
from engine.models import AttentionRun
from quiz.models import Attempt, AttemptQuestion, ReviewCard
from tests.conftest import ARTIFACTS, Worker
from tests.worker_tasks import send_slow_run

pytestmark = pytest.mark.integration

SLOW_RUN_S = 6  # the worker sleeps this long before computing: the database is stopped meanwhile


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: initdb, start, stop, start again, then removed whole.
    initdb refuses to run as root, so as root the server runs as the ``postgres`` user."""

    def __init__(self):
        self.bindir = _pg_bindir()
        self.port = redis_server.free_port()
        self.root = Path(tempfile.mkdtemp(prefix="attention-lab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/attention_lab"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.running = False

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [*self.prefix, str(self.bindir / tool), *args]
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            server_log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}\n{server_log}")

    def init(self) -> "PrivatePostgres":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "attention_lab")  # fmt: skip
        return self

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -F -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "30", "start")  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False

    def remove(self) -> None:
        try:
            if self.running or (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            if self.log.exists():
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.log, ARTIFACTS / "outage-postgres.log")
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    try:
        yield server.init()
    finally:
        server.remove()


@pytest.fixture
def on_private_postgres(private_postgres, django_db_blocker, glossary_files):
    """This process's default database is the private one (migrated, with the glossary) for
    the test; the usual test database is put back afterwards."""
    from pages.services import load_content

    config = environ.Env.db_url_config(private_postgres.url)
    config["OPTIONS"] = {"connect_timeout": 2}
    config = connections.configure_settings({"default": config})["default"]
    wrapper = load_backend(config["ENGINE"]).DatabaseWrapper(config, "default")
    original = connections["default"]
    with django_db_blocker.unblock():
        connections["default"] = wrapper
        try:
            call_command("migrate", interactive=False, verbosity=0)
            load_content(glossary=glossary_files)
            yield private_postgres
        finally:
            wrapper.close()
            connections["default"] = original


@pytest.fixture
def own_redis(settings):
    """A Redis of the test's own (broker and cache), so that only this test's worker takes
    its runs."""
    port = redis_server.free_port()
    url = f"redis://127.0.0.1:{port}/0"
    process = redis_server.start(port)
    settings.CELERY_BROKER_URL = settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield SimpleNamespace(url=url)
    process.terminate()
    process.wait(timeout=10)


def submit(client, text):
    """A sentence sent through the demo form, as a learner sends it; the run's id."""
    response = client.post("/en/demo/", {"text": text, "model": "minilm"})
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def poll(client, run_id, timeout=40):
    """Read the run the way its page does (the check on read runs each time) until it ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert client.get(f"/en/demo/runs/{run_id}/status/").status_code == 200
        run = AttentionRun.objects.get(id=run_id)
        if run.status in ("done", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")


def wait_for_log(worker, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in worker.log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {worker.log_path} after {timeout}s")


def answer(client, attempt_id, item, lang="ja", **headers):
    data = {"position": item.position, "choice": item.question.correct_key, "confidence": "sure"}
    return client.post(f"/{lang}/quiz/attempts/{attempt_id}/answer/", data, **headers)


def test_postgres_stopped_then_back(client, own_redis, on_private_postgres):
    worker = Worker(
        broker_url=own_redis.url,
        name=f"outage-{os.getpid()}",
        extra_env={"DATABASE_URL": on_private_postgres.url, "ENGINE_RESULT_WRITE_RETRY_S": "40"},
    )
    worker.log_path.unlink(missing_ok=True)
    try:
        worker.start()
        # Before: a learner with a session and a quiz under way, and a worker that has its model.
        assert client.get("/healthz").status_code == 200
        assert poll(client, submit(client, "Before the outage.")).status == "done"
        assert client.post("/ja/terms/softmax/quiz/start/").status_code == 302
        attempt = Attempt.objects.get()
        first, second = attempt.items.select_related("question").order_by("position")[:2]
        assert answer(client, attempt.id, first).status_code == 200
        cards_before = ReviewCard.objects.count()

        # A run that the worker finishes while the database is down.
        slow = AttentionRun.objects.create(text="Finished during the outage.", input_key="slow")
        send_slow_run(slow.id, SLOW_RUN_S)
        deadline = time.monotonic() + 20
        while AttentionRun.objects.get(id=slow.id).status != "running":
            assert time.monotonic() < deadline, "the slow run was never claimed"
            time.sleep(0.1)

        on_private_postgres.stop("fast")

        # Pages: a clear 503 in the learner's language, with Retry-After; htmx gets a fragment.
        for url, expected in (
            ("/ja/", "データベースに一時的に接続できない"),
            ("/ja/terms/transformer/", "データベースに一時的に接続できない"),
            ("/en/terms/transformer/", "The database is unavailable for a moment"),
            ("/en/progress/", "The database is unavailable for a moment"),
        ):
            response = client.get(url)
            assert response.status_code == 503, url
            assert int(response["Retry-After"]) > 0
            assert expected in response.content.decode(), url
        fragment = client.get("/en/review/", HTTP_HX_REQUEST="true")
        assert fragment.status_code == 503 and "<html" not in fragment.content.decode()
        assert "unavailable for a moment" in fragment.content.decode()
        # A sentence sent to the live model is refused the same way.
        response = client.post("/en/demo/", {"text": "During the outage.", "model": "minilm"})
        assert response.status_code == 503 and "was not saved" in response.content.decode()
        # The API: JSON, in English or Japanese.
        response = client.get("/api/v1/terms/transformer/?lang=en")
        assert response.status_code == 503 and response["Retry-After"]
        assert "database is unavailable" in response.json()["error"]
        response = client.get(f"/api/v1/attention/{slow.id}/?lang=ja")
        assert response.status_code == 503 and "データベース" in response.json()["error"]

        # /healthz names the database, fast.
        started = time.monotonic()
        health = client.get("/healthz")
        assert time.monotonic() - started < 2.5
        assert health.status_code == 503 and health.json()["database"].startswith("down")

        # A quiz answer is refused with a message that says it was not saved.
        refused = answer(client, attempt.id, second)
        assert refused.status_code == 503
        assert "送信した内容は保存されていません" in refused.content.decode()

        # The worker computed the run and holds its result while the database is down.
        wait_for_log(worker, f"run {slow.id} computed; database unavailable", SLOW_RUN_S + 20)
        time.sleep(1)  # it is now in its backoff, retrying

        on_private_postgres.start()

        # Everything recovers in the same web process and the same worker.
        for url in ("/ja/", "/en/terms/transformer/", "/ja/terms/softmax/quiz/", "/en/progress/"):
            assert client.get(url).status_code == 200, url
        finished = poll(client, slow.id, timeout=20)
        assert finished.status == "done" and finished.weights, finished.error  # not lost
        assert finished.attempts == 1  # written by the first delivery, not computed again
        assert poll(client, submit(client, "After the outage.")).status == "done"
        health = client.get("/healthz")
        assert health.status_code == 200, health.json()

        # Nothing of the refused answer was written; sending it again counts it once.
        second.refresh_from_db()
        assert second.answered_at is None and second.chosen_key == ""
        assert ReviewCard.objects.count() == cards_before
        assert (
            AttemptQuestion.objects.filter(attempt=attempt, answered_at__isnull=False).count() == 1
        )
        assert answer(client, attempt.id, second).status_code == 200
        assert (
            AttemptQuestion.objects.filter(attempt=attempt, answered_at__isnull=False).count() == 2
        )
        assert worker.process.poll() is None  # the same worker, never restarted
    finally:
        worker.stop()
