"""Norm-based attention and the similarity split, checked against direct computations.

- ``||alpha_ij f_h(x_j)||`` with ``f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h`` computed per head from
  the loaded weights and the layer's input, in float64, equals what the models return.
- The token-pair split of a pair's cosine adds up to the model's similarity; so do its word
  merge and the last per-layer similarity.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.transformer import AttentionModel, GPTModel
from engine.transformer.contributions import (
    layer_similarity,
    merge_to_words,
    norm_based,
    renormalised,
    similarity_split,
    sink_shares,
    strongest_pairs,
)

PAIR = ("The cat sat on the mat.", "A kitten was sleeping on an unbelievably soft rug.")


@pytest.fixture(scope="module")
def encoder() -> AttentionModel:
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def gpt() -> GPTModel:
    return GPTModel.load(device="cpu")


def direct_norm_matrix(attention, layer_input: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    """``||alpha_ij f_h(x_j)||`` for every head, written out per head in float64."""
    x = layer_input.double()  # [T, D]
    w_v = attention.value.weight.double()  # [D, D], [in, out]
    b_v = attention.value.bias.double()
    w_o = attention.output.weight.double()
    d = attention.head_size
    heads = []
    for h in range(attention.num_heads):
        values = x @ w_v[:, h * d : (h + 1) * d] + b_v[h * d : (h + 1) * d]  # [T, d]
        transformed = values @ w_o[h * d : (h + 1) * d, :]  # [T, D]
        alpha = torch.as_tensor(weights[h], dtype=torch.float64)  # [T, T]
        vectors = alpha[:, :, None] * transformed[None, :, :]  # [T, T, D]: alpha_ij f(x_j)
        heads.append(torch.linalg.vector_norm(vectors, dim=-1).numpy())
    return np.stack(heads)


def test_encoder_norm_based_attention_equals_a_direct_computation(encoder):
    text = PAIR[1]
    result = encoder.run(text)
    _tokens, output, _mask = encoder.trace([text])
    assert result.value_norms.shape == result.weights.shape[:3]
    for layer, module in enumerate(encoder.encoder.layers):
        expected = direct_norm_matrix(
            module.attention, output.hidden_states[layer][0], result.weights[layer]
        )
        ours = norm_based(result.weights[layer], result.value_norms[layer])
        np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=1e-5)


def test_gpt_norm_based_attention_equals_a_direct_computation(gpt):
    text = "自己注意では、各トークンが"
    result = gpt.run(text)
    _tokens, output, _mask = gpt.trace([text])
    assert result.value_norms.shape == result.weights.shape[:3]
    for layer, block in enumerate(gpt.decoder.blocks):
        layer_input = block.ln_1(output.hidden_states[layer])[0]  # pre-LN: the branch's input
        expected = direct_norm_matrix(block.attention, layer_input, result.weights[layer])
        ours = norm_based(result.weights[layer], result.value_norms[layer])
        np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=1e-5)
        assert np.all(np.triu(ours[0], k=1) == 0)  # nothing flows from the future


def test_batched_norms_equal_single_runs(encoder, gpt):
    pair = encoder._run_batch(list(PAIR), keep_qkv=False)
    for text, batched in zip(PAIR, pair, strict=True):
        np.testing.assert_allclose(batched.value_norms, encoder.run(text).value_norms, atol=1e-4)
    texts = ["Attention is", "The softmax function turns scores into weights"]
    for text, batched in zip(texts, gpt.run_batch(texts), strict=True):
        np.testing.assert_allclose(batched.value_norms, gpt.run(text).value_norms, atol=1e-4)


def test_the_similarity_split_adds_up_to_the_models_cosine(encoder):
    first, second, similarity = encoder.run_pair(*PAIR)
    split = similarity_split(first.last_hidden, second.last_hidden)
    assert split.shape == (len(first), len(second))
    assert abs(split.sum() - similarity) < 1e-6
    words, rows, cols = merge_to_words(split, first.tokens.word_ids, second.tokens.word_ids)
    assert words.shape == (len(rows), len(cols)) and len(cols) < len(second)  # "unbelievably"
    assert abs(words.sum() - similarity) < 1e-6
    per_layer = layer_similarity(first.layer_means, second.layer_means)
    assert len(per_layer) == encoder.config.num_layers + 1
    assert abs(per_layer[-1] - similarity) < 1e-6
    assert per_layer[0] != pytest.approx(per_layer[-1])  # the layers change it


def test_a_sentence_with_itself_splits_to_one(encoder):
    first, second, similarity = encoder.run_pair("Tea is lovely.", "Tea is lovely.")
    split = similarity_split(first.last_hidden, second.last_hidden)
    assert similarity == pytest.approx(1.0, abs=1e-6) and split.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(split, split.T, atol=1e-9)


def test_split_and_strongest_pairs_on_constructed_vectors():
    first = np.array([[1.0, 0.0], [0.0, 1.0]])
    second = np.array([[1.0, 0.0], [-1.0, 2.0], [0.0, 1.0]])
    split = similarity_split(first, second)
    a, b = first.mean(0), second.mean(0)
    assert split.sum() == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert split[0, 1] < 0  # h_0 . g_1 = -1
    top = strongest_pairs(split, count=2)
    assert [abs(c) for *_ij, c in top] == sorted((abs(c) for *_ij, c in top), reverse=True)
    assert top[0][:2] == (1, 1)  # h_1 . g_1 = 2, the largest in magnitude
    merged, _rows, cols = merge_to_words(split, [None, None], [0, 0, None])
    assert merged.shape == (2, 2) and cols == [[0, 1], [2]]
    assert merged.sum() == pytest.approx(split.sum())


def test_sink_shares_on_constructed_matrices():
    weights = np.zeros((1, 1, 3, 3))
    weights[0, 0, :, 0] = 0.8  # everyone looks at the first token...
    weights[0, 0, :, 1] = 0.2
    norms = np.array([[[0.1, 1.0, 1.0]]])  # ...whose transformed value is small
    ((weight_share, norm_share),) = sink_shares(weights, norms, [0])
    assert weight_share == pytest.approx(0.8)
    assert norm_share == pytest.approx(0.08 / (0.08 + 0.2))
    np.testing.assert_allclose(renormalised(norm_based(weights, norms)).sum(-1), 1.0)
