"""Small glossaries built in a test, for tests of mechanics (the loader, the quiz) that must not
depend on the authored content."""

import pathlib
import textwrap


def quiz_yaml(*, prompt: str = "Question {n}?", extra_choices=(), count: int = 5) -> str:
    """``count`` questions in the authored YAML form: choice a is right, b wrong, then each
    ``(key, text, explanation)`` of ``extra_choices`` as a further wrong choice."""
    wrong = "".join(
        f"""      - key: {key}
        text: "{text}"
        explanation: "{explanation}"
"""
        for key, text, explanation in extra_choices
    )
    return "\n".join(
        f"""  - id: q{n}
    section: beginner
    question: "{prompt.format(n=n)}"
    choices:
      - key: a
        text: "Right"
        correct: true
        explanation: "Because."
      - key: b
        text: "Wrong"
        explanation: "Because not."
{wrong}"""
        for n in range(1, count + 1)
    )


QUIZ = quiz_yaml()


def term_file(
    slug,
    lang,
    *,
    prerequisites="[]",
    related="[]",
    sources=None,
    body=None,
    quiz=QUIZ,
    title=None,
    extra="",
):
    sources = sources or textwrap.dedent("""\
        sources:
          - authors: "Vaswani, A. et al."
            title: "Attention Is All You Need"
            year: 2017
            url: "https://arxiv.org/abs/1706.03762"
        """)
    body = (
        body
        if body is not None
        else textwrap.dedent(f"""\
        ## overview
        An overview of {slug}.

        ## eli5
        Like a short story.

        ## beginner
        The idea.

        ## intermediate
        How it works: $\\frac{{QK^\\top}}{{\\sqrt{{d}}}}$.

        ## expert
        The maths and a link to [[{slug}]].
        """)
    )
    return (
        f"---\nslug: {slug}\ntitle: {title or slug.title()}\nsummary: About {slug}.\n"
        f"prerequisites: {prerequisites}\nrelated: {related}\n{sources}quiz:\n{quiz}{extra}---\n{body}"
    )


def body_with(text: str, section: str = "intermediate") -> str:
    """A body with all five sections, ``text`` in ``section`` and one word in the others."""
    sections = ("overview", "eli5", "beginner", "intermediate", "expert")
    return "".join(f"## {name}\n{text if name == section else 'x'}\n\n" for name in sections)


def style_file(path: pathlib.Path, rows) -> pathlib.Path:
    """A house style file like STYLE.ja.md whose term table has ``rows``: (use, [variants])."""
    table = "".join(f"| {use} | {'、'.join(refused)} | |\n" for use, refused in rows)
    path.write_text(
        f"# 表記規則\n\n| 使う | 使わない | 備考 |\n| --- | --- | --- |\n{table}", encoding="utf-8"
    )
    return path


def line_of(text: str, needle: str) -> int:
    """The number of the first line of ``text`` that contains ``needle``."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


class ContentDir(type(pathlib.Path())):
    def write(self, name: str, text: str) -> None:
        (self / name).write_text(text, encoding="utf-8")


def small_content(directory: pathlib.Path, slugs=("alpha", "beta")) -> ContentDir:
    """A valid glossary of a chain of terms (alpha <- beta <- ...) in both languages, as files."""
    directory = ContentDir(directory)
    for index, slug in enumerate(slugs):
        prerequisites = f"[{slugs[index - 1]}]" if index else "[]"
        for lang in ("en", "ja"):
            directory.write(f"{slug}.{lang}.md", term_file(slug, lang, prerequisites=prerequisites))
    return directory


def load_small_glossary(directory: pathlib.Path, slugs=("alpha", "beta")) -> dict:
    """Write, read and load a small glossary with the real loader; inside a test's transaction
    it stands in for the authored one until the rollback. Returns the Terms by slug."""
    from lessons.content import read_glossary
    from pages.services import load_content

    return load_content(glossary=read_glossary(small_content(directory, slugs))).lessons.terms
