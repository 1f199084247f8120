"""The JSON API's request and response bodies, as pydantic schemas (django-ninja builds the
OpenAPI document at ``/api/v1/openapi.json`` from them).

The limits and enums are ``engine.limits`` and ``engine.models.LiveModel``; a value that does not
fit is refused with the same learner-language message as the form's (``engine.validation``).
Rules across fields (the encoder does not generate, the GPT does not compare) and the rules of
the sentence itself (length after normalising, word pieces, control characters) stay in
``engine.validation``, which the API calls after the schema.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel as Schema
from pydantic import Field, ValidationError, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from . import limits
from .models import AttentionRun, LiveModel
from .transformer.roles import ROLES
from .validation import model_message, option_message, text_type_message

LEARNER_ERROR = "learner_input"  # the pydantic error type whose message is for the learner


def learner_error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the learner as it is."""
    return PydanticCustomError(LEARNER_ERROR, "{message}", {"message": message})


def explained(message: Callable[[Any], str], *, allow_bool: bool = False) -> WrapValidator:
    """Refuse a value that does not fit with ``message(value)`` (in the active language)
    instead of pydantic's own wording. Booleans are refused for numbers: ``true`` is not 1."""

    def validate(value, handler):
        if isinstance(value, bool) and not allow_bool:
            raise learner_error(message(value))
        try:
            return handler(value)
        except ValidationError:
            raise learner_error(message(value)) from None

    return WrapValidator(validate)


def _option(field: str) -> WrapValidator:
    return explained(lambda _value: option_message(field))


# --- requests ---------------------------------------------------------------------------------


class AttentionIn(Schema):
    """A sentence for a live model to read (and, for the GPT, to continue)."""

    text: Annotated[str, explained(text_type_message)] = Field(
        description=(
            f"The sentence: at most {limits.MAX_CHARS} characters after folding white space, "
            "no control characters, and no more word pieces than the model reads."
        )
    )
    compare_text: Annotated[str | None, explained(text_type_message)] = Field(
        default=None, description="A second sentence to compare with (the encoder only)."
    )
    model: Annotated[LiveModel, explained(model_message)] = Field(
        default=LiveModel.MINILM, description="Which live model reads the text."
    )
    generate: Annotated[int, _option("generate")] = Field(
        default=0, ge=0, le=limits.MAX_GENERATE, description="New tokens (the GPT only)."
    )
    temperature: Annotated[float, _option("temperature")] = Field(
        default=0.0, ge=0.0, le=limits.MAX_TEMPERATURE, description="0: greedy."
    )
    top_k: Annotated[int, _option("top_k")] = Field(
        default=0, ge=0, le=limits.MAX_TOP_K, description="0: no top-k cut."
    )
    seed: Annotated[int | None, _option("seed")] = Field(
        default=None, ge=0, le=limits.MAX_SEED, description="For sampling (temperature > 0)."
    )

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data):
        if not isinstance(data, dict):
            raise learner_error('The body must be a JSON object with a "text" field.')
        return data


# --- responses --------------------------------------------------------------------------------


class ErrorOut(Schema):
    """Every refusal: a message (English, or Japanese with ``?lang=ja``), and for bad input the
    field to fix."""

    error: str
    field: str | None = Field(default=None, description="The field to fix (bad input only).")
    retry_after: int | None = Field(default=None, description="429: seconds to wait.")


class ModelOut(Schema):
    id: LiveModel
    name: str
    kind: Literal["encoder", "decoder"]
    layers: int
    heads: int
    hidden_size: int
    context: int = Field(description="The most pieces one run reads (and generates).")
    vocab_size: int
    parameters: int
    trained_on: str
    checkpoint: str = Field(description="The model folder, relative to the repository root.")


class ModelsOut(Schema):
    models: list[ModelOut]


class SubmittedOut(Schema):
    id: str
    model: LiveModel
    status: AttentionRun.Status
    reused: bool = Field(description="An identical request's result (or run under way).")
    url: str = Field(description="Where to read the run.")


class TokenOut(Schema):
    token: str
    p: float


class SimilarityPairOut(Schema):
    a: int = Field(description="A token position in the first sentence.")
    b: int = Field(description="A token position in the second sentence.")
    contribution: float = Field(description="This pair's part of the cosine similarity.")


