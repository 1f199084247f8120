"""Grading, tampering, mastery, spaced review and the merge on log-in, called directly."""

from datetime import timedelta

import pytest
from django.utils import timezone
from fsrs import Rating

from quiz import services
from quiz.models import Attempt, AttemptQuestion, Learner, Mastery, ReviewCard, TermProgress
from tests.factories import load_small_glossary

pytestmark = pytest.mark.django_db


@pytest.fixture
def small(db, tmp_path):
    """Two terms with five questions each, built here: the mechanics do not depend on the
    authored content."""
    return load_small_glossary(tmp_path)


@pytest.fixture
def learner(small):
    return Learner.objects.create()


@pytest.fixture
def term(small):
    return small["alpha"]


def answer_all(learner, attempt, *, right: int, now=None):
    """Answer every question of the attempt, the first ``right`` of them correctly."""
    for item in attempt.items.select_related("question").order_by("position"):
        correct = item.question.correct_key
        wrong = next(key for key in item.choice_order if key != correct)
        services.answer(
            learner=learner,
            attempt_id=attempt.id,
            position=item.position,
            choice_key=correct if item.position < right else wrong,
            now=now,
        )
    attempt.refresh_from_db()
    return attempt


def test_an_attempt_draws_three_distinct_questions_with_shuffled_choices(learner, term):
    attempt = services.start_attempt(learner=learner, term=term)
    items = list(attempt.items.all())
    assert len(items) == 3 and len({item.question_id for item in items}) == 3
    for item in items:
        keys = [c["key"] for c in item.question.texts.first().choices]
        assert sorted(item.choice_order) == sorted(keys)


def test_draws_differ_over_attempts(learner, term):
    draws = {
        tuple(
            sorted(
                services.start_attempt(learner=learner, term=term).items.values_list(
                    "question_id", flat=True
                )
            )
        )
        for _ in range(12)
    }
    assert len(draws) > 1


def test_grading_and_score(learner, term):
    attempt = answer_all(learner, services.start_attempt(learner=learner, term=term), right=2)
    assert attempt.score == 2 and attempt.finished_at is not None
    assert list(attempt.items.order_by("position").values_list("correct", flat=True)) == [
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "case", ["foreign_choice", "foreign_position", "twice", "finished", "not_mine", "bad_id"]
)
def test_tampering_is_refused_and_changes_nothing(learner, term, case):
    attempt = services.start_attempt(learner=learner, term=term)
    item = attempt.items.order_by("position").first()
    kwargs = {
        "learner": learner,
        "attempt_id": attempt.id,
        "position": item.position,
        "choice_key": item.question.correct_key,
    }
    if case == "foreign_choice":
        kwargs["choice_key"] = "zz"
    elif case == "foreign_position":
        kwargs["position"] = 7
    elif case == "twice":
        services.answer(**kwargs)
        kwargs["choice_key"] = next(k for k in item.choice_order if k != item.question.correct_key)
    elif case == "finished":
        answer_all(learner, attempt, right=3)
    elif case == "not_mine":
        kwargs["learner"] = Learner.objects.create()
    elif case == "bad_id":
        kwargs["position"] = "1; DROP TABLE"
    before = list(AttemptQuestion.objects.order_by("pk").values_list("chosen_key", "correct"))
    score = Attempt.objects.get(pk=attempt.pk).score
    with pytest.raises(services.QuizError):
        services.answer(**kwargs)
    assert (
        list(AttemptQuestion.objects.order_by("pk").values_list("chosen_key", "correct")) == before
    )
    assert Attempt.objects.get(pk=attempt.pk).score == score


def test_mastery_transitions(learner, term):
    day1 = timezone.now() - timedelta(days=3)

    def progress():
        return TermProgress.objects.get(learner=learner, term=term)

    answer_all(learner, services.start_attempt(learner=learner, term=term), right=1, now=day1)
    assert progress().mastery == Mastery.ATTEMPTED
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=2, now=day1)
    assert progress().mastery == Mastery.FAMILIAR
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=3, now=day1)
    assert progress().mastery == Mastery.FAMILIAR  # 3/3 once is not yet mastered
    answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=3,
        now=day1 + timedelta(minutes=5),
    )
    assert progress().mastery == Mastery.FAMILIAR  # two perfect scores on the same day
    answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=0,
        now=day1 + timedelta(days=1),
    )
    assert progress().mastery == Mastery.FAMILIAR  # a bad day does not take it away
    answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=3,
        now=day1 + timedelta(days=2),
    )
    assert progress().mastery == Mastery.MASTERED
    assert progress().attempts == 6 and progress().best_score == 3


def test_ratings_follow_the_answer():
    assert services.rating_for(correct=False, unsure=False) == Rating.Again
    assert services.rating_for(correct=False, unsure=True) == Rating.Again
    assert services.rating_for(correct=True, unsure=False) == Rating.Good
    assert services.rating_for(correct=True, unsure=True) == Rating.Hard


def test_every_answered_question_becomes_a_card_scheduled_by_fsrs(learner, term):
    now = timezone.now()
    attempt = answer_all(
        learner, services.start_attempt(learner=learner, term=term), right=2, now=now
    )
    cards = {card.question_id: card for card in ReviewCard.objects.filter(learner=learner)}
    assert len(cards) == 3
    items = list(attempt.items.order_by("position"))
    right_due = cards[items[0].question_id].due
    wrong_due = cards[items[2].question_id].due
    assert wrong_due < right_due  # Again comes back sooner than Good
    assert wrong_due - now <= timedelta(minutes=2)


