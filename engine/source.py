"""Read the code: the lines of ``engine/transformer/`` that compute each step of the step-through.

The lines are read from the source files themselves, never copied, so the page always shows the
code that ran. They are found by marker comments in those files::

    # step: qk scaled        (the block computes the steps "qk" and "scaled")
    ...the lines shown...
    # end step

A marker may name the one model it is for: ``# step: mask (gpt)``. The web process reads the
files as text; it never imports torch or the model code. A file is parsed once per process and
again when it changes (its modification time is part of the cache key).
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import gettext_lazy as _

TRANSFORMER = Path(__file__).resolve().parent / "transformer"
REPOSITORY = TRANSFORMER.parent.parent
# Which files each live model's steps are read from, in the order they are shown.
FILES = {
    "minilm": ("attention.py", "encoder.py"),
    "gpt": ("attention.py", "decoder.py"),
}
STEPS = ("q", "k", "qk", "scaled", "mask", "softmax", "output")
# The glossary term that teaches each step (slugs of lessons/content/).
TERMS = {
    "q": ("query-key-value", _("Query, key and value")),
    "k": ("query-key-value", _("Query, key and value")),
    "qk": ("scaled-dot-product-attention", _("Scaled dot-product attention")),
    "scaled": ("scaled-dot-product-attention", _("Scaled dot-product attention")),
    "mask": ("masked-attention", _("Masked attention")),
    "softmax": ("softmax", _("Softmax")),
    "output": ("self-attention", _("Self-attention")),
}
START = re.compile(r"^\s*# step: (?P<keys>[a-z ]+?)(?: \((?P<model>[a-z]+)\))?\s*$")
END = re.compile(r"^\s*# end step\s*$")


class SourceMarkerError(ValueError):
    """The marker comments of a source file are missing or do not pair up."""


@dataclass(frozen=True)
class Block:
    """Lines ``first``..``last`` (1-based, inclusive) of ``path`` (relative to the repository)."""

    path: str
    first: int
    lines: tuple[str, ...]
    keys: tuple[str, ...]
    model: str | None

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    @property
    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self.lines, start=self.first))


def parse(text: str, *, path: str) -> list[Block]:
    """Every marked block of a file's ``text``; unbalanced or unknown markers raise."""
    blocks, opened = [], None
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip().startswith("# step:"):
            match = START.match(line)
            if match is None:
                raise SourceMarkerError(f"{path}:{number}: malformed marker {line.strip()!r}")
            if opened is not None:
                raise SourceMarkerError(f"{path}:{number}: step opened again before '# end step'")
            keys = tuple(match["keys"].split())
            unknown = [key for key in keys if key not in STEPS]
            if unknown or (match["model"] and match["model"] not in FILES):
                raise SourceMarkerError(
                    f"{path}:{number}: unknown step or model in {line.strip()!r}"
                )
            opened = (number, keys, match["model"])
        elif END.match(line):
            if opened is None:
                raise SourceMarkerError(f"{path}:{number}: '# end step' without a step")
            start, keys, model = opened
            if number == start + 1:
                raise SourceMarkerError(f"{path}:{start}: empty step block")
            blocks.append(Block(path, start + 1, tuple(lines[start : number - 1]), keys, model))
            opened = None
    if opened is not None:
        raise SourceMarkerError(f"{path}:{opened[0]}: step never closed with '# end step'")
    return blocks


@cache
def _parsed(path: Path, mtime_ns: int) -> tuple[Block, ...]:
    try:
        relative = path.relative_to(REPOSITORY).as_posix()
    except ValueError:  # a file outside the repository (a test's own)
        relative = path.as_posix()
    return tuple(parse(path.read_text(encoding="utf-8"), path=relative))


def blocks_of(path: Path) -> tuple[Block, ...]:
    """The blocks of one file, parsed again only when the file changes."""
    return _parsed(path, path.stat().st_mtime_ns)


def step_blocks(model: str, key: str, *, root: Path = TRANSFORMER) -> list[Block]:
    """The blocks that compute step ``key`` for ``model``; none found raises, loudly."""
    found = [
        block
        for name in FILES[model]
        for block in blocks_of(root / name)
        if key in block.keys and block.model in (None, model)
    ]
    if not found:
        raise SourceMarkerError(f"no '# step: {key}' marker for {model} in {FILES[model]}")
    return found
