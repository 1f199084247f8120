"""One vector per sentence: mean pooling, as sentence-transformers does for all-MiniLM-L6-v2."""

import torch
from torch import Tensor


def sentence_embedding(last_hidden: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of the token vectors over the real (non-padding) tokens, then L2-normalised.

    ``last_hidden``: ``[B, T, D]`` (or ``[T, D]``); ``mask``: ``[B, T]`` of 1/0. Returns
    ``[B, D]`` (or ``[D]``). This is the sentence-transformers recipe for all-MiniLM-L6-v2:
    ``[CLS]`` and ``[SEP]`` are part of the mean, padding is not.
    """
    single = last_hidden.dim() == 2
    if single:
        last_hidden = last_hidden.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if mask is None:
        pooled = last_hidden.mean(dim=1)
    else:
        weight = mask.to(last_hidden.dtype).unsqueeze(-1)  # [B, T, 1]
        pooled = (last_hidden * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1e-9)
    embedding = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    return embedding[0] if single else embedding
