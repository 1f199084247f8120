"""The GPT decoder: GPT-2's architecture, small, read top to bottom (after nanoGPT's ``model.py``).

A decoder predicts the **next** piece at every position. Compared with the encoder
(``encoder.py``) three things change:

1. **A causal mask.** Position ``i`` may attend only to positions ``0..i``
   (:func:`~.attention.causal_bias`): when it predicts piece ``i + 1`` it cannot see it.
2. **Pre-LN blocks** (GPT-2): LayerNorm is applied *before* each sub-layer, on the branch,
   and the residual stream ``x`` itself is never normalised::

       x = x + attention(ln_1(x))
       x = x + mlp(ln_2(x))           mlp(x) = W2 gelu_new(W1 x + b1) + b2

   A final LayerNorm ``ln_f`` follows the last block.
3. **An output layer back to the vocabulary.** The logits of position ``i`` are
   ``ln_f(x_i) · E^T``, where ``E`` is the *same* ``[V, D]`` table that embedded the pieces
   (tied embeddings, as in GPT-2): the score of piece ``v`` is how well the final hidden state
   matches ``v``'s embedding. A softmax over the vocabulary turns logits into probabilities.

The input is piece embedding + *learned* position embedding (one trained vector per position up
to ``n_positions``), not the paper's sinusoids.

Hidden states are returned the way ``transformers`` returns them, ``n_layer + 1`` tensors:
``hidden_states[0]`` is the embedding sum, ``hidden_states[l]`` the residual stream after block
``l`` and the *last* one is after ``ln_f``. ``block_outputs`` keeps every block's raw output
(the last one before ``ln_f`` too) for the logit lens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import AttentionTrace, MultiHeadSelfAttention, causal_bias, padding_bias
from .gpt_config import GPTConfig
from .linear import Linear

Device = torch.device | str | None


def gelu_new(x: Tensor) -> Tensor:
    """GELU as GPT-2 computes it: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    This tanh approximation of ``x * Phi(x)`` is what ``transformers`` calls ``gelu_new``;
    PyTorch's ``approximate="tanh"`` computes the same formula in one kernel.
    """
    return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """Position-wise feed-forward network: widen four times, ``gelu_new``, narrow back."""

    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        self.up = Linear(config.n_embd, config.n_inner, device=device)  # W1 (GPT-2: c_fc)
        self.down = Linear(config.n_inner, config.n_embd, device=device)  # W2 (GPT-2: c_proj)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(gelu_new(self.up(x)))


class Block(nn.Module):
    """One pre-LN GPT-2 block: attention and MLP, each on a normalised branch of the stream."""

    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        size, eps = config.n_embd, config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(size, eps=eps, device=device)
        self.attention = MultiHeadSelfAttention(size, config.n_head, device=device)
        self.ln_2 = nn.LayerNorm(size, eps=eps, device=device)
        self.mlp = MLP(config, device=device)
        self.dropout = nn.Dropout(config.dropout)  # active only while training

    def forward(self, x: Tensor, bias: Tensor) -> tuple[Tensor, AttentionTrace]:
        attended, trace = self.attention(self.ln_1(x), bias=bias)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.mlp(self.ln_2(x)))
        return x, trace


@dataclass
class DecoderOutput:
    """What a forward pass produced.

    - ``logits``: ``[B, T, V]``, the next-piece scores at every position.
    - ``hidden_states``: ``n_layer + 1`` tensors ``[B, T, D]`` as ``transformers`` returns them
      (embeddings first, the last one after ``ln_f``).
    - ``block_outputs``: ``n_layer`` tensors, the residual stream after each block (before
      ``ln_f``): ``block_outputs[l]`` is ``hidden_states[l + 1]`` except for the last block.
    - ``layers``: one :class:`~.attention.AttentionTrace` per block; its ``scores`` are before
      the mask, its ``masked_scores`` have ``-inf`` above the diagonal, its ``weights`` are 0
      there.
    """

    logits: Tensor
    hidden_states: list[Tensor]
    block_outputs: list[Tensor]
    layers: list[AttentionTrace]

    def stacked(self, name: str) -> Tensor:
        """One trace field over all layers, e.g. ``stacked("weights")`` -> ``[L, B, H, T, T]``."""
        return torch.stack([getattr(trace, name) for trace in self.layers])


class Decoder(nn.Module):
    """Token + position embeddings, ``n_layer`` :class:`Block` s, ``ln_f``, tied unembedding."""

    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd, device=device)
        self.position_embedding = nn.Embedding(config.n_positions, config.n_embd, device=device)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, device=device) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, device=device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2's initialisation, for training from scratch (loading overwrites it).

        Weights ~ N(0, 0.02), biases 0; the two projections that write into the residual
        stream are scaled down by ``1/sqrt(2 n_layer)`` so the stream does not grow with depth.
        """
        std = 0.02
        for module in self.modules():
            if isinstance(module, Linear):
                nn.init.normal_(module.weight, 0.0, std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
        for block in self.blocks:
            for projection in (block.attention.output, block.mlp.down):
                nn.init.normal_(projection.weight, 0.0, std / math.sqrt(2 * self.config.n_layer))

    def unembed(self, hidden: Tensor) -> Tensor:
        """``[..., D]`` (already normalised by ``ln_f``) -> logits ``[..., V]``: ``h · E^T``."""
        return F.linear(hidden, self.token_embedding.weight)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> DecoderOutput:
        """Run ``input_ids`` ``[B, T]``; ``attention_mask`` ``[B, T]``: 1 real piece, 0 padding.

        With right padding (as :class:`~.gpt_model.GPTModel` pads) the causal mask already
        keeps real positions from seeing the padding after them; the padding bias is added all
        the same, so any padding (left padding too) is masked for every query.
        """
        length = input_ids.shape[1]
        if length > self.config.n_positions:
            raise ValueError(
                f"{length} pieces exceed the {self.config.n_positions} positions "
                "this model has embeddings for"
            )
        positions = torch.arange(length, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        x = self.dropout(x)

        # One additive bias for every block: -inf above the diagonal, + padding if any.
        # step: mask
        bias = causal_bias(length, device=x.device, dtype=x.dtype)
        if attention_mask is not None and not bool(attention_mask.all()):
            bias = bias + padding_bias(attention_mask, x.dtype)  # [B, 1, T, T]
        # end step

        hidden_states, block_outputs, traces = [x], [], []
        for block in self.blocks:
            x, trace = block(x, bias)
            block_outputs.append(x)
            hidden_states.append(x)
            traces.append(trace)
        final = self.ln_f(x)
        hidden_states[-1] = final  # as transformers: the last hidden state is after ln_f
        return DecoderOutput(self.unembed(final), hidden_states, block_outputs, traces)
