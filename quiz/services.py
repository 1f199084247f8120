"""Writes for the quiz app: the question bank, attempts, grading, mastery and spaced review.

Grading happens here only. A page never holds a correct answer before the learner has answered.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from fsrs import Card, Rating, Scheduler

from engine.models import LiveModel
from lessons.models import LANGS, Term

from .models import (
    Attempt,
    AttemptQuestion,
    Learner,
    Mastery,
    Question,
    QuestionText,
    ReviewCard,
    TermProgress,
)
from .selectors import SESSION_KEY, current_learner

QUESTIONS_PER_ATTEMPT = 3
FAMILIAR_SCORE = 2  # of 3
REVIEW_DEDUP = timedelta(minutes=10)  # answering the same card again this soon counts once
_random = secrets.SystemRandom()
_scheduler = Scheduler(enable_fuzzing=False)


@dataclass
class QuizError(ValueError):
    """A request the quiz refuses, with a message for the learner (HTTP 400)."""

    message: str

    def __str__(self):
        return self.message


# --- the question bank ------------------------------------------------------------------------


def sync_questions(*, term: Term, files: dict) -> int:
    """Make ``term``'s questions match the authored files (``files``: lang -> TermFile).

    Questions keep their primary key while their id stays the same, so learners' answers and
    review cards survive an edit of the wording. Questions removed from the files are deleted.
    A fixed number of queries per term (bulk inserts and updates).
    """
    authored = files["en"].quiz
    existing = {question.key: question for question in Question.objects.filter(term=term)}
    new, kept = [], []
    for position, item in enumerate(authored):
        question = existing.get(item.id)
        (kept if question else new).append(question := question or Question(term=term, key=item.id))
        question.position, question.section = position, item.section
        question.correct_key, question.observe = item.correct_key, item.observe
        question.observe_model = item.observe_model or LiveModel.MINILM
    Question.objects.filter(term=term).exclude(key__in=[item.id for item in authored]).delete()
    Question.objects.bulk_create(new)
    Question.objects.bulk_update(
        kept, ["position", "section", "correct_key", "observe", "observe_model"]
    )

    questions = {question.key: question for question in [*new, *kept]}
    texts = {
        (text.question_id, text.lang): text
        for text in QuestionText.objects.filter(question__in=[q.pk for q in kept])
    }
    to_create, to_update = [], []
    for lang in LANGS:
        for localized in files[lang].quiz:
            question = questions[localized.id]
            text = texts.get((question.pk, lang))
            (to_update if text else to_create).append(
                text := text or QuestionText(question=question, lang=lang)
            )
            text.prompt_html = localized.question_html
            text.choices = [
                {
                    "key": choice.key,
                    "text_html": choice.text_html,
                    "explanation_html": choice.explanation_html,
                }
                for choice in localized.choices
            ]
    QuestionText.objects.bulk_create(to_create)
    QuestionText.objects.bulk_update(to_update, ["prompt_html", "choices"])
    return len(authored)


# --- learners ---------------------------------------------------------------------------------


def learner_for(*, request) -> Learner:
    """The learner behind this request, created on first need (a write: only on POST)."""
    learner = current_learner(request=request)
    if learner is not None:
        return learner
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        learner, _created = Learner.objects.get_or_create(user=user)
        return learner
    learner = Learner.objects.create()
    request.session[SESSION_KEY] = learner.pk
    return learner


@transaction.atomic
def merge_learners(*, source: Learner, target: Learner) -> None:
    """Move everything ``source`` did to ``target`` (used when an anonymous learner logs in)."""
    if source.pk == target.pk:
        return
    Attempt.objects.filter(learner=source).update(learner=target)
    for progress in TermProgress.objects.filter(learner=source):
        mine = TermProgress.objects.filter(learner=target, term=progress.term).first()
        if mine is None:
            progress.learner = target
            progress.save(update_fields=["learner"])
            continue
        mine.attempts += progress.attempts
        mine.best_score = max(mine.best_score, progress.best_score)
        mine.perfect_days = sorted(set(mine.perfect_days) | set(progress.perfect_days))
        mine.mastery = _mastery(mine.best_score, mine.perfect_days, mine.attempts)
        mine.save()
    for card in ReviewCard.objects.filter(learner=source):
        if not ReviewCard.objects.filter(learner=target, question=card.question).exists():
            card.learner = target
            card.save(update_fields=["learner"])
    source.delete()


def merge_session_learner(*, request, user) -> None:
    """On log-in: the session's anonymous progress joins the account's."""
    learner_id = request.session.get(SESSION_KEY)
    target, _created = Learner.objects.get_or_create(user=user)
    if learner_id is not None:
        source = Learner.objects.filter(pk=learner_id, user__isnull=True).first()
        if source is not None:
            merge_learners(source=source, target=target)
        request.session.pop(SESSION_KEY, None)


# --- attempts and grading ---------------------------------------------------------------------


def _shuffled_keys(question: Question) -> list[str]:
    keys = [choice["key"] for choice in question.texts.all()[0].choices]
    return _random.sample(keys, len(keys))


def start_attempt(*, learner: Learner, term: Term) -> Attempt:
    """Draw three questions of ``term`` at random, each with its choices shuffled."""
    questions = list(Question.objects.filter(term=term).prefetch_related("texts"))
    if len(questions) < QUESTIONS_PER_ATTEMPT:
        raise QuizError(_("This term has no quiz yet."))
    drawn = _random.sample(questions, QUESTIONS_PER_ATTEMPT)
    with transaction.atomic():
        attempt = Attempt.objects.create(learner=learner, term=term)
        AttemptQuestion.objects.bulk_create(
            AttemptQuestion(
                attempt=attempt,
                question=question,
                position=position,
                choice_order=_shuffled_keys(question),
            )
            for position, question in enumerate(drawn)
        )
    return attempt


def _mastery(best_score: int, perfect_days: list[str], attempts: int) -> str:
    if len(set(perfect_days)) >= 2:
        return Mastery.MASTERED
    if best_score >= FAMILIAR_SCORE:
        return Mastery.FAMILIAR
    return Mastery.ATTEMPTED if attempts else Mastery.NOT_STARTED


def record_result(*, learner: Learner, term: Term, score: int, when) -> TermProgress:
    """Update mastery after a finished attempt: familiar at 2/3 once, mastered at 3/3 on two
    different days."""
    progress, _created = TermProgress.objects.get_or_create(learner=learner, term=term)
    progress.attempts += 1
    progress.best_score = max(progress.best_score, score)
    if score == QUESTIONS_PER_ATTEMPT:
        day = timezone.localdate(when).isoformat()
        progress.perfect_days = sorted(set(progress.perfect_days) | {day})
    progress.mastery = _mastery(progress.best_score, progress.perfect_days, progress.attempts)
    progress.save()
    return progress


def answer(
    *, learner: Learner, attempt_id, position, choice_key, unsure: bool = False, now=None
) -> AttemptQuestion:
    """Grade one answer. Every tampering case raises QuizError and changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().filter(id=attempt_id, learner=learner).first()
        if attempt is None:
            raise QuizError(_("This quiz attempt does not exist or is not yours."))
        if attempt.finished_at is not None:
            raise QuizError(_("This attempt is finished. Start a new one to try again."))
        try:
            position = int(position)
        except (TypeError, ValueError):
            raise QuizError(_("This question is not part of the attempt.")) from None
        item = (
            AttemptQuestion.objects.select_related("question")
            .filter(attempt=attempt, position=position)
            .first()
        )
        if item is None:
            raise QuizError(_("This question is not part of the attempt."))
        if item.answered_at is not None:
            raise QuizError(_("This question has already been answered."))
        if choice_key not in item.choice_order:
            raise QuizError(_("Choose one of the answers shown."))
        item.chosen_key = choice_key
        item.correct = choice_key == item.question.correct_key
        item.answered_at = now
        item.save(update_fields=["chosen_key", "correct", "answered_at"])
        _schedule(
            learner=learner, question=item.question, correct=item.correct, unsure=unsure, now=now
        )
        if not AttemptQuestion.objects.filter(attempt=attempt, answered_at__isnull=True).exists():
            attempt.score = AttemptQuestion.objects.filter(attempt=attempt, correct=True).count()
            attempt.finished_at = now
            attempt.save(update_fields=["score", "finished_at"])
            record_result(learner=learner, term=attempt.term, score=attempt.score, when=now)
    return item


