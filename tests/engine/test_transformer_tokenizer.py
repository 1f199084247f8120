"""WordPiece tokenization: offsets into the learner's text, [UNK] kept, no truncation."""

from __future__ import annotations

import pytest

from engine.transformer import MAX_PIECES, Tokens, count_pieces, encode


def test_tokens_shape_and_specials():
    tokens = encode("Hello World")
    assert isinstance(tokens, Tokens)
    assert tokens.pieces == ["[CLS]", "hello", "world", "[SEP]"]
    assert tokens.display == ["[CLS]", "Hello", "World", "[SEP]"]  # case preserved
    assert tokens.special == [True, False, False, True]
    assert tokens.word_ids == [None, 0, 1, None]
    assert tokens.ids[0] == 101 and tokens.ids[-1] == 102
    assert len(tokens) == 4
    assert len(tokens.ids) == len(tokens.offsets) == len(tokens.display) == len(tokens.special)


@pytest.mark.parametrize(
    "text",
    [
        "ThE TrAnSfOrMeR, unbelievably FAST!",
        "Café naïve façade Ærøskøbing",
        "  leading and   inner\tspace\n",
        "emoji 😀 and 日本語 mixed",
        "x**2 + 1 == 2",
    ],
)
def test_offsets_point_into_the_original_text(text):
    tokens = encode(text)
    for piece, (start, end), shown, special in zip(
        tokens.pieces, tokens.offsets, tokens.display, tokens.special, strict=True
    ):
        if special:
            assert shown == piece
            continue
        assert 0 <= start < end <= len(text)
        assert shown == text[start:end]
        if piece != "[UNK]" and shown.isascii():
            assert piece.removeprefix("##") == shown.lower()


def test_multi_piece_word_shares_a_word_id():
    tokens = encode("unbelievably")
    assert tokens.pieces == ["[CLS]", "un", "##bel", "##ie", "##va", "##bly", "[SEP]"]
    assert tokens.word_ids == [None, 0, 0, 0, 0, 0, None]
    tokens = encode("the transformer")
    assert tokens.pieces == ["[CLS]", "the", "transform", "##er", "[SEP]"]
    assert tokens.word_ids == [None, 0, 1, 1, None]
    assert tokens.display == ["[CLS]", "the", "transform", "er", "[SEP]"]


def test_japanese_keeps_unknown_pieces_visible():
    text = "日本語を勉強しています"
    tokens = encode(text)
    assert "[UNK]" in tokens.pieces
    assert any(tokens.unknown)
    for piece, shown in zip(tokens.pieces, tokens.display, strict=True):
        if piece == "[UNK]":
            assert shown in text and shown  # the learner still sees which character it was


def test_no_truncation():
    text = " ".join(["word"] * 150 + ["antidisestablishmentarianism"] * 150)
    assert len(text.split()) == 300
    tokens = encode(text)
    assert len(tokens) > MAX_PIECES
    assert count_pieces(text) == len(tokens)
    assert tokens.pieces[-1] == "[SEP]"


def test_empty_text():
    tokens = encode("")
    assert tokens.pieces == ["[CLS]", "[SEP]"]
    assert count_pieces("") == 2
