"""Classes: creating and joining, who may see a dashboard, the grid and its CSV, assigned terms
first in review and suggestions, and each question's facility and most-picked wrong choice in
the class, on a small glossary built here."""

import csv
import io
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone

from quiz import selectors, services
from quiz.models import (
    JOIN_CODE_ALPHABET,
    JOIN_CODE_LENGTH,
    Assignment,
    Classroom,
    Learner,
    Mastery,
    Membership,
    Question,
    ReviewCard,
    TermProgress,
)
from tests.factories import quiz_yaml, small_content, term_file

pytestmark = pytest.mark.django_db

# Five questions of three choices (a is right); authored order a, b, c.
QUIZ3 = quiz_yaml(
    prompt="Alpha question {n}?", extra_choices=[("c", "Other", "Not this one either.")]
)


@pytest.fixture
def small(db, tmp_path):
    """alpha <- beta <- gamma, alpha with three choices per question, loaded for real."""
    from lessons.content import read_glossary
    from pages.services import load_content

    directory = small_content(tmp_path, ("alpha", "beta", "gamma"))
    for lang in ("en", "ja"):
        directory.write(f"alpha.{lang}.md", term_file("alpha", lang, quiz=QUIZ3))
    return load_content(glossary=read_glossary(directory)).lessons.terms


@pytest.fixture
def teacher(django_user_model):
    return django_user_model.objects.create_user("teacher", password="pw-teacher-1")


@pytest.fixture
def classroom(small, teacher):
    return services.create_classroom(teacher=teacher, name="Year 10 AI")


def member(django_user_model, classroom, name):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-1")
    learner = Learner.objects.create(user=user)
    services.join_classroom(classroom=classroom, learner=learner)
    return learner


def as_user(client, user):
    client.force_login(user)
    return client


# --- creating and joining ---------------------------------------------------------------------


def test_a_teacher_creates_a_class_and_gets_a_code_and_a_link(client, small, teacher):
    as_user(client, teacher)
    response = client.post("/en/classes/", {"name": "  Year   10 AI  "})
    classroom = Classroom.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/en/classes/{classroom.pk}/"
    assert classroom.name == "Year 10 AI" and classroom.teacher == teacher
    assert len(classroom.join_code) == JOIN_CODE_LENGTH
    assert set(classroom.join_code) <= set(JOIN_CODE_ALPHABET)
    assert not set(classroom.join_code) & set("0O1IL")
    page = client.get(response["Location"]).content.decode()
    assert classroom.join_code in page
    assert f"http://testserver/en/classes/join/{classroom.join_code}/" in page
    listing = client.get("/en/classes/").content.decode()
    assert "Year 10 AI" in listing and classroom.join_code in listing


def test_join_codes_differ(small, teacher):
    codes = {services.create_classroom(teacher=teacher, name=f"c{n}").join_code for n in range(20)}
    assert len(codes) == 20


@pytest.mark.parametrize(
    ("lang", "name", "message"),
    [
        ("en", "   ", "Give the class a name."),
        ("ja", "", "クラス名を入力してください。"),
        ("en", "x" * 101, "at most 100 characters"),
        ("en", "bad\x00name", "control characters"),
    ],
)
def test_a_bad_class_name_is_refused_and_kept(client, small, teacher, lang, name, message):
    as_user(client, teacher)
    response = client.post(f"/{lang}/classes/", {"name": name})
    page = response.content.decode()
    assert response.status_code == 400 and message in page
    if name.strip() and "\x00" not in name:
        assert f'value="{name}"' in page  # what was typed is still there
    assert not Classroom.objects.exists()


def test_a_learner_joins_with_the_link(client, small, classroom, django_user_model):
    user = django_user_model.objects.create_user("mika", password="pw-mika-1")
    as_user(client, user)
    url = f"/ja/classes/join/{classroom.join_code}/"
    page = client.get(url).content.decode()
    assert "Year 10 AI" in page and 'type="submit"' in page
    assert not Membership.objects.exists()  # a GET joins nobody
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == "/ja/progress/"
    assert Membership.objects.get().learner.user == user
    # again, and with the code in lower case: still one membership
    assert client.post(f"/en/classes/join/{classroom.join_code.lower()}/").status_code == 302
    assert Membership.objects.count() == 1
    assert "Year 10 AI" in client.get("/en/classes/").content.decode()  # among the joined
    assert (
        "already in this class"
        in client.get(f"/en/classes/join/{classroom.join_code}/").content.decode()
    )


