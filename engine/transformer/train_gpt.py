"""Train the small GPT on the site's own lessons: ``python -m engine.transformer.train_gpt``.

What happens, in order (every step seeded, so a rerun on the same machine gives the same model):

1. **Corpus.** Every lesson file ``lessons/content/<slug>.<lang>.md`` (both languages) is read
   as text from disk. The YAML front matter is parsed and only its prose is kept (title,
   summary, every quiz question, choice and explanation; not the sources' URLs); Markdown
   section keys (``## overview``...) are dropped and ``[[slug|label]]`` links become ``label``.
   Each paragraph becomes one training text that starts with ``<|endoftext|>``, exactly as a
   learner's text starts when the model reads it.
2. **Split by document.** A seeded tenth of the English files and a tenth of the Japanese files
   are held out for validation; nothing of them is seen in training (not by the tokenizer
   either).
3. **Tokenizer.** A byte-level BPE (``bpe.py``) is trained on the training documents.
4. **Model.** A GPT-2-architecture :class:`~.decoder.Decoder` (``decoder.py``) from scratch.
5. **Optimisation.** Random windows of ``n_positions + 1`` pieces from the training stream;
   the loss is the cross-entropy of every next piece. AdamW (weight decay on matrices only),
   a linear warm-up, then cosine decay to a tenth of the peak learning rate; gradients clipped.
   Every ``eval_every`` steps the loss on a fixed sample of training windows and on the
   validation windows is measured without dropout, and progress is printed.
6. **Outputs** in ``engine/checkpoints/gpt/``: ``model.safetensors`` + ``config.json`` (they
   load unchanged in ``transformers.GPT2LMHeadModel``), ``tokenizer.json``, ``training.json``,
   ``loss.svg`` and ``MODEL_CARD.md``.

The functions are used by the tests on a miniature corpus: :func:`train_model` is the same loop.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from .bpe import BPETokenizer, train_bpe
from .decoder import Decoder
from .gpt_config import GPTConfig
from .gpt_weights import save_weights
from .paths import GPT_CHECKPOINT_DIR

#: The lessons, relative to the repository root (read as files: this package imports no app).
CONTENT_DIR = Path(__file__).resolve().parents[2] / "lessons" / "content"

_LESSON_FILE = re.compile(r"^(?P<slug>[a-z0-9-]+)\.(?P<lang>en|ja)\.md$")
_SECTION_KEYS = {"overview", "eli5", "beginner", "intermediate", "expert"}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?P<yaml>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_LINK = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]")


# --------------------------------------------------------------------------------------------
# 1. Corpus
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One lesson file as training text: ``name`` is the file name, ``lang`` ``en`` or ``ja``."""

    name: str
    lang: str
    text: str

    def paragraphs(self) -> list[str]:
        """The text cut at blank lines: each paragraph is one training text."""
        return [part.strip() for part in re.split(r"\n\s*\n", self.text) if part.strip()]


def _unlink(text: str) -> str:
    """``[[slug|label]]`` -> ``label``, ``[[slug]]`` -> ``slug``."""
    return _LINK.sub(lambda match: match.group(2) or match.group(1), text)


def lesson_text(raw: str) -> str:
    """The prose of one lesson file: front matter read as YAML, markup dropped, quiz kept."""
    front: dict = {}
    body = raw
    match = _FRONT_MATTER.match(raw)  # "---\n<yaml>\n---\n<markdown>"
    if match:
        front = yaml.safe_load(match["yaml"]) or {}
        body = raw[match.end() :]
    parts: list[str] = []
    for key in ("title", "summary"):
        if front.get(key):
            parts.append(str(front[key]).strip())
    for line_block in re.split(r"\n\s*\n", body):
        lines = [
            line
            for line in line_block.strip().splitlines()
            if not (line.startswith("## ") and line[3:].strip().lower() in _SECTION_KEYS)
        ]
        if lines:
            parts.append("\n".join(lines).strip())
    for question in front.get("quiz") or []:
        lines = [str(question.get("question", "")).strip()]
        for choice in question.get("choices") or []:
            lines.append(f"- {str(choice.get('text', '')).strip()}")
            if choice.get("explanation"):
                lines.append(f"  {str(choice['explanation']).strip()}")
        if question.get("observe"):
            lines.append(str(question["observe"]).strip())
        parts.append("\n".join(line for line in lines if line.strip()))
    return _unlink("\n\n".join(part for part in parts if part))


