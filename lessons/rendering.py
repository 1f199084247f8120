"""Authored Markdown to safe HTML: CommonMark (raw HTML escaped), ``$...$`` math as MathML, and
``[[slug]]`` / ``[[slug|label]]`` links to other terms in the same language."""

import re
from collections.abc import Mapping
from html import escape

import latex2mathml.converter
from django.urls import reverse
from django.utils import translation
from markdown_it import MarkdownIt

DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$")
TERM_LINK = re.compile(r"\[\[([a-z0-9-]+)(?:\|([^\]]+))?\]\]")
PLACEHOLDER = "ZZPH{}ZZ"
PLACEHOLDER_RE = re.compile(r"ZZPH(\d+)ZZ")

_md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


class RenderError(ValueError):
    """A piece of authored text that cannot be rendered (unknown LaTeX, a dangling link)."""


def math_to_mathml(latex: str, *, display: bool) -> str:
    mathml = latex2mathml.converter.convert(latex.strip(), display="block" if display else "inline")
    # latex2mathml writes commands it does not know into the output as text: refuse them.
    if "\\" in mathml:
        leftover = re.findall(r"\\[A-Za-z]+", mathml)
        raise RenderError(f"LaTeX that MathML cannot express: {', '.join(leftover) or latex!r}")
    return mathml


def term_links(text: str) -> set[str]:
    return {match.group(1) for match in TERM_LINK.finditer(text)}


def term_url(slug: str, lang: str) -> str:
    with translation.override(lang):
        return reverse("lessons:term", kwargs={"slug": slug})


def render_markdown(text: str, *, lang: str, titles: Mapping[str, str]) -> str:
    """Render one field. ``titles`` maps the slug of every linked term to its title in ``lang``
    (the loader has them all; ``models.linked_titles`` looks them up for one saved text)."""
    pieces: list[str] = []

    def stash(html: str) -> str:
        pieces.append(html)
        return PLACEHOLDER.format(len(pieces) - 1)

    text = DISPLAY_MATH.sub(lambda m: stash(math_to_mathml(m.group(1), display=True)), text)
    text = INLINE_MATH.sub(lambda m: stash(math_to_mathml(m.group(1), display=False)), text)
    text = text.replace("\\$", "$")

    def link(match: re.Match) -> str:
        slug, label = match.group(1), match.group(2)
        if slug not in titles:
            raise RenderError(f"link to a missing term: [[{slug}]]")
        label = label or titles[slug]
        return stash(
            f'<a class="term-link" href="{term_url(slug, lang)}">{escape(label.strip())}</a>'
        )

    text = TERM_LINK.sub(link, text)
    html = _md.render(text)
    return PLACEHOLDER_RE.sub(lambda m: pieces[int(m.group(1))], html)


def render_inline(text: str, *, lang: str, titles: Mapping[str, str]) -> str:
    """Like ``render_markdown`` for one short piece (a quiz choice): no wrapping ``<p>``."""
    html = render_markdown(text, lang=lang, titles=titles).strip()
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        html = html[3:-4]
    return html
