"""The deletion test's pieces on constructed cases, then the whole test on the real models."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from engine.faithfulness_svg import deletion_plot_svg, nice_max
from engine.transformer import AttentionModel, GPTModel
from engine.transformer.faithfulness import (
    METHODS,
    TooShort,
    delete,
    deletion_test,
    embedding_shift,
    grad_times_input,
    importance,
    norm_based,
    ranking,
    received,
    removable_positions,
    steps,
    total_variation,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_removable_positions_never_take_specials_nor_the_decoders_ends():
    special = [True, False, False, False, True]  # [CLS] a b c [SEP]
    assert removable_positions(special, decoder=False) == [1, 2, 3]
    gpt = [True, False, False, False, False]  # <|endoftext|> a b c d
    assert removable_positions(gpt, decoder=True) == [1, 2, 3]  # not 0, not the last


def test_steps_keep_one_token_and_stop_at_five():
    assert [steps(n) for n in (0, 1, 2, 4, 6, 30)] == [0, 0, 1, 3, 5, 5]


def test_ranking_on_a_constructed_matrix():
    # Every query looks at token 3 most, then token 1; [CLS]=0 and [SEP]=4 are not candidates.
    matrix = np.array(
        [
            [0.5, 0.1, 0.0, 0.3, 0.1],
            [0.4, 0.2, 0.0, 0.4, 0.0],
            [0.3, 0.2, 0.1, 0.4, 0.0],
            [0.3, 0.2, 0.0, 0.5, 0.0],
            [0.6, 0.1, 0.0, 0.3, 0.0],
        ]
    )
    scores = received(matrix, last_row=False)
    np.testing.assert_allclose(scores, matrix.mean(axis=0))
    assert ranking(scores, [1, 2, 3]) == [3, 1, 2]
    # the GPT reads the last row only: there token 1 and 2 tie below 3, the earlier one first
    assert ranking(received(matrix, last_row=True), [1, 2, 3]) == [3, 1, 2]
    assert ranking(np.zeros(5), [3, 1, 2]) == [1, 2, 3]


def test_delete_keeps_the_rest_in_order():
    ids = [101, 7, 8, 9, 102]
    assert delete(ids, [2]) == [101, 7, 9, 102]
    assert delete(ids, [3, 1]) == [101, 8, 102]
    assert delete(ids, []) == ids


def test_the_measures_are_zero_for_no_change_and_grow_with_it():
    v = np.array([0.3, -0.4, 0.5])
    assert embedding_shift(v, v) == pytest.approx(0.0, abs=1e-12)
    assert embedding_shift(v, 2 * v) == pytest.approx(0.0, abs=1e-12)  # only the direction
    assert embedding_shift(v, -v) == pytest.approx(2.0)
    p = np.array([0.7, 0.2, 0.1])
    assert total_variation(p, p) == 0.0
    assert total_variation(p, np.array([0.1, 0.2, 0.7])) == pytest.approx(0.6)


def test_norm_based_attention_equals_the_sum_written_out():
    rng = np.random.default_rng(3)
    heads, length, size, width = 2, 4, 3, 6
    weights = rng.dirichlet(np.ones(length), size=(heads, length))  # [H, T, T], rows sum to 1
    values = rng.normal(size=(heads, length, size))
    w_out = rng.normal(size=(heads * size, width))
    expected = np.zeros((length, length))
    for i in range(length):
        for j in range(length):
            vector = np.zeros(width)
            for h in range(heads):
                vector += weights[h, i, j] * values[h, j] @ w_out[h * size : (h + 1) * size]
            expected[i, j] = np.linalg.norm(vector)
    np.testing.assert_allclose(norm_based(weights, values, w_out), expected, rtol=1e-5)
    # a token whose value vector is zero passes nothing on, whatever its weight
    values[:, 2] = 0
    assert np.allclose(norm_based(weights, values, w_out)[:, 2], 0)


@pytest.fixture(scope="module")
def minilm() -> AttentionModel:
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def gpt() -> GPTModel:
    return GPTModel.load(device="cpu")


SENTENCE = "The animal didn't cross the street because it was too tired."


def test_gradient_times_input_has_one_nonzero_score_per_token(minilm):
    from engine.transformer.faithfulness import _adapter

    tokens = minilm.encode(SENTENCE)
    probe = _adapter(minilm).probe(tokens.ids)
    assert probe.embedded.shape == probe.gradient.shape == (len(tokens), 384)
    scores = grad_times_input(probe.embedded, probe.gradient)
    assert scores.shape == (len(tokens),) and np.all(np.isfinite(scores))
    assert np.all(scores > 0)
    every = importance(probe, decoder=False)
    assert set(every) == set(METHODS)
    assert all(score.shape == (len(tokens),) for score in every.values())
    # the model is left as it was: no gradient kept, no hook left behind
    assert not minilm.encoder.embeddings.word._forward_hooks
    assert all(p.grad is None for p in minilm.encoder.parameters())


def test_deletion_test_on_the_encoder(minilm):
    tokens = minilm.encode(SENTENCE)
    seen: list[tuple[int, int]] = []
    test = deletion_test(minilm, tokens.ids, tokens.special, on_progress=lambda *a: seen.append(a))
    assert test.k == [1, 2, 3, 4, 5] and not test.decoder
    assert [done for done, _ in seen] == list(range(1, seen[-1][1] + 1))  # one step at a time
    assert seen[-1][0] == seen[-1][1] == test.batches + 1 > 2
    special = {i for i, s in enumerate(tokens.special) if s}
    for name in METHODS:
        assert len(test.shift[name]) == 5 and all(0 <= v <= 2 for v in test.shift[name])
        assert len(set(test.rankings[name])) == 5 and not special & set(test.rankings[name])
    assert len(test.random_mean) == len(test.random_sd) == 5
    assert all(sd > 0 for sd in test.random_sd) and test.random_draws == 20
    # removing more random tokens moves the embedding further on average
    assert test.random_mean[-1] > test.random_mean[0] > 0
    # same input, same seed: the same curves
    again = deletion_test(minilm, tokens.ids, tokens.special)
    assert again.random_mean == pytest.approx(test.random_mean, abs=1e-6)
    for name in METHODS:
        assert again.shift[name] == pytest.approx(test.shift[name], abs=1e-6)


def test_removing_nothing_moves_nothing_in_a_padded_batch(minilm, gpt):
    from engine.transformer.faithfulness import _adapter

    tokens = minilm.encode(SENTENCE)
    adapter = _adapter(minilm)
    alone, padded = (
        adapter.outputs([tokens.ids]),
        adapter.outputs([tokens.ids, tokens.ids + [0] * 5]),
    )
    assert embedding_shift(alone[0], padded[0]) < 1e-6
    g = gpt.encode("In self-attention, every token")
    decoder = _adapter(gpt)
    longer = g.ids + [decoder.pad_id] * 4
    alone, batch = decoder.outputs([g.ids]), decoder.outputs([g.ids, longer[:-1]])
    assert total_variation(alone[0], batch[0]) < 1e-5


def test_deletion_test_on_the_gpt_keeps_both_ends(gpt):
    tokens = gpt.encode("In self-attention, every token looks at")
    test = deletion_test(gpt, tokens.ids, tokens.special)
    assert test.decoder and test.k[-1] == min(5, len(tokens) - 3)
    last = len(tokens) - 1
    for name in METHODS:
        assert 0 not in test.rankings[name] and last not in test.rankings[name]
        assert all(0 <= v <= 1 for v in test.shift[name])


def test_too_short_a_sentence_is_refused(minilm):
    tokens = minilm.encode("Hi")
    with pytest.raises(TooShort):
        deletion_test(minilm, tokens.ids, tokens.special)


def test_the_plot_parses_and_draws_every_method_and_the_band():
    result = {
        "k": [1, 2, 3],
        "methods": {
            "attention": {"shift": [0.1, 0.2, 0.3], "removed": [1, 2, 3]},
            "rollout": {"shift": [0.0, 0.1, 0.1], "removed": [2, 1, 3]},
            "norm": {"shift": [0.2, 0.3, 0.3], "removed": [3, 1, 2]},
            "gradient": {"shift": [0.3, 0.4, 0.5], "removed": [3, 2, 1]},
        },
        "random": {"mean": [0.05, 0.1, 0.15], "sd": [0.02, 0.03, 0.04], "draws": 20},
    }
    names = {"attention": "A <attn>", "rollout": "R", "norm": "N", "gradient": "G"}
    svg = deletion_plot_svg(
        result, names=names, title="T & t", description="D", x_label="k", y_label="y",
        random_label="random",
    )  # fmt: skip
    root = ET.fromstring(str(svg))  # noqa: S314  the SVG we just drew
    assert root.find(f"{SVG}title").text == "T & t" and root.find(f"{SVG}desc").text == "D"
    lines = root.findall(f".//{SVG}g[@class='method-line']")
    assert [g.get("data-method") for g in lines] == list(names)
    for g in lines:  # the origin and one point per k
        assert len(g.find(f"{SVG}polyline").get("points").split()) == 4
    band = root.find(f".//{SVG}g[@class='random-band']/{SVG}polygon")
    assert len(band.get("points").split()) == 8
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[:5] == ["0", "0.125", "0.25", "0.375", "0.5"]  # 0.5 tops the axis
    assert "A <attn>" in "".join(root.itertext())


def test_nice_max():
    assert [nice_max(v) for v in (0, 0.31, 0.5, 0.51, 1.7, 7)] == [1.0, 0.5, 0.5, 1.0, 2.0, 10.0]


def test_a_curve_is_placed_against_the_random_band_at_every_k():
    from django.utils import translation

    from engine.templatetags.faithfulness import _band

    random = {"mean": [0.1, 0.2, 0.3], "sd": [0.05, 0.05, 0.05]}
    with translation.override("en"):
        assert _band([0.5, 0.6, 0.7], random) == "above the random band at every k"
        # above only at the last point: the curve of the rollout in the screenshot
        assert _band([0.1, 0.2, 0.5], random) == "above the random band at 1 of 3 points"
        assert _band([0.12, 0.22, 0.3], random).startswith("inside the random band")
        assert _band([0.0, 0.1, 0.2], random).startswith("below the random band")
    with translation.override("ja"):
        assert _band([0.1, 0.2, 0.5], random) == "3 点のうち 1 点でランダムの帯より上"
