"""Micro-batching: several runs computed as one padded batch give each run what it gets alone.

At the model level (direct calls) the arrays agree within 1e-5; through a real worker the stored
arrays (float16, see ``engine.arrays``) agree with the same arrays computed alone and packed the
same way, and the rows say that they really were computed together (``batch_size``).
"""

import numpy as np
import pytest

from engine.transformer import AttentionModel, GPTModel
from engine.transformer.analysis import cosine_similarity

TOL = {"rtol": 1e-5, "atol": 1e-5}
ENCODER_TEXTS = [
    "The cat sat on the mat.",
    "Attention is all you need, said the paper that started it.",
    "Tea.",
    "The animal didn't cross the street because it was too tired to walk any further today.",
]
PAIR = ("I love tea.", "Tea is my favourite drink of all the drinks in the world.")
GPT_TEXTS = [
    "注意機構は",
    "Attention is how a model reads",
    "A transformer reads every token of the sentence at once.",
]


@pytest.fixture(scope="module")
def encoder():
    return AttentionModel.load(device="cpu")


@pytest.fixture(scope="module")
def gpt():
    return GPTModel.load(device="cpu")


def assert_same_encoder(batched, alone):
    assert batched.tokens.ids == alone.tokens.ids
    for name in ("weights", "scores", "queries", "keys", "values", "embedding"):
        got, want = getattr(batched, name), getattr(alone, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, **TOL, err_msg=name)


def test_encoder_batch_equals_each_text_alone(encoder):
    texts = [*ENCODER_TEXTS, *PAIR]
    batched = encoder.run_batch(texts, keep_qkv=True)
    assert len({len(result) for result in batched}) > 2  # really different lengths: padding
    for text, result in zip(texts, batched, strict=True):
        assert_same_encoder(result, encoder.run(text, keep_qkv=True))
    first, second, similarity = encoder.run_pair(*PAIR, keep_qkv=True)
    assert_same_encoder(batched[-2], first)
    assert_same_encoder(batched[-1], second)
    batched_similarity = cosine_similarity(batched[-2].embedding, batched[-1].embedding)
    assert batched_similarity == pytest.approx(similarity, abs=1e-5)


def test_gpt_batch_equals_each_text_alone(gpt):
    batched = gpt.run_batch(GPT_TEXTS, keep_qkv=True)
    assert len({len(result) for result in batched}) == len(GPT_TEXTS)
    for text, result in zip(GPT_TEXTS, batched, strict=True):
        alone = gpt.run(text, keep_qkv=True)
        np.testing.assert_array_equal(result.input_ids, alone.input_ids)
        for name in ("weights", "scores", "queries", "keys", "values"):
            np.testing.assert_allclose(
                getattr(result, name), getattr(alone, name), **TOL, err_msg=name
            )
        for got_rows, want_rows in (
            (result.predictions, alone.predictions),
            (result.lens, alone.lens),
        ):
            assert [[c[0] for c in row] for row in got_rows] == [
                [c[0] for c in row] for row in want_rows
            ]
            np.testing.assert_allclose(
                [[c[2] for c in row] for row in got_rows],
                [[c[2] for c in row] for row in want_rows],
                **TOL,
            )


# --- claiming a batch (the worker's lifecycle, in this process) --------------------------------


def make_run(text, *, model="minilm", generate=0, compare_text="", **fields):
    import hashlib

    from engine.models import AttentionRun

    key = hashlib.sha256(f"{model}:{text}:{compare_text}:{generate}".encode()).hexdigest()

    return AttentionRun.objects.create(
        text=text,
        compare_text=compare_text,
        model=model,
        generate=generate,
        input_key=key,
        **fields,
    )


@pytest.mark.django_db
def test_a_claim_takes_queued_runs_of_the_same_model_oldest_first(settings):
    from engine import lifecycle

    settings.ENGINE_BATCH_MAX = 3
    leader = make_run("The cat sat.")
    first, second, third = (make_run(f"Queued number {i}.") for i in range(3))
    gpt = make_run("注意機構は", model="gpt")
    claimed = lifecycle.claim_batch(run_id=leader.id, worker="w1")
    assert [run.id for run in claimed] == [leader.id, first.id, second.id]
    assert all(run.batch_size == 3 for run in claimed)  # written with the results
    for run in claimed:
        run.refresh_from_db()
        assert (run.status, run.batch_leader, run.attempts, run.worker) == (
            "running",
            leader.id,
            1,
            "w1",
        )
    for untouched in (third, gpt):
        untouched.refresh_from_db()
        assert untouched.status == "queued" and untouched.batch_leader is None
    # the messages of the runs claimed with the leader arrive later: skipped, not claimed again
    assert lifecycle.claim_batch(run_id=first.id, worker="w2") == []
    first.refresh_from_db()
    assert first.worker == "w1" and first.attempts == 1


