"""Input rules of the live model: one place, one set of limits (``engine.limits``).

Runs in the web process. It tokenises (to count word pieces) but never loads the model.
"""

import hashlib
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .limits import MAX_CHARS, MAX_PIECES
from .transformer.tokenizer import count_pieces


@dataclass
class InputError(ValueError):
    """Bad input, with a message for the learner that names the field to fix."""

    field: str
    message: str

    def __str__(self):
        return self.message


def normalise(text: str) -> str:
    """NFC, trimmed, runs of white space folded to one space: what we compute and compare."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _control_characters(text: str) -> list[str]:
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"
        }
    )


def validate_text(value, *, field: str = "text", required: bool = True) -> str:
    """Return the normalised sentence, or raise InputError with a message that says what to fix.

    The text is never cut short: a sentence that is too long is refused, with its length.
    """
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if value is None:
        raise InputError(field, _("Type a sentence for the model to read."))
    if not isinstance(value, str):
        raise InputError(field, _("The sentence must be text."))
    if not value.strip():
        raise InputError(field, _("The sentence is empty. Type a few words for the model to read."))
    controls = _control_characters(value)
    if controls:
        raise InputError(
            field,
            _("The sentence contains control characters (%(chars)s). Remove them and try again.")
            % {"chars": ", ".join(controls[:5])},
        )
    text = normalise(value)
    if len(text) > MAX_CHARS:
        raise InputError(
            field,
            _("The sentence has %(n)d characters; the limit is %(max)d. Shorten it and try again.")
            % {"n": len(text), "max": MAX_CHARS},
        )
    pieces = count_pieces(text)
    if pieces > MAX_PIECES:
        raise InputError(
            field,
            _(
                "The sentence becomes %(n)d word pieces (with [CLS] and [SEP]); the model reads at "
                "most %(max)d. Shorten it and try again."
            )
            % {"n": pieces, "max": MAX_PIECES},
        )
    return text


def input_key(text: str, compare_text: str = "") -> str:
    """sha256 of the normalised inputs: an identical request reuses a finished result."""
    return hashlib.sha256(f"{text}\x1f{compare_text}".encode()).hexdigest()
