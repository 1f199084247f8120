"""Writes that span apps: loading the authored content (the glossary and its quiz questions)."""

from dataclasses import dataclass

from django.db import transaction

from lessons.content import Glossary
from lessons.services import LoadReport, load_glossary
from quiz.services import sync_questions


@dataclass
class ContentReport:
    lessons: LoadReport
    questions: int


@transaction.atomic
def load_content(*, glossary: Glossary) -> ContentReport:
    """Make the database match the authored files: terms first, then each term's questions.
    Idempotent, and all or nothing: one transaction around both apps' writes."""
    report = load_glossary(glossary=glossary)
    questions = sum(
        sync_questions(term=term, files=glossary.terms[term.slug]) for term in report.terms.values()
    )
    return ContentReport(lessons=report, questions=questions)