@pytest.mark.django_db
def test_a_claim_prefers_runs_of_about_the_leaders_length(settings):
    """Less padding: followers closest to the leader's length, the oldest among equals; a run
    left out still leads its own batch when its own message arrives."""
    from engine import lifecycle

    settings.ENGINE_BATCH_MAX = 3
    leader = make_run("The cat sat on the mat.")
    long = make_run("A much longer sentence that would make every other one in its batch wait.")
    close = make_run("The dog lay on a rug.")
    closer = make_run("The cat sat on my mat.")
    same = make_run("The owl sat on a branch")
    claimed = lifecycle.claim_batch(run_id=leader.id, worker="w1")
    assert [run.id for run in claimed] == [leader.id, closer.id, same.id]
    left = lifecycle.claim_batch(run_id=long.id, worker="w2")  # its own message: it leads
    assert [run.id for run in left] == [long.id, close.id]


@pytest.mark.django_db
def test_a_generating_gpt_run_leads_but_is_never_taken_into_a_batch(settings):
    from engine import lifecycle

    settings.ENGINE_BATCH_MAX = 8
    leader = make_run("Attention is", model="gpt")
    generating = make_run("注意機構は", model="gpt", generate=4)
    reading = make_run("A model reads", model="gpt")
    claimed = lifecycle.claim_batch(run_id=leader.id)
    assert [run.id for run in claimed] == [leader.id, reading.id]
    assert [run.id for run in lifecycle.claim_batch(run_id=generating.id)] == [generating.id]


@pytest.mark.django_db
def test_a_redelivered_leader_takes_back_its_batch_and_counts_attempts(settings):
    from engine import lifecycle, limits

    settings.ENGINE_BATCH_MAX = 4
    leader, follower = make_run("The cat sat."), make_run("The dog ran.")
    assert len(lifecycle.claim_batch(run_id=leader.id)) == 2
    # the worker died mid-batch: the leader's message comes back (acks_late), nobody else's
    again = lifecycle.claim_batch(run_id=leader.id, worker="w2")
    assert {run.id for run in again} == {leader.id, follower.id}
    assert all(run.attempts == 2 for run in again)
    # it died again: both are at MAX_ATTEMPTS and fail with the message, nothing is computed
    assert limits.MAX_ATTEMPTS == 2
    assert lifecycle.claim_batch(run_id=leader.id) == []
    for run in (leader, follower):
        run.refresh_from_db()
        assert run.status == "failed" and run.error == "stopped_twice"


@pytest.mark.django_db
def test_a_failing_task_fails_its_whole_batch_and_nothing_else(settings):
    from engine import lifecycle

    settings.ENGINE_BATCH_MAX = 2
    leader, follower, other = make_run("One."), make_run("Two."), make_run("Three.")
    lifecycle.claim_batch(run_id=leader.id)
    assert lifecycle.fail_batch(run_id=leader.id, code="timeout", detail="TimeLimitExceeded") == 2
    statuses = {
        run.id: run.status for run in (leader, follower, other) if not run.refresh_from_db()
    }
    assert statuses == {leader.id: "failed", follower.id: "failed", other.id: "queued"}


@pytest.mark.django_db
def test_a_batch_computes_each_run_as_it_would_be_alone(settings, encoder):
    """In this process (no broker): a batch of an encoder pair and singles of different
    lengths stores, for each run, the arrays of that run computed alone (float16 storage)."""
    from engine import lifecycle
    from engine.arrays import unpack

    settings.ENGINE_BATCH_MAX = 8
    runs = [make_run(ENCODER_TEXTS[0]), make_run(PAIR[0], compare_text=PAIR[1])]
    runs += [make_run(text) for text in ENCODER_TEXTS[1:]]
    lifecycle.execute_run(run_id=runs[0].id)
    for run in runs:
        run.refresh_from_db()
        assert run.status == "done" and run.batch_size == len(runs)
        alone = encoder.run(run.text, keep_qkv=True)
        assert_stored_equal(unpack(run.weights), alone.weights)
        assert_stored_equal(unpack(run.scores), alone.scores)
        assert_stored_equal(unpack(run.qkv), np.stack([alone.queries, alone.keys, alone.values]))
    pair = runs[1]
    _first, second, similarity = encoder.run_pair(pair.text, pair.compare_text, keep_qkv=True)
    assert_stored_equal(unpack(pair.compare_weights), second.weights)
    assert pair.similarity == pytest.approx(similarity, abs=1e-5)


def assert_stored_equal(stored, alone):
    """Equal to ``alone`` as stored (float16): within half a float16 step, plus 1e-5 for the
    batch, of the value computed alone."""
    assert stored.shape == alone.shape
    step = np.spacing(np.abs(alone).astype(np.float16)).astype(np.float32)
    assert np.all(np.abs(stored - alone) <= step / 2 + 1e-5)
