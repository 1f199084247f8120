"""Read and check the authored glossary in ``lessons/content/``.

This module knows the file format (see ``lessons/content/README.md``) and every rule of it. It
never writes to the database: ``lessons.services.load_glossary`` does that, and only after
``read_glossary`` found nothing wrong.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import networkx as nx
import yaml
from markdown_it import MarkdownIt

from .graph import prerequisite_depths
from .models import LANGS, TIERS
from .rendering import RenderError, render_inline, render_markdown

CONTENT_DIR = Path(__file__).resolve().parent / "content"
STYLE_PATH = CONTENT_DIR / "STYLE.ja.md"  # the Japanese house style; its term table is read here
NOT_TERMS = {"README.md", STYLE_PATH.name}  # files of the content folder that are not terms
SECTIONS = ("overview", *TIERS)
FILE_NAME = re.compile(r"^(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<lang>[a-z]{2})\.md$")
HEADING = re.compile(r"^## +(\S+)\s*$", re.M)
ELI5_MAX_WORDS = 80  # English
ELI5_MAX_CHARS = 240  # Japanese has no spaces to count words by
MIN_QUESTIONS = 5
LONGEST_CORRECT_WARNING = 0.5  # warn above this share of a term's keys being the longest choice
TERM_LINK_TEXT = re.compile(r"\[\[([a-z0-9-]+)(?:\|([^\]]+))?\]\]")


class ContentError(Exception):
    """One problem in one file, with the line where it can be found."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        self.path, self.message, self.line = path, message, line
        super().__init__(str(self))

    def __str__(self):
        where = _display(self.path) + (f":{self.line}" if self.line else "")
        return f"{where}: {self.message}"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(CONTENT_DIR.parent.parent))
    except ValueError:
        return str(path)


@dataclass
class Choice:
    key: str
    text: str
    explanation: str
    correct: bool
    text_html: str = ""
    explanation_html: str = ""


@dataclass
class Question:
    id: str
    section: str
    question: str
    choices: list[Choice]
    observe: str = ""
    # which live model the observe sentence runs on ("" for the default); the composition
    # layer (pages.services.load_content) checks it against the engine's models
    observe_model: str = ""
    question_html: str = ""

    @property
    def correct_key(self) -> str:
        return next(choice.key for choice in self.choices if choice.correct)


@dataclass
class Source:
    authors: str
    title: str
    year: int
    url: str


@dataclass
class TermFile:
    path: Path
    slug: str
    lang: str
    title: str
    summary: str
    sections: dict[str, str]
    prerequisites: list[str]
    related: list[str]
    sources: list[Source]
    quiz: list[Question]
    raw: str = field(repr=False, default="")
    html: dict[str, str] = field(default_factory=dict)

    def line_of(self, needle: str) -> int | None:
        """The first line of the file that contains ``needle`` (for messages)."""
        return _line(self.raw, needle)


@dataclass
class Glossary:
    terms: dict[str, dict[str, TermFile]]  # slug -> lang -> file
    graph: nx.DiGraph  # prerequisite -> term
    warnings: list[str] = field(default_factory=list)  # worth fixing, but no reason to refuse

    def layers(self) -> dict[str, int]:
        return prerequisite_depths(self.graph)


# --- the Japanese house style ------------------------------------------------------------------

_markdown = MarkdownIt("commonmark").enable("table")
STYLE_HEADER = ("使う", "使わない")  # the first two header cells of the term table in STYLE.ja.md
STYLE_VARIANT_SEPARATOR = "、"
TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


@dataclass(frozen=True)
class StyleRule:
    """One row of the term table: the form to use and the variants that are refused."""

    use: str
    refused: tuple[str, ...]
    line: int  # in STYLE.ja.md


@dataclass(frozen=True)
class StyleProblem:
    line: int
    variant: str
    use: str


