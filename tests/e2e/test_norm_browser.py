"""Norm-based attention and the similarity split in real Chromium."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIRST = "A man is playing a guitar on the stage."
SECOND = "Someone strums an acoustic instrument."


def cell_values(page) -> list[str]:
    return page.locator("#view svg.heatmap rect.cell").evaluate_all(
        "cells => cells.map(cell => cell.getAttribute('data-value'))"
    )


def test_switching_to_norm_based_values_changes_the_view_and_shows_the_sink(
    live_server, celery_worker_process, page
):
    page.goto(f"{live_server.url}/en/demo/")
    page.fill("#id_text", FIRST)
    page.fill("#id_compare_text", SECOND)
    page.get_by_role("button", name="Run the model").click()
    page.wait_for_url(re.compile(r"/en/demo/runs/[0-9a-f-]+/"))
    page.wait_for_selector('#run-state[data-status="done"]', timeout=120_000)

    # the similarity split: the pairs add up to the score, drawn and listed
    split = page.locator(".similarity-split")
    similarity = float(page.locator(".similarity").get_attribute("data-similarity"))
    assert abs(float(split.get_attribute("data-total")) - similarity) < 1e-3
    assert split.locator("svg.pair-lines line.pair").count() == 12
    assert split.locator(".pair-table tbody tr").count() == 12
    assert len(split.locator(".layer-similarity td").all()) == 7
    screenshot(page, "norm-similarity-split")

    page.select_option('select[name="layer"]', index=2)
    page.wait_for_function("() => location.search.includes('layer=2')")
    weights = cell_values(page)
    assert page.locator("#view .sink").count() == 0
    page.select_option('select[name="values"]', value="norm")
    page.wait_for_function("() => location.search.includes('values=norm')")
    page.wait_for_selector("#view .sink .sink-table")
    norms = cell_values(page)
    assert len(norms) == len(weights) and norms != weights
    assert "norm-based" in page.locator("#view svg.heatmap > title").text_content()
    summary = page.locator("#view .sink-summary").inner_text()
    assert re.search(r"layer \d+: \d+% of the attention weight goes to \[(CLS|SEP)\]", summary)
    assert page.locator("#view .sink-table tbody tr").count() == 6
    assert page.locator('#view .sink a[href="https://arxiv.org/abs/2004.10102"]').count() == 1
    screenshot(page, "norm-sink")

    # the head view follows the choice
    page.select_option('select[name="kind"]', value="head")
    page.wait_for_selector('#view[data-kind="head"] svg.head-view')
    assert page.locator("#view .sink").count() == 1
    assert page.js_errors == []


def test_the_norm_choice_works_without_javascript(live_server, celery_worker_process, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/ja/demo/")
        page.fill("#id_text", "The cat sat on the mat.")
        page.locator('form button[type="submit"]').first.click()
        page.wait_for_url(re.compile(r"/ja/demo/runs/[0-9a-f-]+/"))
        for _ in range(120):
            if page.locator('#run-state[data-status="done"]').count():
                break
            page.wait_for_timeout(500)
            page.reload()
        page.select_option('select[name="values"]', value="norm")
        page.locator(".view-controls button[type=submit]").click()
        page.wait_for_url(re.compile(r"values=norm"))
        assert page.locator("#view .sink-table").count() == 1
        assert "ノルム" in page.locator("#view .sink").inner_text()
    finally:
        context.close()
