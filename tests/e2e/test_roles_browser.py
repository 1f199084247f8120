"""The model view in real Chromium: every head with its role, the filter by role (at once with
JavaScript, by a GET form without), a thumbnail opening its head's heatmap by mouse and by
keyboard, and axe-core on the page."""

import re
from collections import Counter

import pytest

from tests.conftest import screenshot, wait_for_run
from tests.e2e.test_pages_browser import _axe_violations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SENTENCE = "The animal didn't cross the street because it was too tired."


def finished(client, **payload):
    response = client.post("/api/v1/attention", payload, content_type="application/json")
    assert response.status_code == 202
    run = wait_for_run(response.json()["id"])
    assert run.status == "done"
    return run


def visible_cells(page) -> int:
    return page.locator(".thumb-cell:visible").count()


def test_head_roles_filter_and_open_a_head(
    live_server, glossary_tx, celery_worker_process, page, client
):
    run = finished(client, text=SENTENCE)
    roles = [h["role"] for h in client.get(f"/api/v1/attention/{run.id}/heads").json()["heads"]]
    common, expected = Counter(roles).most_common(1)[0]
    url = f"{live_server.url}/en/demo/runs/{run.id}/"
    page.goto(f"{url}?kind=model")
    page.wait_for_selector('#view[data-kind="model"] a.thumb')
    assert page.locator("a.thumb").count() == 72
    assert page.locator(".thumb-role").first.inner_text().strip()
    assert page.locator(".thumb-usual").count() == 72
    screenshot(page, "head-roles")

    # with JavaScript the filter is instant: no page load (the marker survives), URL kept
    page.evaluate("window.__same_page = true")
    page.select_option("[data-role-select]", value=common)
    page.wait_for_function(f"() => location.search.includes('role={common}')")
    assert visible_cells(page) == expected
    assert page.locator("[data-role-count]").inner_text() == f"Showing {expected} of 72 heads."
    assert page.evaluate("window.__same_page") is True
    page.select_option("[data-role-select]", value="")
    assert visible_cells(page) == 72

    # a click on a thumbnail opens that head's heatmap in the view, and the controls follow
    page.locator('a.thumb[data-layer="2"][data-head="3"]').click()
    page.wait_for_selector('#view[data-kind="heatmap"] svg.heatmap')
    assert "Layer 3, head 4" in page.locator("#view h2").inner_text()
    assert re.search(r"kind=heatmap&layer=2&head=3", page.url)
    assert page.locator('select[name="kind"]').input_value() == "heatmap"
    assert page.locator('select[name="layer"]').input_value() == "2"
    assert page.locator('select[name="head"]').input_value() == "3"
    assert page.evaluate("window.__same_page") is True  # swapped in place by htmx

    # from the keyboard: Tab to a thumbnail, Enter, and focus lands on the opened view
    page.goto(f"{url}?kind=model")
    page.wait_for_selector("a.thumb")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('a.thumb')"):
            break
    else:
        pytest.fail("Tab never reached a thumbnail")
    name = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert re.match(r"Layer 1, head 1: .+ \d\.\d\d$", name)
    page.keyboard.press("Enter")
    page.wait_for_selector('#view[data-kind="heatmap"] svg.heatmap')
    assert "Layer 1, head 1" in page.locator("#view h2").inner_text()
    assert page.evaluate("document.activeElement.closest('#view') !== null")
    assert page.js_errors == []  # a CSP violation would be a console error


def test_the_filter_without_javascript_and_axe(
    live_server, glossary_tx, celery_worker_process, browser, client
):
    run = finished(client, text="自己注意では、各トークンが", model="gpt")
    roles = [h["role"] for h in client.get(f"/api/v1/attention/{run.id}/heads").json()["heads"]]
    common, expected = Counter(roles).most_common(1)[0]
    url = f"{live_server.url}/ja/demo/runs/{run.id}/?kind=model"
    # the server-side filter, as the test client sees it
    html = client.get(f"/ja/demo/runs/{run.id}/?kind=model&role={common}").content.decode()
    assert html.count(f'data-role="{common}">') == expected
    context = browser.new_context(java_script_enabled=False, locale="ja-JP")
    page = context.new_page()
    page.goto(url)
    assert page.locator("a.thumb").count() == len(roles)
    page.select_option("[data-role-select]", value=common)
    page.locator("[data-role-submit]").click()  # a plain GET form: a new page
    page.wait_for_url(re.compile(f"role={common}"))
    assert visible_cells(page) == expected
    assert "kind=model" in page.url
    screenshot(page, "head-roles-gpt-ja")
    context.close()

    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="ja-JP", bypass_csp=True
    )
    page = context.new_page()
    page.goto(url)
    assert _axe_violations(page) == []
    page.goto(url.replace("/ja/", "/en/"))
    assert _axe_violations(page) == []
    context.close()
