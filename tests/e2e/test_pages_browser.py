"""Every kind of page, in both languages, in real Chromium: it renders, nothing is blocked by
the Content-Security-Policy (Chromium reports a blocked script or style as a console error), and
the keyboard reaches the main content first."""

import re

import pytest

from tests.conftest import screenshot

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
