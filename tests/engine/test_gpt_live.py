"""The GPT as a live model: choosing it, its limits, the API contract, and a run through a
real worker with predictions, the logit lens, generation and the lower-triangular views."""

import numpy as np
import pytest
from django.utils import translation

from engine import catalogue, limits, validation
from engine.models import AttentionRun
from tests.conftest import wait_for_run


@pytest.mark.parametrize(
    ("options", "field", "english", "japanese"),
    [
        ({"model": "bert"}, "model", "Unknown model bert", "bert"),
        ({"model": "gpt", "generate": limits.MAX_GENERATE + 1}, "generate", "from 0 to", "0"),
        ({"model": "gpt", "generate": -1}, "generate", "whole number", "整数"),
        ({"model": "gpt", "generate": 2.5}, "generate", "whole number", "整数"),
        ({"model": "gpt", "generate": "many"}, "generate", "whole number", "整数"),
        ({"model": "gpt", "generate": True}, "generate", "whole number", "整数"),
        ({"model": "minilm", "generate": 4}, "generate", "cannot generate", "生成"),
        ({"model": "gpt", "compare_text": "Another."}, "compare_text", "encoder", "エンコーダ"),
        ({"model": "gpt", "generate": 4, "temperature": 9}, "temperature", "temperature", "温度"),
        ({"model": "gpt", "generate": 4, "top_k": 1000}, "top_k", "top-k", "top-k"),
        ({"model": "gpt", "generate": 4, "seed": -3}, "seed", "seed", "シード"),
    ],
)
def test_bad_options_get_a_clear_message_in_both_languages(options, field, english, japanese):
    for lang, expected in (("en", english), ("ja", japanese)):
        with translation.override(lang), pytest.raises(validation.InputError) as error:
            validation.validate_options(**options)
        assert error.value.field == field
        assert expected in error.value.message, (lang, error.value.message)


def test_options_are_normalised_so_identical_requests_share_a_key():
    greedy = validation.validate_options(model="gpt", generate="8", top_k="5", seed="3")
    assert greedy == validation.RunOptions("gpt", 8, 0.0, 0, None)  # greedy: knobs unused
    sampled = validation.validate_options(model="gpt", generate=8, temperature=0.8, seed=1)
    assert (sampled.temperature, sampled.seed) == (0.8, 1)
    assert validation.input_key("x", "", greedy) != validation.input_key("x", "", sampled)
    assert validation.input_key("x") == validation.input_key("x", "", validation.ENCODER)


def test_the_gpt_counts_its_context_with_the_generated_tokens():
    context = catalogue.info("gpt").context
    options = validation.validate_options(model="gpt", generate=limits.MAX_GENERATE)
    text = "あ" * (context * 4)
    with pytest.raises(validation.InputError) as error:
        validation.validate_text(text[: limits.MAX_CHARS], options=options)
    assert str(context) in error.value.message
    assert validation.validate_text("自己注意とは", options=options) == "自己注意とは"


@pytest.mark.django_db
def test_models_endpoint_describes_both_models(client, settings):
    from pathlib import Path

    body = client.get("/api/v1/models").json()
    models = {model["id"]: model for model in body["models"]}
    assert set(models) == {"minilm", "gpt"}
    gpt = models["gpt"]
    for key in ("layers", "heads", "parameters", "trained_on", "checkpoint"):
        assert gpt[key], key
    assert not Path(gpt["checkpoint"]).is_absolute()
    assert (Path(settings.BASE_DIR) / gpt["checkpoint"] / "model.safetensors").is_file()
    assert models["minilm"]["layers"] == 6 and models["minilm"]["heads"] == 12


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "猫が", "model": "unknown"}, "model"),
        ({"text": "猫が", "model": "gpt", "generate": 99}, "generate"),
        ({"text": "猫が", "model": "gpt", "generate": "3"}, None),
        ({"text": "猫が", "model": "gpt", "generate": [3]}, "generate"),
        ({"text": "The cat.", "model": "minilm", "generate": 2}, "generate"),
    ],
)
def test_api_refuses_bad_model_options_in_the_learners_language(client, payload, field):
    response = client.post("/api/v1/attention?lang=ja", payload, content_type="application/json")
    if field is None:  # a numeric string is accepted, as a form would send it
        assert response.status_code == 202, response.content
        return
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field
    assert any("\u3040" <= ch <= "\u30ff" for ch in body["error"]), body  # Japanese
    assert not AttentionRun.objects.filter(model="gpt", text="猫が", generate=99).exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_gpt_run_through_a_real_worker(client, celery_worker_process):
    response = client.post(
        "/api/v1/attention",
        {"text": "自己注意では、各トークンが", "model": "gpt", "generate": 6},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["model"] == "gpt"
    run = wait_for_run(body["id"])
    assert run.status == "done", run.error_detail
    result = client.get(body["url"]).json()
    assert result["model"] == "gpt" and result["input_ids"]
    length = len(result["input_ids"])
    attention = np.array(result["attention"])
    info = catalogue.info("gpt")
    assert attention.shape == (info.layers, info.heads, length, length)
    assert np.all(np.triu(attention, k=1) == 0)  # nothing above the diagonal: causal
    np.testing.assert_allclose(attention.sum(-1), 1, atol=5e-3)
    assert len(result["predictions"]) == length
    for top in result["predictions"]:
        assert len(top) == 5
        ps = [entry["p"] for entry in top]
        assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1.0001
    assert len(result["lens"]) == info.layers
    assert 1 <= len(result["generated"]) <= 6  # fewer if it wrote <|endoftext|>
    assert result["generated_text"]  # the continuation, decoded from its ids together
    assert result["generated"][0]["p"] > 0
    # the run page: the lower triangle, the predictions, the generation
    page = client.get(f"/ja/demo/runs/{run.id}/").content.decode()
    assert 'data-causal="true"' in page and 'class="cell masked"' in page
    assert "predictions-table" in page and "lens-table" in page
    assert f'<mark class="continuation">{result["generated_text"]}</mark>' in page
    generation = client.get(f"/ja/demo/runs/{run.id}/?kind=generation").content.decode()
    assert 'data-rows="6"' in generation
    step = client.get(f"/en/demo/runs/{run.id}/?kind=step").content.decode()
    assert "causal mask" in step
