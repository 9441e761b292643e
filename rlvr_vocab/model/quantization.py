"""Quantized loading (`model.quantization: 4bit | 8bit`): bitsandbytes weights under LoRA adapters (QLoRA), and
whether the machine a job runs on can give it."""

import importlib.util

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.precision import cuda_here


def check_quantization(model: DictConfig, target_has_gpu: bool | None = None) -> None:
    """Refuse a quantization the job could not run: without LoRA (quantized weights do not train), without a CUDA GPU
    (bitsandbytes' kernels), or without the bitsandbytes package (jobs run this environment's packages).

    `target_has_gpu` as in choose_precision: another machine's (a SLURM job's, from its launcher), None for this one.
    """
    bits = model.quantization
    if bits is None:
        return
    where = "model.quantization"
    if model.lora is None:
        raise ConfigError(where, f"is {bits}, but quantized weights cannot be trained and model.lora is null",
                          "add +model/lora=r16 (QLoRA trains adapters over the quantized model), or "
                          "model.quantization=null")
    if target_has_gpu is False:
        raise ConfigError(where, f"{bits} needs a CUDA GPU and the launcher requests none",
                          "set hydra.launcher.gpus_per_node (hydra/launcher=slurm), or model.quantization=null")
    if target_has_gpu is None and not cuda_here():
        raise ConfigError(where, f"{bits} needs a CUDA GPU and none is visible",
                          "run it on a GPU node (hydra/launcher=slurm), or model.quantization=null")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(where, f"{bits} loads the model through bitsandbytes, which is not installed",
                          "pip install bitsandbytes, or model.quantization=null")


def bnb_config(bits: str, compute_dtype: str):
    """transformers' BitsAndBytesConfig for `bits`: 4bit is QLoRA's NF4 with double quantization, computing in
    `compute_dtype` (the precision's weights dtype)."""
    import torch as th
    from transformers import BitsAndBytesConfig

    if bits == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=getattr(th, compute_dtype))


def prepare_for_training(model):
    """peft's preparation of a quantized model for adapter training: its other weights (norms, embeddings) in fp32
    for stable updates. Gradient checkpointing stays the trainer's (training.gradient_checkpointing)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
