"""Grading, tampering, mastery, spaced review and the merge on log-in, called directly."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from fsrs import Rating

from quiz import services
from quiz.models import (
    Attempt,
    AttemptQuestion,
    Confidence,
    Learner,
    Mastery,
    ReviewCard,
    TermProgress,
)
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


def answer_all(learner, attempt, *, right: int, now=None, confidence=Confidence.SURE):
    """Answer every question of the attempt, the first ``right`` of them correctly, each with
    ``confidence`` (one value for all, or a list in the attempt's order)."""
    for item in attempt.items.select_related("question").order_by("position"):
        correct = item.question.correct_key
        wrong = next(key for key in item.choice_order if key != correct)
        services.answer(
            learner=learner,
            attempt_id=attempt.id,
            position=item.position,
            choice_key=correct if item.position < right else wrong,
            confidence=confidence if isinstance(confidence, str) else confidence[item.position],
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
    "case",
    [
        "foreign_choice",
        "foreign_position",
        "twice",
        "finished",
        "not_mine",
        "bad_id",
        "no_confidence",
        "bad_confidence",
    ],
)
def test_tampering_is_refused_and_changes_nothing(learner, term, case):
    attempt = services.start_attempt(learner=learner, term=term)
    item = attempt.items.order_by("position").first()
    kwargs = {
        "learner": learner,
        "attempt_id": attempt.id,
        "position": item.position,
        "choice_key": item.question.correct_key,
        "confidence": Confidence.UNSURE,
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
    elif case == "no_confidence":
        kwargs["confidence"] = ""
    elif case == "bad_confidence":
        kwargs["confidence"] = "very sure"
    fields = ("chosen_key", "correct", "confidence", "answered_at")
    before = list(AttemptQuestion.objects.order_by("pk").values_list(*fields))
    cards = ReviewCard.objects.count()
    score = Attempt.objects.get(pk=attempt.pk).score
    with pytest.raises(services.QuizError) as refused, translation.override("ja"):
        services.answer(**kwargs)
    assert list(AttemptQuestion.objects.order_by("pk").values_list(*fields)) == before
    assert Attempt.objects.get(pk=attempt.pk).score == score
    assert ReviewCard.objects.count() == cards
    if case.endswith("confidence"):
        assert isinstance(refused.value, services.ConfidenceMissing)
        assert "どのくらい自信があるか" in refused.value.message  # in the learner's language


def test_the_answer_keeps_its_confidence(learner, term):
    attempt = answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=2,
        confidence=[Confidence.GUESS, Confidence.UNSURE, Confidence.SURE],
    )
    assert list(attempt.items.order_by("position").values_list("confidence", "correct")) == [
        ("guess", True),
        ("unsure", True),
        ("sure", False),
    ]


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


@pytest.mark.parametrize(
    ("correct", "confidence", "rating"),
    [
        (False, "guess", Rating.Again),
        (False, "unsure", Rating.Again),
        (False, "sure", Rating.Again),
        (True, "guess", Rating.Hard),
        (True, "unsure", Rating.Good),
        (True, "sure", Rating.Good),
    ],
)
def test_ratings_follow_the_answer_and_its_confidence(correct, confidence, rating):
    assert services.rating_for(correct=correct, confidence=confidence) == rating


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


def test_a_right_guess_comes_back_sooner_than_a_right_unsure_or_sure_answer(small):
    learners = {level: Learner.objects.create() for level in Confidence.values}
    term = small["beta"]
    now = timezone.now()
    for level, learner in learners.items():  # the same questions, all right, twice a day apart
        for day in (0, 1):
            attempt = services.start_attempt(learner=learner, term=term)
            AttemptQuestion.objects.filter(attempt=attempt).delete()
            question = term.questions.order_by("position").first()
            AttemptQuestion.objects.create(
                attempt=attempt, question=question, position=0, choice_order=["a", "b"]
            )
            services.answer(
                learner=learner,
                attempt_id=attempt.id,
                position=0,
                choice_key=question.correct_key,
                confidence=level,
                now=now + timedelta(days=day),
            )
    due = {c.learner_id: c.due for c in ReviewCard.objects.all()}
    guess, unsure, sure = (due[learners[level].pk] for level in ("guess", "unsure", "sure"))
    assert guess < unsure
    assert unsure == sure  # both rate Good


def test_review_answer_again_straight_away_counts_once(learner, term):
    now = timezone.now()
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=0, now=now)
    card = ReviewCard.objects.filter(learner=learner).first()
    later = now + timedelta(hours=1)
    first = services.review_answer(
        learner=learner,
        question_id=card.question_id,
        choice_key=card.question.correct_key,
        confidence="sure",
        now=later,
    )
    second = services.review_answer(
        learner=learner,
        question_id=card.question_id,
        choice_key=card.question.correct_key,
        confidence="guess",
        now=later + timedelta(seconds=5),
    )
    assert first.counted and not second.counted
    card.refresh_from_db()
    assert card.reviews == 2  # the attempt's answer and the first review, not the repeat


