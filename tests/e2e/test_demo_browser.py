"""The live model in real Chromium: the minimal pair, progress, heatmap, head view, similarity."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIRED = "The animal didn't cross the street because it was too tired."
WIDE = "The animal didn't cross the street because it was too wide."


def test_minimal_pair_heatmap_head_view_and_similarity(
    live_server, glossary_tx, celery_worker_process, page
):
    page.goto(f"{live_server.url}/en/terms/self-attention/")
    page.locator(".callout a").click()
    page.wait_for_url(re.compile(r"/en/demo/$"))
    page.locator(".examples a").first.click()  # the minimal pair example fills both fields
    assert page.locator("#id_text").input_value() == TIRED
    assert page.locator("#id_compare_text").input_value() == WIDE
    page.get_by_role("button", name="Run the model").click()
    page.wait_for_url(re.compile(r"/en/demo/runs/[0-9a-f-]+/"))
    page.wait_for_selector('#run-state[data-status="done"]', timeout=120_000)
    assert re.search(r"Done in \d+ ms on cpu", page.locator(".run-meta").inner_text())
    similarity = float(page.locator(".similarity").get_attribute("data-similarity"))
    assert 0.5 < similarity < 1.0

    # the heatmap of layer 1, head 1, with a value on hover
    heatmap = page.locator("#view svg.heatmap")
    assert heatmap.count() == 1
    cells = heatmap.locator("rect.cell")
    tokens = int(heatmap.get_attribute("data-size"))
    assert cells.count() == tokens * tokens
    assert re.search(r"→ .*: 0\.\d{3}", cells.first.locator("title").text_content())
    screenshot(page, "demo-heatmap")

    # the head view for layer 3 (htmx swaps the view; the URL follows)
    page.select_option('select[name="kind"]', value="head")
    page.wait_for_selector('#view[data-kind="head"] svg.head-view')
    page.select_option('select[name="layer"]', index=2)  # labels are 1-6, values 0-5
    page.wait_for_function("() => location.search.includes('layer=2')")
    assert page.locator("#view svg.head-view g.head-lines").count() == 12
    screenshot(page, "demo-head-view")

    # the difference between the two sentences
    page.select_option('select[name="kind"]', value="compare")
    page.wait_for_selector('#view[data-kind="compare"] .diff svg.heatmap')
    screenshot(page, "demo-compare")
    assert page.js_errors == []


def test_bad_input_keeps_the_text_and_says_why(live_server, glossary_tx, page):
    page.goto(f"{live_server.url}/ja/demo/")
    long_text = "あ" * 501
    page.fill("#id_text", long_text)
    page.get_by_role("button", name=re.compile("モデルを実行|Run")).click()
    page.wait_for_selector(".field-error")
    assert "501" in page.locator(".field-error").inner_text()
    assert page.locator("#id_text").input_value() == long_text
