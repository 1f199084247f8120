"""Benchmark: our GPT decoder against ``transformers.GPT2LMHeadModel`` (eager), and the training
record of the committed checkpoint.

Run from the repository root::

    .venv/bin/python bench/bench_gpt.py              # CPU, 30 repetitions
    .venv/bin/python bench/bench_gpt.py --device cuda

Compared, interleaved, for inputs of exactly T pieces (``<|endoftext|>`` included):

- **ours**: ``GPTModel.run(text, keep_qkv=True)``: tokenization, the forward pass keeping Q/K/V,
  raw scores, masked scores and weights of every layer, the top-5 predictions at every position,
  the logit lens, conversion of all of it to numpy.
- **decoder only**: our ``Decoder`` forward on the ids, traces kept as torch tensors.
- **reference**: the same tokenizer + ``GPT2LMHeadModel`` loaded from the same checkpoint folder
  (eager attention) with ``output_attentions=True, output_hidden_states=True``.

Writes the section "## GPT forward pass vs reference, and its training" of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _common as common  # noqa: E402

SECTION = "## GPT forward pass vs reference, and its training"
FILLER = (
    "自己注意では、各トークンがほかのすべてのトークンを見て重みを決めます。"
    "Attention lets every token look at the tokens before it and decide what to take. "
)


def text_of_length(pieces: int, tokenizer) -> str:
    """A prefix of the filler (repeated) that tokenizes to exactly ``pieces`` pieces."""
    text = FILLER * (1 + pieces // 8)
    low, high = 1, len(text)
    while low < high:  # the shortest prefix with at least ``pieces`` pieces
        mid = (low + high) // 2
        if tokenizer.count_pieces(text[:mid]) >= pieces:
            high = mid
        else:
            low = mid + 1
    prefix = text[:low]
    if tokenizer.count_pieces(prefix) != pieces:
        raise RuntimeError(f"could not build a text of {pieces} pieces")
    return prefix


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lengths", default="8,16,32,64,128")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_average = " / ".join(f"{x:.2f}" for x in os.getloadavg())

    import torch
    import transformers
    from transformers import GPT2LMHeadModel

    from engine.transformer.gpt_model import GPTModel
    from engine.transformer.paths import gpt_model_dir

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ours = GPTModel.load(device=device)
    folder = gpt_model_dir()
    reference = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager").to(device)
    reference.eval()
    tokenizer = ours.tokenizer
    context = ours.max_pieces

    rows = []
    for length in [int(x) for x in args.lengths.split(",") if int(x) <= context]:
        text = text_of_length(length, tokenizer)
        ids = torch.tensor([tokenizer.encode(text).ids], device=device)

        def run_reference(text=text):
            with torch.inference_mode():
                batch = torch.tensor([tokenizer.encode(text).ids], device=device)
                out = reference(batch, output_attentions=True, output_hidden_states=True)
                return [a.cpu() for a in out.attentions], out.logits.cpu()

        def run_decoder(ids=ids):
            with torch.inference_mode():
                return ours.decoder(ids)

        calls = {
            "ours": lambda text=text: ours.run(text, keep_qkv=True),
            "decoder": run_decoder,
            "reference": run_reference,
        }
        for _ in range(args.warmup):
            for call in calls.values():
                call()
        samples: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for rep in range(args.reps):
            shift = rep % len(order)
            for name in order[shift:] + order[:shift]:
                started = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - started)
        row = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        row["length"] = length
        rows.append(row)
        print(
            f"T={length:<4} ours={row['ours']:7.2f} ms decoder={row['decoder']:7.2f} ms "
            f"reference={row['reference']:7.2f} ms ratio={row['ours'] / row['reference']:.2f}",
            flush=True,
        )

    record = json.loads((folder / "training.json").read_text())
    command = ".venv/bin/python bench/bench_gpt.py" + (
        " " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    )
    lines = [
        SECTION,
        "",
        f"- Date: {common.now_text()}",
        f"- Machine: {common.cpu_model()}, {common.nproc()} cores; device `{device}`; torch "
        f"threads {args.threads}",
        f"- Software: torch {torch.__version__}, transformers {transformers.__version__}",
        f"- Command: `{command}`",
        f"- Load average when the run started: {load_average} (read the interleaved ratios).",
        f"- Model: {ours.config.n_layer} layers, {ours.config.n_head} heads, "
        f"{ours.config.n_embd} dimensions, context {context}, vocabulary {ours.config.vocab_size}.",
        "- **ours** = `GPTModel.run(text, keep_qkv=True)` (every intermediate, top-5 predictions "
        "at every position, the logit lens, numpy); **decoder** = our `Decoder` forward on ids; "
        "**reference** = `GPT2LMHeadModel` (eager) from the same folder with `output_attentions` "
        f"and `output_hidden_states`. Median of {args.reps} interleaved repetitions.",
        "",
        "| T | ours (ms) | decoder only (ms) | reference (ms) | ours / reference |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['length']} | {row['ours']:.2f} | {row['decoder']:.2f} | "
            f"{row['reference']:.2f} | {row['ours'] / row['reference']:.2f} |"
        )
    lines += [
        "",
        "Training of the committed checkpoint (from `engine/checkpoints/gpt/training.json`; "
        "reproduce with `make train-gpt`):",
        "",
        "| measure | value |",
        "|---|---:|",
    ]
    corpus = record["corpus"]
    figures = {
        "parameters": record["parameters"],
        "steps × batch × context": (
            f"{record['settings']['steps']} × {record['settings']['batch_size']} × "
            f"{record['settings']['n_positions']}"
        ),
        "wall time (s)": record["wall_time_s"],
        "device, threads": f"{record['device']}, {record['threads']}",
        "train documents / characters / tokens": (
            f"{corpus['train']['documents']} / {corpus['train']['characters']:,} / "
            f"{corpus['train']['tokens']:,}"
        ),
        "validation documents / characters / tokens": (
            f"{corpus['validation']['documents']} / {corpus['validation']['characters']:,} / "
            f"{corpus['validation']['tokens']:,}"
        ),
        "final train loss": record["final"]["train_loss"],
        "final validation loss": record["final"]["val_loss"],
        "validation perplexity": record["final"]["val_perplexity"],
        "seed": record["seed"],
    }
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {shown} |")
    section = "\n".join(lines) + "\n"
    common.publish(SECTION, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
