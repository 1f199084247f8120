"""The faithfulness check through the real system: the API and the page, Redis, a real
`celery worker` process, the database; and every request that cannot start a check."""

import time

import pytest
from django.utils import timezone

from engine.models import AttentionRun, FaithfulnessCheck
from tests.conftest import wait_for_run

SENTENCE = "The animal didn't cross the street because it was too tired."


def _done_run(**fields) -> AttentionRun:
    defaults = {
        "text": SENTENCE,
        "input_key": f"k{time.monotonic_ns()}",
        "status": AttentionRun.Status.DONE,
        "finished_at": timezone.now(),
        "layers": 6,
        "heads": 12,
    }
    return AttentionRun.objects.create(**{**defaults, **fields})


def _url(run_id) -> str:
    return f"/api/v1/attention/{run_id}/faithfulness"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_check_runs_in_the_worker_with_progress_and_all_methods(client, celery_worker_process):
    submitted = client.post(
        "/api/v1/attention", {"text": SENTENCE}, content_type="application/json"
    )
    run = wait_for_run(submitted.json()["id"])
    assert run.status == "done"
    started = client.post(_url(run.id))
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["status"] == "queued" and body["url"].endswith(_url(run.id))
    again = client.post(_url(run.id))  # idempotent: one check per run
    assert again.status_code == 200 and FaithfulnessCheck.objects.count() == 1

    progress, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(_url(run.id)).json()
        progress.append((body["status"], body["done"], body["total"]))
        if body["status"] in ("done", "failed"):
            break
        time.sleep(0.02)
    assert body["status"] == "done", body
    done = [d for _, d, _ in progress]
    assert done == sorted(done), progress  # progress only rises
    assert body["done"] == body["total"] > 2
    result = body["result"]
    assert result["measure"] == "embedding_cosine" and result["k"] == [1, 2, 3, 4, 5]
    assert set(result["methods"]) == {"attention", "rollout", "norm", "gradient"}
    assert result["tokens"][0] == "[CLS]" and result["random"]["draws"] == 20
    assert len(result["random"]["mean"]) == len(result["random"]["sd"]) == 5
    for curve in result["methods"].values():
        assert len(curve["shift"]) == 5 and 0 not in curve["removed"]

    # the run page shows the plot and its table, in Japanese too
    page = client.get(f"/ja/demo/runs/{run.id}/").content.decode()
    assert 'data-status="done"' in page and "deletion-plot" in page and "deletion-table" in page
    assert "削除テスト" in page
    check = FaithfulnessCheck.objects.get()
    assert check.started_at <= check.finished_at


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_gpt_check_measures_the_next_token_prediction(client, celery_worker_process):
    submitted = client.post(
        "/api/v1/attention",
        {"text": "In self-attention, every token looks at", "model": "gpt"},
        content_type="application/json",
    )
    run = wait_for_run(submitted.json()["id"])
    assert client.post(_url(run.id)).status_code == 202
    deadline = time.monotonic() + 120
    while (body := client.get(_url(run.id)).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert body["status"] == "done", body
    result = body["result"]
    last = len(result["tokens"]) - 1
    assert result["measure"] == "next_token_tv"
    for curve in result["methods"].values():
        assert not {0, last} & set(curve["removed"]) and all(0 <= v <= 1 for v in curve["shift"])


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_too_short_sentence_fails_with_a_reason(client, celery_worker_process):
    run = _done_run(text="Hi", tokens=[])
    assert client.post(_url(run.id)).status_code == 202
    deadline = time.monotonic() + 120
    while (body := client.get(_url(run.id) + "?lang=ja").json())["status"] != "failed":
        assert time.monotonic() < deadline and body["status"] != "done"
        time.sleep(0.1)
    assert body["error_code"] == "too_short" and "トークン" in body["error"]
    assert "too few words" in client.get(_url(run.id)).json()["error"]
    # a too-short sentence is not tried again
    assert client.post(_url(run.id)).json()["status"] == "failed"


@pytest.mark.django_db
def test_bad_requests_say_why_in_both_languages(client):
    unknown = client.post(_url("00000000-0000-0000-0000-000000000000") + "?lang=ja")
    assert unknown.status_code == 404 and "実行" in unknown.json()["error"]
    assert client.post(_url("not-a-uuid")).status_code == 404
    queued = AttentionRun.objects.create(text=SENTENCE, input_key="q")
    refused = client.post(_url(queued.id))
    assert refused.status_code == 409 and "not finished" in refused.json()["error"]
    assert "まだ" in client.post(_url(queued.id) + "?lang=ja").json()["error"]
    failed = _done_run(status=AttentionRun.Status.FAILED, error="error")
    refused = client.post(_url(failed.id) + "?lang=ja")
    assert refused.status_code == 409 and "失敗" in refused.json()["error"]
    none_yet = client.get(_url(_done_run().id))
    assert none_yet.status_code == 404 and "POST" in none_yet.json()["error"]
    assert FaithfulnessCheck.objects.count() == 0


@pytest.mark.django_db
def test_the_page_form_works_without_javascript(client):
    run = _done_run(tokens=[])
    page_url = f"/en/demo/runs/{run.id}/faithfulness/"
    response = client.post(page_url)
    assert response.status_code == 302 and response["Location"].endswith("#faithfulness")
    check = FaithfulnessCheck.objects.get(run=run)
    assert client.post(page_url).status_code == 302 and FaithfulnessCheck.objects.count() == 1
    fragment = client.get(page_url, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="faithfulness"')
    assert 'hx-trigger="load delay:500ms"' in fragment and "<progress" in fragment
    FaithfulnessCheck.objects.filter(id=check.id).update(status="running", done=3, total=8)
    fragment = client.get(page_url, HTTP_HX_REQUEST="true").content.decode()
    assert 'max="8" value="3"' in fragment and "step 3 of 8" in fragment
    assert "#faithfulness" in fragment.split("<noscript>")[1]  # the no-JS refresh link
    queued = AttentionRun.objects.create(text=SENTENCE, input_key="q2")
    refused = client.post(f"/ja/demo/runs/{queued.id}/faithfulness/")
    assert refused.status_code == 409 and "まだ" in refused.content.decode()
    assert client.post("/en/demo/runs/nope/faithfulness/").status_code == 404


@pytest.mark.django_db
def test_a_failed_check_can_start_again_and_a_stuck_one_is_failed(client, settings):
    from engine import checks

    run = _done_run(tokens=[])
    check = FaithfulnessCheck.objects.create(
        run=run, status="failed", error="error", error_detail="RuntimeError"
    )
    response = client.post(_url(run.id))
    assert response.status_code == 202 and response.json()["status"] == "queued"
    long_ago = timezone.now() - timezone.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    FaithfulnessCheck.objects.filter(id=check.id).update(status="running", started_at=long_ago)
    body = client.get(_url(run.id) + "?lang=ja").json()
    assert body["status"] == "failed" and body["error_code"] == "worker_stopped"
    assert body["error"] and checks.check_of(run).status == "failed"
