"""Every limit of the live model, in one place. The validators, the model fields, the templates
(through ``engine.views``) and the JSON API all read these names; nothing repeats a number."""

from .transformer.tokenizer import MAX_PIECES

MAX_CHARS = 500  # characters of one sentence, after normalising white space
# The form's textarea accepts more than MAX_CHARS so that a learner who pastes a paragraph sees
# a message with its length, instead of a browser silently cutting it.
FORM_MAX_CHARS = 4 * MAX_CHARS
API_MAX_BODY = 16 * 1024  # bytes of JSON a POST to the API may carry
MAX_WAIT = 10.0  # seconds a request may hold a web thread waiting for a run (?wait=)
MAX_ATTEMPTS = 2  # a run whose worker died once is tried once more, then failed

# Generation with the GPT: how many new tokens, and the sampling knobs.
MAX_GENERATE = 32
MAX_TEMPERATURE = 2.0  # 0 means greedy
MAX_TOP_K = 100  # 0 means no top-k cut
MAX_SEED = 2**31 - 1

__all__ = [
    "API_MAX_BODY",
    "FORM_MAX_CHARS",
    "MAX_ATTEMPTS",
    "MAX_CHARS",
    "MAX_GENERATE",
    "MAX_PIECES",
    "MAX_SEED",
    "MAX_TEMPERATURE",
    "MAX_TOP_K",
    "MAX_WAIT",
]
