"""Reads for the quiz app."""

import uuid

from .models import Confidence, Learner, TermProgress

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
        "confidences": Confidence.choices,  # the answer form's "how sure are you?" group
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
    """The card due longest ago, with its question and texts; None when nothing is due. Cards of
    terms a teacher assigned to one of the learner's classes come first."""
    from django.db.models import Exists, OuterRef

    from .models import Assignment, ReviewCard

    if learner is None:
        return None
    assigned = Assignment.objects.filter(
        classroom__memberships__learner=learner, term=OuterRef("question__term")
    )
    return (
        ReviewCard.objects.filter(learner=learner, due__lte=now)
        .annotate(assigned=Exists(assigned))
        .select_related("question__term")
        .prefetch_related("question__texts")
        .order_by("-assigned", "due", "pk")
        .first()
    )


# --- classes ----------------------------------------------------------------------------------


def assigned_slugs(*, learner) -> set[str]:
    """The terms assigned to any class the learner is in. One query."""
    from .models import Assignment

    if learner is None:
        return set()
    return set(
        Assignment.objects.filter(classroom__memberships__learner=learner).values_list(
            "term__slug", flat=True
        )
    )


def classrooms_for(*, user) -> dict:
    """The classes ``user`` teaches (with their learner counts) and the ones they joined."""
    from django.db.models import Count

    from .models import Classroom

    return {
        "taught": list(
            Classroom.objects.filter(teacher=user).annotate(learner_count=Count("memberships"))
        ),
        "joined": list(
            Classroom.objects.filter(memberships__learner__user=user).select_related("teacher")
        ),
    }


def taught_classroom(*, user, classroom_id):
    """The class ``classroom_id`` if ``user`` teaches it; None for anyone else and for a
    malformed or unknown id (the caller answers 404 either way, so nothing is revealed)."""
    from .models import Classroom

    if user is None or not user.is_authenticated:
        return None
    try:
        classroom_id = int(str(classroom_id))
    except ValueError:
        return None
    if not 0 < classroom_id < 2**63:
        return None
    return Classroom.objects.filter(pk=classroom_id, teacher=user).first()


def classroom_by_code(*, code):
    """The class with this join code (case and surrounding spaces ignored); None if none."""
    from .models import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH, Classroom

    code = str(code or "").strip().upper()
    if len(code) != JOIN_CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in code):
        return None
    return Classroom.objects.select_related("teacher").filter(join_code=code).first()


def is_member(*, classroom, learner) -> bool:
    from .models import Membership

    if learner is None:
        return False
    return Membership.objects.filter(classroom=classroom, learner=learner).exists()


def class_grid(*, classroom, lang: str) -> dict:
    """Learners × terms: every learner of the class (in the order they joined) with their
    mastery of every term, assigned terms first, then the glossary's order. Three queries."""
    from lessons.selectors import glossary

    from .models import Mastery, Membership

    refs = glossary(lang=lang).refs
    assigned = set(classroom.assignments.values_list("term__slug", flat=True))
    columns = [
        {"ref": ref, "assigned": slug in assigned}
        for slug, ref in sorted(refs.items(), key=lambda item: item[0] not in assigned)
    ]
    members = list(Membership.objects.filter(classroom=classroom).select_related("learner__user"))
    mastery: dict[tuple[int, str], str] = {
        (learner_id, slug): level
        for learner_id, slug, level in TermProgress.objects.filter(
            learner__in=[m.learner_id for m in members]
        ).values_list("learner_id", "term__slug", "mastery")
    }
    rows = [
        {
            "name": member.learner.user.get_username() if member.learner.user_id else "—",
            "joined_at": member.joined_at,
            "cells": [
                mastery.get((member.learner_id, column["ref"].slug), Mastery.NOT_STARTED)
                for column in columns
            ],
        }
        for member in members
    ]
    return {"columns": columns, "rows": rows, "assigned": assigned}


def class_question_stats(*, classroom, lang: str) -> list[dict]:
    """For every question the class's learners answered: its facility in this class (the share
    of their answers that were right) and the wrong choice they picked most (ties: the first
    in the authored order), in ``lang``. Questions ordered as the glossary and the quiz are."""
    from .models import AttemptQuestion, Question

    answers = AttemptQuestion.objects.filter(
        attempt__learner__memberships__classroom=classroom, answered_at__isnull=False
    ).values_list("question_id", "correct", "chosen_key")
    tally: dict[int, dict] = {}
    for question_id, correct, chosen_key in answers:
        row = tally.setdefault(question_id, {"answers": 0, "right": 0, "wrong": {}})
        row["answers"] += 1
        if correct:
            row["right"] += 1
        else:
            row["wrong"][chosen_key] = row["wrong"].get(chosen_key, 0) + 1
    questions = (
        Question.objects.filter(pk__in=tally)
        .select_related("term")
        .prefetch_related("texts")
        .order_by("term__layer", "term__slug", "position")
    )
    stats = []
    for question in questions:
        row = tally[question.pk]
        text, by_key, keys = _localized(question, lang, None)
        wrong = None
        if row["wrong"]:
            most = max(row["wrong"].values())
            key = next(k for k in [*keys, *row["wrong"]] if row["wrong"].get(k) == most)
            choice = by_key.get(key)
            wrong = {
                "key": key,
                "count": most,
                "text_html": choice["text_html"] if choice else key,
            }
        stats.append(
            {
                "question": question,
                "term_slug": question.term.slug,
                "prompt_html": text.prompt_html,
                "answers": row["answers"],
                "right": row["right"],
                "facility": row["right"] / row["answers"],
                "most_wrong": wrong,
            }
        )
    return stats


