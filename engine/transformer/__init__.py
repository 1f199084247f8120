"""A pure-PyTorch BERT encoder (all-MiniLM-L6-v2) that shows its attention.

Read the files in this order, one concept each:

- ``paths.py``     where the model files are (``ENGINE_MODEL_DIR`` or the bundled package)
- ``config.py``    ``EncoderConfig``: layers, heads, hidden size... from ``config.json``
- ``tokenizer.py`` text -> WordPiece ``Tokens`` (ids, pieces, offsets into the learner's text)
- ``linear.py``    ``Linear``: ``y = x W + b`` with ``W`` stored ``[in, out]`` as in the paper
- ``attention.py`` ``MultiHeadSelfAttention``: queries, keys, values, scores, weights
- ``encoder.py``   embeddings + post-LN encoder layers -> ``EncoderOutput``
- ``weights.py``   ``model.safetensors`` -> our modules' parameters
- ``device.py``    ``resolve_device``: auto / cpu / cuda
- ``analysis.py``  rollout, word-level attention, hiding specials, cosine (numpy only)
- ``pooling.py``   ``sentence_embedding``: one vector per sentence (mean pooling)
- ``model.py``     ``AttentionModel``: load once, ``run(text)`` / ``run_pair(a, b)`` -> numpy

The small GPT (a decoder trained here on the lessons), after the encoder:

- ``bpe.py``        byte-level BPE: any text, Japanese too -> ``Tokens``; ``train_bpe``
- ``gpt_config.py`` ``GPTConfig``: GPT-2's ``config.json`` (``n_layer``, ``n_head``, ``n_embd``...)
- ``attention.py``  ``causal_bias``: ``-inf`` above the diagonal, so no token sees the future
- ``decoder.py``    embeddings + pre-LN blocks + ``ln_f`` + tied unembedding -> logits
- ``gpt_weights.py`` ``model.safetensors`` under ``GPT2LMHeadModel``'s names, both ways
- ``gpt_model.py``  ``GPTModel``: ``run(text)`` (attention, predictions, logit lens), ``generate``
- ``train_gpt.py``  how the checkpoint in ``engine/checkpoints/gpt/`` was trained

This package never imports Django.
"""

from importlib import import_module

from .tokenizer import MAX_PIECES, Tokens, count_pieces, encode

# The model (and so torch) loads only when asked for: a web server that only tokenises or reads
# stored attention with ``analysis`` never imports torch.
_LAZY = {
    "AttentionModel": ".model",
    "RunResult": ".model",
    "resolve_device": ".device",
    # The GPT: the tokenizer and config need no torch, the model does.
    "BPETokenizer": ".bpe",
    "GPTConfig": ".gpt_config",
    "GPTModel": ".gpt_model",
    "GPTRunResult": ".gpt_model",
    "GPTGeneration": ".gpt_model",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_PIECES",
    "AttentionModel",
    "BPETokenizer",
    "GPTConfig",
    "GPTGeneration",
    "GPTModel",
    "GPTRunResult",
    "RunResult",
    "Tokens",
    "count_pieces",
    "encode",
    "resolve_device",
]
