"""Data computed once offline and shipped with the code (read, never written, by the web).

``head_roles.json``: every head's role on a fixed reference set of sentences, for both live
models; written by ``python -m engine.transformer.reference_roles`` (``make reference-roles``)
and checked against the real models by ``tests/engine/test_reference_roles.py``.
"""

import json
from functools import cache
from pathlib import Path

HEAD_ROLES = Path(__file__).resolve().parent / "head_roles.json"


@cache
def head_roles() -> dict:
    """The whole file: ``{"thresholds": {...}, "models": {name: {...}}}``."""
    return json.loads(HEAD_ROLES.read_text(encoding="utf-8"))


def head_summary(model: str) -> dict | None:
    """One model's reference summary: ``sentences`` (count), and per ``(layer, head)`` the
    role the head has most often on the set and in how many sentences. None for a model the
    file does not cover."""
    entry = head_roles()["models"].get(model)
    if entry is None:
        return None
    return {
        "sentences": len(entry["sentences"]),
        "heads": {(head["layer"], head["head"]): head for head in entry["summary"]},
    }
