"""Adding the vocabulary to a model and its tokenizer (`apply_reasoning_vocab`), and finding it again on reload.

The tokenizer gains non-special tokens `<|rv_<base id>|>` and each new embedding row (input and output) starts as a
copy of its base token's row, so the extended model initially treats a mirrored token exactly like its base token.
The mapping lives in `model.config.reasoning_vocab`, so checkpoints and `save_pretrained` outputs carry it and
`load_reasoning_vocab` rebuilds it.
"""

import json
import random
from collections.abc import Sequence
from pathlib import Path

import torch as th
from loguru import logger
from tokenizers import AddedToken

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.reasoning_vocab.config import WHERE, ReasoningVocabConfig, check_fields
from rlvr_vocab.reasoning_vocab.tokens import ReasoningVocab, think_token_ids

TOKEN_FORMAT = "<|rv_{}|>"  # named by the mirrored base id: unique, and readable in raw completions


def regular_ids(tokenizer) -> list[int]:
    """Base ids that are neither special nor added tokens: mirroring `<think>` or EOS would break the format."""
    excluded = set(tokenizer.added_tokens_decoder) | set(tokenizer.all_special_ids)
    return sorted(i for i in tokenizer.get_vocab().values() if i not in excluded)


def select_base_ids(tokenizer, cfg: ReasoningVocabConfig) -> list[int]:
    """The base ids to mirror, sorted, per `cfg.selection`."""
    regular = regular_ids(tokenizer)
    if cfg.size > len(regular):
        raise ConfigError(f"{WHERE}.size", f"{cfg.size} exceeds the {len(regular)} regular tokens of the tokenizer",
                          f"use at most {len(regular)}")
    if cfg.selection == "first_regular":
        return regular[: cfg.size]
    if cfg.selection == "all_regular_random":
        return sorted(random.Random(cfg.seed).sample(regular, cfg.size))
    ids = json.loads(Path(cfg.ids_file).read_text())
    allowed = set(regular)
    if not isinstance(ids, list) or len(set(ids)) != len(ids) or not all(isinstance(i, int) and i in allowed
                                                                           for i in ids):
        raise ConfigError(f"{WHERE}.ids_file", f"{cfg.ids_file} is not a JSON list of distinct regular token ids")
    if len(ids) != cfg.size:
        raise ConfigError(f"{WHERE}.size", f"is {cfg.size} but {cfg.ids_file} lists {len(ids)} ids",
                          f"set size={len(ids)}")
    return sorted(ids)


def _token_names(base_ids: Sequence[int]) -> list[str]:
    return [TOKEN_FORMAT.format(i) for i in base_ids]


def _has_tokens(tokenizer, rv: ReasoningVocab) -> bool:
    return tokenizer.convert_tokens_to_ids(_token_names(rv.base_ids)) == list(rv.reasoning_ids)


def _add_tokens(tokenizer, base_ids: Sequence[int]) -> int:
    """Add the reasoning tokens at the end of the tokenizer; returns the first new id."""
    first_id = len(tokenizer)
    names = _token_names(base_ids)
    # Non-special: they survive skip_special_tokens=True (TRL's completion decoding) like the base tokens they mirror
    tokenizer.add_tokens([AddedToken(n, special=False, normalized=False) for n in names])
    if tokenizer.convert_tokens_to_ids(names) != list(range(first_id, first_id + len(names))):
        raise RuntimeError(f"the tokenizer did not give the {len(names)} reasoning tokens contiguous ids")
    return first_id


def _copy_rows(weight, first_id: int, base_ids: list[int], noise_std: float, generator) -> None:
    rows = weight[base_ids].float()
    if noise_std > 0:
        rows += noise_std * th.randn(rows.shape, generator=generator).to(rows.device)
    weight[first_id : first_id + len(base_ids)] = rows.to(weight.dtype)


def _is_tied(model) -> bool:
    output = model.get_output_embeddings()
    return output is None or output.weight is model.get_input_embeddings().weight


