"""Micro-batching: several runs computed as one padded batch give each run what it gets alone.

At the model level (direct calls) the arrays agree within 1e-5; through a real worker the stored
arrays (float16, see ``engine.arrays``) agree with the same arrays computed alone and packed the
same way, and the rows say that they really were computed together (``batch_size``).
"""

import numpy as np
import pytest

from engine.transformer import AttentionModel, GPTModel
from engine.transformer.analysis import cosine_similarity

TOL = {"rtol": 1e-5, "atol": 1e-5}
ENCODER_TEXTS = [
    "The cat sat on the mat.",
    "Attention is all you need, said the paper that started it.",
    "Tea.",
    "The animal didn't cross the street because it was too tired to walk any further today.",
]
PAIR = ("I love tea.", "Tea is my favourite drink of all the drinks in the world.")
GPT_TEXTS = ["注意機構は", "Attention is how a model reads", "A transformer reads every token of the sentence at once."]


@pytest.fixture(scope="module")
def encoder():
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def gpt():
    return GPTModel.load(device="cpu")


def assert_same_encoder(batched, alone):
    assert batched.tokens.ids == alone.tokens.ids
    for name in ("weights", "scores", "queries", "keys", "values", "embedding"):
        got, want = getattr(batched, name), getattr(alone, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, **TOL, err_msg=name)


def test_encoder_batch_equals_each_text_alone(encoder):
    texts = [*ENCODER_TEXTS, *PAIR]
    batched = encoder.run_batch(texts, keep_qkv=True)
    assert len({len(result) for result in batched}) > 2  # really different lengths: padding
    for text, result in zip(texts, batched, strict=True):
        assert_same_encoder(result, encoder.run(text, keep_qkv=True))
    first, second, similarity = encoder.run_pair(*PAIR, keep_qkv=True)
    assert_same_encoder(batched[-2], first)
    assert_same_encoder(batched[-1], second)
    batched_similarity = cosine_similarity(batched[-2].embedding, batched[-1].embedding)
    assert batched_similarity == pytest.approx(similarity, abs=1e-5)


def test_gpt_batch_equals_each_text_alone(gpt):
    batched = gpt.run_batch(GPT_TEXTS, keep_qkv=True)
    assert len({len(result) for result in batched}) == len(GPT_TEXTS)
    for text, result in zip(GPT_TEXTS, batched, strict=True):
        alone = gpt.run(text, keep_qkv=True)
        np.testing.assert_array_equal(result.input_ids, alone.input_ids)
        for name in ("weights", "scores", "queries", "keys", "values"):
            np.testing.assert_allclose(
                getattr(result, name), getattr(alone, name), **TOL, err_msg=name
            )
        for got_rows, want_rows in ((result.predictions, alone.predictions), (result.lens, alone.lens)):
            assert [[c[0] for c in row] for row in got_rows] == [[c[0] for c in row] for row in want_rows]
            np.testing.assert_allclose(
                [[c[2] for c in row] for row in got_rows],
                [[c[2] for c in row] for row in want_rows],
                **TOL,
            )
