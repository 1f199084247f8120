"""Writes that span apps: loading the authored content (the glossary and its quiz questions)."""

from dataclasses import dataclass

from django.db import transaction

from engine.models import LiveModel
from lessons.content import ContentError, Glossary
from lessons.services import LoadReport, load_glossary
from quiz.services import sync_questions


@dataclass
class ContentReport:
    lessons: LoadReport
    questions: int


def check_observe_models(glossary: Glossary) -> None:
    """Every "predict, then observe" question names a live model that exists (or none)."""
    for by_lang in glossary.terms.values():
        for file in by_lang.values():
            for question in file.quiz:
                if question.observe_model and question.observe_model not in LiveModel.values:
                    raise ContentError(
                        file.path,
                        f"question {question.id}: observe_model {question.observe_model!r} is "
                        f"not a live model; use one of {', '.join(LiveModel.values)}",
                    )


@transaction.atomic
def load_content(*, glossary: Glossary) -> ContentReport:
    """Make the database match the authored files: terms first, then each term's questions.
    Idempotent, and all or nothing: one transaction around both apps' writes. Raises
    ContentError (nothing written) for a rule that spans apps."""
    check_observe_models(glossary)
    report = load_glossary(glossary=glossary)
    questions = sum(
        sync_questions(term=term, files=glossary.terms[term.slug]) for term in report.terms.values()
    )
    return ContentReport(lessons=report, questions=questions)
