"""A metric summarised over seeds, the paired difference of two arms, and what they say (rlvr_vocab.eval.stats,
imported when first used: it loads numpy)."""

from typing import Any

from rlvr_vocab.report.plotting import sort_key

# Fewer seeds than this: no interval means much.
SMALL_N = 3
# The difference between the arms that `compare --vs` and the report say how many seeds would detect (--effect).
DEFAULT_EFFECT = 0.02
# What a summary over seeds adds besides its mean.
SUMMARY_FIELDS = ("std", "n", "ci_low", "ci_high")


def summary(values: list[float]) -> dict[str, Any] | None:
    """stats.summarize of the values given (None for none): mean, std, n, ci_low, ci_high, note."""
    from rlvr_vocab.eval import stats

    numbers = [v for v in values if v is not None]
    return stats.summarize(numbers) if numbers else None


def paired(a: dict[str, float | None], b: dict[str, float | None]) -> dict[str, Any] | None:
    """stats.paired_difference of b - a over the seeds both have values for (None when none)."""
    from rlvr_vocab.eval import stats

    a = {s: v for s, v in a.items() if v is not None}
    b = {s: v for s, v in b.items() if v is not None}
    if not a.keys() & b.keys():
        return None
    diff = stats.paired_difference(a, b)
    return {**diff, **{k: sorted(diff[k], key=sort_key) for k in ("seeds", "a_only", "b_only")}}


def verdict(diff: dict[str, Any] | None, a: str, b: str) -> str:
    """Which arm is better by the paired difference's 95% interval, or that it includes 0."""
    if diff is None:
        return "no seed in both arms"
    if diff["ci_low"] > 0:
        return f"{b} better"
    if diff["ci_high"] < 0:
        return f"{a} better"
    return "interval includes 0"


def small_n_note(*summaries: dict[str, Any] | None) -> str | None:
    """stats.SMALL_N_NOTE when any of the summaries is over fewer than SMALL_N seeds."""
    from rlvr_vocab.eval import stats

    return stats.SMALL_N_NOTE if any(s is not None and s["n"] < SMALL_N for s in summaries) else None
