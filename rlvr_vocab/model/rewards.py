"""Verifiable rewards for GRPO, in TRL's reward-function convention.

Every reward is called by TRL as `fn(completions=..., answer=..., prompts=..., ...)` and returns one
float per completion (or None when the gold answer itself is unusable, which TRL turns into NaN and
skips). Parameters are keyword-only with no Python defaults: their one home is `conf/reward/<name>.yaml`,
bound with `build_reward_funcs` (the format rewards' markers come from the `prompt` group there). `format`'s
markers alone default to <think>: evaluation calls it bare (rlvr_vocab.eval).

This module must stay cheap to import (the CLI imports it): math_verify/sympy load on first use.
"""

import difflib
import functools
import inspect
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger

from rlvr_vocab.core.config_types import DOMAINS, Spec, check_value, spec_of
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.amounts import amounts_match, last_amount
from rlvr_vocab.model.markers import MARKER_KEYS, check_markers, marker_score, present_markers, well_formatted
from rlvr_vocab.model.remote_reward import RemoteReward, remote_settings

# Math-verify bounds parse/verify time with SIGALRM, which only the main thread may use.
_PARSE_TIMEOUT_S = 10
_VERIFY_TIMEOUT_S = 5

# open-r1's step markers, anchored to line starts so "3.5" or "x - y" mid-sentence do not count.
_STEP_RE = re.compile(r"Step \d+:|^[ \t]*(?:\d+\.|[-*•])[ \t]|\b(?:First|Second|Next|Finally),", re.MULTILINE)
# A signed decimal with optional thousands separators; "$" and a trailing "." fall outside the match.
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_UNESCAPED_DOLLAR_RE = re.compile(r"(?<!\\)\$")

REWARDS: dict[str, Callable] = {}


def _register(name: str) -> Callable[[Callable], Callable]:
    """Add a reward to REWARDS under `name` and make `name` its `__name__`.

    TRL 1.16 names a reward's metrics after the function inside a functools.partial, not the partial,
    so the function itself must carry the reward name for `rewards/<name>/mean` to appear.
    """

    def add(fn: Callable) -> Callable:
        fn.__name__ = name
        REWARDS[name] = fn
        return fn

    return add


# ---------------------------------------------------------------------------------------------------
# Text helpers


def _text(completion: Any) -> str:
    """Completion text: a plain string, or the last message's content in conversational form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # multimodal parts: keep the text ones
            return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _answer_part(text: str) -> str:
    """The final answer: what follows the last `</think>`, else the whole text."""
    return text.rsplit("</think>", 1)[-1]


def _gold_text(gold: Any) -> str:
    """Gold answer as text, GSM8K's `... #### 72` reduced to `72`."""
    if gold is None:
        return ""
    return str(gold).rsplit("####", 1)[-1].strip()


def _last_number(text: str) -> float | None:
    matches = _NUMBER_RE.findall(text)
    if not matches:
        return None
    try:
        return float(matches[-1].replace(",", ""))
    except ValueError:  # e.g. "1,,": commas only
        return None


# ---------------------------------------------------------------------------------------------------
# Math-verify


def _timeouts() -> tuple[int | None, int | None]:
    """(parse, verify) timeouts; None off the main thread, where math-verify's SIGALRM would raise."""
    if threading.current_thread() is threading.main_thread():
        return _PARSE_TIMEOUT_S, _VERIFY_TIMEOUT_S
    # Without a timeout math-verify warns once; that is the intended trade-off here, so hush it.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return None, None


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str, parse_timeout: int | None) -> list:
    """Cached: each gold is scored against all of its prompt's completions (num_generations of them)."""
    from math_verify import parse

    # A gold is a final answer: bare LaTeX or a number. Undelimited, math-verify reads "2\pi" as 2,
    # "(1, 2)" as 2 and "\sqrt{2}" as nothing, so put it in math mode unless it already is.
    if not _UNESCAPED_DOLLAR_RE.search(gold):
        gold = f"${gold}$"
    return parse(gold, parsing_timeout=parse_timeout)


def _parse_prediction(answer: str, parse_timeout: int | None) -> list:
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    # As TRL's accuracy_reward: LaTeX counts only when boxed (tried first) or after "final answer is";
    # unlike it, plain-text expressions also count, so a bare "42" is read.
    config = [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(units=True),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        ),
        ExprExtractionConfig(),
    ]
    return parse(answer, config, extraction_mode="first_match", parsing_timeout=parse_timeout)


def _is_correct(text: str, gold: Any) -> bool | None:
    """Whether the answer part of `text` equals `gold` per math-verify; None if gold does not parse."""
    from math_verify import verify

    parse_timeout, verify_timeout = _timeouts()
    gold_parsed = _parse_gold(_gold_text(gold), parse_timeout)
    if not gold_parsed:
        logger.debug("gold answer does not parse, reward skipped: {!r}", gold)
        return None
    answer = _answer_part(text)
    if not answer.strip():
        return False
    try:
        predicted = _parse_prediction(answer, parse_timeout)
        return bool(verify(gold_parsed, predicted, timeout_seconds=verify_timeout))
    except Exception:  # math-verify swallows most errors; a bad completion must never stop training
        logger.opt(exception=True).debug("math-verify failed on a completion")
        return False


