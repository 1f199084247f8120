"""The learner's own data: export (JSON and CSV), deletion after a confirmation, and the expiry
of anonymous progress. Everything goes through the real views, services and database."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings as conf
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from quiz import tasks
from quiz.models import Attempt, AttemptQuestion, Learner, ReviewCard, TermProgress
from quiz.selectors import EXPORT_CSV_COLUMNS, SESSION_KEY

pytestmark = pytest.mark.django_db


def learner_of(client) -> Learner:
    """The learner behind ``client``: its account's, or its session's."""
    user_id = client.session.get("_auth_user_id")
    if user_id is not None:
        return Learner.objects.get(user_id=user_id)
    return Learner.objects.get(pk=client.session[SESSION_KEY], user__isnull=True)


def take_quiz(client, slug="softmax", *, wrong=(1,), confidence="sure") -> dict:
    """One whole attempt through the pages, wrong at the positions in ``wrong``. Returns what the
    learner did: the attempt and, by position, (question key, chosen key, correct)."""
    assert client.post(f"/en/terms/{slug}/quiz/start/").status_code == 302
    attempt = Attempt.objects.filter(learner=learner_of(client), term__slug=slug).latest(
        "started_at"
    )
    answers = {}
    for item in attempt.items.select_related("question").order_by("position"):
        right = item.question.correct_key
        key = next(k for k in item.choice_order if k != right) if item.position in wrong else right
        response = client.post(
            f"/en/quiz/attempts/{attempt.id}/answer/",
            {"position": item.position, "choice": key, "confidence": confidence},
        )
        assert response.status_code == 200
        answers[item.position + 1] = (item.question.key, key, key == right)
    return {"attempt": attempt, "answers": answers}


def export_json(client, lang="en"):
    response = client.get(f"/{lang}/progress/export.json")
    assert response.status_code == 200
    return response, json.loads(response.content.decode("utf-8"))


def export_csv(client, lang="en"):
    response = client.get(f"/{lang}/progress/export.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    return response, rows


# --- export -----------------------------------------------------------------------------------


def test_json_export_holds_what_an_anonymous_learner_did(client, glossary):
    done = take_quiz(client, "softmax", wrong=(1,), confidence="unsure")
    response, data = export_json(client)
    assert response["Content-Type"].startswith("application/json")
    disposition = response["Content-Disposition"]
    assert (
        disposition.startswith("attachment;") and 'filename="attention-lab-progress-' in disposition
    )
    assert disposition.endswith('.json"')
    assert "no-store" in response["Cache-Control"]

    assert data["format"] == "attention-lab-progress" and data["learner"]["account"] is None
    [attempt] = data["attempts"]
    assert attempt["id"] == str(done["attempt"].id) and attempt["term"] == "softmax"
    assert attempt["score"] == 2 and attempt["finished_at"] is not None
    got = {a["position"]: (a["question"], a["chosen"], a["correct"]) for a in attempt["answers"]}
    assert got == done["answers"]
    assert {a["confidence"] for a in attempt["answers"]} == {"unsure"}

    [progress] = data["progress"]
    row = TermProgress.objects.get(learner=learner_of(client))
    assert progress == {
        "term": "softmax",
        "mastery": row.mastery,
        "best_score": 2,
        "attempts": 1,
        "perfect_days": [],
        "updated_at": row.updated_at.isoformat(),
    }
    cards = {c.question.key: c for c in ReviewCard.objects.filter(learner=learner_of(client))}
    assert {c["question"] for c in data["review"]} == set(cards) and len(cards) == 3
    for card in data["review"]:
        assert card["due"] == cards[card["question"]].due.isoformat()
        assert card["reviews"] == 1 and card["fsrs"]["stability"] > 0


def test_csv_export_parses_and_holds_the_same(client, glossary):
    done = take_quiz(client, "softmax", wrong=(0, 2))
    take_quiz(client, "embedding", wrong=())
    response, rows = export_csv(client)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].endswith('.csv"')
    assert rows[0] == EXPORT_CSV_COLUMNS
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    answers = [r for r in records if r["record"] == "answer"]
    assert len(answers) == 6
    softmax = {
        int(r["position"]): (r["question"], r["chosen"], r["correct"] == "true")
        for r in answers
        if r["attempt"] == str(done["attempt"].id)
    }
    assert softmax == done["answers"]
    assert {r["attempt_score"] for r in answers if r["term"] == "softmax"} == {"1"}
    progress = {r["term"]: r for r in records if r["record"] == "progress"}
    assert set(progress) == {"softmax", "embedding"}
    assert progress["softmax"]["best_score"] == "1" and progress["embedding"]["best_score"] == "3"
    assert progress["embedding"]["perfect_days"] == timezone.localdate().isoformat()
    review = [r for r in records if r["record"] == "review"]
    assert len(review) == ReviewCard.objects.filter(learner=learner_of(client)).count() == 6
    assert all(r["due"] and float(r["stability"]) > 0 for r in review)


def test_signed_in_learner_exports_their_account_data(client, glossary):
    user = get_user_model().objects.create_user("hanako", password="x-long-password-1")
    client.force_login(user)
    done = take_quiz(client, "softmax", wrong=())
    _response, data = export_json(client, lang="ja")
    assert data["learner"]["account"] == "hanako"
    assert [a["id"] for a in data["attempts"]] == [str(done["attempt"].id)]
    assert data["progress"][0]["best_score"] == 3


def test_another_learners_data_never_appears(client, glossary):
    other = Client()
    theirs = take_quiz(other, "embedding")
    mine = take_quiz(client, "softmax")
    _response, data = export_json(client)
    text = json.dumps(data)
    assert str(theirs["attempt"].id) not in text and '"embedding"' not in text
    assert [a["id"] for a in data["attempts"]] == [str(mine["attempt"].id)]
    _response, rows = export_csv(client)
    assert all(row[1] != "embedding" for row in rows[1:])
    assert not any(str(theirs["attempt"].id) in cell for row in rows for cell in row)

    # a browser that did nothing gets an empty export, not someone else's
    _response, empty = export_json(Client())
    assert empty["learner"] is None and empty["attempts"] == empty["progress"] == []
    _response, rows = export_csv(Client())
    assert rows == [EXPORT_CSV_COLUMNS]


# --- deletion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_get_shows_what_would_be_deleted_and_deletes_nothing(client, glossary, lang):
    take_quiz(client, "softmax")
    learner = learner_of(client)
    html = client.get(f"/{lang}/progress/delete/").content.decode()
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html
    assert f'action="/{lang}/progress/delete/"' in html
    expected = "件の回答" if lang == "ja" else "3 answers"
    assert expected in html
    assert Attempt.objects.filter(learner=learner).count() == 1
    assert ReviewCard.objects.filter(learner=learner).count() == 3
    progress = client.get(f"/{lang}/progress/").content.decode()
    for url in ("/progress/export.json", "/progress/export.csv", "/progress/delete/"):
        assert f'href="/{lang}{url}"' in progress
    days = conf.QUIZ_ANONYMOUS_EXPIRY_DAYS
    notice = f"{days} 日間利用がないと削除" if lang == "ja" else f"{days} days without activity"
    assert notice in progress


def test_post_deletes_exactly_the_anonymous_learners_data(client, glossary):
    other = Client()
    take_quiz(other, "embedding")
    kept = learner_of(other)
    take_quiz(client, "softmax")
    gone = learner_of(client)
    kept_counts = (
        Attempt.objects.filter(learner=kept).count(),
        AttemptQuestion.objects.filter(attempt__learner=kept).count(),
        TermProgress.objects.filter(learner=kept).count(),
        ReviewCard.objects.filter(learner=kept).count(),
    )

    response = client.post("/en/progress/delete/", follow=True)
    assert response.redirect_chain == [("/en/progress/", 302)]
    assert "Your progress has been deleted." in response.content.decode()
    assert not Learner.objects.filter(pk=gone.pk).exists()
    assert SESSION_KEY not in client.session
    assert not Attempt.objects.filter(learner_id=gone.pk).exists()
    assert not ReviewCard.objects.filter(learner_id=gone.pk).exists()
    assert not TermProgress.objects.filter(learner_id=gone.pk).exists()
    assert kept_counts == (
        Attempt.objects.filter(learner=kept).count(),
        AttemptQuestion.objects.filter(attempt__learner=kept).count(),
        TermProgress.objects.filter(learner=kept).count(),
        ReviewCard.objects.filter(learner=kept).count(),
    )
    assert kept_counts[0] == 1
    # the browser starts again as nobody: an empty export
    _response, data = export_json(client)
    assert data["attempts"] == []


def test_post_deletes_an_accounts_progress_but_keeps_the_account(client, glossary):
    user = get_user_model().objects.create_user("taro", password="x-long-password-1")
    client.force_login(user)
    take_quiz(client, "softmax")
    learner = learner_of(client)
    response = client.post("/ja/progress/delete/", follow=True)
    assert response.redirect_chain == [("/ja/progress/", 302)]
    assert "進み具合を削除しました。" in response.content.decode()
    assert Learner.objects.filter(pk=learner.pk, user=user).exists()
    assert get_user_model().objects.filter(pk=user.pk).exists()
    assert not Attempt.objects.filter(learner=learner).exists()
    assert not TermProgress.objects.filter(learner=learner).exists()
    assert not ReviewCard.objects.filter(learner=learner).exists()


def test_deleting_with_nothing_to_delete_says_so(client, glossary):
    response = client.post("/en/progress/delete/", follow=True)
    assert "There was no progress to delete." in response.content.decode()
    assert not Learner.objects.exists()
    assert client.get("/en/progress/delete/").status_code == 200
    assert client.put("/en/progress/delete/").status_code == 405


# --- expiry of anonymous progress -------------------------------------------------------------


def backdate(learner: Learner, days: int) -> None:
    """Make everything ``learner`` did ``days`` old."""
    when = timezone.now() - timedelta(days=days)
    Learner.objects.filter(pk=learner.pk).update(created_at=when)
    Attempt.objects.filter(learner=learner).update(started_at=when, finished_at=when)
    AttemptQuestion.objects.filter(attempt__learner=learner).update(answered_at=when)
    TermProgress.objects.filter(learner=learner).update(updated_at=when)
    ReviewCard.objects.filter(learner=learner).update(last_reviewed_at=when)


@pytest.fixture
def learners(glossary, django_user_model):
    """Four learners: old anonymous (expired), old anonymous active lately, new anonymous, old
    with an account."""
    made = {}
    for name in ("old", "old_but_active", "new", "account"):
        browser = Client()
        if name == "account":
            browser.force_login(django_user_model.objects.create_user("ken", password="pw-12345x"))
        take_quiz(browser, "softmax")
        made[name] = learner_of(browser)
    days = conf.QUIZ_ANONYMOUS_EXPIRY_DAYS
    for name in ("old", "old_but_active", "account"):
        backdate(made[name], days + 5)
    backdate(made["new"], days - 5)
    # a review yesterday keeps an old learner
    ReviewCard.objects.filter(learner=made["old_but_active"]).filter(
        pk=ReviewCard.objects.filter(learner=made["old_but_active"]).first().pk
    ).update(last_reviewed_at=timezone.now() - timedelta(days=1))
    return made


def remaining(learners) -> set[str]:
    return {name for name, learner in learners.items() if Learner.objects.filter(pk=learner.pk)}


def test_dry_run_counts_and_changes_nothing(learners):
    out = io.StringIO()
    call_command("expire_anonymous", "--dry-run", stdout=out)
    assert "would delete 1 anonymous learners" in out.getvalue()
    assert remaining(learners) == set(learners)
    assert Attempt.objects.count() == 4 and ReviewCard.objects.count() == 12


def test_command_expires_only_old_anonymous_learners(learners):
    out = io.StringIO()
    call_command("expire_anonymous", stdout=out)
    assert "deleted 1 anonymous learners" in out.getvalue()
    assert remaining(learners) == {"old_but_active", "new", "account"}
    old = learners["old"].pk
    assert not Attempt.objects.filter(learner_id=old).exists()
    assert not TermProgress.objects.filter(learner_id=old).exists()
    assert not ReviewCard.objects.filter(learner_id=old).exists()
    assert Attempt.objects.count() == 3 and ReviewCard.objects.count() == 9
    # run again: nothing more is old enough
    call_command("expire_anonymous", stdout=out)
    assert remaining(learners) == {"old_but_active", "new", "account"}


def test_a_shorter_expiry_takes_more_but_never_an_account(learners):
    call_command("expire_anonymous", "--days", "2", stdout=io.StringIO())
    assert remaining(learners) == {"old_but_active", "account"}
    call_command("expire_anonymous", "--days", "0", stdout=io.StringIO())  # 0: expiry off
    assert remaining(learners) == {"old_but_active", "account"}


def test_the_periodic_task_expires_with_the_setting(learners, settings):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].startswith("quiz."))
    assert entry["task"] == tasks.expire_anonymous_learners.name
    assert tasks.expire_anonymous_learners() == 1
    assert remaining(learners) == {"old_but_active", "new", "account"}

    settings.QUIZ_ANONYMOUS_EXPIRY_DAYS = 0  # off: nobody expires
    backdate(learners["new"], 10_000)
    assert tasks.expire_anonymous_learners() == 0
    assert "new" in remaining(learners)
