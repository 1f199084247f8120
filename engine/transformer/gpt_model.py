"""The GPT's front door: load once, then run texts or generate, and get numpy arrays back.

    gpt = GPTModel.load()                           # config + weights + tokenizer, eval mode
    result = gpt.run("注意機構は")
    result.weights.shape                            # (layers, heads, T, T), 0 above the diagonal
    result.predictions[-1]                          # top 5 next pieces after the whole text
    result.lens                                     # the same guess after every layer
    gen = gpt.generate("Attention is", 20)          # greedy; temperature=0.8, seed=1 samples
    gen.text

As in ``model.py`` everything stays in torch on the chosen device during the forward pass and
is converted to numpy once at the end; the library never calls ``torch.set_num_threads``.

How predicted pieces are shown: a *predicted* piece has no span in the learner's text, so it is
decoded from its id alone (:meth:`~.bpe.BPETokenizer.piece_text`). When its bytes are only part
of a UTF-8 character, the missing part is shown as ``\\ufffd`` (the replacement character);
``<|endoftext|>`` is shown as itself. The tokens of the learner's *input* are always shown
through their offsets (``Tokens.display``), never this way.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .bpe import BPETokenizer
from .decoder import Decoder, DecoderOutput
from .device import resolve_device
from .gpt_config import GPTConfig
from .gpt_weights import load_weights
from .paths import gpt_model_dir
from .tokenizer import Tokens

#: How many next-piece candidates are kept per position (and per layer for the logit lens).
TOP_K_SHOWN = 5

#: ``(token_id, text, p)``: a candidate next piece, how it is shown, and its probability.
Prediction = tuple[int, str, float]


@dataclass
class GPTRunResult:
    """One text through the decoder, cut to its own ``T`` pieces (``<|endoftext|>`` first).

    - ``weights``: attention after the softmax, ``[L, H, T, T]`` float32, exactly 0 above the
      diagonal. ``scores``: raw ``QK^T/sqrt(d)`` *before* the mask. ``masked_scores``:
      ``scores`` plus the causal bias, so ``-inf`` above the diagonal (not JSON-safe as is).
    - ``input_ids``: ``[T]`` int64.
    - ``predictions[t]``: the top 5 next pieces after position ``t``, highest ``p`` first.
    - ``lens[l]``: the top 5 next pieces after the *last* position, read from the residual
      stream after block ``l`` through ``ln_f`` and the unembedding (the logit lens); the last
      entry equals ``predictions[-1]``.
    - ``queries``/``keys``/``values``: ``[L, H, T, d]`` with ``keep_qkv=True``.
    - ``elapsed_ms``: tokenization, forward pass and conversion (for a batch: the whole batch).
    - ``value_norms``: ``[L, H, T]``, ``||f_h(x_j)||`` of every head's transformed value vector,
      for norm-based attention (Kobayashi et al. 2020; see
      :meth:`~.attention.MultiHeadSelfAttention.transformed_value_norms`).
    """

    tokens: Tokens
    input_ids: np.ndarray
    weights: np.ndarray
    scores: np.ndarray
    masked_scores: np.ndarray
    predictions: list[list[Prediction]]
    lens: list[list[Prediction]]
    device: str
    elapsed_ms: float
    queries: np.ndarray | None = None
    keys: np.ndarray | None = None
    values: np.ndarray | None = None
    value_norms: np.ndarray | None = None

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class GPTGeneration:
    """A prompt and the pieces the model wrote after it, one at a time.

    - ``new_tokens[k]``: ``(token_id, text, p)`` of the ``k``-th new piece, ``p`` being the
      model's own probability for it (softmax of the logits at temperature 1, before top-k):
      how likely the *model* thought it, whatever the sampling settings.
    - ``attention[k]``: ``[L, H, T_k]`` float32, the attention of the position that chose
      new piece ``k`` (the last one at that moment) over all ``T_k = len(prompt) + k`` pieces
      so far: the last row of every layer's and head's attention matrix.
    - ``ids``: prompt + new ids. ``text``: all of them decoded at once (the prompt's text, then
      the continuation); ``continuation``: the new ids decoded together.
    - ``stop_reason``: ``"length"`` (``max_new_tokens`` written), ``"eos"`` (the model chose
      ``<|endoftext|>``; it is the last new piece and is not part of ``text``) or
      ``"context"`` (all ``n_positions`` positions are used).
    - ``seed``: the seed of the sampler actually used (``None`` when greedy).
    """

    prompt: Tokens
    ids: list[int]
    new_tokens: list[Prediction]
    attention: list[np.ndarray]
    text: str
    continuation: str
    stop_reason: str
    temperature: float
    top_k: int
    seed: int | None
    device: str
    elapsed_ms: float


class GPTModel:
    """The small GPT trained in this repository, with every attention intermediate exposed."""

    def __init__(
        self,
        config: GPTConfig,
        decoder: Decoder,
        tokenizer: BPETokenizer,
        device: torch.device,
        model_dir: Path,
        load_ms: float = 0.0,
    ) -> None:
        self.config = config
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.device = device
        self.model_dir = model_dir
        self.load_ms = load_ms

    @classmethod
    def load(
        cls, device: str | torch.device | None = None, model_dir: str | Path | None = None
    ) -> GPTModel:
        """Read config, weights and tokenizer (from :func:`~.paths.gpt_model_dir` by default).

        ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, a :class:`torch.device`, or ``None`` for
        ``ENGINE_DEVICE`` / auto (see :func:`~.device.resolve_device`).
        """
        start = time.perf_counter()
        target = device if isinstance(device, torch.device) else resolve_device(device)
        directory = Path(model_dir) if model_dir is not None else gpt_model_dir()
        config = GPTConfig.from_json(directory / "config.json")
        decoder = Decoder(config, device=target)
        load_weights(decoder, directory / "model.safetensors", device=target)
        decoder.eval().requires_grad_(False)
        tokenizer = BPETokenizer.from_file(directory / "tokenizer.json")
        if tokenizer.vocab_size != config.vocab_size:
            raise ValueError(
                f"{directory}: tokenizer has {tokenizer.vocab_size} pieces, "
                f"config.json says {config.vocab_size}"
            )
        load_ms = (time.perf_counter() - start) * 1000.0
        return cls(config, decoder, tokenizer, target, directory, load_ms)

    # ---------------------------------------------------------------- tokens

    @property
    def max_pieces(self) -> int:
        """The longest input, ``<|endoftext|>`` included: the context length ``n_positions``."""
        return self.config.n_positions

    def encode(self, text: str) -> Tokens:
        """Tokenize ``text`` (``<|endoftext|>`` first; no truncation: check ``max_pieces``)."""
        return self.tokenizer.encode(text)

    def count_pieces(self, text: str) -> int:
        return self.tokenizer.count_pieces(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def _check_length(self, tokens: Tokens) -> None:
        if len(tokens) > self.max_pieces:
            raise ValueError(
                f"{len(tokens)} pieces exceed the GPT's context of {self.max_pieces} pieces"
            )

    def batch(self, token_lists: list[Tokens]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad tokenized texts into ``input_ids`` and ``attention_mask`` ``[B, T]``.

        Padding goes *after* each text, so every real piece keeps its position (and its
        position embedding); the pad id is ``<|endoftext|>`` and the mask hides it.
        """
        length = max(len(tokens) for tokens in token_lists)
        pad = self.tokenizer.eot_id
        ids = torch.full((len(token_lists), length), pad, dtype=torch.long)
        mask = torch.zeros((len(token_lists), length), dtype=torch.long)
        for row, tokens in enumerate(token_lists):
            self._check_length(tokens)
            ids[row, : len(tokens)] = torch.tensor(tokens.ids, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        return ids.to(self.device), mask.to(self.device)

    # ---------------------------------------------------------------- forward

    @torch.inference_mode()
    def trace(self, texts: list[str]) -> tuple[list[Tokens], DecoderOutput, torch.Tensor]:
        """The full torch trace of a right-padded batch: tokens, :class:`DecoderOutput`, mask."""
        token_lists = [self.encode(text) for text in texts]
        ids, mask = self.batch(token_lists)
        return token_lists, self.decoder(ids, mask), mask

    def run(self, text: str, *, keep_qkv: bool = False) -> GPTRunResult:
        """Run one text. ``keep_qkv`` also returns per-head queries, keys and values."""
        return self.run_batch([text], keep_qkv=keep_qkv)[0]

    @torch.inference_mode()
    def run_batch(self, texts: list[str], *, keep_qkv: bool = False) -> list[GPTRunResult]:
        """Run several texts as ONE right-padded batch; each result is what :meth:`run` gives."""
        if not texts:
            return []
        start = time.perf_counter()
        token_lists = [self.encode(text) for text in texts]
        ids, mask = self.batch(token_lists)
        output = self.decoder(ids, mask)
        lengths = [len(tokens) for tokens in token_lists]

        # One stack + one device->host copy per field, then cheap per-text views.
        fields = ["weights", "scores", "masked_scores"]
        fields += ["queries", "keys", "values"] if keep_qkv else []
        host = {name: _to_host(output.stacked(name)) for name in fields}  # [L, B, H, ...]
        norms = _to_host(
            torch.stack(
                [
                    block.attention.transformed_value_norms(trace.values)
                    for block, trace in zip(self.decoder.blocks, output.layers, strict=True)
                ]
            )
        )  # [L, B, H, T]
        top_p, top_ids = torch.softmax(output.logits.float(), dim=-1).topk(TOP_K_SHOWN, dim=-1)
        top_p, top_ids = _to_host(top_p), top_ids.cpu().numpy()
        rows = torch.arange(len(texts), device=ids.device)
        last = torch.tensor(lengths, device=ids.device) - 1
        lens_p, lens_ids = self._logit_lens(output, rows, last)
        input_ids = ids.cpu().numpy()
        elapsed_ms = (time.perf_counter() - start) * 1000.0

        results = []
        for row, tokens in enumerate(token_lists):
            length = lengths[row]
            # Views into the batch's arrays, not copies: storing packs each one once anyway.
            cut = {
                name: array[:, row, :, :length, :length]
                if name in ("weights", "scores", "masked_scores")
                else array[:, row, :, :length, :]
                for name, array in host.items()
            }
            results.append(
                GPTRunResult(
                    tokens=tokens,
                    input_ids=input_ids[row, :length].copy(),
                    weights=cut["weights"],
                    scores=cut["scores"],
                    masked_scores=cut["masked_scores"],
                    predictions=[
                        self._candidates(top_ids[row, t], top_p[row, t]) for t in range(length)
                    ],
                    lens=[
                        self._candidates(lens_ids[layer, row], lens_p[layer, row])
                        for layer in range(lens_ids.shape[0])
                    ],
                    device=str(self.device),
                    elapsed_ms=elapsed_ms,
                    queries=cut.get("queries"),
                    keys=cut.get("keys"),
                    values=cut.get("values"),
                    value_norms=norms[:, row, :, :length],
                )
            )
        return results

    def _logit_lens(
        self, output: DecoderOutput, rows: torch.Tensor, last: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top next pieces after each block at each text's last position: ``[L, B, 5]`` each.

        The residual stream after block ``l`` goes through the final LayerNorm and the tied
        unembedding, as if the model stopped there (nostalgebraist 2020, "the logit lens").
        """
        streams = torch.stack([hidden[rows, last] for hidden in output.block_outputs])  # [L,B,D]
        logits = self.decoder.unembed(self.decoder.ln_f(streams))
        probs, top = torch.softmax(logits.float(), dim=-1).topk(TOP_K_SHOWN, dim=-1)
        return _to_host(probs), top.cpu().numpy()

    def _candidates(self, ids: np.ndarray, probs: np.ndarray) -> list[Prediction]:
        return [
            (int(token), self.tokenizer.piece_text(int(token)), float(p))
            for token, p in zip(ids, probs, strict=True)
        ]

    # ---------------------------------------------------------------- generation

    @torch.inference_mode()
    def generate(
        self,
        text: str,
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int | None = None,
        on_token: Callable[[int, str, float], None] | None = None,
    ) -> GPTGeneration:
        """Continue ``text`` by up to ``max_new_tokens`` pieces, one forward pass per piece.

        ``temperature == 0``: greedy, always the most probable piece (deterministic).
        ``temperature > 0``: sample from ``softmax(logits / temperature)``, restricted to the
        ``top_k`` most probable pieces when ``top_k > 0``, with a CPU ``torch.Generator``
        seeded with ``seed`` (same seed, same text, on any device); ``seed=None`` draws one
        in ``[0, 2**31)``, reported in the result. Generation stops early at ``<|endoftext|>``
        or when the context is full. ``on_token(token_id, text, p)``, if given, is called as
        soon as each new piece is chosen (to show progress).
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, not {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, not {temperature}")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, not {top_k}")
        start = time.perf_counter()
        prompt = self.encode(text)
        self._check_length(prompt)
        sampler = None
        if temperature > 0:
            if seed is None:  # a fresh seed, reported so that the run can be repeated
                seed = secrets.randbelow(2**31)
            sampler = torch.Generator(device="cpu").manual_seed(int(seed))
        else:
            seed = None

        ids = list(prompt.ids)
        new_tokens: list[Prediction] = []
        attention: list[np.ndarray] = []
        stop_reason = "length"
        for _ in range(max_new_tokens):
            if len(ids) >= self.max_pieces:
                stop_reason = "context"
                break
            output = self.decoder(torch.tensor([ids], device=self.device))
            logits = output.logits[0, -1].float().cpu()
            token = self._choose(logits, temperature, top_k, sampler)
            p = float(torch.softmax(logits, dim=-1)[token])
            new_tokens.append((token, self.tokenizer.piece_text(token), p))
            if on_token is not None:
                on_token(*new_tokens[-1])
            attention.append(_to_host(output.stacked("weights")[:, 0, :, -1, :]))  # [L, H, T]
            ids.append(token)
            if token == self.tokenizer.eot_id:
                stop_reason = "eos"
                break
        new_ids = ids[len(prompt.ids) :]
        return GPTGeneration(
            prompt=prompt,
            ids=ids,
            new_tokens=new_tokens,
            attention=attention,
            text=self.decode(ids),
            continuation=self.decode(new_ids),
            stop_reason=stop_reason,
            temperature=float(temperature),
            top_k=int(top_k),
            seed=seed,
            device=str(self.device),
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
        )

    @staticmethod
    def _choose(
        logits: torch.Tensor, temperature: float, top_k: int, sampler: torch.Generator | None
    ) -> int:
        """Pick the next piece from the last position's logits ``[V]`` (on the CPU)."""
        if temperature == 0 or sampler is None:
            return int(torch.argmax(logits))
        scaled = logits / temperature
        if 0 < top_k < scaled.numel():
            kth = torch.topk(scaled, top_k).values[-1]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))  # keep only the top k
        probs = torch.softmax(scaled, dim=-1)
        return int(torch.multinomial(probs, 1, generator=sampler))


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy()
