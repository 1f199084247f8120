"""Input rules of the live model, and a run computed in-process (the function the task calls)."""

import numpy as np
import pytest
from django.utils import translation

from engine import lifecycle, limits, services, validation
from engine.arrays import pack, unpack
from engine.models import AttentionRun


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        (
            "a" * (limits.MAX_CHARS + 1),
            f"{limits.MAX_CHARS + 1} characters; the limit is {limits.MAX_CHARS}",
        ),
        ("bad\x00byte", "control characters (U+0000)"),
        ("bell\x07", "U+0007"),
        (" ".join(["x1"] * 70), "word pieces"),
        (12, "must be text"),
        (None, "Type a sentence"),
    ],
)
def test_bad_input_gets_a_clear_message(text, message):
    with pytest.raises(validation.InputError) as error:
        validation.validate_text(text)
    assert message in error.value.message


def test_text_is_normalised_never_truncated():
    assert validation.validate_text("  The   cat\nsat. ") == "The cat sat."
    long = "word " * 90 + "end"
    assert validation.validate_text(long) == long.strip()


def test_piece_limit_counts_cls_and_sep():
    from engine.transformer import count_pieces

    text = " ".join(["a"] * (limits.MAX_PIECES - 2))
    assert count_pieces(text) == limits.MAX_PIECES
    assert validation.validate_text(text) == text
    with pytest.raises(validation.InputError):
        validation.validate_text(text + " a")


def test_identical_input_has_one_key():
    assert validation.input_key("a", "") == validation.input_key("a", "")
    assert validation.input_key("a", "b") != validation.input_key("ab", "")


def test_arrays_round_trip_compactly():
    weights = np.random.default_rng(0).dirichlet(np.ones(64), size=(6, 12, 64)).astype(np.float32)
    blob = pack(weights)
    assert len(blob) < weights.nbytes / 2 + 64  # float16 and a header
    assert np.array_equal(unpack(blob), weights.astype(np.float16).astype(np.float32))


def test_arrays_written_before_still_unpack():
    """Runs stored before the arrays went uncompressed hold zlib'd float16 (format AL1)."""
    import struct
    import zlib

    weights = np.random.default_rng(1).random((2, 3, 5, 5)).astype(np.float16)
    old = b"AL1" + struct.pack("<B", 4) + struct.pack("<4I", *weights.shape)
    old += zlib.compress(weights.tobytes(), level=1)
    assert np.array_equal(unpack(old), weights.astype(np.float32))
    with pytest.raises(ValueError):
        unpack(b"XX1" + old[3:])


@pytest.mark.django_db
def test_execute_run_stores_the_whole_result():
    run = AttentionRun.objects.create(
        text="The animal didn't cross the street because it was too tired.",
        compare_text="The animal didn't cross the street because it was too wide.",
        input_key="k",
    )
    lifecycle.execute_run(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "done" and run.device == "cpu" and run.attempts == 1
    tokens = len(run.tokens)
    assert unpack(run.weights).shape == (6, 12, tokens, tokens)
    assert unpack(run.scores).shape == (6, 12, tokens, tokens)
    assert unpack(run.qkv).shape == (3, 6, 12, tokens, 32)
    np.testing.assert_allclose(unpack(run.weights).sum(-1), 1, atol=5e-3)
    assert 0.5 < run.similarity < 1.0
    assert run.tokens[0]["piece"] == "[CLS]" and run.tokens[-1]["piece"] == "[SEP]"
    # the learner's own text, not the lower-cased pieces
    assert run.tokens[1]["text"] == "The" and run.tokens[1]["piece"] == "the"


@pytest.mark.django_db
def test_a_finished_run_is_not_computed_again():
    run = AttentionRun.objects.create(text="The cat sat.", input_key="k2")
    lifecycle.execute_run(run_id=run.id)
    run.refresh_from_db()
    finished_at = run.finished_at
    lifecycle.execute_run(run_id=run.id)  # a second delivery of the same message
    run.refresh_from_db()
    assert run.finished_at == finished_at and run.attempts == 1


@pytest.mark.django_db
def test_a_run_that_died_twice_fails_with_a_message():
    run = AttentionRun.objects.create(
        text="The cat sat.", input_key="k3", status="running", attempts=limits.MAX_ATTEMPTS
    )
    lifecycle.execute_run(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "failed" and "stopped twice" in run.error_message


@pytest.mark.django_db
def test_stale_running_run_is_failed_on_read():
    from datetime import timedelta

    from django.utils import timezone

    run = AttentionRun.objects.create(text="x", input_key="k4", status="running")
    AttentionRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    run.refresh_from_db()
    assert services.repair_stale_run(run=run) is True
    run.refresh_from_db()
    assert run.status == "failed" and run.error


@pytest.mark.django_db
def test_long_queued_run_is_failed_on_read():
    from datetime import timedelta

    from django.utils import timezone

    run = AttentionRun.objects.create(text="x", input_key="k5")
    AttentionRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    run.refresh_from_db()
    assert services.repair_stale_run(run=run) is True
    run.refresh_from_db()
    assert run.status == "failed"


@pytest.mark.django_db
def test_prune_runs_deletes_only_old_finished_runs():
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    long_ago = timezone.now() - timedelta(days=40)
    old_done = AttentionRun.objects.create(
        text="a", input_key="a", status="done", finished_at=long_ago
    )
    old_failed = AttentionRun.objects.create(
        text="b", input_key="b", status="failed", finished_at=long_ago
    )
    recent = AttentionRun.objects.create(
        text="c", input_key="c", status="done", finished_at=timezone.now()
    )
    waiting = AttentionRun.objects.create(text="d", input_key="d")
    out = StringIO()
    call_command("prune_runs", "--days", "30", "--dry-run", stdout=out)
    assert "would delete 2" in out.getvalue() and AttentionRun.objects.count() == 4
    call_command("prune_runs", "--days", "30", stdout=out)
    assert set(AttentionRun.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}
    assert not AttentionRun.objects.filter(pk__in=[old_done.pk, old_failed.pk]).exists()
