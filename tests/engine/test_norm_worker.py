"""Norm-based values and the similarity split through the real system: the API, Redis, a
`celery worker` process, the database, and the run page."""

import re

import numpy as np
import pytest

from tests.engine.test_worker import poll, submit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PAIR = ("A man is playing a guitar.", "Someone strums an acoustic instrument.")


def test_pair_run_similarity_pairs_add_up_through_a_real_worker(client, celery_worker_process):
    body = submit(client, text=PAIR[0], compare_text=PAIR[1]).json()
    result = poll(client, body["url"])
    assert result["status"] == "done", result
    first = len(result["tokens"])
    pairs = result["similarity_pairs"]
    assert {pair["a"] for pair in pairs} == set(range(first))
    second = max(pair["b"] for pair in pairs) + 1
    assert len(pairs) == first * second and second >= 8  # every pair
    total = sum(pair["contribution"] for pair in pairs)
    assert abs(total - result["similarity"]) < 1e-3
    layers = result["layer_similarity"]
    assert len(layers) == 7 and abs(layers[-1] - result["similarity"]) < 1e-3

    page = client.get(body["url"].replace("/api/v1/attention/", "/en/demo/runs/")).content
    html = page.decode()
    assert "Why the two sentences are similar" in html
    shown = re.search(r"the pairs add up to ([-0-9.]+)", html).group(1)
    assert abs(float(shown) - result["similarity"]) < 1e-3
    assert html.count('class="pair positive"') + html.count('class="pair negative"') == 12
    words = client.get(
        body["url"].replace("/api/v1/attention/", "/en/demo/runs/") + "?unit=word",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="view",
    ).content.decode()
    assert "The strongest word pairs" in words and "strums" in words
    hidden = client.get(
        body["url"].replace("/api/v1/attention/", "/en/demo/runs/") + "?special=hide",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="view",
    ).content.decode()
    section = hidden.split('class="similarity-split"')[1]
    assert "[CLS]" not in section and "[SEP]" not in section
    assert "together they add" in section


def test_values_norm_in_the_api_and_on_the_page(client, celery_worker_process):
    body = submit(client, text="The cat sat on the mat.").json()
    assert poll(client, body["url"])["status"] == "done"
    weights = np.array(client.get(body["url"] + "?layer=2&head=5").json()["attention"])
    norm = client.get(body["url"] + "?layer=2&head=5&values=norm").json()
    assert norm["values"] == "norm"
    norm = np.array(norm["attention"])
    assert norm.shape == weights.shape
    # ‖α_ij f(x_j)‖ = α_ij ‖f(x_j)‖: the same factor down every column, so rows do not sum to 1
    ratio = norm / np.where(weights > 1e-3, weights, np.nan)
    column_spread = np.nanmax(ratio, axis=0) - np.nanmin(ratio, axis=0)
    assert np.nanmax(column_spread / np.nanmean(ratio, axis=0)) < 0.02
    assert not np.allclose(norm.sum(-1), 1, atol=0.05)
    scores = np.array(client.get(body["url"] + "?values=scores&layer=0").json()["attention"])
    assert scores.min() < 0  # raw scores, not weights
    refused = client.get(body["url"] + "?values=lengths")
    assert refused.status_code == 400 and "weights, scores or norm" in refused.json()["error"]

    run_url = body["url"].replace("/api/v1/attention/", "/en/demo/runs/")
    for kind in ("heatmap", "head", "rollout"):
        html = client.get(
            f"{run_url}?kind={kind}&values=norm&layer=2&head=5",
            HTTP_HX_REQUEST="true",
            HTTP_HX_TARGET="view",
        ).content.decode()
        assert "[CLS] and [SEP] as sinks" in html and 'class="sink-table"' in html, kind
        assert "arXiv:2004.10102" in html
    step = client.get(f"{run_url}?kind=step&values=norm").content.decode()
    assert "Norm-based values are offered in" in step
    japanese = client.get(f"/ja/demo/runs/{body['id']}/?values=norm").content.decode()
    assert "ノルム" in japanese


def test_the_gpt_offers_norm_based_values_with_its_first_token_as_the_sink(
    client, celery_worker_process
):
    body = submit(client, text="Attention is", model="gpt").json()
    result = poll(client, body["url"])
    assert result["status"] == "done", result
    assert "similarity_pairs" not in result
    norm = np.array(client.get(body["url"] + "?values=norm&layer=0&head=0").json()["attention"])
    assert np.all(np.triu(norm, k=1) == 0) and norm[0, 0] > 0  # nothing from the future
    html = client.get(
        body["url"].replace("/api/v1/attention/", "/en/demo/runs/") + "?values=norm",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="view",
    ).content.decode()
    assert "The first token as a sink" in html and "&lt;|endoftext|&gt;" in html
    assert html.count('<tr><th scope="row">') == result_layers(client, body["url"])


def result_layers(client, url) -> int:
    return len(client.get(url).json()["lens"])
