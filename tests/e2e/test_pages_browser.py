"""Every kind of page, in both languages, in real Chromium: it renders, nothing is blocked by
the Content-Security-Policy (Chromium reports a blocked script or style as a console error), the
keyboard reaches the main content first, and axe-core finds no serious or critical violation."""

import re
from pathlib import Path

import pytest

from tests.conftest import screenshot

# axe-core 4.14.1, vendored with its licence (see vendor/README.md): nothing is downloaded.
AXE = Path(__file__).parent / "vendor" / "axe.min.js"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/{lang}/",
    "/{lang}/?q=attention",
    "/{lang}/terms/layer-normalization/?tier=expert",
    "/{lang}/terms/tokenization/quiz/",
    "/{lang}/demo/",
    "/{lang}/progress/",
    "/{lang}/review/",
    "/{lang}/accounts/login/",
    "/{lang}/accounts/signup/",
    "/{lang}/terms/no-such-term/",
]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_renders_without_errors(live_server, glossary_tx, page, lang):
    for template in PAGES:
        url = template.format(lang=lang)
        response = page.goto(f"{live_server.url}{url}")
        expected = 404 if "no-such-term" in url else 200
        assert response.status == expected, url
        assert page.locator("h1").first.inner_text().strip(), url
        assert page.locator("html").get_attribute("lang") == lang
        if expected == 404:  # Chromium logs the page's own 404 status; nothing else may appear
            page.js_errors[:] = [e for e in page.js_errors if "status of 404" not in e]
        assert page.js_errors == [], (url, page.js_errors)
    page.goto(f"{live_server.url}/{lang}/progress/")
    screenshot(page, f"progress-{lang}")


def test_keyboard_skip_link_and_tier_tabs(live_server, glossary_tx, page):
    page.goto(f"{live_server.url}/en/terms/softmax/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    # The URL changes with the hash navigation's event, a moment after the key press.
    page.wait_for_url(re.compile(r"#main$"), timeout=5000)
    assert page.evaluate("location.hash") == "#main"
    tab = page.locator('.tier-tab[data-tier="intermediate"]')
    tab.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#tier-intermediate")
    assert page.js_errors == []


def _axe_violations(page) -> list[dict]:
    """Run axe-core on the page as it is now; the serious and critical violations, short."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " +
                    n.failureSummary.split("\\n").slice(1, 3).join(" "))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_passes_axe(live_server, glossary_tx, browser, lang):
    # The site's CSP forbids inline and injected script: bypass it for axe alone, in its own
    # context (the test above checks the pages under the real CSP).
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="ja-JP", bypass_csp=True
    )
    page = context.new_page()
    found = {}
    for template in PAGES:
        url = template.format(lang=lang)
        page.goto(f"{live_server.url}{url}")
        violations = _axe_violations(page)
        if violations:
            found[url] = violations
    # the term page's tier panel after an htmx swap, and a quiz question with its form
    page.goto(f"{live_server.url}/{lang}/terms/transformer/")
    page.locator('.tier-tab[data-tier="expert"]').click()
    page.wait_for_selector("#tier-expert")
    if violations := _axe_violations(page):
        found["transformer, expert tier"] = violations
    # the feedback after an answer, swapped in by htmx
    page.goto(f"{live_server.url}/{lang}/terms/tokenization/quiz/")
    page.locator("#quiz-box button.primary").click()  # start the check
    page.locator('#quiz-box input[name="choice"]').first.check()
    confidence = page.locator('#quiz-box input[name="confidence"]')
    if confidence.count():
        confidence.first.check()
    page.locator("#quiz-box .question-form button[type=submit]").click()
    page.wait_for_selector("#quiz-box .feedback")
    if violations := _axe_violations(page):
        found["quiz feedback"] = violations
    context.close()
    assert found == {}, found


def test_axe_finds_a_link_inside_an_image(browser):
    """The check above can fail: the graph as it was drawn before (links inside role="img")."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>Graph</title></head><body><main>'
        '<h1>Map</h1><svg role="img" aria-label="Knowledge map" width="200" height="60">'
        '<a href="/en/terms/softmax/"><title>Softmax</title><rect width="160" height="40"/>'
        '<text x="10" y="25">Softmax</text></a></svg></main></body></html>'
    )
    violations = {v["id"] for v in _axe_violations(page)}
    context.close()
    assert "nested-interactive" in violations


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_signed_in_class_and_run_pages_pass_axe(
    live_server, glossary_tx, celery_worker_process, browser, django_user_model, lang
):
    """The pages that need an account or a finished run: a teacher's classes, the dashboard,
    the join page, deleting one's data, and both live models' run pages."""
    from quiz import services
    from tests.conftest import wait_for_run

    teacher = django_user_model.objects.create_user("axe-teacher", password="a-long-pass-phrase-42")
    classroom = services.create_classroom(teacher=teacher, name="Axe class")
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="ja-JP", bypass_csp=True
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/{lang}/accounts/login/")
    page.fill("input[name=username]", "axe-teacher")
    page.fill("input[name=password]", "a-long-pass-phrase-42")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    runs = []
    for body in (
        {"text": "The cat sat on the mat."},
        {"text": "猫が", "model": "gpt", "generate": 4},
    ):
        response = page.request.post(f"{live_server.url}/api/v1/attention", data=body)
        assert response.status == 202, response.text()
        runs.append(response.json()["id"])
    for run_id in runs:
        assert wait_for_run(run_id).status == "done"
    found = {}
    for url in (
        f"/{lang}/classes/",
        f"/{lang}/classes/{classroom.pk}/",
        f"/{lang}/classes/join/{classroom.join_code}/",
        f"/{lang}/progress/delete/",
        *(f"/{lang}/demo/runs/{run_id}/" for run_id in runs),
        f"/{lang}/demo/runs/{runs[1]}/?kind=step",
    ):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        if violations := _axe_violations(page):
            found[url] = violations
    context.close()
    assert found == {}, found