def test_an_anonymous_visitor_logs_in_and_comes_back_to_join(
    client, small, classroom, django_user_model
):
    django_user_model.objects.create_user("ken", password="pw-ken-1")
    url = f"/en/classes/join/{classroom.join_code}/"
    response = client.get(url)
    assert response.status_code == 302
    assert unquote(response["Location"]) == f"/en/accounts/login/?next={url}"
    assert client.post(url).status_code == 302 and not Membership.objects.exists()
    login = client.post(
        "/en/accounts/login/", {"username": "ken", "password": "pw-ken-1", "next": url}
    )
    assert login.status_code == 302 and login["Location"] == url
    client.post(url)
    assert Membership.objects.get().learner.user.username == "ken"


def test_unknown_or_malformed_join_codes_are_404(client, small, classroom, django_user_model):
    as_user(client, django_user_model.objects.create_user("aya", password="pw-aya-1"))
    wrong = "".join("A" if c != "A" else "B" for c in classroom.join_code)
    for code in (wrong, "SHORT", "O0O0O0O0", "<script>", "x" * 300):
        assert client.get(f"/en/classes/join/{code}/").status_code == 404
        assert client.post(f"/en/classes/join/{code}/").status_code == 404
    assert not Membership.objects.exists()


def test_the_teacher_cannot_join_their_own_class(client, small, classroom, teacher):
    as_user(client, teacher)
    response = client.post(f"/ja/classes/join/{classroom.join_code}/")
    assert response.status_code == 400
    assert "このクラスの先生なので" in response.content.decode()
    assert not Membership.objects.exists()


# --- who sees what ----------------------------------------------------------------------------


def dashboard_urls(classroom_id):
    return [f"/en/classes/{classroom_id}/", f"/en/classes/{classroom_id}/export.csv"]


def test_anonymous_visitors_are_sent_to_log_in(client, small, classroom):
    for url in ["/en/classes/", "/ja/classes/", *dashboard_urls(classroom.pk)]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/?next=" in response["Location"]
    response = client.post(f"/en/classes/{classroom.pk}/assign/", {"terms": ["alpha"]})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post("/en/classes/", {"name": "sneaky"}).status_code == 302
    assert Classroom.objects.count() == 1 and not Assignment.objects.exists()


def test_another_teacher_gets_404(client, small, classroom, django_user_model):
    other = django_user_model.objects.create_user("other", password="pw-other-1")
    services.create_classroom(teacher=other, name="Their own class")
    as_user(client, other)
    for url in dashboard_urls(classroom.pk):
        assert client.get(url).status_code == 404
    assert (
        client.post(f"/en/classes/{classroom.pk}/assign/", {"terms": ["alpha"]}).status_code == 404
    )
    assert not Assignment.objects.exists()
    assert "Year 10 AI" not in client.get("/en/classes/").content.decode()


def test_a_learner_of_the_class_gets_404(client, small, classroom, django_user_model):
    learner = member(django_user_model, classroom, "mika")
    as_user(client, learner.user)
    for url in dashboard_urls(classroom.pk):
        assert client.get(url).status_code == 404
    assert (
        client.post(f"/en/classes/{classroom.pk}/assign/", {"terms": ["alpha"]}).status_code == 404
    )
    assert not Assignment.objects.exists()


@pytest.mark.parametrize("class_id", ["abc", "0", "-1", "1.5", "99999999999999999999999", "%00"])
def test_forged_or_malformed_ids_are_404(client, small, classroom, teacher, class_id):
    as_user(client, teacher)
    for url in dashboard_urls(class_id):
        assert client.get(url).status_code == 404
    assert client.post(f"/en/classes/{class_id}/assign/", {"terms": ["alpha"]}).status_code == 404


def test_an_unknown_id_is_404_for_the_teacher(client, small, classroom, teacher):
    as_user(client, teacher)
    for url in dashboard_urls(classroom.pk + 1000):
        assert client.get(url).status_code == 404
    assert client.get(f"/en/classes/{classroom.pk}/").status_code == 200


# --- the grid and its CSV ---------------------------------------------------------------------


