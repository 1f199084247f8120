"""The web process's one subscription to run announcements (``engine.broker``), on the test
Redis: waiters are woken by the announcement of their run only, a process holds one pattern
subscription however many requests wait, and without a broker nobody is told to wait."""

import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from engine import broker


def _publish(run_id) -> None:
    broker._publish_final(run_id)  # what announce_final sends once the change is committed


def _numpat() -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).pubsub_numpat()


def test_a_waiter_is_woken_by_its_own_run_only():
    mine, other = uuid.uuid4(), uuid.uuid4()
    with broker.final_announced(mine, wait=5) as event:
        assert event is not None and broker.waiting_requests(mine) == 1
        _publish(other)
        assert broker.wait_for(event, 0.3) is False  # another run's end does not wake it
        started = time.monotonic()
        threading.Timer(0.2, _publish, args=(mine,)).start()
        assert broker.wait_for(event, 5) is True
        assert time.monotonic() - started < 2
    assert broker.waiting_requests(mine) == 0  # forgotten when the block ends


def test_many_waiters_share_one_subscription():
    ids = [uuid.uuid4() for _ in range(20)]
    woken = []

    def wait(run_id):
        with broker.final_announced(run_id, wait=5) as event:
            woken.append(broker.wait_for(event, 5))

    before = _numpat()
    threads = [threading.Thread(target=wait, args=(run_id,)) for run_id in ids]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while sum(broker.waiting_requests(run_id) for run_id in ids) < len(ids):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # One pattern subscription for this process (at most one more than before: the listener
    # may already have been running for an earlier test), and no channel per request.
    assert _numpat() - before <= 1 and _numpat() >= 1
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert client.pubsub_channels(f"{broker.CHANNEL_PREFIX}*") == []
    for run_id in ids:
        _publish(run_id)
    for thread in threads:
        thread.join(timeout=10)
    assert woken == [True] * len(ids)


def test_no_wait_asked_means_no_listening():
    with broker.final_announced(uuid.uuid4(), wait=0) as event:
        assert event is None
    assert broker.wait_for(None, 5) is False  # returns at once


def test_without_a_broker_nobody_is_told_to_wait(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()
    with broker.final_announced(uuid.uuid4(), wait=10) as event:
        assert event is None  # the caller reads the run as it is instead of waiting 10 s
    assert time.monotonic() - started < broker.LISTEN_READY_S + 1


def test_the_listening_thread_ends_when_nobody_waits(monkeypatch):
    monkeypatch.setattr(broker, "LISTEN_IDLE_S", 0.2)
    listener = broker._listener()
    with broker.final_announced(uuid.uuid4(), wait=5) as event:
        assert event is not None
        thread = listener.thread
        assert thread is not None and thread.is_alive()
    thread.join(timeout=5)  # it checks once a second
    assert not thread.is_alive()
    with broker.final_announced(uuid.uuid4(), wait=5) as event:  # and starts again when needed
        assert event is not None and listener.thread.is_alive()


@pytest.mark.parametrize("wait", [-1.0, 0.0])
def test_wait_for_never_blocks_on_a_non_positive_timeout(wait):
    event = threading.Event()
    started = time.monotonic()
    assert broker.wait_for(event, wait) is False
    assert time.monotonic() - started < 0.5