def review_card(*, learner, question_id):
    """The learner's card for one question, with its question and texts; None when there is
    none (or the id is malformed)."""
    from .models import ReviewCard

    try:
        question_id = int(question_id)
    except (TypeError, ValueError):
        return None
    if learner is None:
        return None
    return (
        ReviewCard.objects.filter(learner=learner, question_id=question_id)
        .select_related("question__term")
        .prefetch_related("question__texts")
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


# --- the learner's own data: export, deletion, expiry -------------------------------------------

EXPORT_FORMAT = "attention-lab-progress"
EXPORT_VERSION = 1
# One table for the CSV: every row says what it is (``record``), and leaves the others' columns empty.
EXPORT_CSV_COLUMNS = [
    "record",  # answer, progress or review
    "term",
    "attempt",
    "attempt_started_at",
    "attempt_finished_at",
    "attempt_score",
    "question",
    "section",
    "position",
    "chosen",
    "confidence",
    "correct",
    "answered_at",
    "mastery",
    "best_score",
    "attempts",
    "perfect_days",
    "due",
    "last_reviewed_at",
    "reviews",
    "stability",
    "difficulty",
]


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def learner_export(*, learner, now) -> dict:
    """Everything the learner did, as plain JSON-ready data: their attempts with every answer,
    their mastery of each term and their review schedule. A fixed number of queries."""
    from django.db.models import Prefetch

    from .models import Attempt, AttemptQuestion, ReviewCard, TermProgress

    data = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": _iso(now),
        "learner": None,
        "attempts": [],
        "progress": [],
        "review": [],
    }
    if learner is None:
        return data
    data["learner"] = {
        "account": learner.user.get_username() if learner.user_id else None,
        "created_at": _iso(learner.created_at),
    }
    items = AttemptQuestion.objects.select_related("question").order_by("position")
    attempts = (
        Attempt.objects.filter(learner=learner)
        .select_related("term")
        .prefetch_related(Prefetch("items", queryset=items))
        .order_by("started_at")
    )
    data["attempts"] = [
        {
            "id": str(attempt.id),
            "term": attempt.term.slug,
            "started_at": _iso(attempt.started_at),
            "finished_at": _iso(attempt.finished_at),
            "score": attempt.score,
            "answers": [
                {
                    "position": item.position + 1,
                    "question": item.question.key,
                    "section": item.question.section,
                    "chosen": item.chosen_key or None,
                    "confidence": item.confidence or None,
                    "correct": item.correct,
                    "answered_at": _iso(item.answered_at),
                }
                for item in attempt.items.all()
            ],
        }
        for attempt in attempts
    ]
    data["progress"] = [
        {
            "term": row.term.slug,
            "mastery": row.mastery,
            "best_score": row.best_score,
            "attempts": row.attempts,
            "perfect_days": list(row.perfect_days),
            "updated_at": _iso(row.updated_at),
        }
        for row in TermProgress.objects.filter(learner=learner)
        .select_related("term")
        .order_by("term__slug")
    ]
    data["review"] = [
        {
            "term": card.question.term.slug,
            "question": card.question.key,
            "due": _iso(card.due),
            "last_reviewed_at": _iso(card.last_reviewed_at),
            "reviews": card.reviews,
            "fsrs": card.card,
        }
        for card in ReviewCard.objects.filter(learner=learner)
        .select_related("question__term")
        .order_by("due", "pk")
    ]
    return data