def test_review_refuses_foreign_questions_and_choices(learner, term):
    with pytest.raises(services.QuizError):
        services.review_answer(
            learner=learner,
            question_id=term.questions.first().pk,
            choice_key="a",
            confidence="sure",
        )
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=1)
    card = ReviewCard.objects.filter(learner=learner).first()
    with pytest.raises(services.QuizError):
        services.review_answer(
            learner=learner, question_id=card.question_id, choice_key="nope", confidence="sure"
        )
    with pytest.raises(services.QuizError):
        services.review_answer(learner=learner, question_id="x", choice_key="a", confidence="sure")


@pytest.mark.parametrize("confidence", ["", None, "SURE", "maybe"])
def test_review_refuses_a_missing_confidence_and_keeps_the_schedule(learner, term, confidence):
    now = timezone.now()
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=0, now=now)
    card = ReviewCard.objects.filter(learner=learner).first()
    before = (card.card, card.due, card.reviews, card.last_reviewed_at)
    with pytest.raises(services.ConfidenceMissing):
        services.review_answer(
            learner=learner,
            question_id=card.question_id,
            choice_key=card.question.correct_key,
            confidence=confidence,
            now=now + timedelta(hours=1),
        )
    card.refresh_from_db()
    assert (card.card, card.due, card.reviews, card.last_reviewed_at) == before


def test_a_right_guess_in_review_is_rated_hard(small):
    """Two learners with the same card, both right in review: the guess comes back sooner."""
    term = small["alpha"]
    now = timezone.now()
    due = {}
    for level in ("guess", "sure"):
        learner = Learner.objects.create()
        answer_all(learner, services.start_attempt(learner=learner, term=term), right=3, now=now)
        card = ReviewCard.objects.filter(learner=learner).order_by("question_id").first()
        result = services.review_answer(
            learner=learner,
            question_id=card.question_id,
            choice_key=card.question.correct_key,
            confidence=level,
            now=now + timedelta(days=3),
        )
        assert result.counted and result.confidence == level
        due[level] = ReviewCard.objects.get(pk=card.pk).due
    # every card starts from the same state (right and sure, at ``now``), whatever its question
    assert due["guess"] < due["sure"]


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


def test_calibration_counts_right_answers_per_confidence_recently_and_before(small):
    from quiz.selectors import calibration

    learner, other = Learner.objects.create(), Learner.objects.create()
    term = small["alpha"]
    now = timezone.now()
    long_ago = now - timedelta(days=60)
    # before the last 30 days: sure 1 of 3 right; guess 2 of 3 right
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=1, now=long_ago)
    answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=2,
        now=long_ago,
        confidence=Confidence.GUESS,
    )
    # the last 30 days: sure 3 of 3 right; unsure 0 of 3
    answer_all(learner, services.start_attempt(learner=learner, term=term), right=3, now=now)
    answer_all(
        learner,
        services.start_attempt(learner=learner, term=term),
        right=0,
        now=now - timedelta(days=2),
        confidence=Confidence.UNSURE,
    )
    # someone else's answers and an unanswered attempt do not count
    answer_all(other, services.start_attempt(learner=other, term=term), right=0, now=now)
    services.start_attempt(learner=learner, term=term)

    result = calibration(learner=learner, now=now)
    assert result["answers"] == 12 and result["days"] == 30
    levels = {level["value"]: level for level in result["levels"]}
    assert [level["value"] for level in result["levels"]] == ["guess", "unsure", "sure"]
    assert levels["sure"]["recent"] == {"answers": 3, "right": 3, "percent": 100}
    assert levels["sure"]["before"] == {"answers": 3, "right": 1, "percent": 33}
    assert levels["sure"]["all"] == {"answers": 6, "right": 4, "percent": 67}
    assert levels["sure"]["change"] == 67
    assert levels["guess"]["recent"]["percent"] is None and levels["guess"]["change"] is None
    assert levels["guess"]["before"] == {"answers": 3, "right": 2, "percent": 67}
    assert levels["unsure"]["recent"] == {"answers": 3, "right": 0, "percent": 0}
    assert calibration(learner=None, now=now)["answers"] == 0
