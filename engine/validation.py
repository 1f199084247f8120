"""Input rules of the live model: one place, one set of limits (``engine.limits``).

Runs in the web process. It tokenises (to count word pieces) but never loads the model.
"""

import hashlib
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext as _

from . import catalogue
from .limits import MAX_CHARS, MAX_GENERATE, MAX_SEED, MAX_TEMPERATURE, MAX_TOP_K
from .models import LiveModel


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


def _noncharacter(ch: str) -> bool:
    code = ord(ch)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _control_characters(text: str) -> list[str]:
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            # control characters, and code points that are not characters at all (lone
            # surrogates, noncharacters such as U+FFFF): XML, so an exported SVG, forbids them
            if (unicodedata.category(ch) in ("Cc", "Cs") or _noncharacter(ch))
            and ch not in "\t\n\r"
        }
    )


@dataclass(frozen=True)
class RunOptions:
    """Which model reads the text, and (the GPT only) how many tokens it adds and how."""

    model: str = LiveModel.MINILM
    generate: int = 0
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0  # 0: no cut
    seed: int | None = None


ENCODER = RunOptions()  # the defaults: the encoder, nothing generated


def model_message(model) -> str:
    """The refusal of an unknown model, naming the ones there are."""
    return _("Unknown model %(model)s. Choose one of: %(models)s.") % {
        "model": str(model)[:40],
        "models": ", ".join(LiveModel.values),
    }


def option_message(field: str) -> str:
    """What a generation setting must be, in the active language: the message a refusal of
    ``field`` shows (the form, and the API's request schema, ``engine.schemas``)."""
    if field == "generate":
        return _("The number of tokens to generate must be a whole number from 0 to %(max)d.") % {
            "max": MAX_GENERATE
        }
    if field == "temperature":
        return _("The temperature must be a number from 0 (greedy) to %(max)s.") % {
            "max": MAX_TEMPERATURE
        }
    if field == "top_k":
        return _("top-k must be a whole number from 0 (no limit) to %(max)d.") % {"max": MAX_TOP_K}
    if field == "seed":
        return _("The seed must be a whole number from 0 to %(max)d.") % {"max": MAX_SEED}
    raise KeyError(field)


def text_type_message(value) -> str:
    """The refusal of a sentence that is not a string (None: none was given)."""
    if value is None:
        return _("Type a sentence for the model to read.")
    return _("The sentence must be text.")


def _integer(value, *, field: str, low: int, high: int, default):
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(field, option_message(field))
    try:
        number = int(value)
    except ValueError:
        raise InputError(field, option_message(field)) from None
    if not low <= number <= high:
        raise InputError(field, option_message(field))
    return number


def validate_options(
    *, model=None, generate=None, temperature=None, top_k=None, seed=None, compare_text=""
) -> RunOptions:
    """Check the model and the generation settings; every refusal says what is allowed."""
    model = model or LiveModel.MINILM
    if model not in LiveModel.values:
        raise InputError("model", model_message(model))
    if not catalogue.installed(model):
        raise InputError(
            "model",
            _("The model %(model)s is not installed on this server. Choose another one.")
            % {"model": model},
        )
    generate = _integer(generate, field="generate", low=0, high=MAX_GENERATE, default=0)
    if model == LiveModel.MINILM and generate:
        raise InputError(
            "generate",
            _("The encoder (minilm) cannot generate text. Choose the GPT, or generate 0 tokens."),
        )
    if model == LiveModel.GPT and compare_text:
        raise InputError(
            "compare_text",
            _(
                "Comparing two sentences uses the encoder's sentence vectors. Choose minilm, or "
                "leave the second sentence empty."
            ),
        )
    try:
        temperature = float(temperature) if temperature not in (None, "") else 0.0
    except (TypeError, ValueError):
        temperature = -1.0
    if isinstance(temperature, bool) or not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InputError("temperature", option_message("temperature"))
    top_k = _integer(top_k, field="top_k", low=0, high=MAX_TOP_K, default=0)
    seed = _integer(seed, field="seed", low=0, high=MAX_SEED, default=None)
    if not generate:  # nothing is sampled: the knobs change nothing, and the key stays the same
        temperature, top_k, seed = 0.0, 0, None
    elif temperature == 0.0:  # greedy
        top_k, seed = 0, None
    return RunOptions(model, generate, round(temperature, 3), top_k, seed)


def validate_text(
    value, *, field: str = "text", required: bool = True, options: RunOptions = ENCODER
) -> str:
    """Return the normalised sentence, or raise InputError with a message that says what to fix.

    The text is never cut short: a sentence that is too long is refused, with its length.
    """
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if value is None or not isinstance(value, str):
        raise InputError(field, text_type_message(value))
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
    pieces = catalogue.count_pieces(options.model, text)
    context = catalogue.info(options.model).context
    if options.model == LiveModel.GPT and pieces + options.generate > context:
        raise InputError(
            field,
            _(
                "The text becomes %(n)d pieces and you asked for %(g)d more; the GPT reads at most "
                "%(max)d in all. Shorten it or generate fewer tokens."
            )
            % {"n": pieces, "g": options.generate, "max": context},
        )
    if pieces > context:
        raise InputError(
            field,
            _(
                "The sentence becomes %(n)d word pieces (with [CLS] and [SEP]); the model reads at "
                "most %(max)d. Shorten it and try again."
            )
            % {"n": pieces, "max": context},
        )
    return text


def input_key(text: str, compare_text: str = "", options: RunOptions = ENCODER) -> str:
    """sha256 of the normalised inputs and options: an identical request reuses a finished
    result (the encoder's key is the same as before there were options)."""
    extra = "" if options == ENCODER else f"\x1f{options}"
    return hashlib.sha256(f"{text}\x1f{compare_text}{extra}".encode()).hexdigest()