@dataclass(frozen=True)
class HouseStyle:
    path: Path
    rules: tuple[StyleRule, ...]

    def problems(self, raw: str) -> list[StyleProblem]:
        """Every refused variant in a Japanese file, in reading order. Matching is exact; an
        occurrence inside a form to use (ニューラルネット in ニューラルネットワーク) is no problem,
        and where variants overlap only the longest is named."""
        uses = {rule.use for rule in self.rules}
        checks = [
            (variant, rule.use, [use for use in uses if variant in use])
            for rule in self.rules
            for variant in rule.refused
        ]
        found = []
        for number, text in _styled_lines(raw):
            matches = sorted(
                (start, -len(variant), variant, use)
                for variant, use, shields in checks
                for start in _occurrences(text, variant)
                if not any(_covers(text, shield, start, start + len(variant)) for shield in shields)
            )
            named_to = 0
            for start, negative_length, variant, use in matches:
                if start >= named_to:  # not inside a longer variant already named
                    found.append(StyleProblem(number, variant, use))
                    named_to = start - negative_length
        return found


def _occurrences(text: str, needle: str) -> Iterable[int]:
    start = text.find(needle)
    while start != -1:
        yield start
        start = text.find(needle, start + 1)


def _covers(text: str, shield: str, start: int, end: int) -> bool:
    """Whether an occurrence of ``shield`` in ``text`` spans the characters ``start:end``."""
    return any(
        begin <= start and end <= begin + len(shield) for begin in _occurrences(text, shield)
    )


def _styled_lines(raw: str) -> Iterable[tuple[int, str]]:
    """The numbered lines of a term file that the house style applies to: the body and the front
    matter, except the ``sources`` block, which quotes the original authors and titles."""
    lines = raw.splitlines()
    front_end = next((n for n, line in enumerate(lines) if n and line.strip() == "---"), 0)
    in_sources = False
    for index, line in enumerate(lines):
        in_front = 0 < index < front_end
        key = TOP_LEVEL_KEY.match(line) if in_front else None
        if key:
            in_sources = key.group(1) == "sources"
        if not (in_front and in_sources):
            yield index + 1, line


def _table_rows(text: str) -> list[list[tuple[int, list[str]]]]:
    """Every Markdown table in ``text``: its rows as (line, plain text of each cell)."""
    tables, rows, cells, line = [], [], None, 0
    for token in _markdown.parse(text):
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            cells, line = [], token.map[0] + 1
        elif token.type == "inline" and cells is not None:
            pieces = [c.content for c in token.children or [] if c.type in ("text", "code_inline")]
            cells.append("".join(pieces).strip())
        elif token.type == "tr_close":
            rows.append((line, cells))
            cells = None
        elif token.type == "table_close":
            tables.append(rows)
    return tables


