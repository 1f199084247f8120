"""Attention rollout, word-level merging, hiding specials, embeddings: the invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.transformer import AttentionModel
from engine.transformer.analysis import (
    cosine_similarity,
    hide_special,
    rollout,
    word_groups,
    word_level,
)
from engine.transformer.pooling import sentence_embedding


def random_attention(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> AttentionModel:
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def result(model):
    # "transformer" -> transform ##er, "unbelievably" -> several pieces: real multi-piece words.
    return model.run("The Transformer attends unbelievably well, doesn't it?")


def test_rollout_rows_sum_to_one_synthetic():
    weights = random_attention((6, 12, 9, 9))
    rolled = rollout(weights)
    assert rolled.shape == (9, 9)
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0, atol=1e-6)
    steps = rollout(weights, all_layers=True)
    assert steps.shape == (6, 9, 9)
    np.testing.assert_allclose(steps.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(steps[-1], rolled)


def test_rollout_follows_abnar_and_zuidema():
    weights = random_attention((2, 3, 4, 4), seed=1)
    eye = np.eye(4)
    layers = []
    for layer in weights:
        mixed = layer.mean(axis=0) + eye
        layers.append(mixed / mixed.sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(rollout(weights), layers[1] @ layers[0], atol=1e-6)
    # A list of per-layer [H, T, T] arrays works too.
    np.testing.assert_allclose(rollout(list(weights)), layers[1] @ layers[0], atol=1e-6)


def test_rollout_of_real_weights(result):
    rolled = rollout(result.weights)
    assert rolled.shape == (len(result.tokens),) * 2
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0, atol=1e-5)
    assert (rolled >= 0).all()


def test_word_groups():
    assert word_groups([None, 0, 1, 1, 2, None]) == [[0], [1], [2, 3], [4], [5]]


def test_word_level_sums_columns_and_averages_rows(result):
    tokens = result.tokens
    merged = word_level(
        result.weights, tokens.word_ids, text=tokens.text, offsets=tokens.offsets,
        pieces=tokens.pieces,
    )  # fmt: skip
    groups = merged.groups
    assert any(len(group) > 1 for group in groups), "the sentence must have a multi-piece word"
    assert merged.weights.shape == (6, 12, len(groups), len(groups))
    np.testing.assert_allclose(merged.weights.sum(axis=-1), 1.0, atol=1e-5)

    pieces = result.weights
    for word, group in enumerate(groups):
        # Column of a word = sum of its pieces' columns (before averaging rows) ...
        single_row_groups = [g for g in groups if len(g) == 1]
        for row_group in single_row_groups:
            row = groups.index(row_group)
            expected = pieces[..., row_group[0], group].sum(axis=-1)
            np.testing.assert_allclose(merged.weights[..., row, word], expected, atol=1e-6)
        # ... and the row of a word is the average of its pieces' rows.
        expected_row = np.stack(
            [pieces[..., group, :][..., other].sum(axis=-1) for other in groups], axis=-1
        ).mean(axis=-2)
        np.testing.assert_allclose(merged.weights[..., word, :], expected_row, atol=1e-6)

    assert merged.labels[0] == "[CLS]"
    assert merged.labels[-1] == "[SEP]"
    assert "Transformer" in merged.labels  # the learner's spelling, not "transform ##er"
    assert "unbelievably" in merged.labels
    assert "doesn" in merged.labels


def test_word_level_labels_without_text():
    weights = random_attention((5, 5))
    merged = word_level(weights, [None, 0, 0, 1, None], pieces=["[CLS]", "a", "##b", "c", "[SEP]"])
    assert merged.labels == ["[CLS]", "ab", "c", "[SEP]"]
    assert word_level(weights, [None, 0, 0, 1, None]).labels[1:3] == ["w1", "w2"]
    with pytest.raises(ValueError):
        word_level(weights, [None, 0, None])


def test_hide_special_renormalises(result):
    special = result.tokens.special
    hidden = hide_special(result.weights, special)
    kept = len(special) - sum(special)
    assert hidden.shape == (6, 12, kept, kept)
    np.testing.assert_allclose(hidden.sum(axis=-1), 1.0, atol=1e-5)
    # Proportions between the real words are unchanged.
    keep = [i for i, flag in enumerate(special) if not flag]
    original = result.weights[..., keep, :][..., :, keep]
    ratio = hidden / original
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[..., :1], ratio.shape), rtol=1e-4)


def test_hide_special_synthetic():
    weights = random_attention((4, 4), seed=3)
    hidden = hide_special(weights, [True, False, False, True])
    expected = weights[1:3, 1:3] / weights[1:3, 1:3].sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(hidden, expected, atol=1e-6)


def test_sentence_embedding_ignores_padding():
    hidden = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = sentence_embedding(hidden, mask)
    expected = torch.nn.functional.normalize(hidden[0, :3].mean(dim=0), dim=0)
    torch.testing.assert_close(pooled[0], expected)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(sentence_embedding(hidden[1]), pooled[1])


def test_cosine_similarity():
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine_similarity(torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])) == pytest.approx(
        -1.0
    )
    assert cosine_similarity([0.0, 0.0], [1.0, 0.0]) == 0.0


def test_run_result_trace_is_consistent(model):
    result = model.run("Queries meet keys.", keep_qkv=True)
    layers, heads, length = 6, 12, len(result.tokens)
    assert result.weights.shape == result.scores.shape == (layers, heads, length, length)
    assert result.queries.shape == result.keys.shape == (layers, heads, length, 32)
    assert result.values.shape == (layers, heads, length, 32)
    assert result.embedding.shape == (384,)
    assert result.device == "cpu"
    assert result.elapsed_ms > 0
    # scores = Q K^T / sqrt(d), raw; weights = softmax(scores).
    scores = result.queries @ np.swapaxes(result.keys, -1, -2) / np.sqrt(32)
    np.testing.assert_allclose(result.scores, scores, atol=1e-4)
    softmax = np.exp(result.scores - result.scores.max(axis=-1, keepdims=True))
    softmax /= softmax.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(result.weights, softmax, atol=1e-5)
    assert model.run("Queries meet keys.").queries is None


def test_masked_scores_keep_raw_scores_untouched(model):
    _, output, mask = model.trace(["Short.", "A noticeably longer second sentence here."])
    trace = output.layers[0]
    real = int(mask[0].sum())
    assert torch.isfinite(trace.scores).all()  # raw scores are never masked
    assert (trace.masked_scores[0, :, :, real:] < -1e30).all()
    torch.testing.assert_close(trace.masked_scores[0, :, :, :real], trace.scores[0, :, :, :real])
    assert trace.weights.data_ptr() == output.weights[0].data_ptr()  # written in place


def test_too_long_input_is_refused(model):
    with pytest.raises(ValueError, match="positions"):
        model.run("word " * 600)


def test_library_leaves_thread_count_alone():
    before = torch.get_num_threads()
    AttentionModel.load(device="cpu").run("threads")
    assert torch.get_num_threads() == before
