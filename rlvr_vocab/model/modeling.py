"""Model and tokenizer loading: hub id, local path, or the demo's locally built tiny model; quantized for QLoRA."""

from pathlib import Path

import torch as th
from loguru import logger
from omegaconf import DictConfig, OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr_vocab.config.schema import ArithmeticDataConfig, DatasetConfig
from rlvr_vocab.model.data import cache_dir, embedded_data_dir
from rlvr_vocab.model.quantization import bnb_config, prepare_for_training
from rlvr_vocab.run.checkpoints import commit_dir, commit_final, incompleteness, marker
from rlvr_vocab.run.layout import RunPaths

# Weights dtype per precision: fp16 trains with fp32 master weights (AMP), bf16 in bf16.
_LOAD_DTYPE = {"bf16": "bfloat16", "fp16": "float32", "fp32": "float32"}


def model_path(cfg: DictConfig) -> str:
    """Where to load from; builds (once, cached) the embedded demo model when configured."""
    match_threads_to_allocation()
    if cfg.model.embedded is None:
        return str(cfg.model.name_or_path)
    e = cfg.model.embedded
    if e.kind == "tiny_qwen3":
        from rlvr_vocab.embedded.tiny_qwen3 import ensure_tiny_qwen3

        return str(ensure_tiny_qwen3(cache_dir(), e.hidden_size, e.num_layers, tie_embeddings=e.tie_embeddings))
    from rlvr_vocab.embedded.tiny_model import ensure_tiny_model

    # The warm start teaches the demo's format on the synthetic sums, whatever data GRPO then uses.
    demo_data = cfg.dataset if cfg.dataset.embedded is not None else OmegaConf.structured(DatasetConfig(
        embedded=ArithmeticDataConfig()))
    path = ensure_tiny_model(
        cache_dir=cache_dir(),
        data_dir=embedded_data_dir(demo_data),
        seed=demo_data.embedded.seed,
        system_prompt=cfg.dataset.system_prompt,
        hidden_size=e.hidden_size,
        num_layers=e.num_layers,
        warm_start_steps=e.warm_start_steps,
        warm_start_lr=e.warm_start_lr,
        warm_start_batch_size=e.warm_start_batch_size,
        tie_embeddings=e.tie_embeddings,
    )
    return str(path)


def match_threads_to_allocation() -> None:
    """Use as many CPU threads as SLURM allocated: more would oversubscribe cores shared with other jobs."""
    import os

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit() and th.get_num_threads() > int(cpus):
        th.set_num_threads(int(cpus))
        logger.info(f"torch threads: {cpus} (SLURM_CPUS_PER_TASK)")


def load_model_and_tokenizer(cfg: DictConfig, path: str, precision: str, quantize: bool = True):
    """`quantize`: as model.quantization says (False: full weights, to write a model to disk)."""
    kwargs = OmegaConf.to_container(cfg.model.model_kwargs, resolve=True)
    dtype = kwargs.pop("torch_dtype", None) or _LOAD_DTYPE[precision]
    device = f"cuda ({th.cuda.get_device_name()})" if th.cuda.is_available() else "cpu"
    pinned = _prefetched_revision(cfg, path, kwargs.get("revision"))
    if pinned:
        kwargs["revision"] = pinned
    at = f" at revision {pinned} (pinned by rlvr-vocab prefetch)" if pinned else ""
    bits = cfg.model.quantization if quantize else None
    if bits is not None:
        kwargs["quantization_config"] = bnb_config(bits, _LOAD_DTYPE[precision])
        at += f", quantized {bits} (bitsandbytes)"
    logger.info(f"model: {path}{at} on {device}, weights {dtype}, precision {precision}")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    if bits is not None:
        model = prepare_for_training(model)
    tok_kwargs = {k: kwargs[k] for k in ("revision", "trust_remote_code") if k in kwargs}
    tokenizer = AutoTokenizer.from_pretrained(path, **tok_kwargs)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _prefetched_revision(cfg: DictConfig, path: str, requested: str | None) -> str | None:
    """The commit `rlvr-vocab prefetch` fetched of a hub model: every job of a sweep loads the same files, whatever
    the branch points at by the time a job starts."""
    from rlvr_vocab.model.hub_cache import looks_local, pinned_revision

    if looks_local(path):
        return None
    return pinned_revision(cfg.experiments_root, path, requested, kind="model")


def lora_config(cfg: DictConfig):
    if cfg.model.lora is None:
        return None
    from hydra.utils import instantiate

    return instantiate(cfg.model.lora)


def save_final(trainer, tokenizer, paths: RunPaths, step: int) -> Path:
    """A complete `final/` (written aside, marked, renamed) that loads with plain AutoModelForCausalLM /
    AutoTokenizer (LoRA merged)."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()

    def write(directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    return commit_final(paths, write, step)


def extended_model(cfg: DictConfig, base_path: str, paths: RunPaths, precision: str) -> str:
    """The base model with the run's reasoning vocabulary, written to the run dir once (reused on resume): every
    consumer loads it from there (the policy, TRL's reference model, vLLM, evaluation) and so sees the same
    vocabulary. vLLM in particular loads `model.name_or_path`: the base vocabulary if the extension lived only in
    memory."""
    from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab

    target = paths.extended_model
    source = {"base": base_path, "reasoning_vocab": OmegaConf.to_container(cfg.model.reasoning_vocab, resolve=True)}
    if incompleteness(target) is None and marker(target).get("source") == source:
        return str(target)
    # Written in full: the policy loads it quantized when model.quantization asks.
    model, tokenizer = load_model_and_tokenizer(cfg, base_path, precision, quantize=False)
    apply_reasoning_vocab(model, tokenizer, cfg.model.reasoning_vocab)

    def write(directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    commit_dir(target, write, source=source)
    logger.info(f"extended model written to {target} (the policy loads it from there)")
    return str(target)
