"""Through the real system: the API, Redis, a `celery worker` process, the database."""

import time

import numpy as np
import pytest

from engine.limits import MAX_WAIT
from engine.models import AttentionRun
from tests.conftest import wait_for_run
from tests.worker_tasks import send_slow_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def submit(client, **payload):
    return client.post("/api/v1/attention", payload, content_type="application/json")


def poll(client, url, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"still {body['status']}")


def test_api_run_through_a_real_worker(client, celery_worker_process):
    response = submit(client, text="The cat sat on the mat.")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/attention/{body['id']}/")
    result = poll(client, body["url"])
    assert result["status"] == "done", result
    assert result["device"] == "cpu" and result["elapsed_ms"] > 0
    tokens = result["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    attention = np.array(result["attention"])
    assert attention.shape == (6, 12, len(tokens), len(tokens))
    np.testing.assert_allclose(attention.sum(-1), 1, atol=5e-3)

    one_head = client.get(body["url"] + "?layer=5&head=11").json()["attention"]
    assert np.array(one_head).shape == (len(tokens), len(tokens))
    assert client.get(body["url"] + "?layer=6").status_code == 400


def test_identical_sentence_returns_the_finished_result_at_once(client, celery_worker_process):
    first = submit(client, text="Attention is all you need.").json()
    assert poll(client, first["url"])["status"] == "done"
    again = submit(client, text="  Attention   is all you need. ").json()
    assert again["id"] == first["id"] and again["reused"] is True and again["status"] == "done"
    assert AttentionRun.objects.count() == 1


def test_demo_form_to_run_page_with_progress_and_views(client, celery_worker_process):
    pair = (
        "The animal didn't cross the street because it was too tired.",
        "The animal didn't cross the street because it was too wide.",
    )
    response = client.post("/en/demo/", {"text": pair[0], "compare_text": pair[1]})
    assert response.status_code == 302
    run_url = response["Location"]
    status_url = run_url + "status/"
    first = client.get(status_url).content.decode()
    assert 'hx-trigger="load delay:500ms"' in first  # polls until final
    run = wait_for_run(AttentionRun.objects.get().id)
    assert run.status == "done" and 0 < run.similarity < 1
    final = client.get(status_url).content.decode()
    assert "hx-trigger" not in final.split('id="run-state"')[1].split(">")[0]
    assert "Cosine similarity" in final and "Done in" in final
    for kind in ("heatmap", "head", "model", "rollout", "step", "compare"):
        fragment = client.get(
            f"{run_url}?kind={kind}&layer=2&head=3", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="view"
        )
        html = fragment.content.decode()
        assert fragment.status_code == 200 and html.lstrip().startswith('<section id="view"'), kind
        assert f'data-kind="{kind}"' in html
    one = client.get(
        f"{run_url}?kind=head&layer=1&head=4&heads=one",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="view",
    ).content.decode()
    assert one.count('class="head-lines"') == 1 and 'data-head="4"' in one
    words = client.get(
        f"{run_url}?kind=head&unit=word&special=hide", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="view"
    ).content.decode()
    assert words.count('class="head-lines"') == 12 and "[CLS]" not in words
    page = client.get(f"{run_url}?kind=compare&unit=word&special=hide").content.decode()
    assert "Difference" in page and "<html" in page
    grid = client.get(f"{run_url}?kind=model").content.decode()
    assert grid.count('<a class="thumb"') == 72 and "<img" not in grid.split('id="view"')[1]


def test_a_failing_run_ends_failed_with_a_message(client, celery_worker_process, settings):
    run = AttentionRun.objects.create(text="The cat sat.", input_key="x")
    send_slow_run(run.id, "nonsense")  # the task raises ValueError inside the worker
    run = wait_for_run(run.id)
    assert run.status == "failed" and run.error == "error" and run.error_detail == "ValueError"
    assert "ValueError" in client.get(f"/api/v1/attention/{run.id}/").json()["error"]


def test_api_wait_returns_as_soon_as_the_run_is_final(client, celery_worker_process):
    body = submit(client, text="Waiting is better than polling.").json()
    started = time.monotonic()
    result = client.get(body["url"] + "?wait=20&layer=0&head=0").json()
    waited = time.monotonic() - started
    assert result["status"] == "done"  # one request, no polling
    # Woken by the announcement, well before the cap (every wait is capped at MAX_WAIT).
    assert waited < MAX_WAIT - 2, waited
    assert client.get(body["url"] + "?wait=soon").status_code == 400
    # on a finished run, wait returns at once
    started = time.monotonic()
    assert client.get(body["url"] + "?wait=5").json()["status"] == "done"
    assert time.monotonic() - started < 3  # no waiting on a finished run


def test_runs_queued_behind_a_busy_worker_are_computed_as_one_batch(client, celery_worker_process):
    """The worker (concurrency 1) is held by a slow run while runs of both models queue up;
    then it computes them in batches (``batch_size`` > 1), and each stored result equals that
    run computed alone in this process."""
    from engine.arrays import unpack
    from engine.transformer import AttentionModel, GPTModel
    from tests.engine.test_batching import ENCODER_TEXTS, GPT_TEXTS, PAIR, assert_stored_equal

    blocker = AttentionRun.objects.create(text="Hold the worker.", input_key="hold")
    send_slow_run(blocker.id, "3")
    wait_for_run(blocker.id, until=("running",))
    ids = [submit(client, text=text).json()["id"] for text in ENCODER_TEXTS]
    ids.append(submit(client, text=PAIR[0], compare_text=PAIR[1]).json()["id"])
    gpt_ids = [submit(client, text=text, model="gpt").json()["id"] for text in GPT_TEXTS]
    generating = submit(client, text="Attention is", model="gpt", generate=3).json()["id"]
    runs = [wait_for_run(run_id) for run_id in [*ids, *gpt_ids, generating]]
    assert all(run.status == "done" for run in runs), [(r.status, r.error) for r in runs]
    encoder_runs, gpt_runs = runs[: len(ids)], runs[len(ids) : -1]
    assert {run.batch_size for run in encoder_runs} == {len(encoder_runs)}
    assert len({run.batch_leader for run in encoder_runs}) == 1
    assert all(run.batch_size > 1 for run in gpt_runs)

    encoder, gpt = AttentionModel.load(device="cpu"), GPTModel.load(device="cpu")
    for run in encoder_runs:
        alone = encoder.run(run.text, keep_qkv=True)
        assert_stored_equal(unpack(run.weights), alone.weights)
        assert_stored_equal(unpack(run.qkv), np.stack([alone.queries, alone.keys, alone.values]))
    pair = encoder_runs[-1]
    _, second, similarity = encoder.run_pair(pair.text, pair.compare_text, keep_qkv=True)
    assert_stored_equal(unpack(pair.compare_weights), second.weights)
    assert pair.similarity == pytest.approx(similarity, abs=1e-5)
    for run in [*gpt_runs, runs[-1]]:
        alone = gpt.run(run.text, keep_qkv=True)
        assert run.input_ids == alone.input_ids.tolist()
        assert_stored_equal(unpack(run.weights), alone.weights)
        assert_stored_equal(unpack(run.scores), alone.scores)
        assert [[c["id"] for c in row] for row in run.lens] == [
            [c[0] for c in r] for r in alone.lens
        ]
        np.testing.assert_allclose(
            [[c["p"] for c in row] for row in run.predictions],
            [[c[2] for c in row] for row in alone.predictions],
            rtol=1e-5,
            atol=1e-5,
        )
    greedy = gpt.generate("Attention is", 3)
    assert [token["id"] for token in runs[-1].generated] == [t[0] for t in greedy.new_tokens]
