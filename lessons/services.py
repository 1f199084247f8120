"""Writes for the lessons app."""

from dataclasses import dataclass

from django.db import transaction

from . import versioning
from .content import Glossary
from .models import LANGS, TIERS, Source, Term, TermText


@dataclass
class LoadReport:
    created: int
    updated: int
    removed: list[str]
    terms: dict[str, Term]  # every authored term, by slug, as now stored


@transaction.atomic
def load_glossary(*, glossary: Glossary) -> LoadReport:
    """Make the database match the authored glossary (terms, texts, relations, sources).
    Idempotent; all or nothing. The quiz's questions are loaded beside it by
    ``pages.services.load_content``, in the same transaction.

    A fixed number of queries whatever the size of the glossary: terms and texts keep their
    primary keys (bulk updates), relations and sources are rewritten in bulk. The content gets
    one new version (``lessons.versioning``), in the same transaction."""
    with versioning.one_bump():
        return _write(glossary)


def _write(glossary: Glossary) -> LoadReport:
    layers = glossary.layers()
    existing = {term.slug: term for term in Term.objects.all()}
    removed = sorted(set(existing) - set(glossary.terms))
    Term.objects.filter(slug__in=removed).delete()

    new = [Term(slug=slug, layer=layers[slug]) for slug in glossary.terms if slug not in existing]
    Term.objects.bulk_create(new)
    kept = [existing[slug] for slug in glossary.terms if slug in existing]
    for term in kept:
        term.layer = layers[term.slug]
    Term.objects.bulk_update(kept, ["layer"])
    terms = {term.slug: term for term in [*new, *kept]}
    terms = {slug: terms[slug] for slug in glossary.terms}  # authored order

    ids = [term.pk for term in terms.values()]
    for relation, field in ((Term.prerequisites, "prerequisites"), (Term.related, "related")):
        through = relation.through
        through.objects.filter(from_term_id__in=ids).delete()
        through.objects.bulk_create(
            through(from_term_id=terms[slug].pk, to_term_id=terms[other].pk)
            for slug, by_lang in glossary.terms.items()
            for other in getattr(by_lang["en"], field)
        )

    texts = {(text.term_id, text.lang): text for text in TermText.objects.filter(term_id__in=ids)}
    fields = ["title", "summary"]
    for section in ("overview", *TIERS):
        fields += [section, f"{section}_html"]
    to_create, to_update, sources = [], [], []
    for slug, by_lang in glossary.terms.items():
        term = terms[slug]
        for lang in LANGS:
            file = by_lang[lang]
            text = texts.get((term.pk, lang))
            (to_update if text else to_create).append(
                text := text or TermText(term=term, lang=lang)
            )
            text.title, text.summary = file.title, file.summary
            for section in ("overview", *TIERS):
                setattr(text, section, file.sections[section])
                setattr(text, f"{section}_html", file.html[section])
            sources += [
                Source(term=term, lang=lang, position=i, **vars(source))
                for i, source in enumerate(file.sources)
            ]
    TermText.objects.bulk_create(to_create)  # rendered and checked by the reader already
    TermText.objects.bulk_update(to_update, fields)
    Source.objects.filter(term_id__in=ids).delete()
    Source.objects.bulk_create(sources)
    return LoadReport(created=len(new), updated=len(kept), removed=removed, terms=terms)
