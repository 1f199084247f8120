"""Devices, model files, configuration and weight-name mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.transformer import AttentionModel, resolve_device
from engine.transformer.config import EncoderConfig
from engine.transformer.device import DeviceUnavailable
from engine.transformer.paths import ModelFilesMissing, model_dir
from engine.transformer.weights import engine_name

# ---------------------------------------------------------------- device


def test_cpu_resolves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_auto_picks_what_is_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_env_var_is_the_default(monkeypatch):
    monkeypatch.setenv("ENGINE_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    monkeypatch.delenv("ENGINE_DEVICE")
    assert resolve_device().type in ("cpu", "cuda")


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    if torch.cuda.is_available():  # a GPU machine: asking for cuda simply works
        assert resolve_device("cuda").type == "cuda"
        return
    with pytest.raises(DeviceUnavailable, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setenv("ENGINE_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailable, match="cpu"):
        resolve_device()
    with pytest.raises(DeviceUnavailable):
        AttentionModel.load(device="cuda")


@pytest.mark.parametrize("name", ["gpu", "mps", "tpu", "", "cuda0", "cpu:1"])
def test_unknown_device_is_refused(name):
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_device(name)


# ---------------------------------------------------------------- files and config


def test_model_dir_holds_the_files():
    directory = model_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (directory / name).is_file()


def test_model_dir_override_and_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINE_MODEL_DIR", str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFilesMissing, match=r"model\.safetensors, tokenizer\.json"):
        model_dir()
    monkeypatch.setenv("ENGINE_MODEL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ModelFilesMissing, match="does not exist"):
        model_dir()


def test_config_is_minilm():
    config = EncoderConfig.from_json(model_dir() / "config.json")
    assert (config.hidden_size, config.num_layers, config.num_heads) == (384, 6, 12)
    assert config.head_size == 32
    assert config.intermediate_size == 1536
    assert config.max_positions == 512
    assert config.type_vocab_size == 2
    assert config.vocab_size == 30522
    assert config.layer_norm_eps == 1e-12


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize(
    ("checkpoint", "ours"),
    [
        ("encoder.layer.0.attention.self.query.weight", "layers.0.attention.query.weight"),
        ("bert.encoder.layer.5.attention.self.value.bias", "layers.5.attention.value.bias"),
        ("0.auto_model.encoder.layer.2.attention.output.dense.weight",
         "layers.2.attention.output.weight"),
        ("encoder.layer.3.attention.output.LayerNorm.bias", "layers.3.attention_norm.bias"),
        ("encoder.layer.1.intermediate.dense.weight", "layers.1.feed_forward.up.weight"),
        ("encoder.layer.1.output.dense.bias", "layers.1.feed_forward.down.bias"),
        ("encoder.layer.4.output.LayerNorm.weight", "layers.4.output_norm.weight"),
        ("bert.embeddings.LayerNorm.gamma", "embeddings.norm.weight"),
        ("0.auto_model.embeddings.word_embeddings.weight", "embeddings.word.weight"),
        ("embeddings.token_type_embeddings.weight", "embeddings.token_type.weight"),
        ("embeddings.position_ids", None),
        ("pooler.dense.weight", None),
        ("cls.predictions.bias", None),
    ],
)  # fmt: skip
def test_weight_names(checkpoint, ours):
    assert engine_name(checkpoint) == ours


def test_prefixed_checkpoint_loads_identically(tmp_path):
    directory = model_dir()
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    tensors = load_file(str(directory / "model.safetensors"))
    save_file({f"0.auto_model.{k}": v for k, v in tensors.items()}, tmp_path / "model.safetensors")

    plain = AttentionModel.load(device="cpu")
    prefixed = AttentionModel.load(device="cpu", model_dir=tmp_path)
    text = "Same weights, another name."
    np.testing.assert_array_equal(plain.run(text).weights, prefixed.run(text).weights)


def test_incomplete_checkpoint_is_refused(tmp_path):
    directory = model_dir()
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    tensors = load_file(str(directory / "model.safetensors"))
    del tensors["encoder.layer.5.output.dense.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing \['layers\.5\.feed_forward\.down\.weight'\]"):
        AttentionModel.load(device="cpu", model_dir=tmp_path)


def test_load_is_quick_and_in_eval_mode():
    model = AttentionModel.load(device="cpu")
    assert not model.encoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert model.load_ms < 10_000


def test_encoder_gives_the_same_trace_with_autograd_on():
    model = AttentionModel.load(device="cpu")
    tokens = model.encode("Gradients or not, same numbers.")
    ids = torch.tensor([tokens.ids])
    with torch.inference_mode():
        fast = model.encoder(ids)
    with torch.enable_grad():
        slow = model.encoder(ids)
    torch.testing.assert_close(fast.weights, slow.weights)
    torch.testing.assert_close(fast.scores, slow.scores)
    torch.testing.assert_close(fast.last_hidden_state, slow.last_hidden_state)
    assert fast.stacked("queries").shape == (6, 1, 12, len(tokens), 32)
