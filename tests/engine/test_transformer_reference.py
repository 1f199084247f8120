"""Our encoder against the reference implementations it must agree with.

- Hugging Face ``BertModel`` (eager attention): attention weights of all 6 layers and all 7
  hidden states, for 20+ varied sentences and for a padded batch, within 1e-4.
- ``sentence_transformers.SentenceTransformer``: the sentence embedding, within 1e-4.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from engine.transformer import MAX_PIECES, AttentionModel
from engine.transformer.analysis import cosine_similarity

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the reference must never reach for the network

TOLERANCE = 1e-4

# Natural prose with multi-piece words, used to build a text of exactly MAX_PIECES pieces.
PROSE = (
    "Transformers read a whole sentence at once. Every token builds a query, a key and a "
    "value; the attention weights say how strongly each token looks at every other token. "
    "Stacking six such layers lets meaning flow between distant words, which is why the "
    "sentence embedding of paraphrases ends up remarkably close, while unrelated sentences "
    "drift apart in the vector space of three hundred and eighty-four dimensions."
)


def text_with_pieces(count_pieces, pieces: int) -> str:
    """Prose cut at a word boundary, then topped up with one-piece words to exactly ``pieces``."""
    words: list[str] = []
    for word in PROSE.split():
        if count_pieces(" ".join([*words, word])) > pieces:
            break
        words.append(word)
    while count_pieces(" ".join(words)) < pieces:
        words.append("the")
    text = " ".join(words)
    assert count_pieces(text) == pieces
    return text


SENTENCES = [
    "Hello world.",
    "The cat sat on the mat.",
    "Unbelievably",  # one word, five pieces
    "a",
    "",  # nothing but [CLS] [SEP]
    "Attention is all you need.",
    "The animal didn't cross the street because it was too tired.",
    "Wait... what?! (Really) — yes; no: maybe. #NLP @home",
    "I love pizza 🍕🍕 and coffee ☕ — 😀!",
    "日本語を勉強しています。",
    "東京の鰻丼は美味しいです",
    "我爱自然语言处理",
    "ThE QuIcK BrOwN FoX JuMpS oVeR tHe LaZy DoG",
    "In 2024, 3.14159 × 42 = 131.95 and 1,000,000 people agreed on 07/08.",
    "Café naïve façade résumé über São Paulo Ærøskøbing",
    "Email me at test@example.com or visit https://example.org/path?q=1&x=2",
    "def f(x): return x**2 + 1  # squares",
    "Le chat est sur la table, mais le chien dort.",
    "Donaudampfschiffahrtsgesellschaftskapitän",
    "  spaces   and\ttabs\nnewlines  ",
    "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo.",
    "GPT-4o vs. BERT-base: 110M parameters, 12 layers, 768-d hidden states.",
    "Mixing English and 日本語 in one sentence は難しい?",
]


@pytest.fixture(scope="module")
def model() -> AttentionModel:
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def reference(model):
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(model.model_dir), attn_implementation="eager")
    return bert.eval()


@pytest.fixture(scope="module")
def sentences(model) -> list[str]:
    return [*SENTENCES, text_with_pieces(model.tokenizer.count_pieces, MAX_PIECES)]


def reference_forward(reference, ids: torch.Tensor, mask: torch.Tensor):
    with torch.inference_mode():
        out = reference(
            input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True
        )
    # transformers 5 returns an EMPTY tuple of attentions with SDPA: make sure we compare.
    assert len(out.attentions) == 6
    assert len(out.hidden_states) == 7
    return out


def test_there_are_enough_sentences_including_a_full_one(model, sentences):
    assert len(sentences) >= 20
    lengths = [len(model.encode(text)) for text in sentences]
    assert MAX_PIECES in lengths
    assert min(lengths) == 2


@pytest.mark.parametrize("index", range(len(SENTENCES) + 1))
def test_matches_hugging_face_bert(model, reference, sentences, index):
    text = sentences[index]
    tokens_list, output, _ = model.trace([text])
    ids = torch.tensor([tokens_list[0].ids])
    ref = reference_forward(reference, ids, torch.ones_like(ids))

    for layer in range(6):
        ours = output.weights[layer]
        assert ours.shape == ref.attentions[layer].shape
        assert (ours - ref.attentions[layer]).abs().max().item() <= TOLERANCE, layer
    for layer in range(7):
        diff = (output.hidden_states[layer] - ref.hidden_states[layer]).abs().max().item()
        assert diff <= TOLERANCE, (layer, diff)

    # The numpy result of run() is the same thing, cut to the text's tokens.
    result = model.run(text)
    expected = torch.stack(ref.attentions)[:, 0].numpy()
    assert result.weights.dtype == np.float32
    assert result.weights.shape == expected.shape
    assert np.abs(result.weights - expected).max() <= TOLERANCE


def test_tokenizer_ids_match_hugging_face_tokenizer(model, sentences):
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(str(model.model_dir))
    for text in sentences:
        expected = hf_tokenizer(text, truncation=False)["input_ids"]
        assert model.encode(text).ids == expected, text


def test_queries_keys_values_match_hugging_face_projections(model, reference):
    text = "The Transformer reads the whole sentence at once."
    captured: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []
    for index, layer in enumerate(reference.encoder.layer):
        for name in ("query", "key", "value"):
            module = getattr(layer.attention.self, name)

            def hook(_module, _inputs, output, key=(index, name)):
                captured[key] = output.detach().clone()

            hooks.append(module.register_forward_hook(hook))
    try:
        ids = torch.tensor([model.encode(text).ids])
        reference_forward(reference, ids, torch.ones_like(ids))
    finally:
        for handle in hooks:
            handle.remove()

    result = model.run(text, keep_qkv=True)
    length, heads, size = len(result.tokens), 12, 32
    for (layer, name), projected in captured.items():
        expected = projected[0].view(length, heads, size).transpose(0, 1).numpy()
        ours = {"query": result.queries, "key": result.keys, "value": result.values}[name][layer]
        assert np.abs(ours - expected).max() <= TOLERANCE, (layer, name)


def test_padded_batch_matches_hugging_face(model, reference):
    short, long = "A short one.", "This second sentence is quite a bit longer than the first one."
    tokens_list, output, mask = model.trace([short, long])
    assert mask.tolist()[0].count(0) > 0  # the padding mask is real
    ids = torch.tensor([tokens.ids + [0] * (mask.shape[1] - len(tokens)) for tokens in tokens_list])
    ref = reference_forward(reference, ids, mask)

    for row, tokens in enumerate(tokens_list):
        real = len(tokens)
        for layer in range(6):
            ours = output.weights[layer, row, :, :real, :real]
            theirs = ref.attentions[layer][row, :, :real, :real]
            assert (ours - theirs).abs().max().item() <= TOLERANCE
            # Padded keys receive no attention at all.
            assert output.weights[layer, row, :, :real, real:].abs().sum().item() == 0.0
        for layer in range(7):
            ours = output.hidden_states[layer][row, :real]
            theirs = ref.hidden_states[layer][row, :real]
            assert (ours - theirs).abs().max().item() <= TOLERANCE

    # run_pair cuts each result back to its own tokens and agrees with single runs.
    first, second, similarity = model.run_pair(short, long)
    for result, text in ((first, short), (second, long)):
        alone = model.run(text)
        assert result.tokens == alone.tokens
        assert result.weights.shape == alone.weights.shape
        assert np.abs(result.weights - alone.weights).max() <= TOLERANCE
        assert np.abs(result.embedding - alone.embedding).max() <= TOLERANCE
    assert similarity == pytest.approx(cosine_similarity(first.embedding, second.embedding))


def test_every_attention_row_sums_to_one(model, sentences):
    for text in sentences:
        result = model.run(text)
        assert np.abs(result.weights.sum(axis=-1) - 1.0).max() <= 1e-5, text
    first, second, _ = model.run_pair(sentences[0], sentences[-1])
    for result in (first, second):
        assert np.abs(result.weights.sum(axis=-1) - 1.0).max() <= 1e-5


def test_sentence_embedding_matches_sentence_transformers(model, sentences):
    from sentence_transformers import SentenceTransformer

    assert (model.model_dir / "modules.json").is_file()
    st = SentenceTransformer(str(model.model_dir), device="cpu")
    texts = [text for text in sentences if text.strip()]
    expected = st.encode(texts, convert_to_numpy=True, batch_size=8)
    for text, vector in zip(texts, expected, strict=True):
        ours = model.run(text).embedding
        assert ours.shape == (384,)
        assert np.abs(ours - vector).max() <= TOLERANCE, text
        assert np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-5)

    a, b = "A man is playing a guitar.", "Someone plays an instrument."
    first, second, similarity = model.run_pair(a, b)
    va, vb = st.encode([a, b], convert_to_numpy=True)
    assert similarity == pytest.approx(float(va @ vb), abs=TOLERANCE)
    assert np.abs(first.embedding - va).max() <= TOLERANCE
    assert np.abs(second.embedding - vb).max() <= TOLERANCE
