"""View data built from a run's stored arrays (no database, no model)."""

import numpy as np

from engine.arrays import pack
from engine.models import AttentionRun, LiveModel
from engine.presenters import RunData, ViewParams


def _run(model, pieces, special, words):
    size = len(pieces)
    weights = np.tril(np.ones((1, 1, size, size), np.float32))
    weights /= weights.sum(-1, keepdims=True)
    text = "".join(pieces)
    tokens, start = [], 0
    for piece, flag, word in zip(pieces, special, words, strict=True):
        end = start if flag else start + len(piece)
        tokens.append(
            {"piece": piece, "text": piece.strip() or piece, "word": word, "special": flag,
             "start": start, "end": end}
        )  # fmt: skip
        start = end
    return AttentionRun(
        model=model, text=text, layers=1, heads=1, tokens=tokens, weights=pack(weights),
        value_norms=pack(np.ones((1, 1, size), np.float32)),
    )  # fmt: skip


def test_hiding_specials_by_word_keeps_a_decoders_last_word():
    """The GPT has a special first token and none at the end: its last word stays."""
    run = _run(LiveModel.GPT, ["<|endoftext|>", "The", " cat"], [True, False, False], [None, 0, 1])
    matrix = RunData(run).attention(ViewParams(unit="word", special=False))
    assert matrix.labels == ["The", "cat"] and matrix.values.shape == (2, 2)


def test_a_decoders_first_row_is_left_out_of_the_sink_share():
    """Row 0 of a decoder can only look at the first token: it says nothing about the head."""
    run = _run(
        LiveModel.GPT, ["<|endoftext|>", "a", "b", "c"], [True] + [False] * 3, [None, 0, 1, 2]
    )
    panel = RunData(run).sinks()
    weight_share, norm_share = panel.rows[0]["cells"][0]
    # rows 1-3 of a uniform causal head give 1/2, 1/3, 1/4 to the first token
    assert abs(weight_share - (1 / 2 + 1 / 3 + 1 / 4) / 3) < 1e-3  # stored as float16
    assert abs(norm_share - weight_share) < 1e-3  # equal norms: the same shares