def load_reasoning_vocab(model, tokenizer) -> ReasoningVocab | None:
    """The vocabulary a (saved) model carries in its config, or None; the tokenizer must hold its tokens."""
    carried = getattr(model.config, "reasoning_vocab", None)
    if not carried:
        return None
    rv = ReasoningVocab(**carried)
    if not _has_tokens(tokenizer, rv):
        raise ConfigError(WHERE, f"the model carries {rv.size} reasoning tokens from id {rv.first_id} but the "
                          "tokenizer lacks them", "load the tokenizer from the model's directory")
    return rv


def apply_reasoning_vocab(model, tokenizer, cfg: ReasoningVocabConfig) -> ReasoningVocab | None:
    """Extend model and tokenizer by `cfg.size` reasoning tokens; None when off (size 0, plain model).

    Idempotent: a model that already carries a vocabulary (a checkpoint or final dir) is returned as it is, its
    tokenizer completed if it was loaded from elsewhere; `cfg.mode` then replaces the recorded mode.
    """
    check_fields(cfg)
    if getattr(model.config, "reasoning_vocab", None):
        return _reuse(model, tokenizer, cfg)
    if cfg.size == 0:
        return None
    if cfg.mode == "think_only":
        think_token_ids(tokenizer)  # fail now, not at the first generation
    base_ids = select_base_ids(tokenizer, cfg)
    vocab = tokenizer.get_vocab()
    clashes = [n for n in _token_names(base_ids) if n in vocab]
    if clashes:
        raise ConfigError(WHERE, f"the tokenizer already has {clashes[0]} (and {len(clashes) - 1} more) but the model "
                          "config has no reasoning vocabulary", "load model and tokenizer from the same directory")
    old_rows = model.get_input_embeddings().weight.shape[0]
    first_id = _add_tokens(tokenizer, base_ids)
    # Never shrink: Qwen's matrix already has unused padding rows past the tokenizer, which new tokens may fill.
    model.resize_token_embeddings(max(len(tokenizer), old_rows), pad_to_multiple_of=cfg.pad_to_multiple_of)
    tied = _is_tied(model)
    generator = th.Generator().manual_seed(cfg.seed)
    with th.no_grad():
        _copy_rows(model.get_input_embeddings().weight, first_id, base_ids, cfg.init_noise_std, generator)
        if not tied:
            output = model.get_output_embeddings()
            _copy_rows(output.weight, first_id, base_ids, cfg.init_noise_std, generator)
            if output.bias is not None:
                output.bias[first_id : first_id + len(base_ids)] = output.bias[base_ids]
    rv = ReasoningVocab(base_ids=base_ids, first_id=first_id, mode=cfg.mode, selection=cfg.selection)
    model.config.reasoning_vocab = rv.to_config()
    new_rows = model.get_input_embeddings().weight.shape[0]
    logger.info(
        f"reasoning vocab: {rv.size} tokens ({cfg.selection}) at ids {first_id}..{first_id + rv.size - 1}, "
        f"mode {cfg.mode}; embedding rows {old_rows} -> {new_rows} (multiple of {cfg.pad_to_multiple_of}), "
        f"{'tied' if tied else 'untied'} embeddings, init noise std {cfg.init_noise_std}"
    )
    return rv


def _reuse(model, tokenizer, cfg: ReasoningVocabConfig) -> ReasoningVocab:
    carried = model.config.reasoning_vocab
    rv = ReasoningVocab(**carried)
    if cfg.size and cfg.size != rv.size:
        raise ConfigError(f"{WHERE}.size", f"is {cfg.size} but the model already carries {rv.size} reasoning tokens",
                          f"set size={rv.size} or load the base model")
    if not _has_tokens(tokenizer, rv):
        if len(tokenizer) != rv.first_id:
            raise ConfigError(WHERE, f"the tokenizer ({len(tokenizer)} tokens) does not match the model's reasoning "
                              f"tokens from id {rv.first_id}", "load the tokenizer from the model's directory")
        _add_tokens(tokenizer, rv.base_ids)
        logger.info(f"reasoning vocab: added the model's {rv.size} reasoning tokens to the tokenizer")
    if cfg.size and cfg.mode != rv.mode:
        logger.info(f"reasoning vocab: mode {rv.mode} -> {cfg.mode}")
        rv.mode = cfg.mode
        model.config.reasoning_vocab = rv.to_config()
    logger.info(f"reasoning vocab: model already carries {rv.size} tokens from id {rv.first_id}; nothing added")
    return rv
