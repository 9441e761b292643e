"""Per-problem scores of two arms on one benchmark at the final model, paired by seed and by problem index: the arrays
(seeds, problems) that rlvr_vocab.eval.paired resamples."""

from typing import NamedTuple

import numpy as np

from rlvr_vocab.eval import results
from rlvr_vocab.report.curves import AVG
from rlvr_vocab.report.plotting import sort_key


class PairedScores(NamedTuple):
    """Both arms' scores on the seeds and problems they share: (seeds, problems), or (seeds, 1) of the runs' own
    values where some result has no per-problem records (`per_problem` False)."""

    seeds: list[str]
    a: np.ndarray
    b: np.ndarray
    per_problem: bool
    dropped: list[int]  # problem indices missing in some run of either arm, left out of both


def final_problems(view, benchmark: str, measure: str) -> dict[int, float] | None:
    """Problem index -> its score at the run's final model: the fraction of its samples correct (avg@n), else its
    greedy verdict (0 or 1). None where the result has no per-problem records (older results, synthetic ones)."""
    summary = results.benchmarks_of(view.paths, view.m)
    final, _ = results.final_and_best(summary, benchmark, view.m.get("max_steps"))
    if final is None or not final.get("settings_key"):
        return None
    result = results.read_result(results.result_path(view.paths, benchmark, final["weights"], final["settings_key"]))
    records = (result or {}).get("problems") or []
    scores = {int(p["index"]): _score(p, measure) for p in records}
    if not scores or None in scores.values():
        return None
    return scores


def _score(record: dict, measure: str) -> float | None:
    if measure == AVG:
        return record["correct"] / record["samples"] if record.get("samples") else None
    return float(record["greedy_correct"]) if "greedy_correct" in record else None


def pair_scores(a_runs: dict[str, object], b_runs: dict[str, object], benchmark: str, measure: str,
                values: tuple[dict[str, float | None], dict[str, float | None]]) -> PairedScores | None:
    """The seeds both arms have a final value for (seed -> run view of each arm; `values`: seed -> each arm's final
    value), with every problem all their results share; None when no seed is paired."""
    a_values, b_values = values
    seeds = sorted((s for s in a_runs.keys() & b_runs.keys() if a_values.get(s) is not None
                    and b_values.get(s) is not None), key=sort_key)
    if not seeds:
        return None
    problems = [final_problems(runs[s], benchmark, measure) for s in seeds for runs in (a_runs, b_runs)]
    shared = sorted(set.intersection(*(set(p) for p in problems))) if None not in problems else []
    if not shared:  # no per-problem records to pair: each run's own value, resampled over seeds only
        a, b = (np.array([[values[s]] for s in seeds]) for values in (a_values, b_values))
        return PairedScores(seeds, a, b, False, [])
    dropped = sorted(set.union(*(set(p) for p in problems)) - set(shared))
    table = np.array([[p[i] for i in shared] for p in problems])  # rows: seed 0 A, seed 0 B, seed 1 A, ...
    return PairedScores(seeds, table[0::2], table[1::2], True, dropped)
