"""A search as text: what `rlvr-vocab search status` prints and the report of a search leads with. The trials by
state, the objective, the best so far with its parameters and its runs, the rungs and what was pruned where, and a
row per trial."""

from rlvr_vocab.launch.search_results import SearchResults, Trial

# The objective's `at` in words (a step otherwise).
_AT = {"final": "at the final model", "auc": "as the area under its curve"}


def value(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def params_text(params: dict) -> str:
    return ", ".join(f"{k}={value(v) if isinstance(v, float) else v}" for k, v in params.items())


def runs_text(results: SearchResults, trial: Trial) -> str:
    """A trial's runs as `exp/name`, relative to the root (`-` before its worker made them)."""
    return ", ".join(str(d.relative_to(results.root)) for d in trial.runs) or "-"


def pruned_text(trial: Trial) -> str:
    if trial.pruned_at is None:
        return "pruned"
    return f"pruned at step {trial.pruned_at}" + (f" (rung {trial.rung})" if trial.rung is not None else "")


def summary_lines(results: SearchResults) -> list[str]:
    """The search in a few lines: its trials by state, objective, best, rungs or pruning steps."""
    counts = results.counts()
    budget = (results.search.get("budget") or {}).get("n_trials")
    of = f" of {budget}" if budget else ""
    by_state = ", ".join(f"{n} {state}" for state, n in counts.items()) or "none started yet"
    lines = [f"search {results.search_id}: {len(results.trials)} trials{of}: {by_state}",
             f"  study:      {results.where}"]
    objective = results.search.get("objective")
    if objective:
        at = _AT.get(str(objective["at"]), f"at step {objective['at']}")
        lines.append(f"  objective:  {objective['direction']} {objective['metric']} {at}")
    best = results.best
    if best is None:
        lines.append("  best:       none yet (no trial has completed)")
    else:
        lines.append(f"  best:       trial {best.number}, {value(best.value)}: {params_text(best.params)}")
        lines.append(f"              run {runs_text(results, best)}")
    lines.extend(_pruning_lines(results))
    return lines


def _pruning_lines(results: SearchResults) -> list[str]:
    """ASHA's rungs with the trials that reached each and those pruned there; else the steps trials were pruned at."""
    pruned = [t for t in results.trials if t.state == "PRUNED"]
    steps = results.rungs()
    if steps:
        parts = [f"step {r}: {sum((t.last_step or 0) >= r for t in results.trials)} reached, "
                 f"{sum(t.rung == r for t in pruned)} pruned there" for r in steps]
        return [f"  rungs:      {'; '.join(parts)}"]
    if not pruned:
        return []
    at: dict[int | None, int] = {}
    for t in pruned:
        at[t.pruned_at] = at.get(t.pruned_at, 0) + 1
    parts = [f"{n} at step {s}" for s, n in sorted(at.items(), key=lambda kv: kv[0] or 0)]
    return [f"  pruned:     {', '.join(parts)}"]


def trial_table(results: SearchResults) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per trial, its parameters a column each."""
    keys = list(dict.fromkeys(k for t in results.trials for k in t.params))
    max_steps = results.about.get("max_steps")
    # The step of its last evaluation reported to the study (of max_steps): where a pruned trial stopped.
    headers = ["trial", "state", "value", "evaluated", *keys, "runs", "note"]
    best, rows = results.best, []
    for t in results.trials:
        note = pruned_text(t) if t.state == "PRUNED" else "best" if t is best else ""
        step = "-" if t.last_step is None else f"{t.last_step}/{max_steps}" if max_steps else str(t.last_step)
        rows.append([str(t.number), t.state, value(t.value), step,
                     *(value(t.params[k]) if isinstance(t.params.get(k), float) else str(t.params.get(k, "-"))
                       for k in keys),
                     runs_text(results, t), note])
    return headers, rows


def workers_line(submissions: list[list[str]]) -> str | None:
    """Each submission's worker jobs on one line, submissions apart by `;` (None when none went through Slurm)."""
    if not submissions:
        return None
    jobs = "; ".join(", ".join(jobs) for jobs in submissions)
    return f"  workers:    SLURM jobs {jobs} ({len(submissions)} submission{'s' if len(submissions) != 1 else ''})"


def table_lines(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Plain aligned columns, two spaces apart (as `status` prints its table)."""
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
