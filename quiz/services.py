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
    Confidence,
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


class ConfidenceMissing(QuizError):
    """The answer came without a valid confidence: refused, and the form is shown again."""


def parse_confidence(value) -> str:
    """The learner's confidence from a form value; ConfidenceMissing when absent or unknown."""
    if value not in Confidence.values:
        raise ConfidenceMissing(
            _("Say how sure you are (guessing, unsure or sure) before you see the answer.")
        )
    return value


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
    """On log-in: the session's anonymous progress joins the account's, once.

    The anonymous learner's row is locked first, then the account's: a quiz answer of either
    takes the same lock first (see ``answer``), so an answer in flight is counted before the
    merge moves it or refused after it, never half-moved; and two log-ins of one session at the
    same moment (a double click) merge once, the second finding nothing left to merge."""
    learner_id = request.session.get(SESSION_KEY)
    target, _created = Learner.objects.get_or_create(user=user)
    if learner_id is not None:
        with transaction.atomic():
            source = (
                Learner.objects.select_for_update().filter(pk=learner_id, user__isnull=True).first()
            )
            if source is not None:
                target = Learner.objects.select_for_update().get(pk=target.pk)
                merge_learners(source=source, target=target)
        request.session.pop(SESSION_KEY, None)


# --- the learner's own data -------------------------------------------------------------------

EXPIRE_BATCH = 500  # learners deleted per statement (each with its attempts, progress and cards)


@transaction.atomic
def delete_learner_data(*, learner: Learner | None, session=None) -> dict[str, int]:
    """Delete everything ``learner`` did: attempts (with their answers), progress and review
    cards. An anonymous learner goes entirely, row and ``session`` key; an account's learner row
    stays (it is the account's), empty. Returns what was deleted, counted."""
    if learner is None:
        return {"attempts": 0, "terms": 0, "cards": 0}
    deleted = {
        "attempts": Attempt.objects.filter(learner=learner).delete()[1].get(Attempt._meta.label, 0),
        "terms": TermProgress.objects.filter(learner=learner).delete()[0],
        "cards": ReviewCard.objects.filter(learner=learner).delete()[0],
    }
    if learner.user_id is None:
        learner.delete()
        if session is not None:
            session.pop(SESSION_KEY, None)
    return deleted


def expire_anonymous_learners(*, now=None, days: int | None = None, dry_run: bool = False) -> int:
    """Delete anonymous learners inactive for ``days`` (QUIZ_ANONYMOUS_EXPIRY_DAYS by default; 0
    keeps them forever), with all they did. Learners with an account are never expired. Returns
    how many were (or, with ``dry_run``, would be) deleted."""
    from django.conf import settings

    from .selectors import expired_anonymous_learners

    days = settings.QUIZ_ANONYMOUS_EXPIRY_DAYS if days is None else days
    if days <= 0:
        return 0
    before = (now or timezone.now()) - timedelta(days=days)
    expired = expired_anonymous_learners(before=before)
    if dry_run:
        return expired.count()
    total = 0
    while ids := list(expired.values_list("pk", flat=True)[:EXPIRE_BATCH]):
        with transaction.atomic():
            # the conditions are checked again as it deletes: a learner active since is kept
            count = expired.filter(pk__in=ids).delete()[1].get(Learner._meta.label, 0)
        total += count
        if not count:
            break
    return total


# --- classes ----------------------------------------------------------------------------------

CLASS_NAME_MAX = 100


def _join_code() -> str:
    from .models import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH

    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _i in range(JOIN_CODE_LENGTH))


def create_classroom(*, teacher, name):
    """A new class taught by ``teacher``, with a fresh join code. QuizError for a bad name."""
    from django.db import IntegrityError

    from .models import Classroom

    name = " ".join(str(name or "").split())
    if not name:
        raise QuizError(_("Give the class a name."))
    if len(name) > CLASS_NAME_MAX:
        raise QuizError(_("A class name has at most %(max)d characters.") % {"max": CLASS_NAME_MAX})
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise QuizError(_("A class name cannot contain control characters."))
    for _attempt in range(5):  # 31^8 codes: a collision is rare, five in a row never happens
        try:
            with transaction.atomic():
                return Classroom.objects.create(teacher=teacher, name=name, join_code=_join_code())
        except IntegrityError:
            continue
    raise QuizError(_("No join code could be made. Please try again."))