# --- spaced review ----------------------------------------------------------------------------


def rating_for(*, correct: bool, unsure: bool) -> Rating:
    """Wrong is Again; right is Good, or Hard when the learner says they were unsure."""
    if not correct:
        return Rating.Again
    return Rating.Hard if unsure else Rating.Good


def _schedule(*, learner: Learner, question: Question, correct: bool, unsure: bool, now) -> bool:
    """Review the learner's card for ``question``. Returns False when it was a repeat within
    REVIEW_DEDUP of the last review (counted once, not twice)."""
    card = ReviewCard.objects.select_for_update().filter(learner=learner, question=question).first()
    if card is not None and card.last_reviewed_at and now - card.last_reviewed_at < REVIEW_DEDUP:
        return False
    state = Card.from_dict(card.card) if card else Card(due=now)
    state, _log = _scheduler.review_card(state, rating_for(correct=correct, unsure=unsure), now)
    if card is None:
        ReviewCard.objects.create(
            learner=learner,
            question=question,
            card=state.to_dict(),
            due=state.due,
            last_reviewed_at=now,
            reviews=1,
        )
    else:
        card.card, card.due, card.last_reviewed_at = state.to_dict(), state.due, now
        card.reviews = F("reviews") + 1
        card.save(update_fields=["card", "due", "last_reviewed_at", "reviews"])
    return True


@dataclass
class ReviewResult:
    question: Question
    chosen_key: str
    correct: bool
    counted: bool


def review_answer(
    *, learner: Learner, question_id, choice_key, unsure: bool = False, now=None
) -> ReviewResult:
    now = now or timezone.now()
    try:
        question_id = int(question_id)
    except (TypeError, ValueError):
        raise QuizError(_("This question is not in your review.")) from None
    with transaction.atomic():
        card = (
            ReviewCard.objects.select_related("question")
            .filter(learner=learner, question_id=question_id)
            .first()
        )
        if card is None:
            raise QuizError(_("This question is not in your review."))
        question = card.question
        keys = [c["key"] for c in question.texts.first().choices]
        if choice_key not in keys:
            raise QuizError(_("Choose one of the answers shown."))
        correct = choice_key == question.correct_key
        counted = _schedule(
            learner=learner, question=question, correct=correct, unsure=unsure, now=now
        )
    return ReviewResult(question=question, chosen_key=choice_key, correct=correct, counted=counted)
