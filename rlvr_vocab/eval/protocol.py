"""The reasoning papers' evaluation protocol over n samples per problem (DeepSeek-R1; "A Sober Look at Progress in LM
Reasoning"): avg@n, pass@k, cons@n, greedy accuracy, lengths, format and reasoning-vocabulary shares.

Pure functions on each sample's facts (`Sample`), so the measures are testable without a model. Every measure comes
from the same n samples per problem; only `accuracy` comes from a greedy completion of its own. `aggregate` returns
the aggregate measures and one record per problem, so statistics can resample problems later.
"""

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlvr_vocab.eval.passk import mean_pass_at_k

# Part of every settings key: bump when a measure's definition changes, so results of two protocols never mix.
PROTOCOL = 2
# The aggregate measures a result may carry, as the evals.json summary keeps them; besides them, the keys with these
# prefixes: `pass@4`, ..., and the reasoning-vocabulary shares `reasoning_share`, `reasoning_share_in_think`, ...
MEASURES = ("accuracy", "avg@n", "cons@n", "n", "num_samples", "format_rate", "mean_length", "mean_chars",
            "mean_think_length", "mean_think_chars", "think_rate")
MEASURE_PREFIXES = ("pass@", "reasoning_")


@dataclass(frozen=True)
class Sample:
    """What one completion is, as the measures need it."""

    correct: bool
    # The extracted answer in canonical form (what majority voting compares), None when none parses.
    answer: str | None
    formatted: bool
    # Tokens generated, the eos counted (as TRL counts); characters of the base text.
    tokens: int
    chars: int
    # Inside <think>...</think>: None when the completion has no think span.
    think_tokens: int | None = None
    think_chars: int | None = None
    # ReasoningVocab.token_counts of this completion ([reasoning, all] overall, in and outside think); None without
    # a reasoning vocabulary.
    vocab_counts: tuple[int, ...] | None = None


def avg_at_n(correct: Sequence[Sequence[bool]]) -> float:
    """Sampled pass@1: the fraction of correct samples, averaged over problems."""
    _check_table(correct)
    return sum(sum(row) / len(row) for row in correct) / len(correct)


def pass_at_ks(correct: Sequence[Sequence[bool]], ks: Sequence[int]) -> dict[str, float]:
    """`pass@k` for each k, the unbiased estimator over each problem's samples."""
    _check_table(correct)
    counts = [(len(row), sum(row)) for row in correct]
    return {f"pass@{k}": mean_pass_at_k(counts, k) for k in sorted(set(ks))}


def majority_vote(answers: Sequence[str | None]) -> int | None:
    """Index of the sample whose answer wins the vote, None when no answer parsed.

    Ties go to the answer that reached the top count first, reading the samples in order; an unparseable answer
    (None) never counts."""
    top = max(Counter(a for a in answers if a is not None).values(), default=0)
    running: Counter = Counter()
    for answer in answers:
        if answer is None:
            continue
        running[answer] += 1
        if running[answer] == top:
            return answers.index(answer)
    return None


def cons_at_n(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]]) -> float:
    """Majority-vote accuracy: the share of problems whose voted answer is correct (no answer: wrong)."""
    _check_table(correct)
    return sum(_voted_correct(a, c) for a, c in zip(answers, correct, strict=True)) / len(correct)


def think_chars(text: str, opened: bool) -> int | None:
    """Characters inside <think>...</think> (an unclosed span runs to the end), None without a span; `opened`: the
    prompt already opened one."""
    from rlvr_vocab.reasoning_vocab.tokens import THINK_END, THINK_START  # here: the registry imports this module

    inside = seen = opened
    total = 0
    for part in re.split(f"({re.escape(THINK_START)}|{re.escape(THINK_END)})", text):
        if part in (THINK_START, THINK_END):
            inside = part == THINK_START
            seen = seen or inside
        elif inside:
            total += len(part)
    return total if seen else None


def think_tokens(ids: Sequence[int], opened: bool, start_id: int, end_id: int) -> int | None:
    """Tokens inside the think span, markers excluded (as `think_chars`), None without a span."""
    inside = seen = opened
    total = 0
    for token in ids:
        if token in (start_id, end_id):
            inside = token == start_id
            seen = seen or inside
        elif inside:
            total += 1
    return total if seen else None