def join_classroom(*, classroom, learner: Learner) -> bool:
    """``learner`` joins ``classroom`` (again is fine). Returns True when they were not yet in it.
    The class's teacher cannot join their own class."""
    from .models import Membership

    if learner.user_id is not None and learner.user_id == classroom.teacher_id:
        raise QuizError(_("You teach this class, so you cannot join it as a learner."))
    _membership, created = Membership.objects.get_or_create(classroom=classroom, learner=learner)
    return created


@transaction.atomic
def set_assignments(*, classroom, slugs) -> set[str]:
    """Make the class's assigned terms exactly ``slugs``. An unknown slug raises QuizError and
    changes nothing. Returns the assigned slugs."""
    from .models import Assignment

    wanted = {str(slug) for slug in slugs}
    terms = {term.slug: term for term in Term.objects.filter(slug__in=wanted)}
    if unknown := wanted - set(terms):
        raise QuizError(
            _("Unknown term: %(slugs)s. Choose terms from the list.")
            % {"slugs": ", ".join(sorted(unknown))[:200]}
        )
    Assignment.objects.filter(classroom=classroom).exclude(term__slug__in=wanted).delete()
    have = set(classroom.assignments.values_list("term__slug", flat=True))
    Assignment.objects.bulk_create(
        Assignment(classroom=classroom, term=terms[slug]) for slug in sorted(wanted - have)
    )
    return wanted


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
    *, learner: Learner, attempt_id, position, choice_key, confidence, now=None
) -> AttemptQuestion:
    """Grade one answer with the learner's confidence (a Confidence value, chosen before any
    feedback). Every tampering case, and a missing confidence, raises QuizError and changes
    nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        # The learner's row first (as a log-in's merge does), then the attempt: concurrent
        # answers, and a log-in that merges this learner, wait for each other in one order.
        if Learner.objects.select_for_update().filter(pk=learner.pk).first() is None:
            raise QuizError(_("This quiz attempt does not exist or is not yours."))
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
        item.confidence = parse_confidence(confidence)
        item.chosen_key = choice_key
        item.correct = choice_key == item.question.correct_key
        item.answered_at = now
        # Conditional: of two answers to one question at the same moment, one is recorded.
        recorded = AttemptQuestion.objects.filter(pk=item.pk, answered_at__isnull=True).update(
            chosen_key=item.chosen_key,
            correct=item.correct,
            confidence=item.confidence,
            answered_at=now,
        )
        if not recorded:
            raise QuizError(_("This question has already been answered."))
        _schedule(
            learner=learner,
            question=item.question,
            correct=item.correct,
            confidence=item.confidence,
            now=now,
        )
        if not AttemptQuestion.objects.filter(attempt=attempt, answered_at__isnull=True).exists():
            attempt.score = AttemptQuestion.objects.filter(attempt=attempt, correct=True).count()
            attempt.finished_at = now
            attempt.save(update_fields=["score", "finished_at"])
            record_result(learner=learner, term=attempt.term, score=attempt.score, when=now)
    return item


# --- spaced review ----------------------------------------------------------------------------


def rating_for(*, correct: bool, confidence: str) -> Rating:
    """Wrong is Again; right is Hard when the learner was guessing, else (unsure or sure) Good."""
    if not correct:
        return Rating.Again
    return Rating.Hard if confidence == Confidence.GUESS else Rating.Good


def _schedule(*, learner: Learner, question: Question, correct: bool, confidence: str, now) -> bool:
    """Review the learner's card for ``question``. Returns False when it was a repeat within
    REVIEW_DEDUP of the last review (counted once, not twice)."""
    card = ReviewCard.objects.select_for_update().filter(learner=learner, question=question).first()
    if card is not None and card.last_reviewed_at and now - card.last_reviewed_at < REVIEW_DEDUP:
        return False
    state = Card.from_dict(card.card) if card else Card(due=now)
    rating = rating_for(correct=correct, confidence=confidence)
    state, _log = _scheduler.review_card(state, rating, now)
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
    confidence: str


def review_answer(
    *, learner: Learner, question_id, choice_key, confidence, now=None
) -> ReviewResult:
    """Grade a review answer with its confidence and reschedule the card. Review answers are
    not stored one by one: the card's schedule is what they change."""
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
        confidence = parse_confidence(confidence)
        correct = choice_key == question.correct_key
        counted = _schedule(
            learner=learner, question=question, correct=correct, confidence=confidence, now=now
        )
    return ReviewResult(
        question=question,
        chosen_key=choice_key,
        correct=correct,
        counted=counted,
        confidence=confidence,
    )
