"""Views that follow the pointer, in real Chromium: a token's lines isolated by the mouse and by
the keyboard, a heatmap row isolated with its value read out, a control that updates the view
without a page load, the SVG and CSV downloaded through the buttons, and axe on the page."""

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import screenshot, wait_for_run
from tests.e2e.test_pages_browser import _axe_violations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SVG = "{http://www.w3.org/2000/svg}"
TEXT = "The cat sat on the mat because it was tired."


def _opacity(locator) -> float:
    return float(locator.evaluate("node => getComputedStyle(node).opacity"))


def _submit(page, live_server) -> str:
    response = page.request.post(f"{live_server.url}/api/v1/attention", data={"text": TEXT})
    assert response.status == 202, response.text()
    run_id = response.json()["id"]
    assert wait_for_run(run_id).status == "done"
    return run_id


def test_views_follow_the_pointer_and_save_what_they_show(
    live_server, glossary_tx, celery_worker_process, page, browser
):
    run_id = _submit(page, live_server)
    page.goto(f"{live_server.url}/en/demo/runs/{run_id}/?kind=head&layer=2")
    view = page.locator("#view svg.head-view")
    token = view.locator('text.token[data-side="from"][data-index="2"]')  # "cat"
    assert token.text_content() == "cat"

    # the mouse: hovering a token keeps its lines, the others fade
    token.hover()
    assert "isolating" in view.get_attribute("class")
    kept = view.locator('line[data-from="2"]')
    faded = view.locator('line:not([data-from="2"])')
    assert kept.count() > 0 and faded.count() > 0
    assert kept.first.get_attribute("class") == "on"
    page.wait_for_function(
        "el => getComputedStyle(el).opacity < 0.2", arg=faded.first.element_handle()
    )
    assert _opacity(faded.first) < 0.2 and _opacity(kept.first) == 1
    screenshot(page, "reading-head-view-isolated")
    page.mouse.move(5, 5)  # leaving the figure brings every line back
    page.wait_for_function("() => !document.querySelector('svg.head-view.isolating')")

    # the keyboard: a focused token does the same, Tab moves on, Escape clears
    token.focus()
    assert view.locator("line.on").count() == kept.count()
    page.keyboard.press("Tab")  # to the same token on the right: the lines *to* it
    focused = page.evaluate(
        "() => [document.activeElement.dataset.side, document.activeElement.dataset.index]"
    )
    assert focused == ["to", "2"]
    assert view.locator("line.on").count() == view.locator('line[data-to="2"]').count()
    page.keyboard.press("Escape")
    assert view.locator("line.on").count() == 0
    assert "isolating" not in view.get_attribute("class")
    # Enter on the focused token (a role="button") isolates it again, and Enter again clears
    page.keyboard.press("Enter")
    assert view.locator("line.on").count() == view.locator('line[data-to="2"]').count()
    page.keyboard.press("Enter")
    assert view.locator("line.on").count() == 0

    # a control updates the view at once, without a page load, and the URL follows
    page.evaluate("() => { window.samePage = true; }")
    page.select_option('select[name="kind"]', value="heatmap")
    page.wait_for_selector('#view[data-kind="heatmap"] svg.heatmap')
    page.wait_for_function("() => location.search.includes('kind=heatmap')")
    assert page.evaluate("() => window.samePage") is True
    heatmap = page.locator("#view svg.heatmap")
    ticks = heatmap.locator("g.colour-scale text.scale-tick")
    assert ticks.count() == 3 and ticks.first.text_content() == "0"

    # a heatmap row: hover its label, the other rows fade and the readout says a value
    label = heatmap.locator('text.row-label[data-row="2"]')
    label.hover()
    other = heatmap.locator('rect.cell[data-row="3"]').first
    page.wait_for_function("el => getComputedStyle(el).opacity < 0.3", arg=other.element_handle())
    assert _opacity(heatmap.locator('rect.cell[data-row="2"]').first) == 1
    assert page.locator("#view output.readout").text_content().startswith("cat → ")
    page.keyboard.press("Escape")
    assert heatmap.locator(".on").count() == 0

    page.select_option('select[name="values"]', value="scores")
    page.wait_for_function("() => location.search.includes('values=scores')")
    page.wait_for_selector('#view svg.heatmap g.colour-scale[data-diverging="true"]')
    assert "raw scores" in page.locator("#view h2").inner_text()
    assert page.evaluate("() => window.samePage") is True

    # the buttons download what the view shows
    with page.expect_download() as download:
        page.locator("#view a.export-svg").click()
    assert download.value.suggested_filename.endswith("-heatmap-L3H1-scores.svg")
    root = ET.parse(download.value.path()).getroot()  # noqa: S314  our own export
    assert root.tag == f"{SVG}svg" and root.find(f".//{SVG}g[@class='colour-scale']") is not None
    with page.expect_download() as download:
        page.locator("#view a.export-csv").click()
    rows = list(
        csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig")))
    )
    size = int(heatmap.get_attribute("data-size"))
    assert len(rows) == size + 1 and len(rows[0]) == size + 1 and rows[2][0] == "The"
    assert page.js_errors == []

    # axe, on the head view and the heatmap (its own context: axe is an injected script)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    checked = context.new_page()
    found = {}
    for query in ("kind=head&layer=2", "kind=heatmap&values=scores", "kind=step"):
        checked.goto(f"{live_server.url}/en/demo/runs/{run_id}/?{query}")
        if violations := _axe_violations(checked):
            found[query] = violations
    screenshot(checked, "reading-step-code")
    context.close()
    assert found == {}, found
