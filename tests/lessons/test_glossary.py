"""The authored glossary itself: at least 32 terms, two languages, four tiers, sources, one graph,
and quiz questions whose longest choice does not give the answer away."""

import re

import networkx as nx
import pytest

from lessons.content import eli5_length_problem, longest_correct_share
from lessons.models import LANGS, TIERS, Source, Term, TermText

REQUIRED = {
    "transformer", "transformer-architecture", "neural-network", "linear-algebra", "deep-learning",
    "attention-mechanism", "self-attention", "scaled-dot-product-attention", "multi-head-attention",
    "query-key-value", "softmax", "positional-encoding", "embedding", "tokenization",
    "encoder-decoder", "masked-attention", "layer-normalization", "residual-connection",
    "feed-forward-network", "recurrent-neural-network", "sequence-to-sequence", "bert", "gpt",
    "backpropagation",
}  # fmt: skip
MIN_TERMS = 32
MAX_LONGEST_CORRECT_SHARE = 0.35  # the key is the strictly longest choice in at most this share


pytestmark = pytest.mark.django_db


def test_every_required_term_loads_in_both_languages(glossary):
    assert set(Term.objects.values_list("slug", flat=True)) >= REQUIRED
    for lang in ("ja", "en"):
        assert TermText.objects.filter(lang=lang).count() == Term.objects.count()


def test_every_text_has_four_non_empty_tiers_and_an_overview(glossary):
    for text in TermText.objects.all():
        for field in ("overview", *TIERS):
            assert getattr(text, field).strip(), (text, field)
            assert getattr(text, f"{field}_html").strip(), (text, field)


def test_eli5_stays_short(glossary):
    for text in TermText.objects.all():
        assert eli5_length_problem(text.eli5, text.lang) is None, text


def test_every_term_has_real_looking_sources_in_both_languages(glossary):
    for term in Term.objects.all():
        for lang in ("ja", "en"):
            sources = Source.objects.filter(term=term, lang=lang)
            assert sources.exists(), (term, lang)
            for source in sources:
                assert source.authors and source.title and 1900 < source.year <= 2026
                assert re.match(r"^https?://", source.url)


def test_transformer_cites_vaswani_2017():
    from lessons.content import read_glossary

    sources = read_glossary().terms["transformer"]["en"].sources
    assert any("1706.03762" in s.url and s.year == 2017 for s in sources)


def test_prerequisite_graph_is_connected_and_acyclic(glossary):
    graph = nx.DiGraph()
    graph.add_nodes_from(Term.objects.values_list("slug", flat=True))
    graph.add_edges_from(
        Term.prerequisites.through.objects.values_list("to_term__slug", "from_term__slug")
    )
    assert nx.is_directed_acyclic_graph(graph)
    assert nx.is_weakly_connected(graph)
    seed = set(graph.predecessors("transformer"))
    assert seed == {"neural-network", "linear-algebra", "deep-learning"}
    assert "transformer-architecture" in Term.objects.get(slug="transformer").related.values_list(
        "slug", flat=True
    )


def test_expert_tiers_carry_mathml_and_no_leftover_latex(glossary):
    with_math = 0
    for text in TermText.objects.all():
        html = text.expert_html
        with_math += "<math" in html
        assert not re.search(r"\\[a-zA-Z]+", re.sub(r"<[^>]+>", "", html)), text
    assert with_math >= 20


def test_transformer_expert_tier_covers_quadratic_cost_and_efficient_variants(glossary):
    text = TermText.objects.get(term__slug="transformer", lang="en").expert.lower()
    assert "n^2" in text or "n^{2}" in text
    assert "flashattention" in text and ("longformer" in text or "performer" in text)


def test_every_term_has_at_least_five_questions(glossary):
    for term in Term.objects.all():
        assert term.questions.count() >= 5, term


def test_japanese_uses_the_usual_terms(glossary):
    ja = " ".join(TermText.objects.filter(lang="ja").values_list("beginner", flat=True))
    for word in ("自己注意", "埋め込み", "位置エンコーディング"):
        assert word in ja


def test_the_glossary_has_at_least_32_terms(glossary_files):
    assert len(glossary_files.terms) >= MIN_TERMS, sorted(glossary_files.terms)


def test_the_correct_choice_is_seldom_the_strictly_longest(glossary_files):
    questions = {
        lang: [q for by_lang in glossary_files.terms.values() for q in by_lang[lang].quiz]
        for lang in LANGS
    }
    shares = {lang: longest_correct_share(qs) for lang, qs in questions.items()}
    shares["overall"] = longest_correct_share([q for qs in questions.values() for q in qs])
    assert all(share <= MAX_LONGEST_CORRECT_SHARE for share in shares.values()), shares
