"""Reasoning vocabulary: N added token ids, each mirroring a regular base token, for the model to reason with.

Applied at load time (`apply_reasoning_vocab`): the tokenizer gains non-special tokens `<|rv_<base id>|>` and each new
embedding row (input and output) starts as a copy of its base token's row, so the extended model initially treats a
mirrored token exactly like its base token. The mapping lives in `model.config.reasoning_vocab`, so checkpoints and
`save_pretrained` outputs carry it and `load_reasoning_vocab` rebuilds it.

Modes: `free` lets the model use reasoning tokens anywhere; `think_only` allows them only inside `<think>...</think>`,
enforced at sampling time by `ThinkOnlyLogitsProcessor`. Rewards always see the completion in base text
(`base_text_rewards`), so a mirrored completion earns exactly what its base version earns.

Cheap to import (the config schema lives here): torch, transformers and TRL load on first use, and the two classes
deriving from theirs, `ThinkOnlyLogitsProcessor` and `ReasoningVocabGRPOTrainer`, are built on first access.
"""

import dataclasses
import functools
import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from rlvr_vocab.errors import ConfigError

WHERE = "model.reasoning_vocab"
TOKEN_FORMAT = "<|rv_{}|>"  # named by the mirrored base id: unique, and readable in raw completions
THINK_START, THINK_END = "<think>", "</think>"
SELECTIONS = ("first_regular", "all_regular_random", "ids_file")
MODES = ("free", "think_only")
# think_only needs a per-step logits processor. TRL 1.16 builds vLLM's LLM(...) / SamplingParams itself and vLLM V1
# takes custom logits processors only as engine-init classes, which neither TRL's colocate LLM nor `trl vllm-serve`
# forwards; transformers' generate takes one (ReasoningVocabGRPOTrainer passes it).
SUPPORTED_MODES = {"transformers": {"free", "think_only"}, "vllm": {"free"}}
SHARE_KEYS = ("share", "share_in_think", "share_outside_think")


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


@dataclass
class ReasoningVocab:
    """The mapping: reasoning id `first_id + i` mirrors base id `base_ids[i]`."""

    base_ids: list[int]
    first_id: int
    mode: str = "free"
    selection: str = "first_regular"

    @property
    def size(self) -> int:
        return len(self.base_ids)

    @property
    def reasoning_ids(self) -> range:
        return range(self.first_id, self.first_id + self.size)

    def is_reasoning(self, token_id: int) -> bool:
        return self.first_id <= token_id < self.first_id + self.size

    def to_base_ids(self, ids: Iterable[int]) -> list[int]:
        return [self.base_ids[i - self.first_id] if self.is_reasoning(i) else i for i in _ids(ids)]

    def decode_to_base(self, ids: Iterable[int], tokenizer, skip_special_tokens: bool = False) -> str:
        """The text of `ids` with each reasoning token written as its base token."""
        return tokenizer.decode(self.to_base_ids(ids), skip_special_tokens=skip_special_tokens)

    def mark(self, ids: Iterable[int], tokenizer) -> str:
        """Raw text with each run of reasoning tokens shown as ⟨its base text⟩, for logging completions.

        On a byte-level vocabulary (Qwen's) one character may span several tokens: a character with any byte from a
        reasoning token is marked whole, so the text without the marks is exactly the decoded base text.
        """
        ids = _ids(ids)
        pieces = _token_bytes(tokenizer.convert_ids_to_tokens(self.to_base_ids(ids)))
        if pieces is None:  # not byte-level: each run decoded on its own
            parts = []
            for reasoning, run in itertools.groupby(ids, key=self.is_reasoning):
                text = self.decode_to_base(list(run), tokenizer)
                parts.append(f"⟨{text}⟩" if reasoning else text)
            return "".join(parts)
        data = b"".join(pieces)
        flags = [self.is_reasoning(i) for i, piece in zip(ids, pieces, strict=True) for _ in piece]
        out, inside, at = [], False, 0
        while at < len(data):
            n = _utf8_length(data[at])
            try:
                char = data[at:at + n].decode("utf-8")
            except UnicodeDecodeError:
                char, n = "\ufffd", 1
            reasoning = any(flags[at:at + n])
            if reasoning != inside:
                out.append("⟨" if reasoning else "⟩")
                inside = reasoning
            out.append(char)
            at += n
        return "".join(out) + ("⟩" if inside else "")

    def token_counts(
        self,
        completion_ids: Sequence[Sequence[int]],
        think_start_id: int,
        think_end_id: int,
        prompt_ids: Sequence[Sequence[int]] | None = None,
    ) -> list[int]:
        """[reasoning, all] token counts overall, inside and outside the think span (markers count only overall).

        A completion starts inside the span when its prompt ends inside an open `<think>`.
        """
        counts = [0] * 6
        for i, ids in enumerate(completion_ids):
            inside = prompt_ids is not None and think_is_open(prompt_ids[i], think_start_id, think_end_id)
            for token in _ids(ids):
                reasoning = self.is_reasoning(token)
                counts[0] += reasoning
                counts[1] += 1
                if token in (think_start_id, think_end_id):
                    inside = token == think_start_id
                    continue
                counts[2 if inside else 4] += reasoning
                counts[3 if inside else 5] += 1
        return counts

    def stats(
        self,
        completion_ids: Sequence[Sequence[int]],
        think_start_id: int,
        think_end_id: int,
        prompt_ids: Sequence[Sequence[int]] | None = None,
    ) -> dict[str, float]:
        """Share of completion tokens from the reasoning vocabulary: overall, in and outside the think span.

        Takes unpadded id lists; a share with no tokens to count is NaN.
        """
        return shares(self.token_counts(completion_ids, think_start_id, think_end_id, prompt_ids))

    def to_config(self) -> dict:
        return dataclasses.asdict(self)


