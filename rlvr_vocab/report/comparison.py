"""The comparison of two arms per setting and metric (each arm's summary over seeds, the paired difference B - A,
the verdict), or of one arm's settings, and the answer (rlvr_vocab.report.answer): what `compare --vs` prints and the
report tabulates."""

import dataclasses
import itertools
from typing import Any, NamedTuple

from rlvr_vocab.report.arms import Arm, load_arms, metrics_of, pairings
from rlvr_vocab.report.plotting import sort_key
from rlvr_vocab.report.summaries import SUMMARY_FIELDS, paired, small_n_note, summary, verdict


def compare_arms(a: Arm, b: Arm) -> list[dict[str, Any]]:
    """One row per pairing of settings and metric: each arm's summary over seeds, the paired difference B - A
    with its 95% interval, which seeds paired and which did not, the verdict and the n < 3 note."""
    rows = []
    for pairing, metric in itertools.product(pairings(a, b), metrics_of([a, b])):
        # Each arm's summary over all its runs of the setting; the difference over the seeds both have.
        a_sum, b_sum = (summary([arm.metrics[i].get(metric) for i in runs])
                        for arm, runs in ((a, pairing.a), (b, pairing.b)))
        if a_sum is None and b_sum is None:
            continue
        diff = paired(a.by_seed(pairing.a, metric), b.by_seed(pairing.b, metric))
        rows.append({"setting": pairing.setting, "label": pairing.label, "metric": metric, "a": a_sum, "b": b_sum,
                     "diff": diff, "verdict": verdict(diff, a.name, b.name), "note": small_n_note(a_sum, b_sum, diff)})
    return rows


def setting_summaries(arm: Arm) -> list[dict[str, Any]]:
    """One row per setting and metric of a single arm: its summary over seeds."""
    labels = arm.setting_labels()
    rows = []
    for (values, runs), metric in itertools.product(arm.settings().items(), metrics_of([arm])):
        s = summary([arm.metrics[i].get(metric) for i in runs])
        if s is not None:
            rows.append({"setting": dict(zip(arm.setting_keys, values, strict=True)), "label": labels[values],
                         "metric": metric, "summary": s, "note": small_n_note(s)})
    return rows


class Comparison(NamedTuple):
    """Two arms, their comparison as `compare --vs --json` prints it, and the answer (rlvr_vocab.report.answer)."""

    a: Arm
    b: Arm
    result: dict[str, Any]
    answer: Any  # rlvr_vocab.report.answer.Answer, not imported here: it loads numpy and scipy


def compare_sweeps(runs: list, sweep: str, vs: str, effect: float) -> Comparison:
    """Sweep `sweep` (arm A) against sweep `vs` (arm B), paired by seed; `effect`: the difference to plan seeds for."""
    from rlvr_vocab.report.answer import answer  # here: it loads numpy and scipy, which the CLI's start does not

    a, b = load_arms(runs, sweep, vs)
    found = answer(a, b, effect)
    return Comparison(a, b, {"answer": dataclasses.asdict(found), **comparison_json(a, b)}, found)


def comparison_json(a: Arm, b: Arm) -> dict[str, Any]:
    """The comparison table's part of what `compare --vs` prints as JSON (and the report tabulates)."""
    rows = compare_arms(a, b)
    return {
        "a": _arm_json(a), "b": _arm_json(b), "difference": "b - a, paired by seed; 95% bootstrap intervals",
        "rows": rows, "note": next((r["note"] for r in rows if r["note"]), None),
    }


def _arm_json(arm: Arm) -> dict[str, Any]:
    return {"sweep": arm.sweep, "runs": len(arm.runs), "setting_keys": arm.setting_keys,
            "seeds": sorted({s for s in arm.seeds if s is not None}, key=sort_key), "benchmarks": arm.benchmarks,
            "measures": arm.measures}


def csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows as CSV lines: each arm's summary and the difference as columns of their own."""
    return [_flat(row) for row in rows]


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = {"setting": row["label"], "metric": row["metric"]}
    for arm in ("a", "b"):
        flat.update({f"{arm}_{f}": (row[arm] or {}).get(f) for f in ("mean", *SUMMARY_FIELDS)})
    diff = row["diff"] or {}
    flat.update({f"diff_{f}": diff.get(f) for f in ("mean_diff", *SUMMARY_FIELDS)})
    flat.update({f: " ".join(diff.get(f) or []) for f in ("seeds", "a_only", "b_only")})
    return {**flat, "verdict": row["verdict"], "note": row["note"]}
