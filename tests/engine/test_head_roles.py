"""Head roles on constructed attention matrices: each pure pattern gets its label and score."""

import numpy as np
import pytest

from engine.transformer import roles
from engine.transformer.roles import head_roles, is_punctuation

# [CLS] the cat , sat on it . [SEP]
TEXTS = ["[CLS]", "the", "cat", ",", "sat", "on", "it", ".", "[SEP]"]
SPECIAL = [True] + [False] * 7 + [True]
T = len(TEXTS)


def one_hot_rows(columns) -> np.ndarray:
    matrix = np.zeros((len(columns), len(columns)))
    for row, column in enumerate(columns):
        matrix[row, column] = 1.0
    return matrix


def label(matrix, *, causal=False, texts=TEXTS, special=SPECIAL):
    [result] = head_roles(matrix[None, None], texts=texts, special=special, causal=causal)
    return result.role, result.score


def test_a_pure_previous_token_head_is_previous_with_score_one():
    # row 0 ([CLS]) has no token before it: it looks at itself and is not counted for the rule
    assert label(one_hot_rows([0, *range(T - 1)])) == ("previous", 1.0)


def test_next_self_and_the_two_sinks():
    assert label(one_hot_rows([*range(1, T), T - 1])) == ("next", 1.0)
    assert label(np.eye(T)) == ("self", 1.0)
    assert label(one_hot_rows([0] * T)) == ("cls", 1.0)
    assert label(one_hot_rows([T - 1] * T)) == ("sep", 1.0)


def test_punctuation_head_sums_over_every_punctuation_token():
    matrix = np.zeros((T, T))
    matrix[:, 3] = matrix[:, 7] = 0.5  # "," and "."
    assert label(matrix) == ("punctuation", 1.0)


def test_uniform_attention_is_broad_and_a_fixed_skip_pattern_is_other():
    role, score = label(np.full((T, T), 1 / T))
    assert role == "broad" and score == pytest.approx(1.0)
    skip = one_hot_rows([(i + 3) % T for i in range(T)])  # three tokens ahead, wrapping
    role, score = label(skip)
    assert role == "other"
    # the largest rule share: punctuation, which rows 0 (→ ",") and 4 (→ ".") look at
    assert score == pytest.approx(1 - 2 / T, abs=1e-4)


def test_below_the_threshold_a_rule_does_not_name_the_head():
    share = roles.SHARE_THRESHOLD - 0.05
    matrix = np.eye(T) * share
    matrix[np.arange(T), (np.arange(T) + 3) % T] += 1 - share  # the rest on a far token
    assert label(matrix)[0] == "other"
    matrix = np.eye(T) * (roles.SHARE_THRESHOLD + 0.05)
    matrix[np.arange(T), (np.arange(T) + 3) % T] += 1 - (roles.SHARE_THRESHOLD + 0.05)
    assert label(matrix) == ("self", pytest.approx(roles.SHARE_THRESHOLD + 0.05))


def test_the_layer_and_head_order_and_a_mixed_model():
    patterns = [np.eye(T), one_hot_rows([0] * T), np.full((T, T), 1 / T)]
    weights = np.stack([np.stack(patterns), np.stack(patterns[::-1])])  # [2, 3, T, T]
    result = head_roles(weights, texts=TEXTS, special=SPECIAL, causal=False)
    assert [(r.layer, r.head, r.role) for r in result] == [
        (0, 0, "self"),
        (0, 1, "cls"),
        (0, 2, "broad"),
        (1, 0, "broad"),
        (1, 1, "cls"),
        (1, 2, "self"),
    ]
    assert result[1].as_dict() == {"layer": 0, "head": 1, "role": "cls", "score": 1.0}


# --- the GPT: causal rows, <|endoftext|> first, nothing after ------------------------------------

GPT_TEXTS = ["<|endoftext|>", "自己", "注意", "は", "、", "各", "トークン", "。"]
GPT_SPECIAL = [True] + [False] * 7
G = len(GPT_TEXTS)


def gpt_label(matrix):
    return label(matrix, causal=True, texts=GPT_TEXTS, special=GPT_SPECIAL)


def lower_uniform(size: int) -> np.ndarray:
    matrix = np.tril(np.ones((size, size)))
    return matrix / matrix.sum(axis=1, keepdims=True)


def test_the_gpt_first_token_sink_is_first_never_cls():
    assert gpt_label(one_hot_rows([0] * G)) == ("first", 1.0)
    assert gpt_label(one_hot_rows([0, *range(G - 1)])) == ("previous", 1.0)
    assert gpt_label(np.eye(G)) == ("self", 1.0)


def test_the_gpt_row_zero_is_left_out_and_causal_uniform_is_broad():
    # row 0 can only see itself (weight 1 on itself and on the first token): not counted
    role, score = gpt_label(lower_uniform(G))
    assert role == "broad" and score == pytest.approx(1.0)
    punctuation = np.zeros((G, G))
    punctuation[0, 0] = 1.0
    for row in range(1, G):  # "、" (4) and "。" (7) once they are visible, else the first token
        seen = [c for c in (4, 7) if c <= row] or [0]
        punctuation[row, seen] = 1 / len(seen)
    assert gpt_label(punctuation)[0] in {"punctuation", "first"}


def test_the_gpt_never_gets_a_role_it_cannot_have():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4, 8, G, G))
    logits = np.where(np.tril(np.ones((G, G))) > 0, logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    result = head_roles(weights, texts=GPT_TEXTS, special=GPT_SPECIAL, causal=True)
    assert len(result) == 32
    assert {r.role for r in result} <= set(roles.DECODER_RULES) | {"broad", "other"}
    assert all(0.0 <= r.score <= 1.0 for r in result)


def test_punctuation_is_read_from_the_token_text():
    assert all(is_punctuation(t) for t in (".", ",", "'", "。", "、", "「", " !", "?!"))
    assert not any(is_punctuation(t) for t in ("", " ", "cat", "a.", "1", "##s", "トークン"))


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="tokens"):
        head_roles(np.eye(T)[None, None], texts=TEXTS[:-1], special=SPECIAL, causal=False)
