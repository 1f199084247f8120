"""A learner in real headless Chromium: the term page, tiers, the graph, the language switch."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_term_page_tiers_graph_and_language(live_server, glossary_tx, page):
    page.goto(f"{live_server.url}/ja/terms/transformer/")
    assert page.locator("h1").inner_text().strip() != ""
    assert page.locator("svg.term-graph a.node").count() >= 5
    # transformer-architecture is built on it and related to it: drawn once, as a child
    both = page.locator('svg.term-graph a.node[data-slug="transformer-architecture"]')
    assert both.count() == 1
    assert both.get_attribute("class").startswith("node child also-related")

    # switch tier with htmx: the URL changes, the page does not reload
    page.evaluate("window.__marker = 1")
    page.locator('.tier-tab[data-tier="expert"]').click()
    page.wait_for_selector("#tier-expert")
    assert page.evaluate("window.__marker") == 1
    assert page.url.endswith("?tier=expert")
    assert page.locator("#tier-expert math").count() > 0
    screenshot(page, "term-transformer-ja-expert")

    # back and forward keep the tier in step with the URL
    page.go_back()
    page.wait_for_selector("#tier-beginner")
    page.go_forward()
    page.wait_for_selector("#tier-expert")

    # a reload of the shared URL shows the same tier
    page.reload()
    assert page.locator("#tier-expert").count() == 1

    # follow a prerequisite node in the graph
    page.locator('svg.term-graph a.node.prerequisite[data-slug="neural-network"]').click()
    page.wait_for_url(re.compile(r"/ja/terms/neural-network/"))
    assert page.locator('svg.term-graph a.node.current[data-slug="neural-network"]').count() == 1

    # switch language: same page, other language
    page.locator('.lang-switch a[hreflang="en"]').click()
    page.wait_for_url(re.compile(r"/en/terms/neural-network/"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.js_errors == []


def test_term_page_is_readable_without_javascript(live_server, glossary_tx, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/en/terms/self-attention/")
    page.locator('.tier-tab[data-tier="eli5"]').click()
    page.wait_for_url(re.compile(r"tier=eli5"))
    assert page.locator("#tier-eli5").is_visible()
    context.close()


def test_knowledge_map_and_live_search(live_server, glossary_tx, page):
    page.goto(f"{live_server.url}/en/")
    terms = page.locator(".term-list li").count()
    slugs = page.locator("svg.knowledge-map a.node").evaluate_all(
        "ns => ns.map(n => n.dataset.slug)"
    )
    assert len(slugs) == len(set(slugs)) == terms >= 32
    # to assistive technology the map is a named group holding a list of named links
    graph = page.get_by_role("group", name="Knowledge map of all terms")
    assert graph.get_by_role("listitem").count() == terms
    softmax = graph.get_by_role("link", name=re.compile(r"^Softmax — Not started"))
    assert softmax.get_attribute("href") == "/en/terms/softmax/"
    screenshot(page, "knowledge-map-en")
    page.fill("#q", "softmax")
    page.wait_for_selector('#search-results a[href="/en/terms/softmax/"]')
    page.goto(f"{live_server.url}/ja/")
    screenshot(page, "knowledge-map-ja")
    assert page.js_errors == []
