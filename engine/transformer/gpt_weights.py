"""Saving and loading the GPT's ``model.safetensors`` under GPT-2's own tensor names.

The file uses the names of ``transformers.GPT2LMHeadModel`` so that the checkpoint folder loads
unchanged there (``GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager")``) and
our decoder can be checked against it. The translation, GPT-2 name -> ours:

=====================================  ==============================================
``transformer.wte.weight``             ``token_embedding.weight``  ``[V, D]``
``transformer.wpe.weight``             ``position_embedding.weight``  ``[P, D]``
``transformer.h.N.ln_1.*``             ``blocks.N.ln_1.*``
``transformer.h.N.attn.c_attn.*``      ``blocks.N.attention.{query,key,value}.*``
``transformer.h.N.attn.c_proj.*``      ``blocks.N.attention.output.*``
``transformer.h.N.ln_2.*``             ``blocks.N.ln_2.*``
``transformer.h.N.mlp.c_fc.*``         ``blocks.N.mlp.up.*``
``transformer.h.N.mlp.c_proj.*``       ``blocks.N.mlp.down.*``
``transformer.ln_f.*``                 ``ln_f.*``
``lm_head.weight``                     tied to ``transformer.wte.weight``: not stored
=====================================  ==============================================

GPT-2's projections are ``Conv1D`` modules whose weight is ``[in, out]``, the same layout as
our :class:`~.linear.Linear` (``y = x W + b``): nothing is transposed. ``c_attn`` holds the
query, key and value projections side by side, ``[D, 3D]``; we split its columns in three.
``lm_head.weight`` is left out as ``save_pretrained`` leaves it out for tied embeddings
(``tie_word_embeddings: true`` in ``config.json``); a file that has it is accepted when it
equals ``wte``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

_QKV = ("query", "key", "value")

# (GPT-2 name, our name) for every tensor that maps one to one. \1 = block index.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), target)
    for pattern, target in [
        (r"transformer\.wte\.weight", "token_embedding.weight"),
        (r"transformer\.wpe\.weight", "position_embedding.weight"),
        (r"transformer\.h\.(\d+)\.ln_1\.(weight|bias)", r"blocks.\1.ln_1.\2"),
        (r"transformer\.h\.(\d+)\.attn\.c_proj\.(weight|bias)", r"blocks.\1.attention.output.\2"),
        (r"transformer\.h\.(\d+)\.ln_2\.(weight|bias)", r"blocks.\1.ln_2.\2"),
        (r"transformer\.h\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"blocks.\1.mlp.up.\2"),
        (r"transformer\.h\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"blocks.\1.mlp.down.\2"),
        (r"transformer\.ln_f\.(weight|bias)", r"ln_f.\1"),
    ]
]
_C_ATTN = re.compile(r"transformer\.h\.(\d+)\.attn\.c_attn\.(weight|bias)")
_OURS_QKV = re.compile(r"blocks\.(\d+)\.attention\.(query|key|value)\.(weight|bias)")


def to_engine_state(hf_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """GPT-2 tensors (``GPT2LMHeadModel`` names) -> our decoder's ``state_dict``."""
    state: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for name, tensor in hf_state.items():
        attn = _C_ATTN.fullmatch(name)
        if attn:
            block, kind = attn.groups()
            # [D, 3D] (or [3D]): the columns are query | key | value.
            for part, chunk in zip(_QKV, tensor.chunk(3, dim=-1), strict=True):
                state[f"blocks.{block}.attention.{part}.{kind}"] = chunk
            continue
        if name == "lm_head.weight":
            continue  # tied: checked against wte below
        for pattern, target in _RULES:
            if pattern.fullmatch(name):
                state[pattern.sub(target, name)] = tensor
                break
        else:
            unexpected.append(name)
    if unexpected:
        raise ValueError(f"Tensors that are not GPT-2's: {unexpected[:8]}")
    head = hf_state.get("lm_head.weight")
    wte = state.get("token_embedding.weight")
    if head is not None and wte is not None and not torch.equal(head, wte):
        raise ValueError("lm_head.weight differs from transformer.wte.weight: not tied")
    return state


def to_hf_state(module: nn.Module) -> dict[str, Tensor]:
    """Our decoder's tensors under ``GPT2LMHeadModel``'s names (``lm_head`` left out, tied)."""
    ours = {name: tensor.detach() for name, tensor in module.state_dict().items()}
    hf: dict[str, Tensor] = {}
    blocks: dict[tuple[str, str], dict[str, Tensor]] = {}
    for name, tensor in ours.items():
        qkv = _OURS_QKV.fullmatch(name)
        if qkv:
            block, part, kind = qkv.groups()
            blocks.setdefault((block, kind), {})[part] = tensor
            continue
        hf[_hf_name(name)] = tensor
    for (block, kind), parts in blocks.items():
        hf[f"transformer.h.{block}.attn.c_attn.{kind}"] = torch.cat(
            [parts[part] for part in _QKV], dim=-1
        )
    return {name: tensor.contiguous().to("cpu") for name, tensor in sorted(hf.items())}


def _hf_name(ours: str) -> str:
    simple = {
        "token_embedding.weight": "transformer.wte.weight",
        "position_embedding.weight": "transformer.wpe.weight",
    }
    if ours in simple:
        return simple[ours]
    if ours.startswith("ln_f."):
        return "transformer." + ours
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", ours)
    if match is None:
        raise ValueError(f"No GPT-2 name for {ours!r}")
    block, rest = match.groups()
    rest = (
        rest.replace("attention.output.", "attn.c_proj.")
        .replace("mlp.up.", "mlp.c_fc.")
        .replace("mlp.down.", "mlp.c_proj.")
    )
    return f"transformer.h.{block}.{rest}"


def save_weights(module: nn.Module, path: str | Path) -> None:
    """Write ``module``'s parameters to ``path`` as a ``GPT2LMHeadModel`` safetensors file."""
    save_file(to_hf_state(module), str(path), metadata={"format": "pt"})


def load_weights(module: nn.Module, path: str | Path, device: str | torch.device = "cpu") -> None:
    """Copy every parameter of our decoder ``module`` from the GPT-2 safetensors file ``path``.

    Missing or unexpected tensors, or a wrong shape, raise a ``ValueError`` naming them.
    """
    state = to_engine_state(load_file(str(path), device=str(device)))
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the decoder: missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    for name, tensor in state.items():
        if tuple(expected[name].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected[name].shape)}"
            )
    module.load_state_dict(state, strict=True)