def test_the_grid_and_the_csv_show_each_learners_mastery(
    client, small, classroom, teacher, django_user_model
):
    mika = member(django_user_model, classroom, "mika")
    ken = member(django_user_model, classroom, "ken")
    outsider = Learner.objects.create(user=django_user_model.objects.create_user("zed"))
    TermProgress.objects.create(learner=mika, term=small["alpha"], mastery=Mastery.FAMILIAR)
    TermProgress.objects.create(learner=mika, term=small["beta"], mastery=Mastery.ATTEMPTED)
    TermProgress.objects.create(learner=ken, term=small["alpha"], mastery=Mastery.MASTERED)
    TermProgress.objects.create(learner=outsider, term=small["alpha"], mastery=Mastery.MASTERED)
    as_user(client, teacher)
    page = client.get(f"/en/classes/{classroom.pk}/").content.decode()
    assert 'data-learner="mika"' in page and 'data-learner="ken"' in page
    assert 'data-learner="zed"' not in page
    assert 'class="pill mastery-familiar"' in page and 'class="pill mastery-mastered"' in page

    response = client.get(f"/en/classes/{classroom.pk}/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["learner", "alpha", "beta", "gamma"]
    assert rows[1:] == [
        ["mika", "familiar", "attempted", "not_started"],
        ["ken", "mastered", "not_started", "not_started"],
    ]


def test_the_csv_keeps_a_formula_like_name_as_text(
    client, small, classroom, teacher, django_user_model
):
    member(django_user_model, classroom, "=cmd")
    as_user(client, teacher)
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/en/classes/{classroom.pk}/export.csv").content.decode())
        )
    )
    assert rows[1][0] == "'=cmd"


def test_an_empty_class_still_exports_its_header(client, small, classroom, teacher):
    as_user(client, teacher)
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/en/classes/{classroom.pk}/export.csv").content.decode())
        )
    )
    assert rows == [["learner", "alpha", "beta", "gamma"]]


# --- assigning terms --------------------------------------------------------------------------


