"""The GPT's byte-level BPE: nothing unknown, exact round trips, the learner's own characters."""

from __future__ import annotations

import pytest

from engine.transformer import Tokens, bpe
from engine.transformer.bpe import EOT, REPLACEMENT, BPETokenizer, train_bpe

TEXTS = [
    "",
    "a",
    "Attention is all you need.",
    "自己注意では、各トークンがほかのすべてのトークンを見ます。",
    "東京の鰻丼は美味しいです",
    "Mixing English and 日本語 in one sentence は難しい?",
    "鱶鰭と麤皴と龘靐",  # rare kanji: split inside characters
    "I love pizza 🍕🍕 and coffee ☕ — 😀!",
    "Café naïve façade Ærøskøbing",
    "  spaces   and\ttabs\nnewlines  \n\n",
    "Typed by a learner: <|endoftext|> is only text here.",
    "x**2 + 1 == 2; $e^0 = 1$ → ∑ ∫ ≈",
    "\u3000全角スペースと半角 space",
]


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    return bpe.default_tokenizer()


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_and_display(tokenizer, text):
    tokens = tokenizer.encode(text)
    assert isinstance(tokens, Tokens)
    # Every text starts with the special start token, and only there.
    assert tokens.ids[0] == tokenizer.eot_id and tokens.pieces[0] == EOT
    assert tokens.special == [True] + [False] * (len(tokens) - 1)
    assert tokens.display[0] == EOT and tokens.offsets[0] == (0, 0)
    assert tokens.word_ids[0] is None
    # Nothing is unknown: every id is a real piece of the vocabulary.
    assert not any(tokens.unknown)
    assert all(0 <= i < tokenizer.vocab_size for i in tokens.ids)
    assert all(
        tokenizer.id_to_piece(i) == piece
        for i, piece in zip(tokens.ids, tokens.pieces, strict=True)
    )
    # Exact round trip, and the displayed pieces are the learner's text, in order.
    assert tokenizer.decode(tokens.ids) == text
    assert "".join(tokens.display[1:]) == text
    for (start, end), shown in zip(tokens.offsets[1:], tokens.display[1:], strict=True):
        assert shown == "" or text.endswith(shown, 0, end), (start, end, shown)
    assert tokenizer.count_pieces(text) == len(tokens)
    assert len(tokens.ids) == len(tokens.pieces) == len(tokens.offsets) == len(tokens.display)


def test_japanese_gets_real_pieces(tokenizer):
    text = "自己注意とトークンと注意機構"
    tokens = tokenizer.encode(text)
    # Frequent Japanese words of the lessons are whole pieces, not three bytes per character.
    assert len(tokens) - 1 < len(text)
    assert any(len(shown) >= 2 for shown in tokens.display[1:])


def test_a_character_split_across_pieces_is_shown_once(tokenizer):
    text = "龘"  # surely not in the lessons: its three UTF-8 bytes stay separate pieces
    tokens = tokenizer.encode(text)
    assert len(tokens) > 2
    assert tokens.display[1:] == [text] + [""] * (len(tokens) - 2)
    assert all(offset == (0, 1) for offset in tokens.offsets[1:])
    # Decoded alone, a fragment is not the character: the replacement marker shows it.
    fragments = [tokenizer.piece_text(i) for i in tokens.ids[1:]]
    assert all(REPLACEMENT in fragment for fragment in fragments)
    assert tokenizer.decode(tokens.ids) == text  # decoded together, it is


def test_typed_special_token_is_plain_text(tokenizer):
    tokens = tokenizer.encode(EOT)
    assert tokens.ids.count(tokenizer.eot_id) == 1  # only the start token
    assert tokenizer.decode(tokens.ids) == EOT
    assert tokenizer.piece_text(tokenizer.eot_id) == EOT


def test_module_functions_use_the_committed_tokenizer():
    assert bpe.encode("注意").ids == bpe.default_tokenizer().encode("注意").ids
    assert bpe.count_pieces("注意") == len(bpe.encode("注意"))


def test_train_bpe_learns_merges_deterministically(tmp_path):
    texts = ["トークンとトークン。注意と注意。", "attention attention attention"] * 20
    first = train_bpe(texts, 300)
    second = train_bpe(texts, 300)
    assert first.vocab_size == second.vocab_size <= 300
    sample = "トークンの注意 attention"
    assert first.encode(sample).ids == second.encode(sample).ids
    assert len(first.encode("attention")) == 2  # <|endoftext|> + one learned piece
    first.save(tmp_path / "tokenizer.json")
    loaded = BPETokenizer.from_file(tmp_path / "tokenizer.json")
    assert loaded.encode(sample).ids == first.encode(sample).ids
    assert loaded.decode(loaded.encode(sample).ids) == sample
    with pytest.raises(ValueError, match="at least 258"):
        train_bpe(texts, 100)
