"""Reads for the lessons app. Every function costs a fixed number of queries, whatever the size
of the glossary or the number of relations; what depends only on the content (the glossary
index, a term page's data, the search index) is computed once per content version and language
and kept in process (``lessons.versioning``): then none, once the version is known."""

from dataclasses import dataclass, field

import networkx as nx
from django.shortcuts import get_object_or_404

from .models import Source, Term, TermText
from .rendering import term_url
from .versioning import PerVersion

_GLOSSARIES = PerVersion("glossary", maxsize=4)  # one per language
_TERM_PAGES = PerVersion("term pages", maxsize=1000)
_SEARCH_INDEXES = PerVersion("search index", maxsize=4)


@dataclass(frozen=True)
class TermRef:
    slug: str
    title: str
    summary: str
    url: str
    layer: int
    fallback_lang: str = ""  # set when the term is missing in the requested language

    @property
    def as_tuple(self) -> tuple[str, str, str]:
        return self.slug, self.title, self.url


@dataclass
class Glossary:
    refs: dict[str, TermRef]
    prerequisite_edges: list[tuple[str, str]]  # (prerequisite, term)
    related_edges: list[tuple[str, str]]  # (term, related term) as authored

    @property
    def graph(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.refs)
        graph.add_edges_from(self.prerequisite_edges)
        return graph

    def learning_path(self, slug: str) -> list[TermRef]:
        """Every prerequisite of ``slug``, direct or not, in an order to learn them."""
        graph = self.graph
        ancestors = graph.subgraph(nx.ancestors(graph, slug))
        order = nx.lexicographical_topological_sort(
            ancestors, key=lambda s: (self.refs[s].layer, s)
        )
        return [self.refs[s] for s in order]


@dataclass
class TermPage:
    term: Term
    text: TermText
    fallback_lang: str
    prerequisites: list[TermRef]
    children: list[TermRef]
    related: list[TermRef]
    learning_path: list[TermRef]
    sources: list[Source]
    glossary: Glossary = field(repr=False)


def _refs(texts, *, lang: str) -> dict[str, TermRef]:
    """One TermRef per term among ``texts``: its text in ``lang``, else the other language."""
    refs: dict[str, TermRef] = {}
    rows = texts.values_list("term__slug", "lang", "title", "summary", "term__layer")
    url = term_url("__slug__", lang)  # one reverse() for all terms
    for slug, text_lang, title, summary, layer in sorted(rows, key=lambda r: r[1] != lang):
        if slug not in refs:
            fallback = "" if text_lang == lang else text_lang
            refs[slug] = TermRef(
                slug, title, summary, url.replace("__slug__", slug), layer, fallback
            )
    return refs


def term_ref(*, slug: str, lang: str) -> TermRef:
    """One term's title and link (one query), for pages that need no graph."""
    return _refs(TermText.objects.filter(term__slug=slug), lang=lang)[slug]


def glossary(*, lang: str) -> Glossary:
    """Titles and summaries of every term in ``lang`` (or the other language, marked), and the
    edges. Three queries, once per content version (the result is shared: do not change it)."""
    return _GLOSSARIES.get_or_compute(lang, lambda: _glossary(lang=lang))


def _glossary(*, lang: str) -> Glossary:
    refs = _refs(TermText.objects.all(), lang=lang)
    prerequisites = Term.prerequisites.through.objects.values_list(
        "to_term__slug", "from_term__slug"
    )
    related = Term.related.through.objects.values_list("from_term__slug", "to_term__slug")
    return Glossary(
        refs=dict(sorted(refs.items(), key=lambda item: (item[1].layer, item[0]))),
        prerequisite_edges=list(prerequisites),
        related_edges=list(related),
    )


def term_page(*, slug: str, lang: str) -> TermPage:
    """Everything the term page shows. Six queries, whatever the number of relations, once per
    content version (the result is shared: do not change it). Http404 for an unknown slug."""
    return _TERM_PAGES.get_or_compute((slug, lang), lambda: _term_page(slug=slug, lang=lang))


def _term_page(*, slug: str, lang: str) -> TermPage:
    term = get_object_or_404(Term, slug=slug)
    texts = {text.lang: text for text in TermText.objects.filter(term=term)}
    if not texts:
        raise TermText.DoesNotExist(f"{slug} has no text in any language")
    text = texts.get(lang) or next(iter(texts.values()))
    fallback = "" if text.lang == lang else text.lang
    index = glossary(lang=lang)
    refs = index.refs
    prerequisites = [refs[a] for a, b in index.prerequisite_edges if b == slug]
    children = [refs[b] for a, b in index.prerequisite_edges if a == slug]
    related = [refs[b] for a, b in index.related_edges if a == slug]
    sources = list(Source.objects.filter(term=term, lang=text.lang))
    by_layer = lambda ref: (ref.layer, ref.slug)  # noqa: E731
    return TermPage(
        term=term,
        text=text,
        fallback_lang=fallback,
        prerequisites=sorted(prerequisites, key=by_layer),
        children=sorted(children, key=by_layer),
        related=sorted(related, key=by_layer),
        learning_path=index.learning_path(slug),
        sources=sources,
        glossary=index,
    )


@dataclass(frozen=True)
class _Indexed:
    slug: str
    haystacks: tuple[str, ...]  # title, summary and slug, case-folded


def _search_index(lang: str) -> list[_Indexed]:
    """The terms written in ``lang``, in the glossary's order, ready to match. One query."""
    rows = TermText.objects.filter(lang=lang).values_list("term__slug", "title", "summary")
    by_slug = {slug: (title, summary) for slug, title, summary in rows}
    return [
        _Indexed(slug, (by_slug[slug][0].casefold(), by_slug[slug][1].casefold(), slug.casefold()))
        for slug in glossary(lang=lang).refs
        if slug in by_slug
    ]


def search(*, query: str, lang: str, limit: int = 30) -> list[TermRef]:
    """Terms whose title, summary or slug in ``lang`` contains ``query`` (case-insensitive), in
    the glossary's order. The index is built once per content version and language."""
    needle = query.strip()[:100].casefold()
    if not needle:
        return []
    refs = glossary(lang=lang).refs
    index = _SEARCH_INDEXES.get_or_compute(lang, lambda: _search_index(lang))
    found = [entry.slug for entry in index if any(needle in hay for hay in entry.haystacks)]
    return [refs[slug] for slug in found[:limit]]
