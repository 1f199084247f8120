"""The faithfulness check in real Chromium: press the button, watch the progress, read the plot."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIRED = "The animal didn't cross the street because it was too tired."


def test_press_the_button_see_progress_then_the_plot(
    live_server, glossary_tx, celery_worker_process, page
):
    page.goto(f"{live_server.url}/en/demo/")
    page.fill("#id_text", TIRED)
    page.get_by_role("button", name="Run the model").click()
    page.wait_for_url(re.compile(r"/en/demo/runs/[0-9a-f-]+/"))
    page.wait_for_selector('#run-state[data-status="done"]', timeout=120_000)

    panel = page.locator("#faithfulness")
    assert panel.get_attribute("data-status") == "none"
    page.get_by_role("button", name="Run the faithfulness check").click()
    # htmx swaps the panel in place: a progress bar while the worker computes
    page.wait_for_selector(
        '#faithfulness[data-status="queued"], #faithfulness[data-status="running"], #faithfulness[data-status="done"]'
    )
    statuses = set()
    for _ in range(600):
        # read the panel's status and its progress bar in one go (htmx may swap in between)
        status, bars = page.evaluate(
            "() => { const p = document.querySelector('#faithfulness');"
            " return [p.dataset.status, p.querySelectorAll('progress').length]; }"
        )
        statuses.add(status)
        if status in ("done", "failed"):
            break
        assert bars == 1, status
        page.wait_for_timeout(100)
    assert status == "done", statuses
    assert statuses & {"queued", "running"}  # the progress was shown before the plot

    plot = page.locator("#faithfulness svg.deletion-plot")
    assert plot.count() == 1 and plot.get_attribute("data-k") == "5"
    assert plot.locator("g.method-line").count() == 4
    assert plot.locator("g.random-band polygon").count() == 1
    rows = page.locator("#faithfulness table.deletion-table tbody tr")
    assert rows.count() == 5  # four methods and the random baseline
    debate = page.locator("#faithfulness details.debate")
    debate.locator("summary").focus()
    page.keyboard.press("Enter")  # the sources open from the keyboard
    assert "Jain" in debate.inner_text() and debate.locator("a[href*='arxiv.org']").count() == 5
    page.locator("#faithfulness").scroll_into_view_if_needed()
    page.locator("#faithfulness").screenshot(path=str(screenshot_path()))
    screenshot(page, "faithfulness-page")

    # the panel as it stands after a reload (no htmx involved) and in Japanese
    page.goto(page.url.replace("/en/", "/ja/"))
    assert "削除テスト" in page.locator("#faithfulness").inner_text()
    assert page.js_errors == []


def screenshot_path():
    from tests.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / "faithfulness-plot.png"


def test_the_check_works_without_javascript(
    live_server, glossary_tx, celery_worker_process, browser
):
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/en/demo/")
        page.fill("#id_text", TIRED)
        page.get_by_role("button", name="Run the model").click()
        # The form's POST redirects to the run page: reloading before it has landed would
        # reload a page that is going away.
        page.wait_for_url(re.compile(r"/en/demo/runs/[0-9a-f-]+/"))
        for _ in range(120):
            page.reload()
            if page.locator('#run-state[data-status="done"]').count():
                break
            page.wait_for_timeout(500)
        page.get_by_role("button", name="Run the faithfulness check").click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+/#faithfulness$"))
        for _ in range(240):
            if page.locator('#faithfulness[data-status="done"]').count():
                break
            link = page.get_by_role("link", name="Reload to see how far the check has got")
            assert link.count() == 1
            page.wait_for_timeout(500)
            page.reload()
        assert page.locator("#faithfulness svg.deletion-plot").count() == 1
    finally:
        context.close()
