"""How each arm generates at the final model, per benchmark: mean length, think length and the reasoning-token share
in and outside think (the vocabulary arm's only), each over seeds with its 95% interval."""

from typing import Any

from rlvr_vocab.eval import results
from rlvr_vocab.report.arms import Arm
from rlvr_vocab.report.curves import USAGE
from rlvr_vocab.report.summaries import summary


def usage_rows(arms: list[Arm]) -> list[dict[str, Any]]:
    """One row per benchmark and arm: `benchmark`, `arm`, `sweep` and per USAGE measure its summary over the arm's
    seeds (None where no run has it). Rows whose every measure is None are left out."""
    rows = []
    for benchmark in sorted({b for arm in arms for b in arm.benchmarks}):
        for arm in arms:
            finals = [_final(r, benchmark) for r in arm.runs]
            row = {m: summary([f.get(m) for f in finals]) for m in USAGE}
            if any(row.values()):
                rows.append({"benchmark": benchmark, "arm": arm.name, "sweep": arm.sweep, **row})
    return rows


def _final(view, benchmark: str) -> dict[str, Any]:
    final, _ = results.final_and_best(results.benchmarks_of(view.paths, view.m), benchmark, view.m.get("max_steps"))
    return final or {}
