"""The GPT's front door: the causal mask, batches, predictions, the logit lens, generation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.transformer import GPTModel
from engine.transformer.attention import causal_bias
from engine.transformer.bpe import EOT

PROMPTS = ["自己注意では、各トークンが", "Attention is", "", "ソフトマックス関数は"]


@pytest.fixture(scope="module")
def gpt() -> GPTModel:
    return GPTModel.load(device="cpu")


def test_causal_bias_is_minus_infinity_strictly_above_the_diagonal():
    bias = causal_bias(5)
    assert bias.shape == (1, 1, 5, 5)
    upper = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert torch.isneginf(bias[0, 0][upper]).all()
    assert (bias[0, 0][~upper] == 0).all()
    assert causal_bias(3, dtype=torch.float64).dtype == torch.float64


def test_weights_above_the_diagonal_are_exactly_zero(gpt):
    result = gpt.run("注意機構は、入力のどこを見るかを学習します。")
    length = len(result)
    upper = np.triu(np.ones((length, length), dtype=bool), k=1)
    assert result.weights.shape == (gpt.config.n_layer, gpt.config.n_head, length, length)
    assert (result.weights[..., upper] == 0.0).all()
    assert np.isneginf(result.masked_scores[..., upper]).all()
    # Below and on the diagonal the mask changes nothing; the raw scores are finite everywhere.
    assert np.array_equal(result.masked_scores[..., ~upper], result.scores[..., ~upper])
    assert np.isfinite(result.scores).all()
    assert np.abs(result.weights.sum(-1) - 1.0).max() <= 1e-5
    assert result.weights[..., 0, 0].min() == pytest.approx(1.0)  # the first sees only itself


def test_a_later_token_does_not_change_earlier_positions(gpt):
    a = gpt.encode("The cat sat on the mat.")
    b = gpt.encode("The cat sat on the rug!")
    same = next(i for i, (x, y) in enumerate(zip(a.ids, b.ids, strict=True)) if x != y)
    assert same >= 4
    with torch.inference_mode():
        out_a = gpt.decoder(torch.tensor([a.ids]))
        out_b = gpt.decoder(torch.tensor([b.ids]))
    assert torch.equal(out_a.logits[:, :same], out_b.logits[:, :same])
    for ha, hb in zip(out_a.hidden_states, out_b.hidden_states, strict=True):
        assert torch.equal(ha[:, :same], hb[:, :same])
    assert not torch.equal(out_a.logits[:, same], out_b.logits[:, same])


def test_predictions_and_lens(gpt):
    text = "自己注意では、各トークンが"
    result = gpt.run(text)
    assert len(result.predictions) == len(result) == len(result.input_ids)
    assert result.input_ids.tolist() == result.tokens.ids
    for top in result.predictions:
        assert len(top) == 5
        ps = [p for _, _, p in top]
        assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1 + 1e-6
        assert all(isinstance(i, int) and isinstance(t, str) for i, t, _ in top)
    # The probabilities are the model's: they agree with a softmax of its logits.
    with torch.inference_mode():
        logits = gpt.decoder(torch.tensor([result.tokens.ids])).logits[0, -1]
    probs = torch.softmax(logits, -1)
    best = int(probs.argmax())
    assert result.predictions[-1][0][0] == best
    assert result.predictions[-1][0][2] == pytest.approx(float(probs[best]), abs=1e-6)
    # One logit-lens row per layer; the last layer's is the model's own prediction.
    assert len(result.lens) == gpt.config.n_layer
    assert [i for i, _, _ in result.lens[-1]] == [i for i, _, _ in result.predictions[-1]]
    for (_, _, p_lens), (_, _, p_pred) in zip(result.lens[-1], result.predictions[-1], strict=True):
        assert p_lens == pytest.approx(p_pred, abs=1e-5)


def test_keep_qkv_shapes(gpt):
    result = gpt.run("Queries, keys and values.", keep_qkv=True)
    shape = (gpt.config.n_layer, gpt.config.n_head, len(result), gpt.config.head_size)
    assert result.queries.shape == result.keys.shape == result.values.shape == shape
    scores = result.queries @ result.keys.transpose(0, 1, 3, 2) / math.sqrt(shape[-1])
    assert np.abs(scores - result.scores).max() <= 1e-4
    assert gpt.run("x").queries is None


def test_run_batch_equals_single_runs(gpt):
    texts = ["短い。", "This second text is quite a bit longer than the first one is.", "", "猫"]
    batch = gpt.run_batch(texts, keep_qkv=True)
    assert len(batch) == len(texts)
    for text, result in zip(texts, batch, strict=True):
        alone = gpt.run(text, keep_qkv=True)
        assert result.tokens == alone.tokens
        for name in ("weights", "scores", "masked_scores", "queries", "keys", "values"):
            ours, single = getattr(result, name), getattr(alone, name)
            assert ours.shape == single.shape, name
            finite = np.isfinite(single)
            assert np.array_equal(finite, np.isfinite(ours)), name
            assert np.abs(ours[finite] - single[finite]).max(initial=0) <= 1e-5, name
        for top_batch, top_alone in zip(result.predictions, alone.predictions, strict=True):
            assert [i for i, _, _ in top_batch] == [i for i, _, _ in top_alone]
            assert np.allclose([p for *_, p in top_batch], [p for *_, p in top_alone], atol=1e-5)
        assert [[i for i, _, _ in row] for row in result.lens] == [
            [i for i, _, _ in row] for row in alone.lens
        ]
    assert gpt.run_batch([]) == []


def test_too_long_input_is_refused(gpt):
    with pytest.raises(ValueError, match="context"):
        gpt.run("あい" * gpt.max_pieces * 2)


def test_greedy_generation_is_deterministic(gpt):
    first = gpt.generate("自己注意では", 12)
    second = gpt.generate("自己注意では", 12)
    assert first.ids == second.ids and first.text == second.text
    assert first.seed is None and first.stop_reason in ("length", "eos")
    assert 1 <= len(first.new_tokens) <= 12
    assert first.text == gpt.decode(first.ids)
    assert first.text.startswith("自己注意では")
    assert first.continuation == gpt.decode(first.ids[len(first.prompt) :])
    # Greedy = the top prediction of a run on the text so far, token after token.
    ids = list(first.prompt.ids)
    for token_id, text, p in first.new_tokens:
        with torch.inference_mode():
            logits = gpt.decoder(torch.tensor([ids])).logits[0, -1]
        probs = torch.softmax(logits, -1)
        assert token_id == int(probs.argmax())
        assert p == pytest.approx(float(probs[token_id]), abs=1e-6)
        assert text == gpt.tokenizer.piece_text(token_id)
        ids.append(token_id)


def test_generation_attention_covers_everything_before_each_new_token(gpt):
    generation = gpt.generate("Attention", 5)
    assert len(generation.attention) == len(generation.new_tokens)
    for k, attention in enumerate(generation.attention):
        assert attention.shape == (
            gpt.config.n_layer,
            gpt.config.n_head,
            len(generation.prompt) + k,
        )
        assert np.abs(attention.sum(-1) - 1.0).max() <= 1e-5
    # The first one is the last row of the prompt's own attention.
    run = gpt.run("Attention")
    assert np.abs(generation.attention[0] - run.weights[:, :, -1, :]).max() <= 1e-5


def test_sampling_with_a_seed_repeats_and_respects_top_k(gpt):
    kwargs = {"temperature": 1.0, "top_k": 3}
    a = gpt.generate("トークンは", 16, seed=7, **kwargs)
    b = gpt.generate("トークンは", 16, seed=7, **kwargs)
    assert a.ids == b.ids and a.seed == 7
    others = [gpt.generate("トークンは", 16, seed=seed, **kwargs).ids for seed in (8, 9, 10)]
    assert any(ids != a.ids for ids in others)  # the seed matters
    # Every sampled piece is among the model's 3 most probable at its step.
    ids = list(a.prompt.ids)
    for token_id, _, _ in a.new_tokens:
        with torch.inference_mode():
            logits = gpt.decoder(torch.tensor([ids])).logits[0, -1]
        assert token_id in torch.topk(logits, 3).indices.tolist()
        ids.append(token_id)
    # top_k=1 is greedy whatever the temperature; a drawn seed is reported and repeatable.
    assert gpt.generate("トークンは", 8, temperature=2.0, top_k=1, seed=3).ids == (
        gpt.generate("トークンは", 8).ids
    )
    drawn = gpt.generate("トークンは", 8, temperature=0.9)
    assert isinstance(drawn.seed, int) and 0 <= drawn.seed < 2**31
    assert gpt.generate("トークンは", 8, temperature=0.9, seed=drawn.seed).ids == drawn.ids


def test_low_temperature_sampling_is_nearly_greedy(gpt):
    greedy = gpt.generate("Softmax turns", 10)
    cold = gpt.generate("Softmax turns", 10, temperature=1e-4, seed=1)
    assert cold.ids == greedy.ids


def test_generation_stops_at_the_context_and_reports_progress(gpt):
    seen = []
    text = "あ" * (gpt.max_pieces - 4)
    room = gpt.max_pieces - gpt.count_pieces(text)
    assert room >= 3
    # Asked for more than fits: it ends at <|endoftext|> or with every position used.
    generation = gpt.generate(text, room + 5, on_token=lambda *entry: seen.append(entry))
    assert seen == generation.new_tokens
    assert len(generation.ids) <= gpt.max_pieces
    if generation.stop_reason == "context":
        assert len(generation.ids) == gpt.max_pieces
    else:
        assert generation.stop_reason == "eos" and generation.new_tokens[-1][1] == EOT
    assert gpt.generate("x", 0).new_tokens == []


def test_bad_generation_settings_are_refused(gpt):
    for kwargs in ({"temperature": -1}, {"top_k": -1}):
        with pytest.raises(ValueError):
            gpt.generate("x", 3, **kwargs)
    with pytest.raises(ValueError):
        gpt.generate("x", -1)
