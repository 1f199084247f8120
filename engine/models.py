"""One run of the live model on a learner's sentence (and optionally a second one to compare).

The result lives here, in the database, not in Redis: a lost broker message never loses a
finished result. Arrays are stored compactly as zlib-compressed float16 (see ``engine.arrays``).
"""

import uuid

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .limits import MAX_CHARS

FAILURES = {
    "timeout": _("The model took too long on this sentence and was stopped. Try a shorter one."),
    "worker_stopped": _("The worker stopped while reading this sentence. Please submit it again."),
    "stopped_twice": _("The model stopped twice while reading this sentence. Try again later."),
    "unavailable": _("The live model was unavailable for too long. Please submit it again."),
    "error": _("The model failed on this sentence (%(detail)s). Please try again."),
}


class LiveModel(models.TextChoices):
    """The live models a run can use (``engine.catalogue`` describes each)."""

    MINILM = "minilm", _("all-MiniLM-L6-v2 (encoder)")
    GPT = "gpt", _("Attention Lab GPT (decoder, trained here)")


class JobStatus(models.TextChoices):
    """Where a run or a faithfulness check stands."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


FINAL = (JobStatus.DONE, JobStatus.FAILED)


class AttentionRun(models.Model):
    Status = JobStatus
    FINAL = FINAL
    # The large binary fields: a status read defers them, a view loads the one it needs.
    ARRAY_FIELDS = (
        "weights",
        "scores",
        "qkv",
        "compare_weights",
        "generated_attention",
        "value_norms",
        "compare_value_norms",
        "similarity_pairs",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.CharField(max_length=10, choices=LiveModel.choices, default=LiveModel.MINILM)
    text = models.CharField(max_length=MAX_CHARS)
    compare_text = models.CharField(max_length=MAX_CHARS, blank=True)
    # sha256 of the normalised inputs: an identical request reuses a finished result
    input_key = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Why a run failed, as a code (see FAILURES): shown in the reader's language, not the worker's
    error = models.CharField(max_length=30, blank=True)
    error_detail = models.CharField(max_length=200, blank=True)  # e.g. the exception's class
    attempts = models.PositiveSmallIntegerField(default=0)
    device = models.CharField(max_length=20, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)  # handed to the broker
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    compute_ms = models.FloatField(null=True, blank=True)  # the forward pass(es) alone
    # Micro-batching (engine.lifecycle.claim_batch): the run whose task claimed this one, and how
    # many runs were computed together in that padded batch (1: alone).
    batch_leader = models.UUIDField(null=True, blank=True)
    batch_size = models.PositiveSmallIntegerField(default=0)

    layers = models.PositiveSmallIntegerField(default=0)
    heads = models.PositiveSmallIntegerField(default=0)
    tokens = models.JSONField(default=list, blank=True)
    compare_tokens = models.JSONField(default=list, blank=True)
    weights = models.BinaryField(null=True, blank=True)  # [L, H, T, T] after softmax
    scores = models.BinaryField(null=True, blank=True)  # [L, H, T, T] raw QKᵀ/√d, before mask
    qkv = models.BinaryField(null=True, blank=True)  # [3, L, H, T, d] queries, keys, values
    compare_weights = models.BinaryField(null=True, blank=True)
    similarity = models.FloatField(null=True, blank=True)
    # Norm-based attention (Kobayashi et al. 2020): ||f_h(x_j)|| per layer, head and token,
    # [L, H, T]; the matrix is weights × these norms (engine.transformer.contributions).
    value_norms = models.BinaryField(null=True, blank=True)
    compare_value_norms = models.BinaryField(null=True, blank=True)  # the second sentence's
    # A pair run: the cosine split into token pairs, [n][m] (they add up to `similarity`), and
    # the cosine of the two mean-pooled hidden states after each layer (embeddings first).
    similarity_pairs = models.JSONField(default=list, blank=True)
    layer_similarity = models.JSONField(default=list, blank=True)

    # The GPT only: what it read and predicted, and what it generated (see engine.lifecycle).
    generate = models.PositiveSmallIntegerField(default=0)  # new tokens asked for
    temperature = models.FloatField(default=0.0)  # 0: greedy
    top_k = models.PositiveSmallIntegerField(default=0)  # 0: no cut
    seed = models.IntegerField(null=True, blank=True)
    input_ids = models.JSONField(default=list, blank=True)
    # one list per prompt position of the top next tokens: [{"id", "token", "p"}], highest first
    predictions = models.JSONField(default=list, blank=True)
    # the logit lens at the last position: one top list after each layer (the last = the output)
    lens = models.JSONField(default=list, blank=True)
    # the new tokens so far, [{"id", "token", "p"}]: the worker adds them one by one
    generated = models.JSONField(default=list, blank=True)
    generated_text = models.TextField(blank=True)  # decoded from all ids at once (no mojibake)
    # [N, L, H, T_total]: each new token's attention over what came before (zero-padded)
    generated_attention = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="run_status_created")]
        constraints = [
            # One unfinished run per input: two identical submissions at the same moment (a
            # double click) share one run; the database refuses the second (engine.services).
            models.UniqueConstraint(
                fields=["input_key"],
                condition=models.Q(status__in=["queued", "running"]),
                name="run_one_unfinished_per_input",
            )
        ]

    def __str__(self):
        return f"{self.id} {self.status}: {self.text[:40]}"

    @property
    def error_message(self) -> str:
        """The failure, in the active language."""
        if not self.error:
            return ""
        return gettext(FAILURES.get(self.error, FAILURES["error"])) % {"detail": self.error_detail}

    @property
    def is_decoder(self) -> bool:
        return self.model == LiveModel.GPT

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def elapsed_ms(self) -> float | None:
        """From submission to the end, as the learner waited for it."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds() * 1000


# --- the faithfulness check (a deletion test) of a finished run -----------------------------------

CHECK_FAILURES = {
    "too_short": _(
        "This sentence has too few words to remove: the check needs at least two tokens besides the special ones."
    ),
    "timeout": _("The check took too long and was stopped. Try it on a shorter sentence."),
    "worker_stopped": _("The worker stopped during the check. Please start it again."),
    "error": _("The check failed (%(detail)s). Please start it again."),
}


class FaithfulnessCheck(models.Model):
    """One deletion test per run (``engine.faithfulness`` computes it in the worker): remove the
    tokens each explanation ranks highest and measure how far the model's output moves."""

    Status = JobStatus
    FINAL = FINAL

    run = models.OneToOneField(AttentionRun, on_delete=models.CASCADE, related_name="faithfulness")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveSmallIntegerField(default=0)  # progress: steps finished of ``total``
    total = models.PositiveSmallIntegerField(default=0)
    # the curves, see engine.faithfulness.result_json
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=30, blank=True)  # a key of CHECK_FAILURES
    error_detail = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"check of {self.run_id} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def error_message(self) -> str:
        if not self.error:
            return ""
        message = CHECK_FAILURES.get(self.error, CHECK_FAILURES["error"])
        return gettext(message) % {"detail": self.error_detail}