def shares(counts: Sequence[int]) -> dict[str, float]:
    """`token_counts` (possibly summed over processes) as the three shares."""
    pairs = [(counts[2 * i], counts[2 * i + 1]) for i in range(len(SHARE_KEYS))]
    return {key: hits / n if n else float("nan") for key, (hits, n) in zip(SHARE_KEYS, pairs, strict=True)}


@functools.cache
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _token_bytes(tokens: Sequence[str | None]) -> list[bytes] | None:
    """Each token's bytes on a byte-level vocabulary (GPT-2's byte alphabet), or None if the vocabulary is not one."""
    decoder = _byte_decoder()
    pieces = []
    for token in tokens:
        if token is None or any(char not in decoder for char in token):
            return None
        pieces.append(bytes(decoder[char] for char in token))
    return pieces


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte)."""
    return 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2 if lead >= 0xC0 else 1


def _ids(ids: Iterable[int]) -> list[int]:
    """Plain ints from a list or a tensor."""
    return ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]


def think_is_open(ids: Sequence[int], think_start_id: int, think_end_id: int) -> bool:
    """Whether `ids` end inside a `<think>` span: its last marker is `<think>`."""
    for token in reversed(_ids(ids)):
        if token in (think_start_id, think_end_id):
            return token == think_start_id
    return False


def think_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of `<think>` and `</think>`, which must be single tokens of the tokenizer."""
    ids = tokenizer.convert_tokens_to_ids([THINK_START, THINK_END])
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ConfigError(f"{WHERE}.mode", f"the tokenizer has no {THINK_START}/{THINK_END} tokens",
                          "use a reasoning model's tokenizer (e.g. Qwen3)")
    return ids[0], ids[1]


# ---------------------------------------------------------------------------------------------------
# Config checks


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
    _check_fields(cfg)
    if cfg.size > 0:
        check_mode(cfg.mode, use_vllm)


def _check_fields(cfg: ReasoningVocabConfig) -> None:
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


# ---------------------------------------------------------------------------------------------------
# Applying and loading


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
    from tokenizers import AddedToken

    first_id = len(tokenizer)
    names = _token_names(base_ids)
    # Non-special: they survive skip_special_tokens=True (TRL's completion decoding) like the base tokens they mirror
    tokenizer.add_tokens([AddedToken(n, special=False, normalized=False) for n in names])
    if tokenizer.convert_tokens_to_ids(names) != list(range(first_id, first_id + len(names))):
        raise RuntimeError(f"the tokenizer did not give the {len(names)} reasoning tokens contiguous ids")
    return first_id


def _copy_rows(weight, first_id: int, base_ids: list[int], noise_std: float, generator) -> None:
    import torch as th

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
    import torch as th

    _check_fields(cfg)
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


# ---------------------------------------------------------------------------------------------------
# Generation


