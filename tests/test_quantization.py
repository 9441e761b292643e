"""`model.quantization`: refused before anything runs where the job could not run it (no LoRA, no CUDA, a launcher
without GPUs, no bitsandbytes); where it can, the model loads through BitsAndBytesConfig and peft's k-bit preparation.
The load itself needs CUDA and bitsandbytes: here it is checked as far as the arguments handed to transformers."""

import importlib.machinery
import sys
import types

import pytest
import torch as th
from conftest import run_train
from omegaconf import OmegaConf
from test_bad_input import assert_refused

from rlvr_vocab.config.schema import ModelConfig
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model import modeling, quantization
from rlvr_vocab.model.quantization import check_quantization

LORA = {"_target_": "peft.LoraConfig", "task_type": "CAUSAL_LM", "r": 8}


def model_cfg(bits: str | None, lora: dict | None = LORA):
    cfg = OmegaConf.structured(ModelConfig(name_or_path="acme/model", quantization=bits))
    cfg.lora = lora
    return cfg


@pytest.fixture
def bitsandbytes_installed(monkeypatch):
    module = types.ModuleType("bitsandbytes")
    module.__spec__ = importlib.machinery.ModuleSpec("bitsandbytes", None)
    monkeypatch.setitem(sys.modules, "bitsandbytes", module)


@pytest.fixture
def bitsandbytes_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # find_spec then answers None


def refusal(cfg, target_has_gpu) -> str:
    with pytest.raises(ConfigError) as info:
        check_quantization(cfg, target_has_gpu)
    assert info.value.where == "model.quantization"
    return str(info.value)


def test_no_quantization_asks_nothing(bitsandbytes_missing):
    check_quantization(model_cfg(None, lora=None), target_has_gpu=False)


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantization_needs_lora(bits, bitsandbytes_installed):
    assert "model.lora is null" in refusal(model_cfg(bits, lora=None), target_has_gpu=True)


def test_a_launcher_without_gpus_is_refused(bitsandbytes_installed):
    assert "the launcher requests none" in refusal(model_cfg("4bit"), target_has_gpu=False)


def test_this_machine_without_cuda_is_refused(monkeypatch, bitsandbytes_installed):
    monkeypatch.setattr(quantization, "cuda_here", lambda: False)
    assert "none is visible" in refusal(model_cfg("4bit"), target_has_gpu=None)


def test_a_gpu_target_without_bitsandbytes_is_refused(bitsandbytes_missing):
    assert "bitsandbytes, which is not installed" in refusal(model_cfg("8bit"), target_has_gpu=True)


def test_a_gpu_target_with_bitsandbytes_and_lora_is_accepted(monkeypatch, bitsandbytes_installed):
    check_quantization(model_cfg("4bit"), target_has_gpu=True)
    monkeypatch.setattr(quantization, "cuda_here", lambda: True)
    check_quantization(model_cfg("8bit"), target_has_gpu=None)


@pytest.mark.parametrize(("args", "hint"), [
    (["+model/lora=r16", "model.quantization=4bit"], "needs a CUDA GPU"),
    (["model.quantization=8bit"], "model.lora is null"),
    (["model.quantization=3bit"], "one of 4bit, 8bit"),
])
def test_refused_on_a_dry_run_here(args, hint, experiments_root):
    assert_refused(run_train(*args, "dry_run=true"), "model.quantization", hint)
    assert not experiments_root.exists()


def test_refused_before_sbatch_for_a_launcher_without_gpus(experiments_root):
    result = run_train("--multirun", "hydra/launcher=slurm_cpu", "+model/lora=r16", "model.quantization=4bit",
                       "dry_run=true")
    assert_refused(result, "model.quantization", "needs a CUDA GPU")
    assert not experiments_root.exists()


@pytest.mark.parametrize(("bits", "loaded_in"), [("4bit", "load_in_4bit"), ("8bit", "load_in_8bit")])
def test_the_model_loads_through_bitsandbytes_config_and_kbit_preparation(bits, loaded_in, monkeypatch):
    calls = {}

    class Loaded:
        @staticmethod
        def from_pretrained(path, **kwargs):
            calls["kwargs"] = kwargs
            return "model"

    class Tokenizer:
        pad_token, eos_token = None, "</s>"

        @staticmethod
        def from_pretrained(path, **kwargs):
            return Tokenizer()

    monkeypatch.setattr(modeling, "AutoModelForCausalLM", Loaded)
    monkeypatch.setattr(modeling, "AutoTokenizer", Tokenizer)
    monkeypatch.setattr(modeling, "prepare_for_training", lambda model: f"prepared {model}")
    cfg = OmegaConf.create({"model": model_cfg(bits), "experiments_root": "unused"})
    model, _ = modeling.load_model_and_tokenizer(cfg, "./local/model", "bf16")
    config = calls["kwargs"]["quantization_config"]
    assert model == "prepared model" and getattr(config, loaded_in)
    if bits == "4bit":
        assert (config.bnb_4bit_quant_type, config.bnb_4bit_compute_dtype) == ("nf4", th.bfloat16)
    # Written to disk in full (a reasoning vocabulary's extended model): no quantization.
    modeling.load_model_and_tokenizer(cfg, "./local/model", "bf16", quantize=False)
    assert "quantization_config" not in calls["kwargs"]