def read_house_style(path: Path = STYLE_PATH) -> HouseStyle:
    """The term table of STYLE.ja.md: the table whose header starts ``| 使う | 使わない |``.
    Variants in a cell are separated by ``、``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(path, "the house style file does not exist") from None
    tables = [rows for rows in _table_rows(text) if tuple(rows[0][1][:2]) == STYLE_HEADER]
    if len(tables) != 1:
        header = " | ".join(STYLE_HEADER)
        raise ContentError(path, f"expected one term table with the header | {header} |")
    rules = []
    for line, cells in tables[0][1:]:
        use = cells[0]
        refused = tuple(v.strip() for v in cells[1].split(STYLE_VARIANT_SEPARATOR) if v.strip())
        if not use or not refused:
            raise ContentError(path, "a row needs a form to use and at least one variant", line)
        rules.append(StyleRule(use, refused, line))
    uses = {rule.use for rule in rules}
    seen: set[str] = set()
    for rule in rules:
        for variant in rule.refused:
            if variant in uses:
                raise ContentError(
                    path, f"{variant!r} is both a form to use and refused", rule.line
                )
            if variant in seen:
                raise ContentError(path, f"{variant!r} is refused in two rows", rule.line)
            seen.add(variant)
    return HouseStyle(path, tuple(rules))


def check_house_style(term: TermFile, style: HouseStyle) -> None:
    """Refuse a Japanese file that writes a variant the term table refuses (the first one)."""
    problems = style.problems(term.raw)
    if problems:
        first = problems[0]
        raise ContentError(
            term.path,
            f"house style ({style.path.name}): write 「{first.use}」, not 「{first.variant}」",
            first.line,
        )


# --- one file ---------------------------------------------------------------------------------


def _require_str(meta: dict, key: str, path: Path, raw: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ContentError(path, f"'{key}' must be a non-empty text", _line(raw, f"{key}:"))
    return value.strip()


def _require_slugs(meta: dict, key: str, path: Path, raw: str) -> list[str]:
    value = meta.get(key, [])
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ContentError(path, f"'{key}' must be a list of term slugs", _line(raw, f"{key}:"))
    if len(set(value)) != len(value):
        raise ContentError(path, f"'{key}' lists a term twice", _line(raw, f"{key}:"))
    return value


def _line(raw: str, needle: str) -> int | None:
    for number, line in enumerate(raw.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _read_sources(meta: dict, path: Path, raw: str) -> list[Source]:
    items = meta.get("sources")
    if not isinstance(items, list) or not items:
        raise ContentError(path, "'sources' needs at least one source", _line(raw, "sources:"))
    sources = []
    for number, item in enumerate(items, start=1):
        where = _line(raw, str(item.get("title", "sources:"))) if isinstance(item, dict) else None
        if not isinstance(item, dict):
            raise ContentError(path, f"source {number} is not a mapping", _line(raw, "sources:"))
        missing = [k for k in ("authors", "title", "year", "url") if not item.get(k)]
        if missing:
            raise ContentError(
                path, f"source {number} is malformed: missing {', '.join(missing)}", where
            )
        year = item["year"]
        if not isinstance(year, int) or not 1000 <= year <= 2100:
            raise ContentError(path, f"source {number} has a malformed year: {year!r}", where)
        url = str(item["url"])
        if not re.match(r"^https?://[^\s/$.?#].[^\s]*$", url):
            raise ContentError(path, f"source {number} has a malformed url: {url!r}", where)
        sources.append(Source(str(item["authors"]), str(item["title"]), year, url))
    return sources


def _read_quiz(meta: dict, path: Path, raw: str) -> list[Question]:
    items = meta.get("quiz")
    if not isinstance(items, list) or len(items) < MIN_QUESTIONS:
        raise ContentError(
            path, f"'quiz' needs at least {MIN_QUESTIONS} questions", _line(raw, "quiz:")
        )
    questions, seen = [], set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ContentError(path, "every quiz question needs an 'id'", _line(raw, "quiz:"))
        qid = item["id"]
        where = _line(raw, f"id: {qid}") or _line(raw, "quiz:")
        if qid in seen:
            raise ContentError(path, f"question id {qid!r} is used twice", where)
        seen.add(qid)
        if item.get("section") not in TIERS:
            raise ContentError(
                path, f"question {qid}: 'section' must be one of {', '.join(TIERS)}", where
            )
        if not isinstance(item.get("question"), str) or not item["question"].strip():
            raise ContentError(path, f"question {qid} has no 'question' text", where)
        raw_choices = item.get("choices")
        if not isinstance(raw_choices, list) or not 2 <= len(raw_choices) <= 5:
            raise ContentError(path, f"question {qid} needs two to five choices", where)
        choices = []
        for choice in raw_choices:
            if not isinstance(choice, dict) or not choice.get("key") or not choice.get("text"):
                raise ContentError(
                    path, f"question {qid}: every choice needs a key and text", where
                )
            if not isinstance(choice.get("explanation"), str) or not choice["explanation"].strip():
                raise ContentError(
                    path, f"question {qid}: choice {choice['key']} has no explanation", where
                )
            choices.append(
                Choice(
                    key=str(choice["key"]),
                    text=str(choice["text"]),
                    explanation=choice["explanation"].strip(),
                    correct=choice.get("correct") is True,
                )
            )
        keys = [choice.key for choice in choices]
        if len(set(keys)) != len(keys):
            raise ContentError(path, f"question {qid}: choice keys must be unique", where)
        correct = sum(choice.correct for choice in choices)
        if correct != 1:
            raise ContentError(
                path, f"question {qid} must have exactly one correct choice, not {correct}", where
            )
        observe = item.get("observe") or ""
        if not isinstance(observe, str):
            raise ContentError(path, f"question {qid}: 'observe' must be a sentence", where)
        observe_model = item.get("observe_model") or ""
        if not isinstance(observe_model, str) or (observe_model and not observe):
            raise ContentError(
                path, f"question {qid}: 'observe_model' names a model for an 'observe'", where
            )
        questions.append(
            Question(
                qid,
                item["section"],
                item["question"].strip(),
                choices,
                observe.strip(),
                observe_model.strip(),
            )
        )
    return questions


def _read_sections(body: str, path: Path, raw: str, body_offset: int) -> dict[str, str]:
    headings = list(HEADING.finditer(body))
    names = [match.group(1) for match in headings]
    for name in names:
        if name not in SECTIONS:
            line = body_offset + body[: body.index(f"## {name}")].count("\n")
            raise ContentError(
                path, f"unknown section '## {name}' (expected {', '.join(SECTIONS)})", line
            )
    missing = [name for name in SECTIONS if name not in names]
    if missing:
        raise ContentError(path, f"missing section(s): {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ContentError(path, "a section appears twice")
    sections = {}
    for index, match in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(body)
        text = body[match.end() : end].strip()
        if not text:
            line = body_offset + body[: match.start()].count("\n")
            raise ContentError(path, f"section '{match.group(1)}' is empty", line)
        sections[match.group(1)] = text
    return sections


def _plain(text: str) -> str:
    """The text a reader sees for term links: ``[[slug|label]]`` becomes ``label``."""
    return TERM_LINK_TEXT.sub(lambda m: m.group(2) or m.group(1), text)


def eli5_length_problem(text: str, lang: str) -> str | None:
    plain = _plain(text)
    if lang == "en":
        words = len(plain.split())
        return (
            f"eli5 has {words} words; at most {ELI5_MAX_WORDS}" if words > ELI5_MAX_WORDS else None
        )
    chars = len(re.sub(r"\s", "", plain))
    return (
        f"eli5 has {chars} characters; at most {ELI5_MAX_CHARS}" if chars > ELI5_MAX_CHARS else None
    )


def read_term_file(path: Path, style: HouseStyle | None = None) -> TermFile:
    """Read and check one file; a Japanese one also against ``style`` when it is given."""
    name = FILE_NAME.match(path.name)
    if not name:
        raise ContentError(path, "file names are <slug>.<lang>.md, e.g. self-attention.ja.md")
    if name["lang"] not in LANGS:
        raise ContentError(path, f"unknown language {name['lang']!r} (expected ja or en)")
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---"):
        raise ContentError(
            path, "the file must start with YAML front matter between '---' lines", 1
        )
    try:
        post = frontmatter.loads(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise ContentError(path, f"YAML: {problem}", mark.line + 2 if mark else None) from None
    meta = post.metadata
    slug = _require_str(meta, "slug", path, raw)
    if slug != name["slug"]:
        raise ContentError(path, f"slug {slug!r} does not match the file name", _line(raw, "slug:"))
    body_offset = raw[: raw.index(post.content[:40])].count("\n") + 1 if post.content else 1
    term = TermFile(
        path=path,
        slug=slug,
        lang=name["lang"],
        title=_require_str(meta, "title", path, raw),
        summary=_require_str(meta, "summary", path, raw),
        sections=_read_sections(post.content, path, raw, body_offset),
        prerequisites=_require_slugs(meta, "prerequisites", path, raw),
        related=_require_slugs(meta, "related", path, raw),
        sources=_read_sources(meta, path, raw),
        quiz=_read_quiz(meta, path, raw),
        raw=raw,
    )
    problem = eli5_length_problem(term.sections["eli5"], term.lang)
    if problem:
        raise ContentError(path, problem, term.line_of("## eli5"))
    if style is not None and term.lang == "ja":
        check_house_style(term, style)
    return term


# --- quiz balance -------------------------------------------------------------------------------


def correct_is_longest(question: Question) -> bool:
    """Whether the correct choice is strictly longer (in characters a reader sees) than every
    other choice: a cue that gives the answer away."""
    length = {choice.key: len(_plain(choice.text)) for choice in question.choices}
    key = question.correct_key
    return all(length[key] > size for other, size in length.items() if other != key)


def longest_correct_share(questions: Iterable[Question]) -> float:
    """The share of ``questions`` whose correct choice is the strictly longest (0 when none)."""
    flags = [correct_is_longest(question) for question in questions]
    return sum(flags) / len(flags) if flags else 0.0


# --- the whole glossary -------------------------------------------------------------------------


def _check_pairs(terms: dict[str, dict[str, TermFile]]) -> None:
    for slug, by_lang in sorted(terms.items()):
        for lang in LANGS:
            if lang not in by_lang:
                other = next(iter(by_lang.values()))
                raise ContentError(
                    other.path, f"missing language pair: {slug}.{lang}.md does not exist"
                )
        ja, en = by_lang["ja"], by_lang["en"]
        for key in ("prerequisites", "related"):
            if sorted(getattr(ja, key)) != sorted(getattr(en, key)):
                raise ContentError(
                    ja.path, f"'{key}' differs from {en.path.name}", ja.line_of(f"{key}:")
                )
        if [q.id for q in ja.quiz] != [q.id for q in en.quiz]:
            raise ContentError(ja.path, f"quiz question ids differ from {en.path.name}")
        for qja, qen in zip(ja.quiz, en.quiz, strict=True):
            if [c.key for c in qja.choices] != [c.key for c in qen.choices]:
                raise ContentError(
                    ja.path, f"question {qja.id}: choice keys differ from {en.path.name}"
                )
            if qja.correct_key != qen.correct_key or qja.section != qen.section:
                raise ContentError(
                    ja.path,
                    f"question {qja.id}: correct choice or section differs from {en.path.name}",
                    ja.line_of(f"id: {qja.id}"),
                )


def _build_graph(terms: dict[str, dict[str, TermFile]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(terms)
    for slug, by_lang in terms.items():
        term = by_lang["en"]
        for key in ("prerequisites", "related"):
            for other in getattr(term, key):
                if other == slug:
                    raise ContentError(
                        term.path, f"'{key}' names the term itself", term.line_of(key)
                    )
                if other not in terms:
                    raise ContentError(
                        term.path, f"'{key}' links to a missing term: {other}", term.line_of(key)
                    )
        graph.add_edges_from((prerequisite, slug) for prerequisite in term.prerequisites)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        chain = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        first = terms[cycle[0][1]]["en"]
        raise ContentError(
            first.path, f"prerequisite cycle: {chain}", first.line_of("prerequisites:")
        )
    return graph


def _render(terms: dict[str, dict[str, TermFile]]) -> None:
    """Render every text now, so a bad formula or link stops the load before any write."""
    for lang in LANGS:
        titles = {slug: by_lang[lang].title for slug, by_lang in terms.items()}
        for by_lang in terms.values():
            term = by_lang[lang]
            for section, text in term.sections.items():
                try:
                    term.html[section] = render_markdown(text, lang=lang, titles=titles)
                except RenderError as error:
                    raise ContentError(
                        term.path, str(error), term.line_of(f"## {section}")
                    ) from None
            for question in term.quiz:
                try:
                    question.question_html = render_inline(
                        question.question, lang=lang, titles=titles
                    )
                    for choice in question.choices:
                        choice.text_html = render_inline(choice.text, lang=lang, titles=titles)
                        choice.explanation_html = render_inline(
                            choice.explanation, lang=lang, titles=titles
                        )
                except RenderError as error:
                    raise ContentError(
                        term.path, f"question {question.id}: {error}", term.line_of(question.id)
                    ) from None


def _quiz_warnings(terms: dict[str, dict[str, TermFile]]) -> list[str]:
    warnings = []
    for slug in sorted(terms):
        for term in terms[slug].values():
            share = longest_correct_share(term.quiz)
            if share > LONGEST_CORRECT_WARNING:
                warnings.append(
                    f"{_display(term.path)}: the correct choice is the strictly longest in "
                    f"{share:.0%} of {len(term.quiz)} questions; make the distractors as long"
                )
    return warnings


def read_glossary(directory: Path = CONTENT_DIR, style_path: Path = STYLE_PATH) -> Glossary:
    """Read, check and render every file; Japanese files also against the term table of
    ``style_path``. Raises ContentError on the first problem."""
    style = read_house_style(style_path)
    terms: dict[str, dict[str, TermFile]] = {}
    for path in sorted(directory.glob("*.md")):
        if path.name in NOT_TERMS:
            continue
        term = read_term_file(path, style)
        terms.setdefault(term.slug, {})[term.lang] = term
    if not terms:
        raise ContentError(directory, "no term files found")
    _check_pairs(terms)
    graph = _build_graph(terms)
    _render(terms)
    return Glossary(terms=terms, graph=graph, warnings=_quiz_warnings(terms))
