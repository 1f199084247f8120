"""The GPT in real Chromium, in Japanese: a prompt, generation with progress, the predictions,
the logit lens and the lower-triangular heatmap."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_japanese_prompt_with_generation(live_server, glossary_tx, celery_worker_process, page):
    page.goto(f"{live_server.url}/ja/demo/")
    page.locator(".examples a[href*='model=gpt']").first.click()  # a Japanese GPT example
    assert page.locator("input[name=model][value=gpt]").is_checked()
    prompt = page.locator("#id_text").input_value()
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", prompt)  # a Japanese prompt
    page.fill("input[name=generate]", "8")
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/ja/demo/runs/[0-9a-f-]+/"))
    page.wait_for_selector('#run-state[data-status="done"]', timeout=120_000)

    # the prompt's pieces show the learner's own characters, never mojibake
    shown = "".join(page.locator("ol.tokens:not(.new-tokens) li.token").all_inner_texts())
    assert "\ufffd" not in shown and "Ã" not in shown
    assert prompt.replace(" ", "") in shown.replace("·", "").replace(" ", "")
    # what it wrote, and the predictions at every position and after every layer
    assert page.locator(".generated-text mark.continuation").inner_text().strip()
    assert 1 <= page.locator("ol.new-tokens li").count() <= 8
    rows = page.locator(".predictions-table tbody tr")
    assert rows.count() == page.locator("ol.tokens:not(.new-tokens) li.token").count()
    assert rows.first.locator("td").count() == 5
    assert page.locator(".lens-table tbody tr").count() >= 1

    # the heatmap is the lower triangle it is: every cell above the diagonal is masked
    heatmap = page.locator("#view svg.heatmap")
    assert heatmap.get_attribute("data-causal") == "true"
    size = int(heatmap.get_attribute("data-size"))
    assert heatmap.locator("rect.cell.masked").count() == size * (size - 1) // 2
    assert heatmap.locator("rect.cell:not(.masked)").count() == size * (size + 1) // 2
    screenshot(page, "gpt-ja-generation")

    # the step-through shows the causal mask as a real −∞ bias
    page.select_option('select[name="kind"]', value="step")
    page.wait_for_selector('#view[data-kind="step"] li[data-step="mask"] svg.heatmap')
    assert "−∞" in page.locator('li[data-step="mask"] h3').inner_text()
    # and each new token's attention over what came before
    page.select_option('select[name="kind"]', value="generation")
    page.wait_for_selector('#view[data-kind="generation"] svg.heatmap')
    screenshot(page, "gpt-ja-generation-attention")
    assert page.js_errors == []
