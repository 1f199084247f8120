"""Reads for the quiz app."""

import uuid

from .models import Learner, TermProgress

SESSION_KEY = "learner_id"


def current_learner(*, request) -> Learner | None:
    """The learner behind this request, without creating one (reads never write)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Learner.objects.filter(user=user).first()
    learner_id = request.session.get(SESSION_KEY)
    if learner_id is None:
        return None
    return Learner.objects.filter(pk=learner_id, user__isnull=True).first()


def mastery_map(*, learner: Learner | None) -> dict[str, str]:
    """slug -> mastery level for every term the learner has tried. One query."""
    if learner is None:
        return {}
    return dict(TermProgress.objects.filter(learner=learner).values_list("term__slug", "mastery"))


def _localized(question, lang: str, order: list[str] | None):
    """The question's text in ``lang`` (else the other language), its choices by key, and the
    order to show them in (the attempt's shuffle, or as authored)."""
    texts = {text.lang: text for text in question.texts.all()}
    text = texts.get(lang) or next(iter(texts.values()))
    by_key = {choice["key"]: choice for choice in text.choices}
    return text, by_key, order or list(by_key)


def question_view(*, question, lang: str, order: list[str] | None = None) -> dict:
    """A question in ``lang`` (or the other language), its choices in ``order``. No answer in it."""
    text, by_key, keys = _localized(question, lang, order)
    return {
        "id": question.pk,
        "key": question.key,
        "prompt_html": text.prompt_html,
        "choices": [{"key": k, "text_html": by_key[k]["text_html"]} for k in keys],
        "observe": question.observe,
        "observe_model": question.observe_model,
    }


def feedback_view(*, question, lang: str, chosen_key: str, order: list[str] | None = None) -> dict:
    """After an answer: every choice with its explanation, the chosen and the correct one."""
    text, by_key, keys = _localized(question, lang, order)
    return {
        "id": question.pk,
        "prompt_html": text.prompt_html,
        "correct": chosen_key == question.correct_key,
        "chosen_key": chosen_key,
        "correct_key": question.correct_key,
        "section": question.section,
        "term_slug": question.term.slug,
        "observe": question.observe,
        "choices": [
            {
                "key": k,
                "text_html": by_key[k]["text_html"],
                "explanation_html": by_key[k]["explanation_html"],
                "is_correct": k == question.correct_key,
                "is_chosen": k == chosen_key,
            }
            for k in keys
        ],
    }


def attempt_for(*, learner, attempt_id):
    """The learner's own attempt by id; None for a malformed, unknown or foreign id."""
    from .models import Attempt

    if learner is None or attempt_id is None:
        return None
    try:
        attempt_uuid = uuid.UUID(str(attempt_id))
    except ValueError:
        return None
    return Attempt.objects.select_related("term").filter(id=attempt_uuid, learner=learner).first()


def attempt_items(*, attempt):
    from .models import AttemptQuestion

    return list(
        AttemptQuestion.objects.filter(attempt=attempt)
        .select_related("question__term")
        .prefetch_related("question__texts")
        .order_by("position")
    )


def next_due_card(*, learner, now):
    """The card due longest ago, with its question and texts; None when nothing is due."""
    from .models import ReviewCard

    if learner is None:
        return None
    return (
        ReviewCard.objects.filter(learner=learner, due__lte=now)
        .select_related("question__term")
        .prefetch_related("question__texts")
        .order_by("due")
        .first()
    )


def due_count(*, learner, now) -> int:
    """How many cards are due: one COUNT, for pages that show only the number."""
    from .models import ReviewCard

    if learner is None:
        return 0
    return ReviewCard.objects.filter(learner=learner, due__lte=now).count()


def progress_rows(*, learner) -> dict:
    from .models import ReviewCard, TermProgress

    if learner is None:
        return {"progress": {}, "cards": 0}
    rows = TermProgress.objects.filter(learner=learner).select_related("term")
    return {
        "progress": {row.term.slug: row for row in rows},
        "cards": ReviewCard.objects.filter(learner=learner).count(),
    }


def question_stats() -> dict[int, dict]:
    """Facility (share correct) and discrimination (the point-biserial correlation of an item
    with the rest of its attempt) of every question with answers in finished attempts."""
    from statistics import StatisticsError, correlation

    from .models import AttemptQuestion

    rows = AttemptQuestion.objects.filter(
        attempt__finished_at__isnull=False, answered_at__isnull=False
    ).values_list("question_id", "correct", "attempt__score")
    by_question: dict[int, list[tuple[int, int]]] = {}
    for question_id, correct, score in rows:
        item = int(bool(correct))
        by_question.setdefault(question_id, []).append((item, score - item))
    stats = {}
    for question_id, pairs in by_question.items():
        items = [p[0] for p in pairs]
        rest = [p[1] for p in pairs]
        try:
            discrimination = correlation(items, rest)
        except StatisticsError:  # constant data: every answer right, or every rest score equal
            discrimination = None
        facility = sum(items) / len(items)
        stats[question_id] = {
            "answers": len(items),
            "facility": facility,
            "discrimination": discrimination,
            "flagged": len(items) >= 20 and not 0.2 <= facility <= 0.95,
        }
    return stats
