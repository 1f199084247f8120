"""Our GPT against Hugging Face's ``GPT2LMHeadModel`` loading the committed checkpoint unchanged.

Logits, the attention weights of every layer and every hidden state agree within 1e-4 on 20+
prompts in Japanese and English, from one piece up to the full context, and on a padded batch.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from engine.transformer import GPTModel
from engine.transformer.paths import GPT_CHECKPOINT_DIR, gpt_model_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the reference must never reach for the network

TOLERANCE = 1e-4

PROSE_JA = (
    "自己注意では、各トークンがクエリ、キー、バリューの三つのベクトルを作ります。"
    "クエリとキーの内積をソフトマックスで重みに変え、バリューの加重平均をとります。"
    "デコーダーでは因果マスクによって、各位置は自分より前のトークンしか見られません。"
    "この仕組みを何層も重ねることで、離れた単語のあいだにも情報が流れます。"
)
PROSE_EN = (
    "A decoder predicts the next token at every position. The causal mask hides the future, "
    "so position five can only look at positions zero to five. Stacking blocks of attention "
    "and feed-forward layers lets information flow from earlier words to later ones, and "
    "the final layer norm and the tied embedding turn the last hidden state into logits."
)

PROMPTS = [
    "",  # nothing but <|endoftext|>
    "a",
    "猫",
    "Attention is all you need.",
    "自己注意とは何ですか?",
    "The animal didn't cross the street because it was too tired.",
    "トークン化は文章を小さな単位に分けます。",
    "東京の鰻丼は美味しいです",
    "Mixing English and 日本語 in one sentence は難しい?",
    "I love pizza 🍕 and coffee ☕!",
    "Softmax turns scores into probabilities that add up to one.",
    "位置エンコーディングがなければ、語順は分かりません。",
    "  spaces   and\ttabs\nnewlines  ",
    "In 2017, Vaswani et al. introduced the Transformer (65M parameters).",
    "マルチヘッド注意は、いくつもの注意を並べて計算します。",
    "鱶鰭と龘靐",  # rare kanji, split inside characters
    "def f(x): return x**2 + 1",
    "Query, key, value: Q K^T / sqrt(d_k).",
    PROSE_JA[:60],
    PROSE_EN[:200],
]


@pytest.fixture(scope="module")
def gpt() -> GPTModel:
    return GPTModel.load(device="cpu")


@pytest.fixture(scope="module")
def reference(gpt):
    from transformers import GPT2LMHeadModel

    # The committed folder, unchanged: no conversion step between our files and theirs.
    model = GPT2LMHeadModel.from_pretrained(str(gpt.model_dir), attn_implementation="eager")
    return model.eval()


def text_with_pieces(gpt: GPTModel, prose: str, pieces: int) -> str:
    """The longest prefix of ``prose`` (repeated as needed) with at most ``pieces`` pieces."""
    source = prose * 8
    low, high = 0, len(source)
    while low < high:  # binary search on the prefix length
        middle = (low + high + 1) // 2
        if gpt.count_pieces(source[:middle]) <= pieces:
            low = middle
        else:
            high = middle - 1
    return source[:low]


@pytest.fixture(scope="module")
def prompts(gpt) -> list[str]:
    full = gpt.max_pieces
    return [
        *PROMPTS,
        text_with_pieces(gpt, PROSE_JA, full),  # the whole context, Japanese
        text_with_pieces(gpt, PROSE_EN, full),  # the whole context, English
        text_with_pieces(gpt, PROSE_EN + PROSE_JA, full // 2),
    ]


def reference_forward(reference, ids: torch.Tensor, mask: torch.Tensor | None = None):
    with torch.inference_mode():
        out = reference(
            input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True
        )
    layers = reference.config.n_layer
    # transformers 5 returns an EMPTY tuple of attentions with SDPA: make sure we compare.
    assert len(out.attentions) == layers
    assert len(out.hidden_states) == layers + 1
    return out


def test_the_checkpoint_is_committed_and_complete():
    if not os.environ.get("ENGINE_GPT_MODEL_DIR"):
        assert gpt_model_dir() == GPT_CHECKPOINT_DIR  # the committed files are the default
    names = {path.name for path in GPT_CHECKPOINT_DIR.iterdir()}
    expected = {"config.json", "model.safetensors", "tokenizer.json", "training.json"}
    assert expected | {"loss.svg", "MODEL_CARD.md"} <= names
    size = sum(path.stat().st_size for path in GPT_CHECKPOINT_DIR.iterdir())
    assert size <= 25 * 1024 * 1024
    config = json.loads((GPT_CHECKPOINT_DIR / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["activation_function"] == "gelu_new"


def test_config_is_a_gpt2_config(gpt):
    from transformers import GPT2Config

    config = GPT2Config.from_pretrained(str(gpt.model_dir))
    ours = gpt.config
    assert (config.n_layer, config.n_head, config.n_embd) == (
        ours.n_layer,
        ours.n_head,
        ours.n_embd,
    )
    assert (config.n_positions, config.vocab_size) == (ours.n_positions, ours.vocab_size)
    assert config.layer_norm_epsilon == ours.layer_norm_epsilon
    assert config.bos_token_id == config.eos_token_id == gpt.tokenizer.eot_id
    assert 1_000_000 <= sum(p.numel() for p in gpt.decoder.parameters()) <= 5_000_000


def test_there_are_enough_prompts_in_both_languages_up_to_the_context(gpt, prompts):
    assert len(prompts) >= 20
    lengths = [gpt.count_pieces(text) for text in prompts]
    assert min(lengths) == 1 and max(lengths) == gpt.max_pieces
    japanese = [t for t in prompts if any("\u3040" <= ch <= "\u9fff" for ch in t)]
    assert len(japanese) >= 8 and len(prompts) - len(japanese) >= 8


@pytest.mark.parametrize("index", range(len(PROMPTS) + 3))
def test_matches_hugging_face_gpt2(gpt, reference, prompts, index):
    text = prompts[index]
    tokens_list, output, _ = gpt.trace([text])
    ids = torch.tensor([tokens_list[0].ids])
    ref = reference_forward(reference, ids)

    assert output.logits.shape == ref.logits.shape
    assert (output.logits - ref.logits).abs().max().item() <= TOLERANCE
    for layer, theirs in enumerate(ref.attentions):
        ours = output.layers[layer].weights
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() <= TOLERANCE, layer
    assert len(output.hidden_states) == len(ref.hidden_states)
    for layer, theirs in enumerate(ref.hidden_states):
        diff = (output.hidden_states[layer] - theirs).abs().max().item()
        assert diff <= TOLERANCE, (layer, diff)

    # The numpy result of run() is the same thing.
    result = gpt.run(text)
    expected = torch.stack(ref.attentions)[:, 0].numpy()
    assert result.weights.dtype == np.float32 and result.weights.shape == expected.shape
    assert np.abs(result.weights - expected).max() <= TOLERANCE
    probs = torch.softmax(ref.logits[0], -1)
    top = probs.topk(5, dim=-1)
    for position, candidates in enumerate(result.predictions):
        assert [i for i, _, _ in candidates] == top.indices[position].tolist()
        assert np.allclose([p for *_, p in candidates], top.values[position], atol=TOLERANCE)


def test_padded_batch_matches_hugging_face(gpt, reference):
    texts = ["短い文。", "This second sentence is quite a bit longer than the first one.", ""]
    tokens_list, output, mask = gpt.trace(texts)
    assert mask.tolist()[0].count(0) > 0  # the padding mask is real
    ref = reference_forward(reference, torch.tensor(_padded(tokens_list, mask)), mask)
    for row, tokens in enumerate(tokens_list):
        real = len(tokens)
        diff = (output.logits[row, :real] - ref.logits[row, :real]).abs().max().item()
        assert diff <= TOLERANCE
        for layer, theirs in enumerate(ref.attentions):
            ours = output.layers[layer].weights[row, :, :real, :real]
            assert (ours - theirs[row, :, :real, :real]).abs().max().item() <= TOLERANCE
            # Padding receives no attention at all.
            assert output.layers[layer].weights[row, :, :, real:].abs().sum().item() == 0.0
        for layer, theirs in enumerate(ref.hidden_states):
            ours = output.hidden_states[layer][row, :real]
            assert (ours - theirs[row, :real]).abs().max().item() <= TOLERANCE


def _padded(tokens_list, mask) -> list[list[int]]:
    length = mask.shape[1]
    return [tokens.ids + [tokens.ids[0]] * (length - len(tokens)) for tokens in tokens_list]


def test_queries_keys_values_match_hugging_face_projection(gpt, reference):
    text = "自己注意では、各トークンがクエリを作ります。"
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        block.attn.c_attn.register_forward_hook(
            lambda _m, _i, out, index=index: captured.__setitem__(index, out.detach().clone())
        )
        for index, block in enumerate(reference.transformer.h)
    ]
    try:
        ids = torch.tensor([gpt.encode(text).ids])
        reference_forward(reference, ids)
    finally:
        for handle in hooks:
            handle.remove()
    result = gpt.run(text, keep_qkv=True)
    heads, size, length = gpt.config.n_head, gpt.config.head_size, len(result)
    for layer, projected in captured.items():
        for part, ours in zip(
            projected[0].chunk(3, dim=-1), (result.queries, result.keys, result.values), strict=True
        ):
            expected = part.view(length, heads, size).transpose(0, 1).numpy()
            assert np.abs(ours[layer] - expected).max() <= TOLERANCE, layer


def test_greedy_generation_matches_hugging_face_generate(gpt, reference):
    prompt = "注意機構は"
    ours = gpt.generate(prompt, 10)
    ids = torch.tensor([ours.prompt.ids])
    with torch.inference_mode():
        theirs = reference.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=10,
            do_sample=False,
            pad_token_id=gpt.tokenizer.eot_id,
            eos_token_id=gpt.tokenizer.eot_id,
        )
    assert ours.ids == theirs[0].tolist()[: len(ours.ids)]
