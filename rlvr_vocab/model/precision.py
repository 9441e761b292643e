"""The numeric precision a job trains and evaluates in, and whether the machine can give it."""

from rlvr_vocab.core.errors import ConfigError


def cuda_here() -> bool:
    import torch as th

    return th.cuda.is_available()


def choose_precision(precision: str, target_has_gpu: bool | None = None) -> str:
    """`auto` follows the machine: bf16 on GPUs that support it, fp32 otherwise.

    For another machine (a SLURM job), `auto` is decided there; here only CPU targets are checked.
    """
    if target_has_gpu is not None:
        if precision in ("bf16", "fp16") and not target_has_gpu:
            raise ConfigError("precision", f"{precision} needs a GPU and the launcher requests none",
                              "set hydra.launcher.gpus_per_node, or precision=auto")
        return precision if precision != "auto" or target_has_gpu else "fp32"
    import torch as th

    if precision == "auto":
        return "bf16" if th.cuda.is_available() and th.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and not th.cuda.is_available():
        raise ConfigError("precision", f"{precision} needs a GPU and none is visible", "use precision=auto or fp32")
    return precision
