"""Writes for the lessons app."""

from dataclasses import dataclass

from django.db import transaction

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
    ``pages.services.load_content``, in the same transaction."""
    layers = glossary.layers()
    existing = {term.slug: term for term in Term.objects.all()}
    created = updated = 0
    terms: dict[str, Term] = {}
    for slug in glossary.terms:
        term = existing.get(slug)
        if term is None:
            term = Term.objects.create(slug=slug, layer=layers[slug])
            created += 1
        else:
            if term.layer != layers[slug]:
                term.layer = layers[slug]
                term.save(update_fields=["layer"])
            updated += 1
        terms[slug] = term

    removed = sorted(set(existing) - set(glossary.terms))
    Term.objects.filter(slug__in=removed).delete()

    for slug, by_lang in glossary.terms.items():
        term = terms[slug]
        authored = by_lang["en"]
        term.prerequisites.set([terms[s] for s in authored.prerequisites])
        term.related.set([terms[s] for s in authored.related])
        Source.objects.filter(term=term).delete()
        for lang in LANGS:
            file = by_lang[lang]
            text = TermText.objects.filter(term=term, lang=lang).first() or TermText(
                term=term, lang=lang
            )
            text.title, text.summary = file.title, file.summary
            for section in ("overview", *TIERS):
                setattr(text, section, file.sections[section])
                setattr(text, f"{section}_html", file.html[section])
            text.save(render=False)
            Source.objects.bulk_create(
                Source(term=term, lang=lang, position=i, **vars(source))
                for i, source in enumerate(file.sources)
            )
    return LoadReport(created=created, updated=updated, removed=removed, terms=terms)