def read_lessons(content_dir: Path = CONTENT_DIR) -> list[Document]:
    """Every ``<slug>.<lang>.md`` file in ``content_dir``, sorted by name (README excluded)."""
    documents = []
    for path in sorted(content_dir.glob("*.md")):
        match = _LESSON_FILE.match(path.name)
        if match is None:
            continue
        text = lesson_text(path.read_text(encoding="utf-8"))
        documents.append(Document(path.name, match["lang"], text))
    if not documents:
        raise FileNotFoundError(f"No lesson files <slug>.<lang>.md in {content_dir}")
    return documents


def split_documents(
    documents: Sequence[Document], *, val_fraction: float, seed: int
) -> tuple[list[Document], list[Document]]:
    """Hold out ``val_fraction`` of each language's documents (at least one each), seeded."""
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for lang in sorted({doc.lang for doc in documents}):
        group = sorted((doc for doc in documents if doc.lang == lang), key=lambda d: d.name)
        count = max(1, round(val_fraction * len(group))) if len(group) > 1 else 0
        held = set(torch.randperm(len(group), generator=generator)[:count].tolist())
        for index, doc in enumerate(group):
            (val if index in held else train).append(doc)
    return train, val


def token_stream(tokenizer: BPETokenizer, documents: Sequence[Document]) -> Tensor:
    """All paragraphs of ``documents``, each ``<|endoftext|>`` + its pieces, end to end."""
    texts = [paragraph for doc in documents for paragraph in doc.paragraphs()]
    ids = [piece for encoded in tokenizer.encode_batch_ids(texts) for piece in encoded]
    return torch.tensor(ids, dtype=torch.long)


# --------------------------------------------------------------------------------------------
# 2. Optimisation
# --------------------------------------------------------------------------------------------


@dataclass
class TrainSettings:
    """Everything that decides the model. The defaults are the committed checkpoint's."""

    seed: int = 1234
    vocab_size: int = 4096
    n_positions: int = 128
    n_embd: int = 192
    n_layer: int = 4
    n_head: int = 6
    dropout: float = 0.2
    batch_size: int = 16
    steps: int = 2000
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.95)
    eval_every: int = 200
    eval_windows: int = 96  # validation windows per evaluation (and as many training windows)
    log_every: int = 20
    val_fraction: float = 0.1
    threads: int = 2

    def config(self, vocab_size: int | None = None, eot_id: int = 0) -> GPTConfig:
        return GPTConfig(
            vocab_size=vocab_size or self.vocab_size,
            n_positions=self.n_positions,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            dropout=self.dropout,
            bos_token_id=eot_id,
            eos_token_id=eot_id,
        )


@dataclass
class EvalPoint:
    step: int
    train_loss: float
    val_loss: float
    learning_rate: float
    elapsed_s: float


@dataclass
class TrainResult:
    decoder: Decoder
    history: list[EvalPoint]
    wall_s: float
    tokens_seen: int
    parameters: int
    device: str
    losses: list[float] = field(default_factory=list)  # every step's training loss


