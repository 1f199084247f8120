"""The content loader refuses bad content with a message naming the file and the problem, and
then changes nothing in the database."""

import pytest
from django.core.management import CommandError, call_command

from lessons.content import ContentError, read_glossary
from lessons.models import Term, TermText
from tests.factories import QUIZ, small_content, term_file


@pytest.fixture
def content(tmp_path):
    """A small valid glossary of two terms, alpha <- beta, in both languages."""
    return small_content(tmp_path)


def refused(directory) -> str:
    with pytest.raises(ContentError) as error:
        read_glossary(directory)
    return str(error.value)


def test_valid_content_reads(content):
    glossary = read_glossary(content)
    assert set(glossary.terms) == {"alpha", "beta"}
    assert glossary.layers() == {"alpha": 0, "beta": 1}
    html = glossary.terms["alpha"]["en"].html["intermediate"]
    assert "<math" in html and "\\frac" not in html


def test_refuses_a_prerequisite_cycle(content):
    for lang in ("en", "ja"):
        content.write(f"alpha.{lang}.md", term_file("alpha", lang, prerequisites="[beta]"))
    message = refused(content)
    assert "prerequisite cycle" in message and "alpha" in message and ".md" in message


def test_refuses_a_link_to_a_missing_term(content):
    for lang in ("en", "ja"):
        content.write(f"beta.{lang}.md", term_file("beta", lang, prerequisites="[gamma]"))
    assert "missing term: gamma" in refused(content)


def test_refuses_a_text_link_to_a_missing_term(content):
    body = "## overview\nSee [[nowhere]].\n\n## eli5\nx\n\n## beginner\nx\n\n## intermediate\nx\n\n## expert\nx\n"
    content.write("beta.en.md", term_file("beta", "en", prerequisites="[alpha]", body=body))
    message = refused(content)
    assert "beta.en.md" in message and "[[nowhere]]" in message


def test_refuses_a_missing_tier(content):
    body = "## overview\nx\n\n## eli5\nx\n\n## beginner\nx\n\n## intermediate\nx\n"
    content.write("alpha.ja.md", term_file("alpha", "ja", body=body))
    message = refused(content)
    assert "alpha.ja.md" in message and "missing section(s): expert" in message


def test_refuses_a_missing_language_pair(content):
    (content / "beta.ja.md").unlink()
    assert "missing language pair: beta.ja.md" in refused(content)


def test_refuses_a_malformed_source(content):
    bad = 'sources:\n  - authors: "Someone"\n    title: "A title"\n    year: 20\n    url: "https://example.org"\n'
    content.write("alpha.en.md", term_file("alpha", "en", sources=bad))
    message = refused(content)
    assert "alpha.en.md" in message and "malformed year" in message


def test_refuses_a_source_without_a_url(content):
    bad = 'sources:\n  - authors: "Someone"\n    title: "A title"\n    year: 2020\n'
    content.write("alpha.en.md", term_file("alpha", "en", sources=bad))
    assert "missing url" in refused(content)


def test_refuses_two_correct_choices(content):
    quiz = QUIZ.replace('text: "Wrong"\n', 'text: "Wrong"\n        correct: true\n', 1)
    content.write("alpha.en.md", term_file("alpha", "en", quiz=quiz))
    assert "exactly one correct choice, not 2" in refused(content)


def test_refuses_a_choice_without_explanation(content):
    quiz = QUIZ.replace('        explanation: "Because not."\n', "", 1)
    content.write("alpha.en.md", term_file("alpha", "en", quiz=quiz))
    assert "choice b has no explanation" in refused(content)


def test_refuses_unknown_latex_with_the_line(content):
    body = "## overview\nx\n\n## eli5\nx\n\n## beginner\nx\n\n## intermediate\n$\\notacommand{x}$\n\n## expert\nx\n"
    content.write("alpha.en.md", term_file("alpha", "en", body=body))
    message = refused(content)
    assert "alpha.en.md:" in message and "\\notacommand" in message


def test_refuses_a_long_eli5(content):
    body = (
        "## overview\nx\n\n## eli5\n"
        + "word " * 81
        + "\n\n## beginner\nx\n\n## intermediate\nx\n\n## expert\nx\n"
    )
    content.write("alpha.en.md", term_file("alpha", "en", body=body))
    assert "eli5 has 81 words" in refused(content)


def test_refuses_broken_yaml_with_the_line(content):
    content.write("alpha.en.md", "---\nslug: alpha\ntitle: [unclosed\n---\n## overview\nx\n")
    message = refused(content)
    assert "alpha.en.md:" in message and "YAML" in message


def test_refuses_relations_that_differ_between_languages(content):
    content.write("beta.ja.md", term_file("beta", "ja", prerequisites="[alpha]", related="[alpha]"))
    assert "'related' differs" in refused(content)


@pytest.mark.django_db
def test_a_refused_load_changes_nothing(content):
    call_command("load_content", dir=content)
    assert Term.objects.count() == 2
    before = list(TermText.objects.order_by("pk").values_list("pk", "title"))
    content.write("alpha.en.md", term_file("alpha", "en", title="Changed"))
    content.write("beta.en.md", term_file("beta", "en", prerequisites="[missing]"))
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("load_content", dir=content)
    assert list(TermText.objects.order_by("pk").values_list("pk", "title")) == before


@pytest.mark.django_db
def test_load_is_idempotent(content):
    call_command("load_content", dir=content)
    snapshot = list(TermText.objects.order_by("pk").values_list("pk", "title", "expert_html"))
    call_command("load_content", dir=content)
    assert (
        list(TermText.objects.order_by("pk").values_list("pk", "title", "expert_html")) == snapshot
    )
    assert Term.objects.get(slug="beta").prerequisites.get().slug == "alpha"
