"""Reward wrappers: TRL reward functions see completions in base text, so a mirrored completion earns exactly what
its base version earns."""

from collections.abc import Callable, Sequence

import torch as th
from trl.trainer.utils import get_callable_name, is_async_callable

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.reasoning_vocab.tokens import ReasoningVocab


def _like(completion, text: str):
    """`text` in the shape TRL gave `completion`: a string, or an assistant message list (conversational)."""
    return text if isinstance(completion, str) else [{"role": "assistant", "content": text}]


class _BaseTextReward:
    """A TRL reward function fed base text and ids; a class, not a closure, so it pickles like what it wraps."""

    def __init__(self, fn: Callable, rv: ReasoningVocab, tokenizer):
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
    if isinstance(fn, (str, th.nn.Module)):
        raise ConfigError("reward", f"model reward {fn!r} would read reasoning tokens as their names",
                          "use function rewards with a reasoning vocabulary")
    return (_AsyncBaseTextReward if is_async_callable(fn) else _BaseTextReward)(fn, rv, tokenizer)


def base_text_rewards(reward_funcs: Sequence[Callable], rv: ReasoningVocab, tokenizer) -> list[Callable]:
    """Wrap TRL reward functions to receive completions (text and ids) with reasoning tokens mapped to base tokens."""
    return [_base_text_reward(fn, rv, tokenizer) for fn in reward_funcs]
