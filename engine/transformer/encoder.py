"""The BERT encoder: embeddings, then a stack of identical layers.

1. **Embeddings.** Each piece id picks a row of the word-embedding table; a second table adds
   "I am at position t" and a third "I belong to sentence A" (always A here). The sum is
   normalised with LayerNorm. This is ``hidden_states[0]``.
2. **Encoder layers** (6 of them), each in BERT's *post-LN* arrangement::

       x = LayerNorm(x + SelfAttention(x))
       x = LayerNorm(x + FeedForward(x))       FeedForward(x) = W2 GELU(W1 x + b1) + b2

   The output of layer ``l`` is ``hidden_states[l + 1]``.

There is no dropout: the engine only ever runs the trained model (inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import AttentionTrace, MultiHeadSelfAttention, padding_bias
from .config import EncoderConfig
from .linear import Linear

Device = torch.device | str | None


class Embeddings(nn.Module):
    """word + position + token-type embeddings, then LayerNorm."""

    def __init__(self, config: EncoderConfig, device: Device = None) -> None:
        super().__init__()
        size = config.hidden_size
        self.word = nn.Embedding(config.vocab_size, size, device=device)
        self.position = nn.Embedding(config.max_positions, size, device=device)
        self.token_type = nn.Embedding(config.type_vocab_size, size, device=device)
        self.norm = nn.LayerNorm(size, eps=config.layer_norm_eps, device=device)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device)
        embedded = self.word(input_ids) + self.position(positions)
        if token_type_ids is None:
            embedded = embedded + self.token_type.weight[0]  # every piece is in sentence "A"
        else:
            embedded = embedded + self.token_type(token_type_ids)
        return self.norm(embedded)


class FeedForward(nn.Module):
    """Position-wise feed-forward network: widen (384 -> 1536), exact GELU, narrow back."""

    def __init__(self, config: EncoderConfig, device: Device = None) -> None:
        super().__init__()
        self.up = Linear(config.hidden_size, config.intermediate_size, device=device)  # W1
        self.down = Linear(config.intermediate_size, config.hidden_size, device=device)  # W2

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.gelu(self.up(x)))  # erf-based GELU, as BERT was trained with


class EncoderLayer(nn.Module):
    """One post-LN Transformer encoder layer."""

    def __init__(self, config: EncoderConfig, device: Device = None) -> None:
        super().__init__()
        size, eps = config.hidden_size, config.layer_norm_eps
        self.attention = MultiHeadSelfAttention(size, config.num_heads, device=device)
        self.attention_norm = nn.LayerNorm(size, eps=eps, device=device)
        self.feed_forward = FeedForward(config, device=device)
        self.output_norm = nn.LayerNorm(size, eps=eps, device=device)

    def forward(
        self, hidden: Tensor, bias: Tensor | None = None, **trace_out: Tensor
    ) -> tuple[Tensor, AttentionTrace]:
        """``trace_out``: optional ``scores_out`` / ``weights_out`` passed to the attention."""
        attended, trace = self.attention(hidden, bias=bias, **trace_out)
        hidden = self.attention_norm(hidden + attended)  # residual, then LayerNorm
        hidden = self.output_norm(hidden + self.feed_forward(hidden))
        return hidden, trace


@dataclass
class EncoderOutput:
    """What a forward pass produced.

    ``hidden_states``: ``num_layers + 1`` tensors ``[B, T, D]``, the embeddings first.
    ``layers``: one :class:`AttentionTrace` per layer.
    ``scores`` / ``weights``: every layer's raw scores / attention weights in one
    ``[L, B, H, T, T]`` tensor (``layers[l].weights`` is ``weights[l]``).
    """

    hidden_states: list[Tensor]
    layers: list[AttentionTrace]
    scores: Tensor
    weights: Tensor

    @property
    def last_hidden_state(self) -> Tensor:
        return self.hidden_states[-1]

    def stacked(self, name: str) -> Tensor:
        """One trace field over all layers, e.g. ``stacked("queries")`` -> ``[L, B, H, T, d]``."""
        if name in ("scores", "weights"):
            return getattr(self, name)
        return torch.stack([getattr(trace, name) for trace in self.layers])


class Encoder(nn.Module):
    """Embeddings followed by ``config.num_layers`` :class:`EncoderLayer` s."""

    def __init__(self, config: EncoderConfig, device: Device = None) -> None:
        """Build the modules (on ``device``; ``"meta"`` allocates nothing)."""
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config, device=device)
        self.layers = nn.ModuleList(
            EncoderLayer(config, device=device) for _ in range(config.num_layers)
        )

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> EncoderOutput:
        """Run ``input_ids`` ``[B, T]``; ``attention_mask`` ``[B, T]``: 1 real token, 0 padding."""
        batch, length = input_ids.shape
        if length > self.config.max_positions:
            raise ValueError(
                f"{length} pieces exceed the {self.config.max_positions} positions "
                "this model has embeddings for"
            )
        hidden = self.embeddings(input_ids, token_type_ids)
        # The padding bias is the same for every layer: build it once (or not at all).
        bias = None
        # step: mask
        if attention_mask is not None and not bool(attention_mask.all()):
            bias = padding_bias(attention_mask, hidden.dtype)
        # end step

        # Without autograd, every layer writes its scores and weights straight into one
        # [L, B, H, T, T] tensor each, so keeping them all costs no copy.
        in_place = not torch.is_grad_enabled()
        if in_place:
            shape = (len(self.layers), batch, self.config.num_heads, length, length)
            scores = hidden.new_empty(shape)
            weights = hidden.new_empty(shape)

        hidden_states = [hidden]
        traces = []
        for index, layer in enumerate(self.layers):
            trace_out = {}
            if in_place:
                trace_out = {"scores_out": scores[index], "weights_out": weights[index]}
            hidden, trace = layer(hidden, bias, **trace_out)
            hidden_states.append(hidden)
            traces.append(trace)
        if not in_place:
            scores = torch.stack([trace.scores for trace in traces])
            weights = torch.stack([trace.weights for trace in traces])
        return EncoderOutput(hidden_states, traces, scores, weights)