def learning_rate(step: int, settings: TrainSettings) -> float:
    """Linear warm-up to the peak, then cosine decay to ``min_lr_ratio`` of it."""
    peak = settings.learning_rate
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    floor = peak * settings.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _windows(stream: Tensor, length: int, count: int) -> Tensor:
    """Up to ``count`` evenly spaced, non-overlapping windows of ``length`` pieces: ``[N, length]``."""
    available = max(1, (len(stream) - 1) // length)
    if len(stream) <= length:
        raise ValueError(f"A stream of {len(stream)} pieces is too short for windows of {length}")
    starts = torch.linspace(0, (available - 1) * length, min(count, available)).long()
    return torch.stack([stream[start : start + length] for start in starts.tolist()])


def _loss(decoder: Decoder, batch: Tensor) -> Tensor:
    """Mean cross-entropy of predicting ``batch[:, 1:]`` from ``batch[:, :-1]``."""
    logits = decoder(batch[:, :-1]).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(decoder: Decoder, windows: Tensor, batch_size: int) -> float:
    """Mean loss over fixed windows, in eval mode (no dropout)."""
    was_training = decoder.training
    decoder.eval()
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        total += _loss(decoder, batch).item() * len(batch)
        count += len(batch)
    decoder.train(was_training)
    return total / count


def _param_groups(decoder: Decoder, weight_decay: float) -> list[dict]:
    """Weight decay on the matrices (and embeddings); none on biases and LayerNorms."""
    decay = [p for p in decoder.parameters() if p.dim() >= 2]
    no_decay = [p for p in decoder.parameters() if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def train_model(
    config: GPTConfig,
    train_ids: Tensor,
    val_ids: Tensor,
    settings: TrainSettings,
    *,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train a fresh :class:`~.decoder.Decoder` on a stream of piece ids and return it (CPU, eval).

    ``train_ids`` / ``val_ids`` are 1-D streams (see :func:`token_stream`). Deterministic for a
    given ``settings.seed`` on the same machine and thread count.
    """
    torch.manual_seed(settings.seed)
    device = torch.device(device)
    decoder = Decoder(config, device=device).train()
    parameters = sum(p.numel() for p in decoder.parameters())
    optimizer = torch.optim.AdamW(
        _param_groups(decoder, settings.weight_decay),
        lr=settings.learning_rate,
        betas=settings.betas,
        foreach=True,
    )
    window = config.n_positions + 1
    if len(train_ids) <= window:
        raise ValueError(f"{len(train_ids)} training pieces are fewer than one window ({window})")
    val_windows = _windows(val_ids, window, settings.eval_windows).to(device)
    train_windows = _windows(train_ids, window, settings.eval_windows).to(device)
    sampler = torch.Generator().manual_seed(settings.seed)
    offsets = torch.arange(window)
    stream = train_ids.to(device)

    history: list[EvalPoint] = []
    losses: list[float] = []
    log(
        f"training {parameters:,} parameters on {len(train_ids):,} pieces "
        f"(validation {len(val_ids):,}), {settings.steps} steps of "
        f"{settings.batch_size}x{config.n_positions} on {device}"
    )

    def record(step: int, lr: float) -> EvalPoint:
        point = EvalPoint(
            step=step,
            train_loss=evaluate(decoder, train_windows, settings.batch_size),
            val_loss=evaluate(decoder, val_windows, settings.batch_size),
            learning_rate=lr,
            elapsed_s=time.perf_counter() - start,
        )
        history.append(point)
        return point

    start = time.perf_counter()
    first = record(0, 0.0)
    log(f"step 0: train loss {first.train_loss:.4f}, val loss {first.val_loss:.4f}")
    train_clock = time.perf_counter()
    for step in range(settings.steps):
        lr = learning_rate(step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(
            0, len(train_ids) - window + 1, (settings.batch_size,), generator=sampler
        )
        batch = stream[(starts[:, None] + offsets).to(device)]
        loss = _loss(decoder, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), settings.grad_clip)
        optimizer.step()
        losses.append(loss.item())

        done = step + 1
        if done % settings.eval_every == 0 or done == settings.steps:
            point = record(done, lr)
            log(
                f"step {done}: train loss {point.train_loss:.4f}, val loss {point.val_loss:.4f} "
                f"(perplexity {math.exp(point.val_loss):.1f})"
            )
        if done % settings.log_every == 0 or done == settings.steps:
            elapsed = time.perf_counter() - train_clock
            rate = done * settings.batch_size * config.n_positions / elapsed
            eta = elapsed / done * (settings.steps - done)
            recent = sum(losses[-settings.log_every :]) / len(losses[-settings.log_every :])
            log(
                f"step {done}/{settings.steps}  train loss {recent:.4f}  "
                f"val loss {history[-1].val_loss:.4f}  lr {lr:.2e}  "
                f"{rate:,.0f} tokens/s  ETA {eta / 60:.1f} min"
            )
    wall_s = time.perf_counter() - start
    decoder.eval().requires_grad_(False)
    return TrainResult(
        decoder=decoder.to("cpu"),
        history=history,
        wall_s=wall_s,
        tokens_seen=settings.steps * settings.batch_size * config.n_positions,
        parameters=parameters,
        device=str(device),
        losses=losses,
    )


# --------------------------------------------------------------------------------------------
# 3. Outputs: the checkpoint, training.json, loss.svg, MODEL_CARD.md
# --------------------------------------------------------------------------------------------


def loss_svg(history: Sequence[EvalPoint], *, width: int = 640, height: int = 360) -> str:
    """Train and validation loss against the step, as a self-contained SVG (no library)."""
    left, right, top, bottom = 56, 16, 28, 44
    steps = [point.step for point in history]
    values = [v for point in history for v in (point.train_loss, point.val_loss)]
    x_max = max(steps) or 1
    y_min, y_max = math.floor(min(values)), math.ceil(max(values))
    if y_max == y_min:
        y_max = y_min + 1

    def x(step: float) -> float:
        return left + (width - left - right) * step / x_max

    def y(value: float) -> float:
        return top + (height - top - bottom) * (y_max - value) / (y_max - y_min)

    def polyline(name: str, color: str, dash: str = "") -> str:
        points = " ".join(f"{x(p.step):.1f},{y(getattr(p, name)):.1f}" for p in history)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{color}" stroke-width="2"{extra} points="{points}"/>'

    grid = []
    for tick in range(y_min, y_max + 1):
        grid.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for index in range(5):
        step = round(x_max * index / 4)
        grid.append(
            f'<text x="{x(step):.1f}" y="{height - bottom + 18}" text-anchor="middle">{step}</text>'
        )
    final = history[-1]
    title = html.escape(
        f"GPT training: final val loss {final.val_loss:.3f} (perplexity {math.exp(final.val_loss):.1f})"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="sans-serif" font-size="12" '
            'role="img" aria-labelledby="loss-title">',
            f'<title id="loss-title">{title}</title>',
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="{left}" y="18" font-size="13">{title}</text>',
            *grid,
            f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#333"/>',
            f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" '
            f'y2="{height - bottom}" stroke="#333"/>',
            f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">step</text>',
            f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(top + height - bottom) / 2})">cross-entropy loss (nats)</text>',
            polyline("train_loss", "#1f77b4"),
            polyline("val_loss", "#d62728", "6 4"),
            f'<g transform="translate({width - right - 150},{top + 8})">'
            '<line x1="0" x2="24" y1="0" y2="0" stroke="#1f77b4" stroke-width="2"/>'
            '<text x="30" y="4">train</text>'
            '<line x1="0" x2="24" y1="18" y2="18" stroke="#d62728" stroke-width="2" '
            'stroke-dasharray="6 4"/><text x="30" y="22">validation</text></g>',
            "</svg>",
            "",
        ]
    )


def _corpus_stats(documents: Sequence[Document], ids: Tensor) -> dict:
    return {
        "documents": len(documents),
        "documents_by_language": {
            lang: sum(1 for doc in documents if doc.lang == lang)
            for lang in sorted({doc.lang for doc in documents})
        },
        "characters": sum(len(doc.text) for doc in documents),
        "tokens": len(ids),
        "files": [doc.name for doc in documents],
    }


MODEL_CARD = """# Attention Lab GPT (small, trained here)

A GPT-2-architecture decoder **trained from scratch in this repository** on the site's own
bilingual lessons, so that the live demo can show causal attention on Japanese as well as on
English. It is a teaching model, not a useful language model.

| | |
| --- | --- |
| Architecture | GPT-2 (pre-LN blocks, learned positions, `gelu_new`, tied embeddings) |
| Layers / heads / hidden size | {n_layer} / {n_head} / {n_embd} (head size {head_size}) |
| Context | {n_positions} pieces (the first is always `<|endoftext|>`) |
| Vocabulary | {vocab_size} byte-level BPE pieces (no input is ever unknown) |
| Parameters | {parameters:,} (embeddings tied with the output layer) |
| Training | {steps} steps of {batch_size} x {n_positions} pieces = {tokens_seen:,} pieces seen |
| Optimiser | AdamW (betas {betas}, weight decay {weight_decay}), peak learning rate {learning_rate}, {warmup_steps} warm-up steps, cosine decay to {min_lr}, gradient clipping {grad_clip}, dropout {dropout} |
| Wall time | {wall_min:.1f} minutes on {device} ({threads} threads), {hardware} |
| Seed | {seed} |
| Validation loss | **{val_loss:.3f}** nats per piece, perplexity **{perplexity:.1f}** (held-out lessons) |
| Training loss (same measurement) | {train_loss:.3f} |
| Files | `model.safetensors` + `config.json` (load unchanged in `transformers.GPT2LMHeadModel`), `tokenizer.json`, `training.json`, `loss.svg` |

![Training and validation loss](loss.svg)

## Corpus

The text of every lesson file `lessons/content/<slug>.<lang>.md`, in English and Japanese:
titles, summaries, the five explanation tiers and every quiz question, choice and explanation
(the YAML front matter is parsed; source URLs and Markdown section keys are left out, `[[links]]`
become their label). Each paragraph is one training text beginning with `<|endoftext|>`.

- Training: {train_docs} documents ({train_langs}), {train_chars:,} characters, {train_tokens:,} pieces.
- Validation (held out by document, seeded): {val_docs} documents ({val_files}),
  {val_chars:,} characters, {val_tokens:,} pieces. The tokenizer never saw them either.
- Licence: the lessons are this project's own text.
- No public-domain text was added. The PyPI package list was searched (Project Gutenberg,
  Aozora Bunko, Shakespeare, public-domain corpora). The packages found either download their
  texts at run time (`gutenbergpasswordgenerator`, the Gutenberg clients) or only parse Aozora
  Bunko notation; the one that ships texts, `shakespeare` 0.6 (2008, Gutenberg texts under
  CC BY 2.5 packaging), does not install with pip on Python 3.11: its requirements
  (`pygooglechart<0.3`, Pylons) cannot be resolved. Nothing the model learned comes from
  outside this repository.

## What it cannot do

- It knows little beyond these lessons: a few hundred thousand pieces of text about attention,
  Transformers and their neighbours. On any other subject its continuations are fluent-looking
  fragments of lesson sentences, often wrong, sometimes nonsense.
- It has no facts you should trust, does not follow instructions and cannot hold a conversation.
- Its context is {n_positions} pieces; a Japanese character costs about one piece, often less
  for frequent words, and a rare kanji may take two or three.
- It was trained on one small corpus for {wall_min:.0f} minutes on a CPU. Its perplexity on
  held-out lessons ({perplexity:.1f}) is far from a real language model's.

What it is good for: its attention is real causal attention, computed by the same code a learner
reads in `engine/transformer/decoder.py`, and its predictions show what a next-piece model learns
from a small corpus.

## Reproduce

    make train-gpt            # = .venv/bin/python -m engine.transformer.train_gpt

With the same lessons, seed and thread count the run is repeatable on one machine; other
machines differ in the last digits. `training.json` has every setting and every evaluation.
"""


def write_outputs(
    out_dir: Path,
    *,
    tokenizer: BPETokenizer,
    config: GPTConfig,
    result: TrainResult,
    settings: TrainSettings,
    train_docs: Sequence[Document],
    val_docs: Sequence[Document],
    train_ids: Tensor,
    val_ids: Tensor,
) -> dict:
    """Write the checkpoint folder and return the ``training.json`` content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(result.decoder, out_dir / "model.safetensors")
    config.write_json(out_dir / "config.json")
    tokenizer.save(out_dir / "tokenizer.json")
    final = result.history[-1]
    train_langs = _corpus_stats(train_docs, train_ids)["documents_by_language"]
    summary = {
        "trained_on": (
            f"this site's own lessons only: {len(train_docs)} lesson files "
            f"({', '.join(f'{count} {lang}' for lang, count in train_langs.items())}), "
            f"{sum(len(doc.text) for doc in train_docs):,} characters; no outside text"
        ),
        "command": "python -m engine.transformer.train_gpt",
        "settings": asdict(settings),
        "config": config.to_dict(),
        "seed": settings.seed,
        "parameters": result.parameters,
        "tokens_seen": result.tokens_seen,
        "wall_time_s": round(result.wall_s, 1),
        "device": result.device,
        "threads": torch.get_num_threads(),
        "hardware": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "torch": torch.__version__,
        "corpus": {
            "train": _corpus_stats(train_docs, train_ids),
            "validation": _corpus_stats(val_docs, val_ids),
        },
        "evaluations": [asdict(point) for point in result.history],
        "final": {
            "train_loss": final.train_loss,
            "val_loss": final.val_loss,
            "val_perplexity": math.exp(final.val_loss),
        },
    }
    (out_dir / "training.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "loss.svg").write_text(loss_svg(result.history), encoding="utf-8")
    langs = summary["corpus"]["train"]["documents_by_language"]
    card = MODEL_CARD.format(
        **asdict(settings) | {"betas": tuple(settings.betas)},
        head_size=config.head_size,
        parameters=result.parameters,
        tokens_seen=result.tokens_seen,
        min_lr=settings.learning_rate * settings.min_lr_ratio,
        wall_min=result.wall_s / 60,
        device=result.device,
        hardware=summary["hardware"],
        val_loss=final.val_loss,
        train_loss=final.train_loss,
        perplexity=math.exp(final.val_loss),
        train_docs=len(train_docs),
        train_langs=", ".join(f"{count} {lang}" for lang, count in langs.items()),
        train_chars=summary["corpus"]["train"]["characters"],
        train_tokens=len(train_ids),
        val_docs=len(val_docs),
        val_files=", ".join(f"`{doc.name}`" for doc in val_docs),
        val_chars=summary["corpus"]["validation"]["characters"],
        val_tokens=len(val_ids),
    )
    (out_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return summary


def run(settings: TrainSettings, *, content_dir: Path, out_dir: Path, device: str) -> dict:
    """The whole pipeline: corpus, split, tokenizer, training, outputs."""
    torch.set_num_threads(settings.threads)
    documents = read_lessons(content_dir)
    train_docs, val_docs = split_documents(
        documents, val_fraction=settings.val_fraction, seed=settings.seed
    )
    print(
        f"corpus: {len(documents)} documents, {sum(len(d.text) for d in documents):,} characters; "
        f"validation: {', '.join(doc.name for doc in val_docs)}",
        flush=True,
    )
    tokenizer = train_bpe((p for doc in train_docs for p in doc.paragraphs()), settings.vocab_size)
    train_ids = token_stream(tokenizer, train_docs)
    val_ids = token_stream(tokenizer, val_docs)
    config = settings.config(tokenizer.vocab_size, tokenizer.eot_id)
    result = train_model(
        config,
        train_ids,
        val_ids,
        settings,
        device=device,
        log=lambda line: print(line, flush=True),
    )
    summary = write_outputs(
        out_dir,
        tokenizer=tokenizer,
        config=config,
        result=result,
        settings=settings,
        train_docs=train_docs,
        val_docs=val_docs,
        train_ids=train_ids,
        val_ids=val_ids,
    )
    final = summary["final"]
    print(
        f"done in {result.wall_s / 60:.1f} min: val loss {final['val_loss']:.4f}, "
        f"perplexity {final['val_perplexity']:.1f}; wrote {out_dir}",
        flush=True,
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=GPT_CHECKPOINT_DIR)
    parser.add_argument("--content", type=Path, default=CONTENT_DIR)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    parser.add_argument("--threads", type=int, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    settings = TrainSettings()
    if args.steps:
        settings.steps = args.steps
    if args.threads:
        settings.threads = args.threads
    run(settings, content_dir=args.content, out_dir=args.out, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
