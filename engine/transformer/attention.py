"""Multi-head self-attention, written out step by step.

For every position the layer builds three vectors from the same hidden state:

- a **query**  ("what am I looking for?"),
- a **key**    ("what do I contain?"),
- a **value**  ("what do I hand over if you attend to me?").

The hidden size ``D`` (384) is cut into ``H`` heads (12) of ``d = D / H`` dimensions (32), and
every head attends independently (Vaswani et al. 2017, section 3.2):

    scores  = Q K^T / sqrt(d)          how well each query matches each key     [B, H, T, T]
    masked  = scores + padding bias    padded keys get a huge negative score
    weights = softmax(masked, dim=-1)  each row is a probability distribution   [B, H, T, T]
    context = weights V                a weighted average of the values         [B, H, T, d]

The heads are then concatenated back to ``[B, T, D]`` and mixed by the output projection.
Row ``i`` of ``weights`` tells how much token ``i`` (the query) takes from every token ``j``
(the keys); that is the matrix the app draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .linear import Linear


@dataclass
class AttentionTrace:
    """Everything one attention layer computed, kept for the learner (all per head).

    ``queries``/``keys``/``values``: ``[B, H, T, d]``; ``scores`` (raw ``QK^T/sqrt(d)``, before
    the mask), ``masked_scores`` and ``weights`` (after softmax): ``[B, H, T, T]``.
    ``masked_scores`` *is* ``scores`` (same tensor) when there is no padding.
    """

    queries: Tensor
    keys: Tensor
    values: Tensor
    scores: Tensor
    masked_scores: Tensor
    weights: Tensor


def padding_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a ``[B, T]`` mask of 1 (real token) / 0 (padding) into an additive ``[B, 1, 1, T]`` bias.

    Real keys get 0 and padded keys the most negative finite number, so that after the softmax
    their weight is exactly 0. It broadcasts over heads and query rows: *every* query ignores
    the padded keys (padded query rows still get computed, they are simply never shown).
    """
    # step: mask (minilm)
    bias = (1.0 - mask.to(dtype)) * torch.finfo(dtype).min
    return bias[:, None, None, :]
    # end step


