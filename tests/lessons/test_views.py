"""Term pages, the map, search, the language switch and the read-only JSON API."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lessons.models import Term, TermText

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_term_page_shows_everything(client, glossary, lang):
    response = client.get(f"/{lang}/terms/transformer/")
    assert response.status_code == 200
    html = response.content.decode()
    text = TermText.objects.get(term__slug="transformer", lang=lang)
    assert text.title in html and text.summary in html
    assert f'<html lang="{lang}">' in html
    for tier in ("eli5", "beginner", "intermediate", "expert"):
        assert f'data-tier="{tier}"' in html
    assert "Vaswani" in html and "https://arxiv.org/abs/1706.03762" in html
    # the graph: every node is a link, the three prerequisites and the related term are there
    svg = re.search(r"<svg class=\"graph term-graph\".*?</svg>", html, re.S).group(0)
    assert "<title" in svg and "<desc" in svg
    for slug in ("neural-network", "linear-algebra", "deep-learning", "transformer-architecture"):
        assert f'href="/{lang}/terms/{slug}/"' in svg
    assert 'class="edge dashed"' in svg  # related terms


def test_default_tier_and_tier_query(client, glossary):
    html = client.get("/en/terms/softmax/").content.decode()
    assert 'id="tier-beginner"' in html
    html = client.get("/en/terms/softmax/?tier=expert").content.decode()
    expert = TermText.objects.get(term__slug="softmax", lang="en").expert_html
    assert 'id="tier-expert"' in html and expert[:80] in html
    assert 'id="tier-beginner"' not in html


def test_unknown_tier_falls_back_to_the_default(client, glossary):
    response = client.get("/en/terms/softmax/?tier=<script>")
    assert response.status_code == 200
    assert 'id="tier-beginner"' in response.content.decode()
    assert "<script>" not in response.content.decode().split("<main", 1)[1]


def test_tier_swap_as_htmx_returns_only_the_panel(client, glossary):
    response = client.get("/ja/terms/softmax/?tier=eli5", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="tier-panel">')
    assert "<html" not in html and 'id="tier-eli5"' in html
    # a history restore asks for the whole page
    full = client.get(
        "/ja/terms/softmax/?tier=eli5",
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in full.content.decode()


def test_tier_tabs_are_plain_links_with_shareable_urls(client, glossary):
    html = client.get("/en/terms/softmax/").content.decode()
    assert 'href="?tier=expert#tiers-heading"' in html
    assert 'hx-push-url="?tier=expert"' in html


def test_learning_path_is_in_prerequisite_order(client, glossary):
    html = client.get("/en/terms/self-attention/").content.decode()
    path = re.search(r'<ol class="path">(.*?)</ol>', html, re.S).group(1)
    order = re.findall(r'href="/en/terms/([a-z0-9-]+)/"', path)
    assert (
        order.index("linear-algebra") < order.index("neural-network") < order.index("deep-learning")
    )
    assert order.index("attention-mechanism") < order.index("query-key-value")
    assert "self-attention" not in order


def test_term_page_query_count_is_bounded(client, glossary):
    client.get("/en/terms/transformer-architecture/")  # warm the session
    for slug in ("linear-algebra", "transformer-architecture", "transformer"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/en/terms/{slug}/").status_code == 200
        assert 0 < len(queries) <= 10, (slug, [q["sql"] for q in queries])


def test_query_count_does_not_grow_with_relations(client, glossary, settings):
    settings.CONTENT_CACHE = False  # count the queries of a page computed, not of one kept
    with CaptureQueriesContext(connection) as before:
        client.get("/en/terms/softmax/")
    softmax = Term.objects.get(slug="softmax")
    softmax.related.add(*Term.objects.exclude(slug="softmax"))
    with CaptureQueriesContext(connection) as after:
        client.get("/en/terms/softmax/")
    assert len(after) == len(before) > 0


def test_unknown_term_is_404(client, glossary):
    assert client.get("/en/terms/not-a-term/").status_code == 404


def test_missing_language_shows_the_other_with_a_notice(client, glossary):
    TermText.objects.filter(term__slug="softmax", lang="ja").delete()
    response = client.get("/ja/terms/softmax/")
    html = response.content.decode()
    assert response.status_code == 200
    english = TermText.objects.get(term__slug="softmax", lang="en")
    assert english.title in html
    assert 'class="notice"' in html


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_home_has_a_map_of_every_term_and_start_here(client, glossary, lang):
    html = client.get(f"/{lang}/").content.decode()
    svg = re.search(r'<svg class="graph knowledge-map".*?</svg>', html, re.S).group(0)
    assert len(re.findall(r'class="node term', svg)) == Term.objects.count()
    assert f'href="/{lang}/terms/transformer/"' in html.split('class="start-here"')[1][:400]


def test_live_search_fragment_in_the_current_language(client, glossary):
    response = client.get("/ja/search/?q=埋め込み", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="search-results"')
    assert "/ja/terms/embedding/" in html
    empty = client.get("/en/search/?q=zzzzqqq", HTTP_HX_REQUEST="true").content.decode()
    assert "No term matches" in empty


def test_search_without_javascript_renders_the_home_page(client, glossary):
    html = client.get("/en/?q=softmax").content.decode()
    assert "<html" in html and "/en/terms/softmax/" in html.split('id="search-results"')[1]


def test_root_redirects_by_accept_language(client, glossary):
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")["Location"] == "/en/"
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")["Location"] == "/ja/"


def test_language_switch_keeps_the_page_and_tier(client, glossary):
    html = client.get("/ja/terms/softmax/?tier=expert").content.decode()
    assert 'href="/en/terms/softmax/?tier=expert"' in html


def test_japanese_ui_is_translated(client, glossary):
    html = client.get("/ja/terms/softmax/").content.decode()
    assert "出典" in html and "前提" in html


# --- JSON API ---------------------------------------------------------------------------------


def test_api_terms_lists_every_term(client, glossary):
    data = client.get("/api/v1/terms/?lang=ja").json()
    assert len(data["terms"]) == Term.objects.count()
    first = data["terms"][0]
    assert set(first) == {"slug", "title", "summary", "url"}
    assert "/ja/terms/" in first["url"]


def test_api_term_detail(client, glossary):
    data = client.get("/api/v1/terms/transformer/?lang=en").json()
    assert data["slug"] == "transformer"
    assert set(data["tiers"]) == {"eli5", "beginner", "intermediate", "expert"}
    assert set(data["prerequisites"]) == {"neural-network", "linear-algebra", "deep-learning"}
    assert "transformer-architecture" in data["children"]
    assert "transformer-architecture" in data["related"]
    assert data["sources"][0].keys() == {"authors", "title", "year", "url"}
    assert data["quiz_questions"] == Term.objects.get(slug="transformer").questions.count()


def test_api_unknown_slug_and_bad_language(client, glossary):
    response = client.get("/api/v1/terms/nope/?lang=en")
    assert response.status_code == 404 and "error" in response.json()
    response = client.get("/api/v1/terms/?lang=fr")
    assert response.status_code == 400 and "error" in response.json()


def test_admin_requires_staff(client, glossary, django_user_model):
    assert client.get("/admin/lessons/term/").status_code == 302
    django_user_model.objects.create_user("learner", password="pw-123456-long")
    client.login(username="learner", password="pw-123456-long")
    assert client.get("/admin/lessons/term/").status_code == 302
