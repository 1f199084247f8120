"""A linear layer written the way the paper writes it: ``y = x W + b``.

In "Attention Is All You Need" a projection is ``Q = X W^Q`` with ``W^Q`` of shape
``[d_model, d_k]``: rows are input features, columns are output features. We store ``W`` in
exactly that ``[in, out]`` layout. (``torch.nn.Linear`` and the Hugging Face checkpoint store
the transpose, ``[out, in]``; :mod:`.weights` transposes once, at load time. On the CPU the
``[in, out]`` layout also makes the matrix multiplications a few percent faster.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Linear(nn.Module):
    """``y = x W + b`` with ``weight`` ``[in_features, out_features]`` and ``bias`` ``[out]``."""

    def __init__(
        self, in_features: int, out_features: int, device: torch.device | str | None = None
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small random values (the trained ones are loaded over them)."""
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        # Flatten every leading dimension ([B, T, in] -> [B*T, in]) for one fused x W + b.
        flat = x.reshape(-1, self.in_features)
        return torch.addmm(self.bias, flat, self.weight).view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