def test_unsure_right_answer_comes_back_sooner_than_sure(small):
    sure, unsure = Learner.objects.create(), Learner.objects.create()
    question = small["beta"].questions.first()
    now = timezone.now()
    for learner, flag in ((sure, False), (unsure, True)):
        services._schedule(learner=learner, question=question, correct=True, unsure=flag, now=now)
        services._schedule(
            learner=learner,
            question=question,
            correct=True,
            unsure=flag,
            now=now + timedelta(days=1),
        )
    due = {c.learner_id: c.due for c in ReviewCard.objects.all()}
    assert due[unsure.pk] < due[sure.pk]


def test_review_answer_again_straight_away_counts_once(learner, term):
    now = timezone.now()
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=0, now=now)
    card = ReviewCard.objects.filter(learner=learner).first()
    later = now + timedelta(hours=1)
    first = services.review_answer(
        learner=learner,
        question_id=card.question_id,
        choice_key=card.question.correct_key,
        now=later,
    )
    second = services.review_answer(
        learner=learner,
        question_id=card.question_id,
        choice_key=card.question.correct_key,
        now=later + timedelta(seconds=5),
    )
    assert first.counted and not second.counted
    card.refresh_from_db()
    assert card.reviews == 2  # the attempt's answer and the first review, not the repeat


def test_review_refuses_foreign_questions_and_choices(learner, term):
    with pytest.raises(services.QuizError):
        services.review_answer(
            learner=learner, question_id=term.questions.first().pk, choice_key="a"
        )
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=1)
    card = ReviewCard.objects.filter(learner=learner).first()
    with pytest.raises(services.QuizError):
        services.review_answer(learner=learner, question_id=card.question_id, choice_key="nope")
    with pytest.raises(services.QuizError):
        services.review_answer(learner=learner, question_id="x", choice_key="a")


def test_merge_on_login_keeps_the_best_of_both(small, django_user_model):
    term = small["beta"]
    anonymous = Learner.objects.create()
    user = django_user_model.objects.create_user("mika", password="pw-123456-long")
    account = Learner.objects.create(user=user)
    answer_all(account, services.start_attempt(learner=account, term=term), right=1)
    answer_all(anonymous, services.start_attempt(learner=anonymous, term=term), right=2)
    services.merge_learners(source=anonymous, target=account)
    progress = TermProgress.objects.get(learner=account, term=term)
    assert (
        progress.best_score == 2 and progress.attempts == 2 and progress.mastery == Mastery.FAMILIAR
    )
    assert not Learner.objects.filter(pk=anonymous.pk).exists()
    assert Attempt.objects.filter(learner=account).count() == 2


def test_question_quality_flags_items_everyone_gets_right(small):
    from quiz.selectors import question_stats

    term = small["beta"]
    for _ in range(50):
        learner = Learner.objects.create()
        answer_all(learner, services.start_attempt(learner=learner, term=term), right=3)
    stats = question_stats()
    assert any(s["answers"] >= 20 for s in stats.values())
    for s in stats.values():
        assert s["facility"] == 1.0
        assert s["flagged"] == (s["answers"] >= 20)  # too easy, once there is enough evidence


def test_question_discrimination_is_the_item_rest_correlation(small):
    from quiz.selectors import question_stats

    term = small["beta"]
    for right in (0, 1, 2, 3, 0, 3, 1, 2):
        learner = Learner.objects.create()
        answer_all(learner, services.start_attempt(learner=learner, term=term), right=right)
    for s in question_stats().values():
        assert s["discrimination"] is None or -1 <= s["discrimination"] <= 1
    assert any(s["discrimination"] is not None for s in question_stats().values())


def test_reloading_keeps_questions_and_answers_and_follows_the_wording(tmp_path, small, learner):
    from lessons.content import read_glossary
    from pages.services import load_content
    from quiz.models import Question, QuestionText
    from tests.factories import QUIZ, small_content, term_file

    attempt = services.start_attempt(learner=learner, term=small["alpha"])
    before = dict(Question.objects.filter(term=small["alpha"]).values_list("key", "pk"))
    # Reword q1 in English, drop q5, keep the rest: the same ids keep their rows.
    reworded = QUIZ.replace('question: "Question 1?"', 'question: "Question one, reworded?"')
    reworded = reworded[: reworded.index("  - id: q5")]
    reworded += QUIZ[QUIZ.index("  - id: q5") :].replace("id: q5", "id: q6")
    (tmp_path / "edited").mkdir()
    directory = small_content(tmp_path / "edited")
    for lang in ("en", "ja"):
        directory.write(f"alpha.{lang}.md", term_file("alpha", lang, quiz=reworded))
    load_content(glossary=read_glossary(directory))
    after = dict(Question.objects.filter(term=small["alpha"]).values_list("key", "pk"))
    assert set(after) == {"q1", "q2", "q3", "q4", "q6"}
    assert all(after[key] == before[key] for key in ("q1", "q2", "q3", "q4"))
    prompt = QuestionText.objects.get(question_id=after["q1"], lang="en").prompt_html
    assert "reworded" in prompt
    # the learner's attempt still points at the same rows (an item of the removed one is gone)
    assert set(attempt.items.values_list("question_id", flat=True)) <= set(after.values())
    assert attempt.items.count() >= 2