@functools.cache
def _think_only_processor_class() -> type:
    import torch as th
    from transformers import LogitsProcessor

    class ThinkOnlyLogitsProcessor(LogitsProcessor):
        """Allow reasoning tokens only inside the open `<think>` span of each sequence (prompt included).

        Ids past the reasoning tokens (embedding padding) are never allowed: they are no tokens at all.
        """

        __qualname__ = "ThinkOnlyLogitsProcessor"  # found as a module attribute (__getattr__), e.g. by pickle

        def __init__(self, rv: ReasoningVocab, think_start_id: int, think_end_id: int):
            self.first_id, self.end_id = rv.first_id, rv.first_id + rv.size
            self.think_start_id, self.think_end_id = think_start_id, think_end_id

        def __call__(self, input_ids: th.LongTensor, scores: th.FloatTensor) -> th.FloatTensor:
            # 1-based positions of each row's last <think> and </think> (0 if absent): open iff <think> is later
            position = th.arange(1, input_ids.shape[1] + 1, device=input_ids.device)
            last_start = ((input_ids == self.think_start_id) * position).amax(dim=1)
            last_end = ((input_ids == self.think_end_id) * position).amax(dim=1)
            inside = last_start > last_end
            vocab = th.arange(scores.shape[1], device=scores.device)
            reasoning = (vocab >= self.first_id) & (vocab < self.end_id)
            banned = (vocab >= self.end_id) | (reasoning & ~inside[:, None])
            return scores.masked_fill(banned, -float("inf"))

    return ThinkOnlyLogitsProcessor


def generation_logits_processors(rv: ReasoningVocab | None, tokenizer):
    """The LogitsProcessorList `model.generate(..., logits_processor=...)` needs for the mode (empty for free)."""
    from transformers import LogitsProcessorList

    if rv is None or rv.mode == "free":
        return LogitsProcessorList()
    return LogitsProcessorList([_think_only_processor_class()(rv, *think_token_ids(tokenizer))])


# ---------------------------------------------------------------------------------------------------
# Rewards


def _like(completion, text: str):
    """`text` in the shape TRL gave `completion`: a string, or an assistant message list (conversational)."""
    return text if isinstance(completion, str) else [{"role": "assistant", "content": text}]


class _BaseTextReward:
    """A TRL reward function fed base text and ids; a class, not a closure, so it pickles like what it wraps."""

    def __init__(self, fn: Callable, rv: ReasoningVocab, tokenizer):
        from trl.trainer.utils import get_callable_name

        self.fn, self.rv, self.tokenizer = fn, rv, tokenizer
        # TRL names metrics `rewards/<get_callable_name(fn)>/...` (looking through partials): keep that name
        self.__name__ = get_callable_name(fn)

    def base_inputs(self, completions: list, completion_ids: list[list[int]]) -> tuple[list, list[list[int]]]:
        base_ids = [self.rv.to_base_ids(ids) for ids in completion_ids]
        # skip_special_tokens=True as TRL decodes completions
        texts = [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in base_ids]
        return [_like(c, t) for c, t in zip(completions, texts, strict=True)], base_ids

    def __call__(self, prompts, completions, completion_ids, **kwargs):
        completions, completion_ids = self.base_inputs(completions, completion_ids)
        return self.fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)


class _AsyncBaseTextReward(_BaseTextReward):
    """The same for an async reward, which TRL awaits (it checks `__call__`)."""

    async def __call__(self, prompts, completions, completion_ids, **kwargs):
        completions, completion_ids = self.base_inputs(completions, completion_ids)
        return await self.fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)


def _base_text_reward(fn: Callable, rv: ReasoningVocab, tokenizer) -> _BaseTextReward:
    import torch as th
    from trl.trainer.utils import is_async_callable

    if isinstance(fn, (str, th.nn.Module)):
        raise ConfigError("reward", f"model reward {fn!r} would read reasoning tokens as their names",
                          "use function rewards with a reasoning vocabulary")
    return (_AsyncBaseTextReward if is_async_callable(fn) else _BaseTextReward)(fn, rv, tokenizer)


def base_text_rewards(reward_funcs: Sequence[Callable], rv: ReasoningVocab, tokenizer) -> list[Callable]:
    """Wrap TRL reward functions to receive completions (text and ids) with reasoning tokens mapped to base tokens."""
    return [_base_text_reward(fn, rv, tokenizer) for fn in reward_funcs]


# The classes deriving from transformers/TRL ones, built on first access (see the module docstring)
_LAZY_CLASSES = {
    "ThinkOnlyLogitsProcessor": _think_only_processor_class,
}


def __getattr__(name: str):
    if name in _LAZY_CLASSES:
        return _LAZY_CLASSES[name]()
    if name == "ReasoningVocabGRPOTrainer":
        from rlvr_vocab.reasoning_vocab.trainer import trainer_class

        return trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
