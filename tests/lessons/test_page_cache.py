"""Pages kept per content version: the version follows the content (load_content, the admin),
visitors' pages are kept and revalidated (ETag, 304, Cache-Control, Vary), learners never get
a kept page, and the CSRF token in a kept page is the visitor's own."""

import re

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from lessons import versioning
from lessons.models import ContentVersion, Term, TermText
from pages.page_cache import PLACEHOLDER
from quiz.models import Learner, Mastery, TermProgress
from tests.factories import load_small_glossary

TERM = "/en/terms/softmax/"
TOKEN = re.compile(r'"X-CSRFToken": "([A-Za-z0-9]{64})"')
ANY_TOKEN = re.compile(r'(?<=value=")[A-Za-z0-9]{64}(?=")|(?<="X-CSRFToken": ")[A-Za-z0-9]{64}')


def test_visitor_page_has_etag_cache_control_and_vary(glossary):
    response = Client().get(TERM)
    assert response.status_code == 200
    assert re.fullmatch(r'"[0-9a-f]{24}"', response["ETag"])
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert cache_control == {"private", "no-cache"}
    vary = {part.strip().lower() for part in response["Vary"].split(",")}
    assert {"cookie", "hx-request", "hx-history-restore-request"} <= vary


def test_conditional_get_answers_304_until_the_content_changes(glossary):
    visitor = Client()
    first = visitor.get(TERM)
    etag = first["ETag"]
    again = visitor.get(TERM, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert "private" in again["Cache-Control"]
    assert visitor.get(TERM, headers={"if-none-match": '"someone-else"'}).status_code == 200
    assert visitor.get(TERM, headers={"if-none-match": "*"}).status_code == 304
    text = TermText.objects.get(term__slug="softmax", lang="en")
    text.summary = "Turns scores into probabilities (edited)."
    text.save()
    changed = visitor.get(TERM, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert "Turns scores into probabilities (edited)." in changed.content.decode()


def test_each_variant_has_its_own_etag(glossary):
    visitor = Client()
    full = visitor.get(TERM + "?tier=expert")
    fragment = visitor.get(TERM + "?tier=expert", headers={"hx-request": "true"})
    other_tier = visitor.get(TERM + "?tier=eli5")
    japanese = visitor.get("/ja/terms/softmax/?tier=expert")
    assert "<html" in full.content.decode()
    assert "<html" not in fragment.content.decode()
    assert 'data-tier="expert"' in fragment.content.decode()
    etags = {r["ETag"] for r in (full, fragment, other_tier, japanese)}
    assert len(etags) == 4
    # a fragment's ETag never revalidates the full page, nor the other way round
    assert (
        visitor.get(TERM + "?tier=expert", headers={"if-none-match": fragment["ETag"]}).status_code
        == 200
    )


def test_a_kept_page_costs_at_most_the_version_query(glossary):
    visitor = Client()
    for url in (TERM, "/ja/", "/en/terms/softmax/quiz/"):
        with CaptureQueriesContext(connection) as computed:
            first = visitor.get(url)
        with CaptureQueriesContext(connection) as kept:
            second = visitor.get(url)
        assert first.status_code == second.status_code == 200
        assert len(computed) > 1, url
        assert [q["sql"] for q in kept] == [
            q["sql"] for q in kept if "lessons_contentversion" in q["sql"]
        ]
        assert len(kept) <= 1, (url, [q["sql"] for q in kept])
        # the same page, but for the CSRF token
        assert ANY_TOKEN.sub("", first.content.decode()) == ANY_TOKEN.sub(
            "", second.content.decode()
        )


def test_kept_page_carries_each_visitors_own_working_csrf_token(glossary):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    page_one = first.get(TERM).content.decode()
    page_two = second.get(TERM).content.decode()  # served from the kept copy
    assert PLACEHOLDER not in page_one + page_two
    token_one, token_two = TOKEN.search(page_one)[1], TOKEN.search(page_two)[1]
    assert token_one != token_two
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"', page_two)[1]
    started = second.post("/en/terms/softmax/quiz/start/", {"csrfmiddlewaretoken": form_token})
    assert started.status_code in (200, 302), started.content[:300]
    # the other visitor's token is refused with this visitor's cookie
    refused = second.post("/en/terms/softmax/quiz/start/", {"csrfmiddlewaretoken": "x" * 64})
    assert refused.status_code == 403


def test_load_content_changes_the_version_and_the_next_page(glossary, tmp_path):
    visitor = Client()
    before = visitor.get("/en/")
    token = versioning.current()
    assert "Alpha" not in before.content.decode()
    load_small_glossary(tmp_path)
    assert versioning.current() != token
    after = visitor.get("/en/", headers={"if-none-match": before["ETag"]})
    assert after.status_code == 200
    assert 'href="/en/terms/alpha/"' in after.content.decode()
    assert (
        visitor.get("/en/search/?q=alph", headers={"hx-request": "true"})
        .content.decode()
        .count("/en/terms/alpha/")
        == 1
    )


def test_a_load_rolled_back_keeps_the_version_and_the_pages(glossary, tmp_path):
    visitor = Client()
    token = versioning.current()
    with pytest.raises(RuntimeError), transaction.atomic():
        load_small_glossary(tmp_path)
        assert versioning.current() != token
        assert 'href="/en/terms/alpha/"' in visitor.get("/en/").content.decode()
        raise RuntimeError("the load fails after writing")
    assert versioning.current() == token
    assert 'href="/en/terms/alpha/"' not in visitor.get("/en/").content.decode()


def test_an_admin_edit_is_on_the_next_request(glossary, admin_client):
    visitor = Client()
    text = TermText.objects.get(term__slug="softmax", lang="en")
    old = visitor.get(TERM)
    assert text.title in old.content.decode()
    token = versioning.current()
    form = {
        "term": text.term_id,
        "lang": "en",
        "title": "Softmax (edited in the admin)",
        "summary": text.summary,
        "overview": text.overview,
        **{tier: getattr(text, tier) for tier in ("eli5", "beginner", "intermediate", "expert")},
    }
    saved = admin_client.post(f"/admin/lessons/termtext/{text.pk}/change/", form)
    assert saved.status_code == 302, saved.content[:500]
    assert versioning.current() != token
    page = visitor.get(TERM, headers={"if-none-match": old["ETag"]})
    assert page.status_code == 200
    assert "Softmax (edited in the admin)" in page.content.decode()
    # the other pages that show its title follow too: the map, the search, its neighbours
    assert "Softmax (edited in the admin)" in visitor.get("/en/").content.decode()
    found = visitor.get("/en/search/?q=edited in the admin", headers={"hx-request": "true"})
    assert "/en/terms/softmax/" in found.content.decode()


def test_an_admin_relation_change_redraws_the_graph(glossary, admin_client):
    visitor = Client()
    term = Term.objects.get(slug="softmax")
    assert 'data-slug="tokenization"' not in visitor.get(TERM).content.decode()
    token = versioning.current()
    term.related.add(Term.objects.get(slug="tokenization"))  # what the admin's filter widget does
    assert versioning.current() != token
    assert "/en/terms/tokenization/" in visitor.get(TERM).content.decode()


def test_a_learner_sees_their_own_mastery_never_a_kept_page(glossary, django_user_model):
    visitor = Client()
    assert 'data-mastery="not_started"' in visitor.get(TERM).content.decode()  # kept now
    user = django_user_model.objects.create_user("ada", password="pw-123456-long")
    learner = Learner.objects.create(user=user)
    TermProgress.objects.create(
        learner=learner, term=Term.objects.get(slug="softmax"), mastery=Mastery.MASTERED
    )
    signed_in = Client()
    signed_in.force_login(user)
    page = signed_in.get(TERM)
    body = page.content.decode()
    assert 'data-mastery="mastered"' in body
    assert "ada" in body
    assert not page.has_header("ETag")
    assert {p.strip() for p in page["Cache-Control"].split(",")} == {"private", "no-cache"}
    assert "cookie" in page["Vary"].lower()
    # the map is coloured for them too, and a visitor still sees the page for visitors
    map_node = 'mastery-mastered" data-slug="softmax" data-mastery="mastered"'
    assert map_node in signed_in.get("/en/").content.decode()
    assert map_node not in visitor.get("/en/").content.decode()
    assert 'data-mastery="not_started"' in visitor.get(TERM).content.decode()
    assert "ada" not in visitor.get(TERM).content.decode()


def test_with_the_cache_off_every_page_is_computed(glossary, settings):
    settings.CONTENT_CACHE = False
    visitor = Client()
    visitor.get(TERM)
    with CaptureQueriesContext(connection) as queries:
        response = visitor.get(TERM)
    assert response.status_code == 200
    assert response.has_header("ETag")
    assert len(queries) > 3


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_seen_a_rolled_back_one_never(glossary_tx):
    """Real transactions (PostgreSQL when DATABASE_URL names it): the token is in the same
    transaction as the content."""
    token = versioning.current()
    assert ContentVersion.objects.get().token == token
    with pytest.raises(RuntimeError), transaction.atomic():
        text = TermText.objects.get(term__slug="softmax", lang="en")
        text.title = "never committed"
        text.save()
        assert versioning.current() != token  # the writer sees its own change
        raise RuntimeError("roll back")
    assert versioning.current() == token
    assert "never committed" not in Client().get(TERM).content.decode()
    with transaction.atomic():
        text = TermText.objects.get(term__slug="softmax", lang="en")
        text.title = "committed title"
        text.save()
    assert versioning.current() != token
    assert "committed title" in Client().get(TERM).content.decode()


def test_the_page_store_is_bounded_in_entries_and_bytes():
    store = versioning.PerVersion("test", maxsize=3, weigh=len, max_weight=10)
    for key in "abc":
        store.put(key, "xx", token="t1")
    store.get("a", token="t1")  # a is now the most recently used
    store.put("d", "xx", token="t1")
    assert [store.get(k, token="t1") for k in "abcd"] == ["xx", None, "xx", "xx"]
    store.put("e", "x" * 9, token="t1")  # over 10 bytes: the oldest go until it fits
    assert store.weight <= 10
    assert store.get("e", token="t1") == "x" * 9
    assert store.get("a", token="t2") is None  # another version: nothing of the old one
    store.put("a", "y", token="t2")
    assert len(store) == 1
    assert store.weight == 1


def test_a_returning_visitors_kept_page_token_passes_djangos_check(glossary):
    visitor = Client(enforce_csrf_checks=True)
    visitor.get(TERM)
    cookie = visitor.cookies["csrftoken"].value
    page = visitor.get("/en/terms/softmax/quiz/").content.decode()  # a kept page, cookie sent
    assert visitor.cookies["csrftoken"].value == cookie  # the same secret, refreshed
    token = re.search(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"', page)[1]
    started = visitor.post("/en/terms/softmax/quiz/start/", {"csrfmiddlewaretoken": token})
    assert started.status_code in (200, 302)


def test_visitor_tokens_use_the_whole_alphabet_and_nothing_else():
    from django.middleware.csrf import CSRF_ALLOWED_CHARS

    from pages.page_cache import _random_chars

    drawn = _random_chars(200_000)
    assert len(drawn) == 200_000
    assert set(drawn) == set(CSRF_ALLOWED_CHARS)
    counts = [drawn.count(ch) for ch in CSRF_ALLOWED_CHARS]
    assert max(counts) < 1.25 * min(counts)  # about 3226 each (sd 56): none favoured
