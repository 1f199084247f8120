"""From text to WordPiece tokens, keeping track of where every piece came from.

The model never sees characters, only ids of *pieces* from a fixed vocabulary of 30,522
WordPiece entries. The vocabulary is lower-cased English: "Transformer" becomes
``transform`` + ``##er`` (``##`` means "glued to the previous piece"), and characters the
vocabulary does not know (many kanji, most emoji) become ``[UNK]``. We keep those ``[UNK]``
pieces visible, because that is exactly what the model sees.

Every sequence is wrapped as ``[CLS] pieces... [SEP]``. The tokenizer tracks *offsets*, the
character span of each piece in the learner's original text, so we can always show the
learner's own spelling (``display``) next to the piece the model actually got.

Nothing is truncated or padded here: callers compare :func:`count_pieces` with
:data:`MAX_PIECES` and decide what to tell the learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from .paths import model_dir

#: Longest input the app accepts, *including* ``[CLS]`` and ``[SEP]``.
MAX_PIECES = 128


@dataclass(frozen=True)
class Tokens:
    """One tokenized text: parallel lists, one entry per piece (``[CLS]`` and ``[SEP]`` included).

    - ``ids``: vocabulary ids, what the model reads.
    - ``pieces``: the WordPiece strings (``"transform"``, ``"##er"``, ``"[UNK]"``...).
    - ``offsets``: ``(start, end)`` character span in ``text``; ``(0, 0)`` for specials.
    - ``word_ids``: index of the word a piece belongs to; ``None`` for specials.
    - ``special``: ``True`` for ``[CLS]`` / ``[SEP]``.
    - ``display``: the learner's own characters for each piece (``text[start:end]``),
      or ``"[CLS]"`` / ``"[SEP]"`` for specials.
    """

    text: str
    ids: list[int]
    pieces: list[str]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    special: list[bool]
    display: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def unknown(self) -> list[bool]:
        """``True`` where the vocabulary had no piece for the text (``[UNK]``)."""
        return [piece == UNK for piece in self.pieces]


UNK = "[UNK]"


class WordPieceTokenizer:
    """Thin wrapper around a Hugging Face ``tokenizers.Tokenizer`` loaded from ``tokenizer.json``."""

    def __init__(self, path: str | Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        # The shipped tokenizer.json truncates and pads to 128; we want the raw pieces.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    @classmethod
    def from_model_dir(cls, directory: str | Path | None = None) -> WordPieceTokenizer:
        return cls(Path(directory or model_dir()) / "tokenizer.json")

    def encode(self, text: str) -> Tokens:
        """Tokenize ``text`` into ``[CLS] ... [SEP]`` with offsets into the original string."""
        encoding = self._tokenizer.encode(text)
        special = [bool(flag) for flag in encoding.special_tokens_mask]
        offsets = [tuple(span) for span in encoding.offsets]
        display = [
            piece if is_special else text[start:end]
            for piece, (start, end), is_special in zip(
                encoding.tokens, offsets, special, strict=True
            )
        ]
        return Tokens(
            text=text,
            ids=list(encoding.ids),
            pieces=list(encoding.tokens),
            offsets=offsets,
            word_ids=list(encoding.word_ids),
            special=special,
            display=display,
        )

    def count_pieces(self, text: str) -> int:
        """Number of pieces the model would read, ``[CLS]`` and ``[SEP]`` included."""
        return len(self._tokenizer.encode(text).ids)


@lru_cache(maxsize=4)
def _tokenizer_for(directory: str) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_model_dir(directory)


def default_tokenizer() -> WordPieceTokenizer:
    """The tokenizer of :func:`~engine.transformer.paths.model_dir`, loaded once and cached."""
    return _tokenizer_for(str(model_dir()))


def encode(text: str) -> Tokens:
    """Tokenize ``text`` with the default tokenizer (see :class:`Tokens`)."""
    return default_tokenizer().encode(text)


def count_pieces(text: str) -> int:
    """Number of pieces (``[CLS]``/``[SEP]`` included) to compare with :data:`MAX_PIECES`."""
    return default_tokenizer().count_pieces(text)
