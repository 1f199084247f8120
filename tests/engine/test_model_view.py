"""The model view and the heads API on real runs (a real Celery worker computes them): one
request draws every head with its role, the filter works without JavaScript, and the API's
roles are the page's."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.utils import translation

from engine import model_view
from engine.models import AttentionRun
from engine.transformer import roles
from tests.conftest import wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# 40-odd pieces: more than a thumbnail's 24 cells, so the thumbnails are pooled
LONG = (
    "After the storm, the river rose by three metres overnight, and the villagers, who had "
    "seen floods before, carried their chairs, tables and books up to the attic."
)


def finished_run(client, **payload) -> AttentionRun:
    response = client.post("/api/v1/attention", payload, content_type="application/json")
    assert response.status_code == 202, response.content
    run = wait_for_run(response.json()["id"])
    assert run.status == "done", run.error_detail
    return run


def fragment(client, url: str) -> str:
    response = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="view")
    assert response.status_code == 200
    return response.content.decode()


def test_the_model_view_is_one_request_with_every_head_labelled(client, celery_worker_process):
    run = finished_run(client, text=LONG)
    assert len(run.tokens) > model_view.THUMB_CELLS
    url = f"/en/demo/runs/{run.id}/"
    html = fragment(client, f"{url}?kind=model&unit=word")
    assert "<img" not in html and "/thumb/" not in html  # no second request at all
    links = re.findall(r'<a class="thumb" href="([^"]+)"[^>]*aria-label="([^"]+)"', html)
    assert len(links) == run.layers * run.heads == 72
    heads = client.get(f"/api/v1/attention/{run.id}/heads").json()["heads"]
    assert [(h["layer"], h["head"]) for h in heads] == [
        (layer, head) for layer in range(6) for head in range(12)
    ]
    for (href, name), entry in zip(links, heads, strict=True):
        layer, head = entry["layer"], entry["head"]
        # opens that head's heatmap, keeping the rest of the view (whole words here)
        assert f"kind=heatmap&amp;layer={layer}&amp;head={head}&amp;" in href
        assert "unit=word" in href
        with translation.override("en"):
            label = str(model_view.LABELS[entry["role"]])
        assert name == f"Layer {layer + 1}, head {head + 1}: {label} {entry['score']:.2f}"
    roles_on_page = re.findall(r'class="thumb-cell" data-role="([a-z]+)"', html)
    assert roles_on_page == [h["role"] for h in heads]
    assert set(roles_on_page) <= set(roles.ENCODER_RULES) | {"broad", "other"}
    # the reference set: a "usually" line under every head, and the rules with their numbers
    assert html.count('class="thumb-usual"') == 72 and re.search(r"\(\d+/30\)", html)
    assert "at least 50%" in html and "arXiv:1906.04341" in html
    # each thumbnail is a small well-formed SVG drawn with paths, not one rect per cell
    svgs = re.findall(r'<svg class="thumb-svg".*?</svg>', html)
    assert len(svgs) == 72
    for svg in svgs:
        tree = ET.fromstring(svg)  # noqa: S314  our own SVG, from our own numbers
        assert tree.get("viewBox") == "0 0 24 24"
        assert len(tree) <= 1 + model_view.LEVELS  # a background and a path per level


def test_the_role_filter_works_without_javascript(client, celery_worker_process):
    run = finished_run(client, text="The cat sat on the mat, and the dog sat on the rug.")
    heads = client.get(f"/api/v1/attention/{run.id}/heads").json()["heads"]
    role = max({h["role"] for h in heads}, key=[h["role"] for h in heads].count)
    expected = sum(1 for h in heads if h["role"] == role)
    page = client.get(f"/en/demo/runs/{run.id}/?kind=model&role={role}").content.decode()
    assert "<html" in page
    visible = re.findall(r'class="thumb-cell" data-role="([a-z]+)">', page)
    hidden = re.findall(r'class="thumb-cell" data-role="([a-z]+)" hidden>', page)
    assert visible == [role] * expected and len(hidden) == 72 - expected
    assert f"Showing {expected} of 72 heads." in page
    assert f'<option value="{role}" selected>' in page
    # the no-JS form keeps the rest of the view
    assert '<input type="hidden" name="kind" value="model">' in page
    unknown = client.get(f"/ja/demo/runs/{run.id}/?kind=model&role=sideways").content.decode()
    assert "sideways" in unknown and "すべてのヘッド" in unknown
    assert "hidden>" not in unknown.split('class="model-grid"')[1].split("</table>")[0]


def test_the_gpt_says_first_and_never_cls_sep_or_next(client, celery_worker_process):
    run = finished_run(client, text="自己注意では、各トークンが", model="gpt")
    body = client.get(f"/api/v1/attention/{run.id}/heads").json()
    assert len(body["heads"]) == run.layers * run.heads
    found = {head["role"] for head in body["heads"]}
    assert found <= set(roles.DECODER_RULES) | {"broad", "other"}
    assert not found & {"cls", "sep", "next"}
    page = fragment(client, f"/ja/demo/runs/{run.id}/?kind=model")
    assert "先頭トークン（シンク）" in page and "<|endoftext|>" in page.replace(
        "&lt;", "<"
    ).replace("&gt;", ">")
    assert "[CLS]（シンク）" not in page


def test_the_heads_api_refuses_unknown_and_unfinished_runs(client):
    missing = client.get("/api/v1/attention/00000000-0000-0000-0000-000000000000/heads")
    assert missing.status_code == 404 and missing.json()["error"]
    assert client.get("/api/v1/attention/not-a-uuid/heads").status_code == 404
    queued = AttentionRun.objects.create(text="Not yet.", input_key="heads-queued")
    response = client.get(f"/api/v1/attention/{queued.id}/heads")
    assert response.status_code == 409 and "done" in response.json()["error"]
    japanese = client.get(f"/api/v1/attention/{queued.id}/heads?lang=ja").json()["error"]
    assert re.search(r"[\u3040-\u30ff]", japanese)


def test_thumbnails_pool_exactly_and_the_old_per_head_url_is_gone(client):
    rng = np.random.default_rng(1)
    weights = rng.random((2, 3, 50, 50))
    small = model_view.pooled(weights)
    edges = np.linspace(0, 50, 25).astype(int)
    direct = weights[1, 2, edges[3] : edges[4], edges[7] : edges[8]].mean()
    assert small.shape == (2, 3, 24, 24) and small[1, 2, 3, 7] == pytest.approx(direct)
    assert model_view.pooled(weights[..., :10, :10]).shape == (2, 3, 10, 10)
    svg = ET.fromstring(model_view.thumbnail_svg(np.eye(24)))  # noqa: S314  ours
    # the diagonal: one level, 24 one-cell runs
    [_background, path] = list(svg)
    assert path.get("d").count("M") == 24 and path.get("fill-opacity") == "1.000"
    assert client.get("/en/demo/runs/x/thumb/0/0.svg").status_code == 404
