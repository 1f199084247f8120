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

This package never imports Django.
"""

from importlib import import_module

from .tokenizer import MAX_PIECES, Tokens, count_pieces, encode

# The model (and so torch) loads only when asked for: a web server that only tokenises or reads
# stored attention with ``analysis`` never imports torch.
_LAZY = {"AttentionModel": ".model", "RunResult": ".model", "resolve_device": ".device"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_PIECES",
    "AttentionModel",
    "RunResult",
    "Tokens",
    "count_pieces",
    "encode",
    "resolve_device",
]