def causal_bias(
    length: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The causal mask of a decoder (GPT) as an additive ``[1, 1, T, T]`` bias.

    Entry ``[i, j]`` is ``0`` where the query ``i`` may look at the key ``j`` (``j <= i``: itself
    and everything before it) and ``-inf`` strictly above the diagonal (``j > i``: the future).
    After the softmax, ``exp(-inf) = 0``: a token gets *exactly* no weight from the tokens
    before it, so predicting the next token can never peek at it. Every row keeps its diagonal,
    so no row is all ``-inf``. Add :func:`padding_bias` to it for a padded batch.
    """
    # step: mask (gpt)
    upper = torch.ones(length, length, device=device, dtype=torch.bool).triu(diagonal=1)
    bias = torch.zeros(length, length, device=device, dtype=dtype)
    return bias.masked_fill(upper, float("-inf"))[None, None, :, :]
    # end step


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``num_heads`` heads over a hidden size of ``hidden_size``."""

    def __init__(
        self, hidden_size: int, num_heads: int, device: torch.device | str | None = None
    ) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        # W^Q, W^K, W^V ([D, D]) for all heads at once: head h owns columns h*d .. (h+1)*d.
        # W^O mixes the concatenated heads back together.
        self.query = Linear(hidden_size, hidden_size, device=device)
        self.key = Linear(hidden_size, hidden_size, device=device)
        self.value = Linear(hidden_size, hidden_size, device=device)
        self.output = Linear(hidden_size, hidden_size, device=device)

    def split_heads(self, x: Tensor) -> Tensor:
        """``[B, T, D]`` -> ``[B, H, T, d]``: every head gets its own slice of ``d`` dimensions."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    @staticmethod
    def merge_heads(x: Tensor) -> Tensor:
        """``[B, H, T, d]`` -> ``[B, T, D]``: concatenate the heads again."""
        batch, heads, length, size = x.shape
        return x.transpose(1, 2).reshape(batch, length, heads * size)

    def forward(
        self,
        hidden: Tensor,
        mask: Tensor | None = None,
        *,
        bias: Tensor | None = None,
        scores_out: Tensor | None = None,
        weights_out: Tensor | None = None,
    ) -> tuple[Tensor, AttentionTrace]:
        """Attend over ``hidden`` ``[B, T, D]``.

        ``mask`` is ``[B, T]`` with 1 for real tokens and 0 for padding (``None``: no padding).
        ``bias`` may be given instead: the precomputed :func:`padding_bias`, so a stack of layers
        builds it only once (or any additive bias, e.g. a decoder's :func:`causal_bias`). Returns the output ``[B, T, D]`` and an :class:`AttentionTrace`.

        ``scores_out`` / ``weights_out`` (``[B, H, T, T]``, optional, inference only) are
        tensors to write the scores and weights into, e.g. slices of one ``[L, B, H, T, T]``
        tensor, so that keeping every layer's matrices costs no extra copy.
        """
        # step: q
        queries = self.split_heads(self.query(hidden))
        # end step
        # step: k
        keys = self.split_heads(self.key(hidden))
        # end step
        # step: output
        values = self.split_heads(self.value(hidden))
        # end step

        # step: qk scaled
        # How well every query matches every key, scaled so the softmax does not saturate.
        scores = torch.matmul(queries, keys.transpose(-2, -1), out=scores_out).mul_(self.scale)
        # end step

        # step: mask
        if bias is None and mask is not None:
            bias = padding_bias(mask, scores.dtype)
        masked_scores = scores if bias is None else scores + bias
        # end step

        # step: softmax
        weights = torch.softmax(masked_scores, dim=-1, out=weights_out)  # each row sums to 1
        # end step
        # step: output
        context = torch.matmul(weights, values)  # weighted average of the values
        # end step
        output = self.output(self.merge_heads(context))

        trace = AttentionTrace(queries, keys, values, scores, masked_scores, weights)
        return output, trace

    def transformed_value_norms(self, values: Tensor) -> Tensor:
        """``||f_h(x_j)||`` for every head and token: ``[B, H, T, d]`` values -> ``[B, H, T]``.

        Norm-based attention (Kobayashi et al. 2020, "Attention is Not Only a Weight",
        arXiv:2004.10102) asks how much each token *hands over*, not only how much it is
        attended to. Head ``h`` sends token ``j`` into the layer's output as

            alpha_ij f_h(x_j),   f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h

        where ``W_O^h`` are the ``d`` rows of the output projection that head ``h``'s slice of
        the concatenation feeds (the output bias is the same for every token and is left out,
        as in the paper). ``values`` already hold ``x_j W_V^h + b_V^h``, so only ``W_O^h`` is
        applied here. Since ``||alpha_ij f_h(x_j)|| = alpha_ij ||f_h(x_j)||``, these norms and
        the weights give the whole norm-based matrix.

        Computed without building the ``[B, H, T, D]`` vectors: ``||v W||^2 = v (W W^T) v^T``,
        and the Gram matrix ``G_h = W_O^h (W_O^h)^T`` is only ``d x d`` (32 x 32), so each norm
        costs ``d^2`` multiplications instead of ``d D`` (12 times fewer here).
        """
        gram = self._output_gram()
        squared = (torch.einsum("bhtd,hde->bhte", values, gram) * values).sum(dim=-1)
        return squared.clamp(min=0).sqrt()  # clamp: rounding may dip a zero norm below 0

    def _output_gram(self) -> Tensor:
        """``G_h = W_O^h (W_O^h)^T`` ``[H, d, d]``, kept until the output weight changes (a
        tensor's ``_version`` counts its in-place changes, loading weights included)."""
        weight = self.output.weight
        key = (weight.data_ptr(), weight._version, weight.device, weight.dtype)
        cached = getattr(self, "_gram", None)
        if cached is None or cached[0] != key:
            per_head = weight.detach().view(self.num_heads, self.head_size, -1)  # [H, d, D]
            cached = self._gram = (key, per_head @ per_head.transpose(1, 2))
        return cached[1]
