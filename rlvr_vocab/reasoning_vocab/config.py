"""`model.reasoning_vocab`: the structured config, its allowed values and the checks that need no tokenizer.

`rlvr_vocab.config.schema` imports this on every CLI call: it must stay free of torch and transformers.
"""

from dataclasses import dataclass
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError

WHERE = "model.reasoning_vocab"
SELECTIONS = ("first_regular", "all_regular_random", "ids_file")
MODES = ("free", "think_only")
# think_only needs a per-step logits processor. TRL 1.16 builds vLLM's LLM(...) / SamplingParams itself and vLLM V1
# takes custom logits processors only as engine-init classes, which neither TRL's colocate LLM nor `trl vllm-serve`
# forwards; transformers' generate takes one (ReasoningVocabGRPOTrainer passes it).
SUPPORTED_MODES = {"transformers": {"free", "think_only"}, "vllm": {"free"}}


@dataclass
class ReasoningVocabConfig:
    """`model.reasoning_vocab`: size 0 leaves the model as it is."""

    size: int = 0
    # first_regular | all_regular_random (seeded) | ids_file (a JSON list of base ids)
    selection: str = "first_regular"
    ids_file: str | None = None
    # Std of Gaussian noise added to the copied rows; 0 = exact copies.
    init_noise_std: float = 0.0
    # free | think_only (reasoning tokens only inside <think>...</think>)
    mode: str = "free"
    pad_to_multiple_of: int = 64
    seed: int = 0


def check_mode(mode: str, use_vllm: bool) -> None:
    """Raise a ConfigError for an unknown mode or one the generation backend cannot enforce."""
    if mode not in MODES:
        raise ConfigError(f"{WHERE}.mode", f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    backend = "vllm" if use_vllm else "transformers"
    if mode not in SUPPORTED_MODES[backend]:
        raise ConfigError(f"{WHERE}.mode", f"{mode!r} needs a logits processor, which TRL's {backend} generation "
                          "cannot take", "use mode=free with vLLM, or generate with transformers (use_vllm=false)")


def check_config(cfg: ReasoningVocabConfig, use_vllm: bool) -> None:
    """Raise a ConfigError for a bad `model.reasoning_vocab` (the tokenizer-dependent checks come at apply time)."""
    check_fields(cfg)
    if cfg.size > 0:
        check_mode(cfg.mode, use_vllm)


def check_fields(cfg: ReasoningVocabConfig) -> None:
    """Raise a ConfigError for a field out of range, whatever the generation backend."""
    if cfg.size < 0:
        raise ConfigError(f"{WHERE}.size", f"must be >= 0, got {cfg.size}", "0 switches the vocabulary off")
    if cfg.selection not in SELECTIONS:
        raise ConfigError(f"{WHERE}.selection", f"unknown selection {cfg.selection!r}",
                          f"use one of {', '.join(SELECTIONS)}")
    if cfg.mode not in MODES:
        raise ConfigError(f"{WHERE}.mode", f"unknown mode {cfg.mode!r}", f"use one of {', '.join(MODES)}")
    if cfg.selection == "ids_file" and (cfg.ids_file is None or not Path(cfg.ids_file).is_file()):
        raise ConfigError(f"{WHERE}.ids_file", f"selection=ids_file needs an existing file, got {cfg.ids_file!r}",
                          "give the path of a JSON list of base token ids")
    if cfg.pad_to_multiple_of < 1:
        raise ConfigError(f"{WHERE}.pad_to_multiple_of", f"must be >= 1, got {cfg.pad_to_multiple_of}")
    if cfg.init_noise_std < 0:
        raise ConfigError(f"{WHERE}.init_noise_std", f"must be >= 0, got {cfg.init_noise_std}")