# ---------------------------------------------------------------------------------------------------
# Rewards


@_register("accuracy")
def accuracy_reward(completions: list, answer: list, **kwargs: Any) -> list[float | None]:
    """1.0 if the answer part (after the last `</think>`) math-verifies against the gold, else 0.0."""
    rewards = []
    for completion, gold in zip(completions, answer, strict=True):
        correct = _is_correct(_text(completion), gold)
        rewards.append(None if correct is None else float(correct))
    return rewards


@_register("format")
def format_reward(
    completions: list,
    answer: list,
    *,
    reasoning_start: str = "<think>",
    reasoning_end: str = "</think>",
    solution_start: str | None = None,
    solution_end: str | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """1.0 for exactly `<reasoning_start>reasoning<reasoning_end>answer` (whitespace around allowed), both parts
    non-empty and each marker once; with solution markers the answer is `<solution_start>...<solution_end>`."""
    markers = (reasoning_start, reasoning_end, solution_start, solution_end)
    return [float(well_formatted(_text(c), *markers)) for c in completions]


@_register("match_format_approximately")
def match_format_approximately_reward(
    completions: list,
    answer: list,
    *,
    reasoning_start: str,
    reasoning_end: str,
    solution_start: str | None,
    solution_end: str | None,
    once_reward: float,
    missing_reward: float,
    repeated_reward: float,
    **kwargs: Any,
) -> list[float | None]:
    """Partial credit beside `format`: per marker in use, `once_reward` if the completion holds it exactly once,
    `missing_reward` if not at all, `repeated_reward` if more often (unset solution markers do not count)."""
    markers = present_markers(reasoning_start, reasoning_end, solution_start, solution_end)
    return [marker_score(_text(c), markers, once_reward, missing_reward, repeated_reward) for c in completions]


@_register("reasoning_steps")
def reasoning_steps_reward(
    completions: list, answer: list, *, n_steps: int, **kwargs: Any
) -> list[float | None]:
    """min(1, markers / n_steps), counting "Step k:", "1." and bullet lines, "First,", ..., "Finally,"."""
    return [min(1.0, len(_STEP_RE.findall(_text(c))) / n_steps) for c in completions]


@_register("cosine")
def cosine_reward(
    completions: list,
    answer: list,
    *,
    min_value_wrong: float,
    max_value_wrong: float,
    min_value_correct: float,
    max_value_correct: float,
    max_len: int,
    **kwargs: Any,
) -> list[float | None]:
    """Correctness scaled by length on a cosine schedule (open-r1 / "Demystifying Long CoT").

    Length is the whole completion's length in characters (not tokens), capped at `max_len`. A correct
    answer earns `max_value_correct` at length 0 down to `min_value_correct` at `max_len`; a wrong one
    earns `min_value_wrong` at length 0 up to `max_value_wrong` at `max_len`.
    """
    rewards: list[float | None] = []
    for completion, gold in zip(completions, answer, strict=True):
        text = _text(completion)
        correct = _is_correct(text, gold)
        if correct is None:
            rewards.append(None)
            continue
        # Capped because cos is periodic: past max_len the schedule would climb back up.
        cosine = math.cos(min(len(text) / max_len, 1.0) * math.pi)
        if correct:
            at_zero, at_max = max_value_correct, min_value_correct
        else:
            at_zero, at_max = min_value_wrong, max_value_wrong
        rewards.append(at_max + 0.5 * (at_zero - at_max) * (1.0 + cosine))
    return rewards


def _repetition(text: str, ngram_size: int) -> float:
    """Fraction of the text's word n-grams that repeat an earlier one; 0 below n words."""
    words = text.lower().split()
    if len(words) < ngram_size:
        return 0.0
    ngrams = list(zip(*(words[i:] for i in range(ngram_size)), strict=False))  # stops at the shortest
    return 1.0 - len(set(ngrams)) / len(ngrams)


@_register("repetition_penalty")
def repetition_penalty_reward(
    completions: list, answer: list, *, ngram_size: int, max_penalty: float, **kwargs: Any
) -> list[float | None]:
    """max_penalty (<= 0) times the fraction of repeated word n-grams, as open-r1's repetition penalty."""
    rewards: list[float | None] = []
    for completion in completions:
        repeated = _repetition(_text(completion), ngram_size)
        rewards.append(repeated * max_penalty if repeated else 0.0)  # not -0.0 in the logs
    return rewards


@_register("numeric")
def numeric_reward(
    completions: list,
    answer: list,
    *,
    correct_reward: float,
    close_reward: float,
    close_tolerance: float,
    wrong_reward: float,
    **kwargs: Any,
) -> list[float | None]:
    """GSM8K-style: the last number of the answer part against the gold number.

    Exact match earns `correct_reward`; within `close_tolerance` relative error `close_reward`; else,
    or with no number at all, `wrong_reward`. None when the gold holds no number.
    """
    def score(predicted: float | None, target: float) -> float:
        if predicted is None:
            return wrong_reward
        if math.isclose(predicted, target, rel_tol=1e-9, abs_tol=1e-9):
            return correct_reward
        return close_reward if abs(predicted - target) <= close_tolerance * abs(target) else wrong_reward

    return _against_gold_number(completions, answer, _last_number, score)


def _against_gold_number(completions: list, answer: list, parse: Callable[[str], float | None],
                         score: Callable[[float | None, float], float]) -> list[float | None]:
    """Each completion's answer part, parsed, scored against its gold number; None where the gold holds none."""
    rewards: list[float | None] = []
    for completion, gold in zip(completions, answer, strict=True):
        target = parse(_gold_text(gold))
        if target is None:
            logger.debug("gold answer holds no number, reward skipped: {!r}", gold)
            rewards.append(None)
        else:
            rewards.append(score(parse(_answer_part(_text(completion))), target))
    return rewards


@_register("finqa_numerical_match")
def finqa_numerical_match_reward(
    completions: list, answer: list, *, rel_tolerance: float, **kwargs: Any
) -> list[float | None]:
    """FinQA: 1.0 if the last amount of the answer part is within `rel_tolerance` (relative to the gold) of the gold
    amount, else 0.0; None when the gold holds no number (FinQA's yes/no questions).

    "12.5%" and "12.5 percent" are 0.125, "1,234.5" is 1234.5 and "$" is ignored; a gold percentage also accepts its
    points without the sign (12.5).
    """
    return _against_gold_number(completions, answer, last_amount, lambda predicted, target: float(
        predicted is not None and amounts_match(predicted, target, rel_tolerance)))


# ---------------------------------------------------------------------------------------------------
# Config


# A reward's multiplier in GRPO's weighted sum (negative: a penalty).
_WEIGHT = spec_of(float)


def reward_specs(name: str) -> dict[str, Spec]:
    """What reward `name`'s weight and each of its keyword-only parameters take: the annotation, and its domain in
    DOMAINS."""
    params = inspect.signature(REWARDS[name]).parameters.values()
    return {"weight": _WEIGHT, **{p.name: spec_of(p.annotation).with_domain(DOMAINS.get(f"reward.{name}.{p.name}"))
                                  for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}}


def _plain(node: Any) -> Any:
    """A plain dict from an OmegaConf node (omegaconf imported only when given one)."""
    if type(node).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(node, resolve=True)
    return node


def _suggest(key: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}{what}: {', '.join(known)}"


def _check_reward(name: str, node: Any) -> None:
    where = f"reward.{name}"
    params = reward_specs(name)
    if not isinstance(node, Mapping):
        raise ConfigError(where, f"expected a mapping of weight and parameters, got {node!r}")
    for key in node:
        if key not in params:
            fix = _suggest(str(key), list(params), f"{name} takes")
            raise ConfigError(f"{where}.{key}", "unknown parameter", fix)
    for key, spec in params.items():
        if key not in node:
            raise ConfigError(f"{where}.{key}", "missing parameter", f"set it in conf/reward/{name}.yaml")
        check_value(f"{where}.{key}", node[key], spec)
    if set(MARKER_KEYS) <= set(params):
        check_markers(where, node)


def check_reward_config(reward_cfg: Mapping[str, Mapping]) -> None:
    """Raise ConfigError naming the offending key if the `reward` config node is unusable."""
    reward_cfg = _plain(reward_cfg)
    if not reward_cfg:
        fix = "list some in the defaults, e.g. `reward: [accuracy]`"
        raise ConfigError("reward", "no reward selected", fix)
    if not isinstance(reward_cfg, Mapping):
        raise ConfigError("reward", f"expected a mapping of reward name to settings, got {reward_cfg!r}")
    for name, node in reward_cfg.items():
        if name not in REWARDS:
            raise ConfigError(f"reward.{name}", "unknown reward", _suggest(str(name), list(REWARDS), "known"))
        _check_reward(name, node)


def build_reward_funcs(reward_cfg: Mapping[str, Mapping], remote: Any = None) -> tuple[list[Callable], list[float]]:
    """Reward callables (parameters bound, `__name__` = reward name) and their weights, in config order; with the
    `remote_rewards` section's url set, those it names call the reward server there with the same parameters."""
    check_reward_config(reward_cfg)
    reward_cfg = _plain(reward_cfg)
    remote = remote_settings(_plain(remote), list(reward_cfg)) if remote is not None else None
    funcs, weights = [], []
    for name, node in reward_cfg.items():
        params = {key: value for key, value in node.items() if key != "weight"}
        if remote is not None and remote.url is not None and (remote.rewards is None or name in remote.rewards):
            func = RemoteReward(name, params, remote)
        else:
            # A partial of a module-level function (not a closure) stays picklable for TRL's rollout workers.
            func = functools.partial(REWARDS[name], **params)
            func.__name__ = name
        funcs.append(func)
        weights.append(float(node["weight"]))
    return funcs, weights
