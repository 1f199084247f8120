"""The races that a status read used to have, closed, shown with real concurrent requests to a
live server (threads, each with its own database connection) and a real Redis."""

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from engine import broker, lifecycle
from engine.models import AttentionRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POLLS = 8


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  our live server
        return json.loads(response.read())


@pytest.fixture
def idle_broker(settings):
    """A Redis database that no worker reads: what is published stays in the queue to count."""
    url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.CELERY_BROKER_URL = url
    yield client
    client.flushdb()


def test_concurrent_polls_resend_a_stranded_run_once(live_server, idle_broker):
    now = timezone.now()
    run = AttentionRun.objects.create(text="Stranded.", input_key="stranded")
    old_sent = now - timedelta(seconds=20)  # past ENGINE_QUEUED_RESEND_AFTER (2 s in tests)
    AttentionRun.objects.filter(pk=run.pk).update(
        created_at=now - timedelta(seconds=30), sent_at=old_sent
    )
    url = f"{live_server.url}/api/v1/attention/{run.id}/"
    start = threading.Barrier(POLLS)

    def poll(_):
        start.wait()
        return get_json(url)["status"]

    with ThreadPoolExecutor(POLLS) as pool:
        statuses = list(pool.map(poll, range(POLLS)))
    assert statuses == ["queued"] * POLLS
    assert idle_broker.llen("inference") == 1  # one re-send, whatever the number of polls
    run.refresh_from_db()
    assert run.sent_at > old_sent


def test_a_waiting_client_sees_a_failure_only_after_it_is_committed(live_server):
    run = AttentionRun.objects.create(text="Waiting.", input_key="waiting", status="running")
    url = f"{live_server.url}/api/v1/attention/{run.id}/?wait=8"
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(get_json, url)
        deadline = time.monotonic() + 10
        # The live server runs in this process: its waiting request is registered here.
        while broker.waiting_requests(run.id) == 0:
            assert time.monotonic() < deadline, "the request never started waiting"
            time.sleep(0.02)
        with transaction.atomic():
            assert lifecycle.fail_run(run_id=run.id, code="error", detail="Test") is True
            time.sleep(1.0)  # a slow commit: an early announcement would be read before it
        body = waiting.result(timeout=20)
        elapsed = time.monotonic() - started
    # Woken by the announcement (not by the 8 s cap) and reading the committed failure.
    assert body["status"] == "failed", body
    assert body["error_code"] == "error"
    assert elapsed < 6, elapsed


def test_concurrent_claims_never_take_one_run_twice(settings):
    """Workers that take messages at the same moment (threads, each with its own database
    connection) each claim a batch; every queued run ends in exactly one batch, and the
    messages of runs that another batch took are skipped."""
    from django.db import connection

    from tests.engine.test_batching import make_run

    settings.ENGINE_BATCH_MAX = 4
    runs = [make_run(f"Claim race sentence {i}.") for i in range(24)]
    start = threading.Barrier(6)

    def worker(k: int) -> list:
        try:
            start.wait(timeout=10)
            claimed = []
            for run in runs[k::6]:  # each "worker" takes the messages of every sixth run
                claimed += [one.id for one in lifecycle.claim_batch(run_id=run.id, worker=f"w{k}")]
            return claimed
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        batches = list(pool.map(worker, range(6)))
    claimed = [run_id for batch in batches for run_id in batch]
    assert sorted(claimed) == sorted(run.id for run in runs)  # each exactly once
    rows = AttentionRun.objects.filter(id__in=claimed)
    assert all(row.status == "running" and row.attempts == 1 for row in rows)
    assert len({row.batch_leader for row in rows}) < len(runs)  # some really were batched