# Attention after softmax: layers × heads × T × T, or narrowed by ?layer= and ?head= (shallowest
# first, so that checking a small array against a deeper shape fails at once).
Matrix = list[list[float]]
Attention = Matrix | list[Matrix] | list[list[Matrix]]


class RunOut(Schema):
    """A run: its status, and once done its attention (and the GPT's predictions)."""

    id: str
    status: AttentionRun.Status
    model: LiveModel
    error: str | None = Field(description="Why the run failed, in the reader's language.")
    error_code: str | None
    device: str | None
    elapsed_ms: float | None
    compute_ms: float | None
    text: str
    compare_text: str | None
    tokens: list[str]
    input_ids: list[int] | None
    attention: Attention | None = Field(
        description=(
            "Once done: layers × heads × T × T; ?layer= and ?head= narrow it, ?values= chooses "
            "weights (default), scores or norm."
        )
    )
    values: Literal["weights", "scores", "norm"] | None = Field(
        default=None, description="Once done: which values `attention` holds."
    )
    ahead: int | None = Field(default=None, description="While queued: runs waiting before it.")
    similarity: float | None = Field(default=None, description="The encoder, for a pair.")
    similarity_pairs: list[SimilarityPairOut] | None = Field(
        default=None,
        description=(
            "The encoder, for a pair: the cosine split into every token pair (they add up to "
            "`similarity`). The sentence vectors are means of the last hidden states, so "
            "cos = Σ_ab h_a·g_b / (n m |mean h| |mean g|)."
        ),
    )
    layer_similarity: list[float] | None = Field(
        default=None,
        description=(
            "The encoder, for a pair: the cosine of the two sentences' mean hidden states "
            "after each layer, the embeddings first (the last one is `similarity`)."
        ),
    )
    generate: int | None = Field(default=None, description="The GPT: new tokens asked for.")
    generated: list[TokenOut] | None = Field(
        default=None, description="The GPT: the new tokens so far."
    )
    generated_text: str | None = Field(default=None, description="The GPT: the continuation.")
    predictions: list[list[TokenOut]] | None = Field(
        default=None, description="The GPT, once done: the top 5 next tokens at each position."
    )
    lens: list[list[TokenOut]] | None = Field(
        default=None, description="The GPT, once done: the logit lens at the last position."
    )


# --- the faithfulness check --------------------------------------------------------------------


class CurveOut(Schema):
    shift: list[float] = Field(description="How far the output moved after removing k tokens.")
    removed: list[int] = Field(description="The positions this method removes, best first.")


class RandomOut(Schema):
    mean: list[float]
    sd: list[float]
    draws: int


class FaithfulnessResultOut(Schema):
    model: LiveModel
    measure: Literal["embedding_cosine", "next_token_tv"] = Field(
        description="1 − cosine of the sentence embeddings (encoder), or the total variation "
        "distance of the next-token distributions at the last position (GPT)."
    )
    k: list[int] = Field(description="Tokens removed at each point of the curves.")
    tokens: list[str]
    removable: list[int] = Field(description="The positions a removal may take.")
    methods: dict[Literal["attention", "rollout", "norm", "gradient"], CurveOut]
    random: RandomOut
    forward_passes: int
    compute_ms: float


class FaithfulnessOut(Schema):
    """A run's deletion test: its progress, and once done its curves."""

    run: str
    status: Literal["queued", "running", "done", "failed"]
    done: int = Field(description="Steps finished (the worker writes it as it goes).")
    total: int = Field(description="Steps in all (0 until the worker has started).")
    error: str | None = Field(description="Why the check failed, in the reader's language.")
    error_code: str | None
    url: str
    result: FaithfulnessResultOut | None


class HeadOut(Schema):
    """One head's role on the run's sentence (engine.transformer.roles states the rules)."""

    layer: int = Field(ge=0)
    head: int = Field(ge=0)
    role: Literal[ROLES] = Field(
        description=(
            "What the head mostly attends to: the previous or next token, itself, the first "
            "token ([CLS]; `first` for the GPT), the last ([SEP]), punctuation, broadly (high "
            "entropy), or none of these (`other`)."
        )
    )
    score: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "The share of the head's weight behind its label (mean over query rows); for "
            "`broad` the normalised entropy, for `other` the weight no rule explains."
        ),
    )


class HeadsOut(Schema):
    heads: list[HeadOut] = Field(description="One entry per head, layer by layer, head by head.")