def export_csv_rows(*, data: dict) -> list[list]:
    """``learner_export``'s data as CSV rows, the header first: one row per answer, per term's
    progress and per review card."""
    rows = [EXPORT_CSV_COLUMNS]

    def row(**values) -> list:
        return ["" if values.get(name) is None else values[name] for name in EXPORT_CSV_COLUMNS]

    for attempt in data["attempts"]:
        common = {
            "term": attempt["term"],
            "attempt": attempt["id"],
            "attempt_started_at": attempt["started_at"],
            "attempt_finished_at": attempt["finished_at"],
            "attempt_score": attempt["score"],
        }
        for answer in attempt["answers"]:
            correct = answer["correct"]
            rows.append(
                row(
                    record="answer",
                    **common,
                    **{
                        k: answer[k]
                        for k in ("question", "section", "position", "chosen", "confidence")
                    },
                    correct=None if correct is None else str(correct).lower(),
                    answered_at=answer["answered_at"],
                )
            )
    for progress in data["progress"]:
        rows.append(
            row(
                record="progress",
                **{k: progress[k] for k in ("term", "mastery", "best_score", "attempts")},
                perfect_days=" ".join(progress["perfect_days"]),
            )
        )
    for card in data["review"]:
        fsrs = card["fsrs"] if isinstance(card["fsrs"], dict) else {}
        rows.append(
            row(
                record="review",
                **{k: card[k] for k in ("term", "question", "due", "last_reviewed_at", "reviews")},
                stability=fsrs.get("stability"),
                difficulty=fsrs.get("difficulty"),
            )
        )
    return rows


def learner_data_counts(*, learner) -> dict[str, int]:
    """What deleting the learner's data would delete, counted (for the confirmation page)."""
    from .models import AttemptQuestion, ReviewCard

    if learner is None:
        return {"attempts": 0, "answers": 0, "terms": 0, "cards": 0}
    return {
        "attempts": learner.attempts.count(),
        "answers": AttemptQuestion.objects.filter(
            attempt__learner=learner, answered_at__isnull=False
        ).count(),
        "terms": TermProgress.objects.filter(learner=learner).count(),
        "cards": ReviewCard.objects.filter(learner=learner).count(),
    }


def expired_anonymous_learners(*, before):
    """Anonymous learners (no account) who have done nothing since ``before``: created before it,
    and no attempt started, question answered, progress updated or card reviewed since."""
    return (
        Learner.objects.filter(user__isnull=True, created_at__lt=before)
        .exclude(attempts__started_at__gte=before)
        .exclude(attempts__items__answered_at__gte=before)
        .exclude(progress__updated_at__gte=before)
        .exclude(cards__last_reviewed_at__gte=before)
    )


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


# --- confidence: the summary's lists and calibration --------------------------------------------

CALIBRATION_RECENT_DAYS = 30  # "recently" on the progress page: the last 30 days, against before


def confidence_lists(*, items, lang: str) -> dict[str, list[dict]]:
    """An attempt's lucky guesses (right, but guessing) and confident mistakes (wrong, but sure),
    each as a feedback view, in the attempt's order."""

    def view(item) -> dict:
        return feedback_view(
            question=item.question, lang=lang, chosen_key=item.chosen_key, order=item.choice_order
        )

    return {
        "lucky_guesses": [
            view(item) for item in items if item.correct and item.confidence == Confidence.GUESS
        ],
        "confident_mistakes": [
            view(item)
            for item in items
            if item.correct is False and item.confidence == Confidence.SURE
        ],
    }


def _rate(answers: int, right: int) -> dict:
    return {
        "answers": answers,
        "right": right,
        "percent": round(100 * right / answers) if answers else None,
    }


def calibration(*, learner, now, recent_days: int = CALIBRATION_RECENT_DAYS) -> dict:
    """How well the learner's confidence matches their answers. ``levels``: for each confidence
    level, least sure first, how often the answers given with it were right in the last
    ``recent_days`` days, before that, and in all, and the change in percentage points (None
    until both periods have answers); ``answers``: how many answers that covers. One query."""
    from datetime import timedelta

    from django.db.models import Count, Q

    from .models import AttemptQuestion

    counts = {}
    if learner is not None:
        recent = Q(answered_at__gte=now - timedelta(days=recent_days))
        right = Q(correct=True)
        counts = {
            row["confidence"]: row
            for row in AttemptQuestion.objects.filter(
                attempt__learner=learner,
                answered_at__isnull=False,
                confidence__in=Confidence.values,
            )
            .values("confidence")
            .annotate(
                answers=Count("pk"),
                right=Count("pk", filter=right),
                recent_answers=Count("pk", filter=recent),
                recent_right=Count("pk", filter=recent & right),
            )
            .order_by()
        }
    levels = []
    for value, label in Confidence.choices:
        row = counts.get(value, {"answers": 0, "right": 0, "recent_answers": 0, "recent_right": 0})
        recent_rate = _rate(row["recent_answers"], row["recent_right"])
        before_rate = _rate(
            row["answers"] - row["recent_answers"], row["right"] - row["recent_right"]
        )
        change = None
        if recent_rate["percent"] is not None and before_rate["percent"] is not None:
            change = recent_rate["percent"] - before_rate["percent"]
        levels.append(
            {
                "value": value,
                "label": label,
                "recent": recent_rate,
                "before": before_rate,
                "all": _rate(row["answers"], row["right"]),
                "change": change,
            }
        )
    return {
        "levels": levels,
        "answers": sum(level["all"]["answers"] for level in levels),
        "days": recent_days,
    }