def extracted_answer(text: str, verifier: str) -> str | None:
    """The answer a completion gives, as its verifier reads it (after the last </think>), in the canonical form that
    majority voting compares: math-verify's parsed expression as text (`\\frac{1}{2}` and `1/2` both read `1/2`), or
    for `numeric` the last number; None when nothing parses."""
    from rlvr_vocab.model import rewards

    # The rewards' own helpers, so that the vote reads each answer exactly as the verifier scores it.
    answer = rewards._answer_part(text)
    if verifier == "numeric":
        number = rewards._last_number(answer)
        return None if number is None else str(int(number)) if number.is_integer() else repr(number)
    try:
        parsed = rewards._parse_prediction(answer, rewards._timeouts()[0])
    except Exception:  # math-verify fails on some inputs; such an answer is unparseable, never a vote
        return None
    return str(parsed[0]) if parsed else None


def problem_record(index: int, samples: Sequence[Sample], greedy_correct: bool | None = None) -> dict[str, Any]:
    """One problem's result: correct samples out of n, the vote, the greedy verdict (when computed), mean lengths."""
    answers = [s.answer for s in samples]
    winner = majority_vote(answers)
    record = {
        "index": index, "samples": len(samples), "correct": sum(s.correct for s in samples),
        "voted": answers[winner] if winner is not None else None,
        "votes": answers.count(answers[winner]) if winner is not None else 0,
        "voted_correct": winner is not None and samples[winner].correct,
        "formatted": sum(s.formatted for s in samples),
        **_lengths(samples),
    }
    if greedy_correct is not None:
        record["greedy_correct"] = bool(greedy_correct)
    return record


def aggregate(samples: Sequence[Sequence[Sample]], ks: Sequence[int],
              greedy_correct: Sequence[bool] | None = None) -> dict[str, Any]:
    """The protocol's measures over problems (each a list of its samples), and `problems`: one record each.

    `accuracy` (greedy) only with `greedy_correct`; the reasoning-vocabulary shares only when samples carry
    `vocab_counts`. A mean with nothing to average (no think span anywhere, no token in think) is None."""
    correct = [[s.correct for s in row] for row in samples]
    _check_table(correct)
    flat = [s for row in samples for s in row]
    result: dict[str, Any] = {
        "n": len(samples), "num_samples": len(samples[0]),
        "avg@n": avg_at_n(correct), "cons@n": cons_at_n([[s.answer for s in row] for row in samples], correct),
        **pass_at_ks(correct, ks),
        "format_rate": sum(s.formatted for s in flat) / len(flat),
        **_lengths(flat),
        "think_rate": sum(s.think_chars is not None for s in flat) / len(flat),
    }
    if greedy_correct is not None:
        result["accuracy"] = sum(greedy_correct) / len(greedy_correct)
    if flat[0].vocab_counts is not None:
        from rlvr_vocab.reasoning_vocab.tokens import shares

        counts = [sum(column) for column in zip(*(s.vocab_counts for s in flat), strict=True)]
        result.update({f"reasoning_{key}": _number(value) for key, value in shares(counts).items()})
    result["problems"] = [problem_record(i, row, None if greedy_correct is None else greedy_correct[i])
                          for i, row in enumerate(samples)]
    return result


def _voted_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    winner = majority_vote(answers)
    return winner is not None and bool(correct[winner])


def _lengths(samples: Sequence[Sample]) -> dict[str, float | None]:
    return {"mean_length": _mean([s.tokens for s in samples]), "mean_chars": _mean([s.chars for s in samples]),
            "mean_think_length": _mean([s.think_tokens for s in samples if s.think_tokens is not None]),
            "mean_think_chars": _mean([s.think_chars for s in samples if s.think_chars is not None])}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(value: float) -> float | None:
    """NaN (nothing to count) as None: result files stay strict JSON."""
    return None if math.isnan(value) else value


def _check_table(correct: Sequence[Sequence[bool]]) -> None:
    if not correct or any(not row for row in correct):
        raise ValueError("the protocol needs at least one problem, each with at least one sample")

