"""Benchmark: our forward pass with every intermediate vs Hugging Face BertModel (eager).

Run from the repository root::

    .venv/bin/python bench/bench_forward.py              # CPU, 30 repetitions
    .venv/bin/python bench/bench_forward.py --device cuda

Compared, interleaved, for inputs of exactly T pieces ([CLS] and [SEP] included):

- **ours**: ``AttentionModel.run(text, keep_qkv=True)``: tokenization, forward pass keeping
  queries/keys/values, raw scores and weights of every layer, sentence embedding, conversion of
  all of it to numpy.
- **ours (encoder only)**: ``Encoder(ids)`` on pre-tokenized ids, traces kept as torch tensors.
- **reference**: tokenization with the same ``tokenizers.Tokenizer`` + ``BertModel`` (eager
  attention) with ``output_attentions=True, output_hidden_states=True``.

The medians are printed as a markdown table and written to ``bench/RESULTS.md`` under
"## Forward pass vs reference" (only that section is replaced).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

# The reference must never try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _common as common  # noqa: E402  (after the path and the offline switches)

SECTION = "## Forward pass vs reference"

# Common English words, each a single WordPiece in the uncased vocabulary.
FILLER = (
    "the cat sat on a mat and the dog ran to see what was there while people in the house "
    "made tea for all their friends who came over from the city last night"
)


def text_of_length(pieces: int, count_pieces) -> str:
    """A text that tokenizes to exactly ``pieces`` pieces (``[CLS]``/``[SEP]`` included)."""
    filler = FILLER.split()
    words = [filler[i % len(filler)] for i in range(pieces - 2)]
    text = " ".join(words)
    if count_pieces(text) != pieces:
        raise RuntimeError(f"could not build a text of {pieces} pieces")
    return text


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--reps", type=int, default=30, help="repetitions per point (median)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lengths", default="8,16,32,64,128")
    parser.add_argument(
        "--threads", default="1,default", help="torch thread counts to try; 'default' = as started"
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args()

    load_average = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    import torch

    from engine.transformer import AttentionModel, count_pieces

    import_s = time.perf_counter() - started
    default_threads = torch.get_num_threads()

    model = AttentionModel.load(device=args.device)
    load_ms = model.load_ms
    rss_after_load = common.vm_rss_mib(os.getpid())
    device = model.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    from tokenizers import Tokenizer
    from transformers import BertModel

    reference = BertModel.from_pretrained(str(model.model_dir), attn_implementation="eager")
    reference = reference.to(device).eval()
    ref_tokenizer = Tokenizer.from_file(str(model.model_dir / "tokenizer.json"))
    ref_tokenizer.no_truncation()
    ref_tokenizer.no_padding()

    def run_ours(text: str) -> None:
        model.run(text, keep_qkv=True)
        sync()

    def run_encoder(ids: torch.Tensor) -> None:
        with torch.inference_mode():
            model.encoder(ids)
        sync()

    def run_reference(text: str) -> None:
        with torch.inference_mode():
            ids = torch.tensor([ref_tokenizer.encode(text).ids], device=device)
            out = reference(input_ids=ids, output_attentions=True, output_hidden_states=True)
        assert len(out.attentions) == model.config.num_layers
        sync()

    lengths = [int(x) for x in args.lengths.split(",")]
    thread_counts = []
    for item in args.threads.split(","):
        count = default_threads if item.strip() == "default" else int(item)
        if count not in thread_counts:
            thread_counts.append(count)

    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for length in lengths:
            text = text_of_length(length, count_pieces)
            ids = torch.tensor([model.encode(text).ids], device=device)
            candidates = {
                "ours": lambda text=text: run_ours(text),
                "encoder": lambda ids=ids: run_encoder(ids),
                "reference": lambda text=text: run_reference(text),
            }
            for _ in range(args.warmup):
                for call in candidates.values():
                    call()
            samples: dict[str, list[float]] = {name: [] for name in candidates}
            order = list(candidates)
            for rep in range(args.reps):
                # Interleave, and rotate the order so no one always runs first.
                shift = rep % len(order)
                for name in order[shift:] + order[:shift]:
                    t0 = time.perf_counter()
                    candidates[name]()
                    samples[name].append(time.perf_counter() - t0)
            row = {name: median_ms(values) for name, values in samples.items()}
            row.update(threads=threads, length=length)
            rows.append(row)
            print(
                f"threads={threads:<2} T={length:<4} ours={row['ours']:7.2f} ms  "
                f"encoder={row['encoder']:7.2f} ms  reference={row['reference']:7.2f} ms  "
                f"ratio={row['ours'] / row['reference']:.2f}",
                flush=True,
            )
    torch.set_num_threads(default_threads)

    command = "python bench/bench_forward.py" + (
        " " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    )
    section = render(
        rows,
        device=str(device),
        threads_default=default_threads,
        reps=args.reps,
        load_ms=load_ms,
        import_s=import_s,
        rss=rss_after_load,
        command=f".venv/bin/{command}",
        load_average=load_average,
    )
    print()
    print(section)
    if not args.no_write:
        common.write_section(SECTION, section, Path(args.results))
        print(f"(written to {args.results})")
    return 0


def render(
    rows, *, device, threads_default, reps, load_ms, import_s, rss, command, load_average
) -> str:
    import torch
    import transformers

    gpu = ""
    if device.startswith("cuda"):
        gpu = f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    lines = [
        SECTION,
        "",
        f"- Date: {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Machine: {common.cpu_model()}, {os.cpu_count()} logical cores{gpu}; device `{device}`",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        f"- Command: `{command}`",
        f"- Load average when the run started: {load_average} (other processes share the CPUs, "
        "so absolute times are noisy; the interleaved ratio is the figure to read).",
        f"- Median of {reps} interleaved repetitions per cell (after warm-up); "
        f"torch threads 1 and the default ({threads_default}).",
        "- **ours** = `AttentionModel.run(text, keep_qkv=True)`: tokenization + forward keeping "
        "Q/K/V, raw scores and weights of all layers + sentence embedding + conversion to numpy. "
        "**encoder** = our `Encoder` forward alone on token ids. **reference** = same tokenizer + "
        "HF `BertModel` (eager) with `output_attentions` and `output_hidden_states`.",
        f"- Model load (ours, config + weights + tokenizer): {load_ms:.0f} ms "
        f"(after {import_s:.1f} s of imports); process RSS after load: {rss:.0f} MiB.",
        "",
        "| threads | T | ours (ms) | encoder only (ms) | reference (ms) | ours / reference |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['threads']} | {row['length']} | {row['ours']:.2f} | {row['encoder']:.2f} "
            f"| {row['reference']:.2f} | {row['ours'] / row['reference']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
