"""Byte-level BPE: the GPT's tokenizer, so that no text is ever unknown and Japanese gets pieces.

MiniLM's WordPiece vocabulary (``tokenizer.py``) is English: most kanji become ``[UNK]``. The
GPT reads **bytes** instead. Every string is UTF-8 encoded, and the 256 possible byte values
are the starting vocabulary, so *any* text can be written with it. Byte-pair encoding (Sennrich
et al. 2016, as used by GPT-2) then learns merges from the training corpus: the most frequent
adjacent pair becomes a new piece, again and again, until the vocabulary has ``vocab_size``
entries. Frequent words ("attention", "トークン") end up as one piece; rare ones stay split.

How the pieces look, and why we never show one alone
----------------------------------------------------
A Japanese character is 3 UTF-8 bytes. A frequent one (``語``) is usually one piece; a rare one
may be split into 2 or 3 pieces, and a piece may end in the *middle* of a character. Such a
piece is not a character and cannot be decoded by itself. So, as with WordPiece, we show the
learner's own characters through the *offsets* (``display[i] = text[start:end]``):

- The tokenizer reports, for every piece, the span of characters its bytes touch. Pieces that
  share a character therefore have overlapping spans.
- **Our choice:** a character is shown by the *first* piece that touches it; a later piece shows
  only the characters not shown yet, and an empty string ``""`` when it only continues a
  character already shown. A page may draw ``""`` as a continuation mark (e.g. ``…``).
  Consequently ``"".join(display[1:]) == text`` always holds (``display[0]`` is the special
  start token, see below).

Pieces themselves (``pieces``) are GPT-2's printable spelling of the bytes: a space is ``Ġ``, a
newline ``Ċ``, and the bytes of ``語`` look like ``èªŀ``. They are what the model reads; they
are not for reading.

The special token ``<|endoftext|>``
----------------------------------
It separates documents during training. Every encoded text *starts* with it (as every training
document does), so the model always has a first position to attend to and can predict the
first real piece. It has offsets ``(0, 0)``, ``special=True`` and ``display="<|endoftext|>"``.
When a learner *types* the characters ``<|endoftext|>``, they are ordinary text, never the
special token (``encode_special_tokens``).

:func:`train_bpe` trains a tokenizer with the ``tokenizers`` library; :class:`BPETokenizer`
wraps a trained one and returns the same :class:`~.tokenizer.Tokens` as the encoder's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .paths import gpt_model_dir
from .tokenizer import Tokens

#: Separates documents, starts every encoded text, and ends a generation.
EOT = "<|endoftext|>"

#: Shown for a predicted piece whose bytes are not a whole UTF-8 character (Python's and Rust's
#: replacement character, as a lossy UTF-8 decoder writes it).
REPLACEMENT = "\ufffd"


def train_bpe(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> BPETokenizer:
    """Learn a byte-level BPE of ``vocab_size`` entries (256 bytes + ``<|endoftext|>`` + merges).

    The pre-tokenizer is GPT-2's: it splits text into words, numbers, punctuation and spaces (a
    space stays glued to the word after it, ``add_prefix_space=False``), and merges never cross
    those boundaries. A run of Japanese characters without spaces is one "word" to it, so merges
    inside Japanese text are learned from the corpus alone. Deterministic for the same texts.
    """
    if vocab_size < 258:
        raise ValueError(
            f"vocab_size must be at least 258 (256 bytes + {EOT} + 1), not {vocab_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing unknown
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    # Every encoding starts with <|endoftext|>, the way every training document does.
    eot_id = tokenizer.token_to_id(EOT)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", special_tokens=[(EOT, eot_id)]
    )
    return BPETokenizer(tokenizer)


class BPETokenizer:
    """A trained byte-level BPE (``tokenizer.json``) that returns :class:`~.tokenizer.Tokens`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # "<|endoftext|>" typed by a learner is text, not the special token.
        self._tokenizer.encode_special_tokens = True
        eot_id = tokenizer.token_to_id(EOT)
        if eot_id is None:
            raise ValueError(f"The tokenizer has no {EOT} token")
        self.eot_id: int = eot_id

    @classmethod
    def from_file(cls, path: str | Path) -> BPETokenizer:
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        self._tokenizer.save(str(path))

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode(self, text: str) -> Tokens:
        """``<|endoftext|>`` + the pieces of ``text``, with offsets and the learner's characters."""
        encoding = self._tokenizer.encode(text)
        special = [bool(flag) for flag in encoding.special_tokens_mask]
        offsets = [tuple(span) for span in encoding.offsets]
        display = []
        shown = 0  # characters text[:shown] are already displayed by an earlier piece
        for piece, (start, end), is_special in zip(encoding.tokens, offsets, special, strict=True):
            if is_special:
                display.append(piece)
                continue
            display.append(text[max(start, shown) : end])  # "" continues a shown character
            shown = max(shown, end)
        return Tokens(
            text=text,
            ids=list(encoding.ids),
            pieces=list(encoding.tokens),
            offsets=offsets,
            word_ids=list(encoding.word_ids),
            special=special,
            display=display,
        )

    def encode_ids(self, text: str, *, start_token: bool = True) -> list[int]:
        """Only the ids (fast path for training), with or without the leading ``<|endoftext|>``."""
        return list(self._tokenizer.encode(text, add_special_tokens=start_token).ids)

    def encode_batch_ids(self, texts: list[str], *, start_token: bool = True) -> list[list[int]]:
        """:meth:`encode_ids` for many texts at once (the library runs them in parallel)."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=start_token)
        return [list(encoding.ids) for encoding in encodings]

    def count_pieces(self, text: str) -> int:
        """Number of positions the model reads for ``text``, ``<|endoftext|>`` included."""
        return len(self._tokenizer.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        """Text of a whole id sequence, special tokens left out: ``decode(encode(t).ids) == t``.

        Decode the ids of a text *together*: bytes of one character may sit in several pieces.
        Incomplete UTF-8 sequences (only possible at the ends) become ``\\ufffd``.
        """
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def piece_text(self, token_id: int) -> str:
        """How to show ONE predicted piece: its decoded bytes, or ``<|endoftext|>`` itself.

        A piece that holds only part of a character's bytes decodes to ``\\ufffd`` (the
        replacement character, :data:`REPLACEMENT`) in place of those bytes, as a lossy UTF-8
        decoder writes it: the learner sees that the piece is a fragment of a character.
        """
        if token_id == self.eot_id:
            return EOT
        return self._tokenizer.decode([token_id], skip_special_tokens=False)

    def id_to_piece(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)


@lru_cache(maxsize=4)
def _tokenizer_for(directory: str) -> BPETokenizer:
    return BPETokenizer.from_file(Path(directory) / "tokenizer.json")


def default_tokenizer() -> BPETokenizer:
    """The committed GPT tokenizer (:func:`~.paths.gpt_model_dir`), loaded once and cached."""
    return _tokenizer_for(str(gpt_model_dir()))


def encode(text: str) -> Tokens:
    """Tokenize ``text`` with the GPT's tokenizer (see :class:`~.tokenizer.Tokens`)."""
    return default_tokenizer().encode(text)


def count_pieces(text: str) -> int:
    """Positions the GPT reads for ``text`` (``<|endoftext|>`` included): compare with limits."""
    return default_tokenizer().count_pieces(text)
