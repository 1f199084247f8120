"""Faults against the real system: Redis stopped and restarted, a worker child killed with
SIGKILL mid-run, a hard time limit. Each test runs its own Redis on a spare port and its own
`celery worker` process, so it can break them without touching anything else."""

import os
import signal
import time
from types import SimpleNamespace

import pytest
from django.utils import translation

from engine import broker, redis_server, services
from engine.models import AttentionRun
from tests.conftest import Worker, wait_for_run
from tests.worker_tasks import send_slow_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_redis():
    port = redis_server.free_port()
    state = SimpleNamespace(port=port, url=f"redis://127.0.0.1:{port}/0")
    state.process = redis_server.start(port)

    def stop():
        state.process.terminate()
        state.process.wait(timeout=10)

    def restart():
        state.process = redis_server.start(port)

    state.stop, state.restart = stop, restart
    yield state
    if state.process.poll() is None:
        stop()


@pytest.fixture
def on_own_redis(own_redis, settings):
    """Point this process (the web side) at the test's own Redis."""
    settings.CELERY_BROKER_URL = settings.REDIS_URL = own_redis.url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    return own_redis


def start_worker(redis, name, **env):
    return Worker(broker_url=redis.url, name=name, extra_env=env).start()


def submit_slow(text, seconds):
    """A run whose task sleeps ``seconds`` in the worker before computing (a test-only task)."""
    run = AttentionRun.objects.create(text=text, input_key=f"slow-{text}")
    send_slow_run(run.id, seconds)
    return run.id


def submit(client, text):
    response = client.post("/api/v1/attention", {"text": text}, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def poll_api(client, run_id, timeout=90):
    """Read the run the way a learner's page does (the check on read runs each time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/attention/{run_id}/?layer=0&head=0").json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {body['status']} after {timeout}s")


def test_redis_stopped_then_back(client, glossary_tx, on_own_redis):
    worker = start_worker(on_own_redis, f"faults-redis-{os.getpid()}")
    try:
        assert poll_api(client, submit(client, "Before the outage."))["status"] == "done"

        on_own_redis.stop()
        # lessons, quizzes and review still answer
        for url in ("/ja/", "/en/terms/transformer/", "/ja/terms/softmax/quiz/", "/en/review/",
                    "/en/progress/"):  # fmt: skip
            assert client.get(url).status_code == 200, url
        # the live model says it is unavailable, clearly
        response = client.post("/en/demo/", {"text": "During the outage."})
        assert response.status_code == 503
        assert "live model is unavailable" in response.content.decode()
        assert response.content.decode().count("During the outage.") == 1  # the text is kept
        response = client.post(
            "/api/v1/attention", {"text": "During the outage."}, content_type="application/json"
        )
        assert response.status_code == 503 and "unavailable" in response.json()["error"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["broker"] == "down"
        assert not AttentionRun.objects.filter(text="During the outage.").exists()

        # a run that was written but could not be handed to the broker stays queued ...
        stranded = AttentionRun.objects.create(text="Stranded while down.", input_key="stranded")
        assert broker.send_run(run_id=stranded.id) is False

        on_own_redis.restart()
        # ... and is sent again on read once the broker is back, then completes
        assert poll_api(client, stranded.id)["status"] == "done"
        assert poll_api(client, submit(client, "After the outage."))["status"] == "done"
        assert client.get("/healthz").status_code == 200
    finally:
        worker.stop()


def test_worker_killed_mid_run_is_retried_or_failed_never_stuck(client, on_own_redis):
    worker = start_worker(on_own_redis, f"faults-kill-{os.getpid()}")
    try:
        run_id = submit_slow("The cat sat on the mat.", 4)
        wait_for_run(run_id, until=("running",), timeout=60)
        children = worker.child_pids()
        assert children
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        run = wait_for_run(run_id, timeout=90)
        if run.status == "done":
            assert run.attempts == 2  # redelivered after the kill, then finished
        else:
            assert run.status == "failed" and run.error
        # the worker's pool replaced the child and keeps serving
        assert poll_api(client, submit(client, "Still serving after the kill."))["status"] == "done"
    finally:
        worker.stop()


def test_hard_time_limit_fails_the_run_and_the_worker_keeps_serving(client, on_own_redis, settings):
    settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT = 3, None
    worker = start_worker(
        on_own_redis, f"faults-limit-{os.getpid()}",
        ENGINE_HARD_TIME_LIMIT="3", ENGINE_SOFT_TIME_LIMIT="0",
    )  # fmt: skip
    try:
        started = time.monotonic()
        run = wait_for_run(submit_slow("A very slow sentence.", 30), timeout=60)
        assert run.status == "failed"
        assert run.error == "timeout"
        with translation.override("en"):
            assert "took too long" in run.error_message
        with translation.override("ja"):
            assert "時間がかかりすぎ" in run.error_message
        assert time.monotonic() - started < 25
        # The pool replaced the killed child; the new child loads the model on its first run,
        # which can take more than 3 s on a busy machine, so this run gets the normal limit.
        settings.CELERY_TASK_TIME_LIMIT = 60
        assert poll_api(client, submit(client, "Fast again."))["status"] == "done"
    finally:
        worker.stop()


def test_sweep_fails_runs_that_nobody_will_finish(transactional_db, settings):
    from datetime import timedelta

    from django.utils import timezone

    stuck = AttentionRun.objects.create(text="stuck", input_key="s", status="running")
    AttentionRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(hours=1))
    old = AttentionRun.objects.create(text="old", input_key="o")
    AttentionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert services.sweep_stale_runs() == 2
    assert set(AttentionRun.objects.values_list("status", flat=True)) == {"failed"}
    assert all(AttentionRun.objects.values_list("error", flat=True))


def test_waiters_outlive_a_redis_restart(on_own_redis):
    """A request waiting for a run when Redis goes down is woken (it re-reads its run instead
    of sleeping out its wait), and once Redis is back the process subscribes again and a new
    waiter hears its run's announcement."""
    import threading
    import uuid

    first, second = uuid.uuid4(), uuid.uuid4()
    woken = threading.Event()

    def wait_first():
        with broker.final_announced(first, wait=20) as event:
            assert event is not None
            if broker.wait_for(event, 20):
                woken.set()

    waiter = threading.Thread(target=wait_first)
    started = time.monotonic()
    waiter.start()
    deadline = time.monotonic() + 5
    while broker.waiting_requests(first) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    on_own_redis.stop()
    waiter.join(timeout=10)
    assert woken.is_set() and time.monotonic() - started < 10  # not the 20 s wait
    with broker.final_announced(second, wait=5) as event:
        assert event is None  # Redis down: nobody is told to wait for what cannot be heard
    on_own_redis.restart()
    deadline = time.monotonic() + 15
    while True:  # the listener subscribes again (its backoff is at most 2 s)
        with broker.final_announced(second, wait=5) as event:
            if event is not None:
                broker._publish_final(second)
                assert broker.wait_for(event, 5) is True
                break
        assert time.monotonic() < deadline, "never subscribed again"
        time.sleep(0.2)
