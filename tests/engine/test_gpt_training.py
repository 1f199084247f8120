"""Training the GPT: the corpus from the lesson files, the split, the loop, the outputs."""

from __future__ import annotations

import itertools
import json
import math
import xml.etree.ElementTree as ET

import pytest
import torch

from engine.transformer import GPTModel
from engine.transformer.bpe import train_bpe
from engine.transformer.train_gpt import (
    Document,
    TrainSettings,
    learning_rate,
    lesson_text,
    loss_svg,
    read_lessons,
    split_documents,
    token_stream,
    train_model,
    write_outputs,
)

LESSON = """---
slug: softmax
title: Softmax
summary: "Turns scores into probabilities."
prerequisites: [linear-algebra]
sources:
  - authors: "Someone"
    title: "A paper"
    year: 2017
    url: "https://example.org/paper"
quiz:
  - id: q1
    section: beginner
    question: "What do the weights add up to?"
    choices:
      - key: a
        text: "One"
        correct: true
        explanation: "Right: a [[softmax]] row is a probability distribution."
      - key: b
        text: "Zero"
        explanation: "No: see [[linear-algebra|linear algebra]]."
---
## overview
Softmax exponentiates every score and divides by the sum.

## eli5
Like sharing a cake by how hungry everyone is.
"""

TINY_TEXT = (
    "the cat sat on the mat. the cat ate the rat. the rat sat on the cat. "
    "猫がマットの上に座った。猫がネズミを食べた。ネズミが猫の上に座った。"
) * 3


def test_lesson_text_keeps_the_prose_and_the_quiz_and_drops_the_markup():
    text = lesson_text(LESSON)
    for kept in (
        "Softmax",
        "Turns scores into probabilities.",
        "Softmax exponentiates every score",
        "Like sharing a cake",
        "What do the weights add up to?",
        "- One",
        "Right: a softmax row is a probability distribution.",
        "No: see linear algebra.",
    ):
        assert kept in text, kept
    for dropped in ("---", "slug:", "prerequisites", "https://", "## overview", "[[", "correct:"):
        assert dropped not in text, dropped


def test_the_real_lessons_are_read_in_both_languages():
    documents = read_lessons()
    languages = {doc.lang for doc in documents}
    assert languages == {"en", "ja"}
    assert all(doc.name.endswith((".en.md", ".ja.md")) for doc in documents)
    japanese = next(doc for doc in documents if doc.lang == "ja")
    assert any("\u3040" <= ch <= "\u30ff" for ch in japanese.text)
    assert not any(doc.text.startswith("---") for doc in documents)


def test_split_is_by_document_seeded_and_covers_both_languages():
    documents = [
        Document(f"t{i}.{lang}.md", lang, f"text {i}") for lang in ("en", "ja") for i in range(20)
    ]
    train, val = split_documents(documents, val_fraction=0.1, seed=3)
    again, _ = split_documents(documents, val_fraction=0.1, seed=3)
    assert train == again
    assert {doc.lang for doc in val} == {"en", "ja"} and len(val) == 4
    assert not {doc.name for doc in train} & {doc.name for doc in val}
    assert len(train) + len(val) == len(documents)
    other, _ = split_documents(documents, val_fraction=0.1, seed=4)
    assert other != train


def test_learning_rate_warms_up_then_decays():
    settings = TrainSettings(steps=100, warmup_steps=10, learning_rate=1e-3, min_lr_ratio=0.1)
    rates = [learning_rate(step, settings) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4)
    assert rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))  # monotone decay
    assert rates[-1] == pytest.approx(1e-4, rel=0.01)


def tiny_run(tmp_path, steps: int = 30):
    documents = [
        Document("tiny.en.md", "en", TINY_TEXT),
        Document("tiny2.en.md", "en", TINY_TEXT[::-1]),
    ]
    tokenizer = train_bpe([TINY_TEXT], 300)
    train_ids = token_stream(tokenizer, documents[:1])
    val_ids = token_stream(tokenizer, documents[1:])
    settings = TrainSettings(
        vocab_size=300,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=2,
        dropout=0.0,
        batch_size=8,
        steps=steps,
        learning_rate=1e-2,
        warmup_steps=3,
        eval_every=10,
        eval_windows=8,
        log_every=10,
        seed=5,
    )
    config = settings.config(tokenizer.vocab_size, tokenizer.eot_id)
    lines: list[str] = []
    result = train_model(config, train_ids, val_ids, settings, log=lines.append)
    return tokenizer, config, settings, result, documents, train_ids, val_ids, lines


def test_a_miniature_model_learns(tmp_path):
    tokenizer, config, settings, result, documents, train_ids, val_ids, lines = tiny_run(tmp_path)
    losses = [point.train_loss for point in result.history]
    assert [point.step for point in result.history] == [0, 10, 20, 30]
    assert losses[-1] < losses[0] - 1.0  # it learned the tiny corpus
    assert losses[0] == pytest.approx(math.log(config.vocab_size), abs=0.5)  # starts uniform
    assert sum(result.losses[-5:]) / 5 < sum(result.losses[:5]) / 5
    assert result.parameters == sum(p.numel() for p in result.decoder.parameters())
    assert not result.decoder.training
    # Progress is printed: step, train loss, val loss, tokens/s, ETA.
    progress = [line for line in lines if "tokens/s" in line]
    assert len(progress) == 3 and all("ETA" in line and "val loss" in line for line in progress)

    # Seeded: the same settings give the same model.
    again = tiny_run(tmp_path)[3]
    assert again.losses == result.losses

    # The outputs form a checkpoint folder that our model and GPT2LMHeadModel both load.
    out = tmp_path / "gpt"
    summary = write_outputs(
        out,
        tokenizer=tokenizer,
        config=config,
        result=result,
        settings=settings,
        train_docs=documents[:1],
        val_docs=documents[1:],
        train_ids=train_ids,
        val_ids=val_ids,
    )
    record = json.loads((out / "training.json").read_text())
    assert record == json.loads(json.dumps(summary))
    assert record["final"]["val_perplexity"] == pytest.approx(math.exp(record["final"]["val_loss"]))
    assert record["corpus"]["train"]["tokens"] == len(train_ids)
    assert record["seed"] == 5 and record["parameters"] == result.parameters
    card = (out / "MODEL_CARD.md").read_text()
    assert "make train-gpt" in card and f"{result.parameters:,}" in card
    ET.fromstring((out / "loss.svg").read_text())  # noqa: S314  our own file: well-formed SVG

    model = GPTModel.load(device="cpu", model_dir=out)
    assert model.generate("the cat", 5).text.startswith("the cat")
    from transformers import GPT2LMHeadModel

    reference = GPT2LMHeadModel.from_pretrained(str(out), attn_implementation="eager").eval()
    ids = torch.tensor([model.encode("the rat sat").ids])
    with torch.inference_mode():
        ours = model.decoder(ids).logits
        theirs = reference(input_ids=ids).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_loss_svg_draws_both_curves():
    from engine.transformer.train_gpt import EvalPoint

    history = [
        EvalPoint(step, 5.0 - step / 100, 5.2 - step / 150, 1e-3, step) for step in (0, 100, 200)
    ]
    svg = loss_svg(history)
    root = ET.fromstring(svg)  # noqa: S314  the SVG we just wrote
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert all(len(line.get("points").split()) == 3 for line in lines)
    assert "perplexity" in svg and "matplotlib" not in svg