def test_the_teacher_assigns_terms_and_the_grid_puts_them_first(
    client, small, classroom, teacher, django_user_model
):
    member(django_user_model, classroom, "mika")
    as_user(client, teacher)
    response = client.post(f"/en/classes/{classroom.pk}/assign/", {"terms": ["gamma"]})
    assert response.status_code == 302
    assert set(classroom.assignments.values_list("term__slug", flat=True)) == {"gamma"}
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/en/classes/{classroom.pk}/export.csv").content.decode())
        )
    )
    assert rows[0] == ["learner", "gamma", "alpha", "beta"]
    page = client.get(f"/en/classes/{classroom.pk}/").content.decode()
    assert 'value="gamma" checked' in page and 'value="alpha" checked' not in page
    # replacing the set, then clearing it
    client.post(f"/en/classes/{classroom.pk}/assign/", {"terms": ["alpha", "beta"]})
    assert set(classroom.assignments.values_list("term__slug", flat=True)) == {"alpha", "beta"}
    client.post(f"/en/classes/{classroom.pk}/assign/", {})
    assert not classroom.assignments.exists()


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_an_unknown_term_is_refused_and_changes_nothing(client, small, classroom, teacher, lang):
    services.set_assignments(classroom=classroom, slugs=["alpha"])
    as_user(client, teacher)
    response = client.post(
        f"/{lang}/classes/{classroom.pk}/assign/", {"terms": ["beta", "no-such-term"]}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert ("Unknown term" if lang == "en" else "不明な用語") in page and "no-such-term" in page
    assert 'value="beta" checked' in page  # the submitted choice is kept on the page
    assert set(classroom.assignments.values_list("term__slug", flat=True)) == {"alpha"}


def card(learner, term, *, due):
    question = Question.objects.filter(term=term).order_by("position").first()
    return ReviewCard.objects.create(learner=learner, question=question, card={}, due=due)


def test_assigned_terms_come_first_in_review(client, small, classroom, django_user_model):
    learner = member(django_user_model, classroom, "mika")
    now = timezone.now()
    older = card(learner, small["alpha"], due=now - timedelta(days=2))
    newer = card(learner, small["beta"], due=now - timedelta(hours=1))
    card(learner, small["gamma"], due=now + timedelta(days=3))  # assigned, but not due
    assert selectors.next_due_card(learner=learner, now=now) == older
    services.set_assignments(classroom=classroom, slugs=["beta", "gamma"])
    assert selectors.next_due_card(learner=learner, now=now) == newer
    as_user(client, learner.user)
    page = client.get("/en/review/").content.decode()
    assert f'name="question" value="{newer.question_id}"' in page
    # someone outside the class is not affected by its assignments
    stranger = Learner.objects.create()
    mine = card(stranger, small["alpha"], due=now - timedelta(days=2))
    card(stranger, small["beta"], due=now - timedelta(hours=1))
    assert selectors.next_due_card(learner=stranger, now=now) == mine


def suggested(page: str) -> list[str]:
    import re

    section = page[page.index('id="next-heading"') : page.index('id="all-heading"')]
    return re.findall(r'<li[^>]*><a href="/en/terms/([a-z-]+)/"', section)


def test_assigned_terms_come_first_in_the_suggestions(client, small, classroom, django_user_model):
    learner = member(django_user_model, classroom, "mika")
    as_user(client, learner.user)
    assert suggested(client.get("/en/progress/").content.decode()) == ["alpha"]
    services.set_assignments(classroom=classroom, slugs=["gamma"])
    page = client.get("/en/progress/").content.decode()
    assert suggested(page) == ["gamma", "alpha"]  # assigned first, even before its prerequisites
    assert "Assigned by your teacher" in page
    TermProgress.objects.create(learner=learner, term=small["gamma"], mastery=Mastery.FAMILIAR)
    assert suggested(client.get("/en/progress/").content.decode()) == ["alpha"]  # known: gone


# --- facility and the most-picked wrong choice ------------------------------------------------


class FirstK:
    """Draws the first k, in order: every attempt asks q1, q2, q3 with choices a, b, c."""

    def sample(self, population, k):
        return list(population)[:k]


def take(learner, term, keys):
    attempt = services.start_attempt(learner=learner, term=term)
    for item in attempt.items.order_by("position"):
        if item.position < len(keys):
            services.answer(
                learner=learner,
                attempt_id=attempt.id,
                position=item.position,
                choice_key=keys[item.position],
                confidence="sure",
            )
    return attempt


def test_facility_and_most_picked_wrong_choice_in_this_class(
    client, small, classroom, teacher, django_user_model, monkeypatch
):
    monkeypatch.setattr(services, "_random", FirstK())
    alpha = small["alpha"]
    take(member(django_user_model, classroom, "l1"), alpha, ["a", "b", "c"])
    take(member(django_user_model, classroom, "l2"), alpha, ["b", "b", "c"])
    l3 = member(django_user_model, classroom, "l3")
    take(l3, alpha, ["c", "a", "c"])
    take(l3, alpha, [])  # started, nothing answered: counts for nothing
    outsider = Learner.objects.create()  # answers outside the class do not count
    for _n in range(3):
        take(outsider, alpha, ["c", "c", "a"])

    stats = {
        row["question"].key: row
        for row in selectors.class_question_stats(classroom=classroom, lang="en")
    }
    assert list(stats) == ["q1", "q2", "q3"]
    assert [stats[k]["answers"] for k in stats] == [3, 3, 3]
    assert stats["q1"]["facility"] == pytest.approx(1 / 3)
    assert stats["q2"]["facility"] == pytest.approx(1 / 3)
    assert stats["q3"]["facility"] == 0
    # q1: b once, c once: a tie goes to the first in the authored order
    assert (stats["q1"]["most_wrong"]["key"], stats["q1"]["most_wrong"]["count"]) == ("b", 1)
    assert (stats["q2"]["most_wrong"]["key"], stats["q2"]["most_wrong"]["count"]) == ("b", 2)
    assert (stats["q3"]["most_wrong"]["key"], stats["q3"]["most_wrong"]["count"]) == ("c", 3)
    assert "Other" in stats["q3"]["most_wrong"]["text_html"]

    as_user(client, teacher)
    page = client.get(f"/en/classes/{classroom.pk}/").content.decode()
    assert 'data-question="alpha/q1" data-facility="0.33"' in page
    assert 'data-question="alpha/q3" data-facility="0.00"' in page
    assert '<span class="most-wrong" data-key="c">' in page and "3 times" in page
    ja = client.get(f"/ja/classes/{classroom.pk}/").content.decode()
    assert "3 回" in ja


def test_a_question_everyone_got_right_has_no_wrong_choice(
    small, classroom, django_user_model, monkeypatch
):
    monkeypatch.setattr(services, "_random", FirstK())
    take(member(django_user_model, classroom, "l1"), small["alpha"], ["a", "a", "a"])
    stats = selectors.class_question_stats(classroom=classroom, lang="ja")
    assert [row["facility"] for row in stats] == [1, 1, 1]
    assert all(row["most_wrong"] is None for row in stats)
    assert TermProgress.objects.get(term=small["alpha"]).mastery == Mastery.FAMILIAR
