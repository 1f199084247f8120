"""The content loader refuses bad content with a message naming the file and the problem, and
then changes nothing in the database."""

import io
import re
import shutil

import pytest
from django.core.management import CommandError, call_command

from lessons.content import (
    STYLE_PATH,
    ContentError,
    longest_correct_share,
    read_glossary,
    read_house_style,
)
from lessons.models import Term, TermText
from tests.factories import QUIZ, body_with, line_of, small_content, style_file, term_file


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


# --- the Japanese house style (STYLE.ja.md) -----------------------------------------------------


def test_house_style_refuses_a_variant_naming_file_line_and_form(content):
    text = term_file("alpha", "ja", body=body_with("Transformer のエンコーダーは入力を読みます。"))
    content.write("alpha.ja.md", text)
    message = refused(content)
    assert f"alpha.ja.md:{line_of(text, 'エンコーダー')}:" in message
    assert "「エンコーダー」" in message and "「エンコーダ」" in message


def test_house_style_passes_the_preferred_forms(content):
    text = "エンコーダとデコーダ、ニューラルネットワーク、自己注意、アテンションシンク。"
    content.write("alpha.ja.md", term_file("alpha", "ja", body=body_with(text)))
    assert read_glossary(content).terms["alpha"]["ja"].sections["intermediate"] == text


def test_house_style_checks_title_and_quiz_but_not_sources(content):
    # the factory's sources already quote "Vaswani, A. et al.": authors keep the original
    assert read_glossary(content)
    content.write("alpha.ja.md", term_file("alpha", "ja", title="セルフアテンション"))
    assert "alpha.ja.md:3:" in refused(content) and "「自己注意」" in refused(content)
    quiz = QUIZ.replace('explanation: "Because not."', 'explanation: "Vaswani et al. より。"', 1)
    text = term_file("alpha", "ja", quiz=quiz)
    content.write("alpha.ja.md", text)
    message = refused(content)
    assert f"alpha.ja.md:{line_of(text, 'Vaswani et al. より')}:" in message
    assert "「et al」" in message and "「ら」" in message


def test_house_style_leaves_english_files_alone(content):
    body = body_with("The encoder of Vaswani et al. (2017).")
    content.write("alpha.en.md", term_file("alpha", "en", body=body, title="Self-attention"))
    assert read_glossary(content).terms["alpha"]["en"].sections["intermediate"].endswith("(2017).")


def test_house_style_reads_its_table_from_the_style_file(content, tmp_path):
    text = term_file("alpha", "ja", body=body_with("単語のエンベディングを学習します。"))
    content.write("alpha.ja.md", text)
    assert read_glossary(content)  # the authored table has no row for エンベディング
    (tmp_path / "style").mkdir()
    copy = tmp_path / "style" / "STYLE.ja.md"
    shutil.copy(STYLE_PATH, copy)
    header = "| --- | --- | --- |\n"
    copy.write_text(
        copy.read_text(encoding="utf-8").replace(
            header, header + "| 埋め込み | エンベディング | |\n"
        ),
        encoding="utf-8",
    )
    assert len(read_house_style(copy).rules) == len(read_house_style().rules) + 1
    with pytest.raises(ContentError) as error:
        read_glossary(content, style_path=copy)
    assert f"alpha.ja.md:{line_of(text, 'エンベディング')}:" in str(error.value)
    assert "「埋め込み」" in str(error.value)


def test_house_style_matches_exactly_where_forms_contain_each_other(content, tmp_path):
    (tmp_path / "style").mkdir()
    style = style_file(
        tmp_path / "style" / "STYLE.ja.md",
        [("ニューラルネットワーク", ["ニューラルネット"]), ("エンコーダ", ["エンコーダー"])],
    )
    passing = "ニューラルネットワークのエンコーダ。"
    content.write("alpha.ja.md", term_file("alpha", "ja", body=body_with(passing)))
    assert read_glossary(content, style_path=style)
    for text, variant in (
        ("ニューラルネットで学ぶ。", "ニューラルネット"),
        ("エンコーダーです。", "エンコーダー"),
    ):
        content.write("alpha.ja.md", term_file("alpha", "ja", body=body_with(text)))
        with pytest.raises(ContentError, match=f"not 「{variant}」"):
            read_glossary(content, style_path=style)


def test_a_style_file_without_its_term_table_is_refused(content, tmp_path):
    (tmp_path / "style").mkdir()
    style = tmp_path / "style" / "STYLE.ja.md"
    style.write_text("# 表記規則\n\n| 良い | 悪い |\n| --- | --- |\n| a | b |\n", encoding="utf-8")
    with pytest.raises(ContentError, match=re.escape("STYLE.ja.md: expected one term table")):
        read_glossary(content, style_path=style)
    style_file(style, [("エンコーダ", ["エンコーダー"]), ("デコーダ", ["エンコーダー"])])
    with pytest.raises(
        ContentError, match=re.escape("STYLE.ja.md:6: 'エンコーダー' is refused in two rows")
    ):
        read_glossary(content, style_path=style)


# --- quiz balance -------------------------------------------------------------------------------


def test_warns_when_the_correct_choice_is_mostly_the_longest(content):
    glossary = read_glossary(content)
    assert glossary.warnings == []  # "Right" and "Wrong" are as long as each other
    quiz = QUIZ.replace('text: "Right"', 'text: "Right, and longer"', 3)
    content.write("alpha.en.md", term_file("alpha", "en", quiz=quiz))
    glossary = read_glossary(content)
    assert longest_correct_share(glossary.terms["alpha"]["en"].quiz) == 3 / 5
    assert len(glossary.warnings) == 1 and "alpha.en.md" in glossary.warnings[0]
    assert "60% of 5 questions" in glossary.warnings[0]
    errors = io.StringIO()
    call_command("load_content", dir=content, check=True, stdout=io.StringIO(), stderr=errors)
    assert "alpha.en.md" in errors.getvalue()
