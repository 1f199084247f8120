"""The head roles of both live models on a fixed reference set of sentences, computed once.

    python -m engine.transformer.reference_roles        # or: make reference-roles

Runs every sentence of :data:`REFERENCE` through its model on the CPU, labels every head with
:func:`.roles.head_roles`, and writes ``engine/reference/head_roles.json``: the sentences, each
sentence's roles, and per head the role it has most often (and in how many sentences). The
model view shows that summary next to the learner's own sentence; a test recomputes it with the
real models and compares, so the shipped file cannot drift from the code or the weights.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from . import roles

OUTPUT = Path(__file__).resolve().parents[1] / "reference" / "head_roles.json"

# Varied English for the encoder (it is English only and uncased): short and long, questions,
# lists, quotes, numbers, clauses, so that positional and punctuation heads all get a chance.
MINILM_SENTENCES = (
    "The cat sat on the mat.",
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "She gave him the book because he asked for it.",
    "Transformers read every word at once.",
    "Where did you put the keys?",
    "I bought apples, oranges, pears and a loaf of bread.",
    "After the storm, the river rose by three metres overnight.",
    'He said, "I will be there by noon."',
    "The committee, which met on Tuesday, rejected the proposal.",
    "Birds fly south in winter; some never return.",
    "Can a machine understand language, or does it only predict words?",
    "The quick brown fox jumps over the lazy dog.",
    "My grandmother's recipe needs two eggs and a cup of sugar.",
    "If it rains tomorrow, the match will be cancelled.",
    "Attention lets each token look at every other token.",
    "The bank raised interest rates again this year.",
    "We sat on the bank of the river and watched the boats.",
    "Please close the door when you leave.",
    "Although the test was hard, most students passed it.",
    "Paris is the capital of France.",
    "The model was trained on millions of sentences from the web.",
    "Nobody knew who had left the lights on.",
    "Run!",
    "The first law of thermodynamics says that energy is conserved.",
    "Tea or coffee?",
    "The children laughed, sang, and danced until midnight.",
    "A small dog chased a large ball across the park.",
    "Learning a language takes years of patient practice.",
    "The results, however, were not what the researchers expected.",
)

# The GPT was trained on this repository's bilingual lessons: prompts in both languages.
GPT_PROMPTS = (
    "自己注意では、各トークンが",
    "Transformer は",
    "ソフトマックス関数は",
    "位置エンコーディングが必要なのは",
    "ニューラルネットワークは、",
    "注意の重みは、クエリとキーの内積から",
    "学習率が大きすぎると、",
    "埋め込みとは何か。",
    "言語モデルは次のトークンを予測する。",
    "勾配降下法では、",
    "In self-attention, every token",
    "The Transformer is",
    "The softmax function",
    "Positional encoding is needed because",
    "A neural network learns by",
    "Attention weights come from queries and keys.",
    "If the learning rate is too large,",
    "An embedding is a vector that",
    "A language model predicts the next token.",
    "Gradient descent, step by step,",
)

REFERENCE = {"minilm": MINILM_SENTENCES, "gpt": GPT_PROMPTS}


def summarise(per_sentence: list[list[str]], layers: int, heads: int) -> list[dict]:
    """Per head: the role it has most often over the sentences (a tie goes to the role listed
    first in ``roles.ROLES``), in how many of them, and the count of every role it had."""
    summary = []
    for index in range(layers * heads):
        counts = Counter(labels[index] for labels in per_sentence)
        role = max(roles.ROLES, key=lambda name: (counts[name], -roles.ROLES.index(name)))
        summary.append(
            {
                "layer": index // heads,
                "head": index % heads,
                "role": role,
                "count": counts[role],
                "counts": {name: counts[name] for name in roles.ROLES if counts[name]},
            }
        )
    return summary


def compute(name: str, model) -> dict:
    """The reference entry of one model: every sentence's roles and the per-head summary."""
    causal = name == "gpt"
    per_sentence = []
    layers = heads = 0
    for text in REFERENCE[name]:
        result = model.run(text)
        layers, heads = result.weights.shape[:2]
        labels = roles.head_roles(
            result.weights,
            texts=result.tokens.display,
            special=result.tokens.special,
            causal=causal,
        )
        per_sentence.append([label.role for label in labels])
    return {
        "layers": int(layers),
        "heads": int(heads),
        "sentences": list(REFERENCE[name]),
        "roles": per_sentence,
        "summary": summarise(per_sentence, layers, heads),
    }


def thresholds() -> dict:
    return {
        "share": roles.SHARE_THRESHOLD,
        "broad_entropy": roles.BROAD_ENTROPY,
        "min_visible_keys": roles.MIN_VISIBLE_KEYS,
    }


def load_models() -> dict:
    from .gpt_model import GPTModel
    from .model import AttentionModel

    return {"minilm": AttentionModel.load(device="cpu"), "gpt": GPTModel.load(device="cpu")}


def build(models: dict | None = None) -> dict:
    models = models or load_models()
    return {
        "about": "Head roles on a fixed reference set; python -m engine.transformer.reference_roles",
        "thresholds": thresholds(),
        "models": {name: compute(name, models[name]) for name in REFERENCE},
    }


def write(data: dict, path: Path = OUTPUT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    data = build()
    write(data, args.output)
    for name, entry in data["models"].items():
        counts = Counter(head["role"] for head in entry["summary"])
        print(name, len(entry["sentences"]), "sentences:", dict(counts.most_common()))


if __name__ == "__main__":
    main()
