"""`compare`'s tables for the terminal: the lines said before them (the answer), their title, columns, cells, and the
lines said under them (what a short column name means, the caveats)."""

from typing import NamedTuple

from rlvr_vocab.report.comparison import Comparison
from rlvr_vocab.report.curves import MEASURE_TITLES
from rlvr_vocab.report.measures import is_benchmark_column, metric_title
from rlvr_vocab.report.provenance import mixed_code_warning
from rlvr_vocab.report.summaries import SMALL_N, SUMMARY_FIELDS
from rlvr_vocab.report.sweep_table import SweepTable
from rlvr_vocab.report.wording import decimals, number, unpaired_text

# The short column names of the terminal table, said under it (CSV and JSON keep the names as they are).
LEGEND = {
    "n": "seeds averaged",
    "reward": "training reward at the last logged step",
    "acc_initial": "held-out accuracy (greedy) before GRPO",
    "acc_final": "held-out accuracy (greedy) of the final model",
    "acc_gain": "acc_final - acc_initial",
    "format_rate": "share of held-out answers in the expected format",
    "mean_length": "mean length of the held-out completions (tokens)",
}
# Under `compare --vs`'s table: what its metrics' "final model" and "best checkpoint" are.
VS_LEGEND = ("final model: each run's last weights; best checkpoint: each run's best evaluated checkpoint, chosen on "
             "the benchmark itself (optimistic)")


class Printout(NamedTuple):
    """A table for the terminal (title, columns and cells in rich markup), the lines said before and under it."""

    lead: list[str]  # plain text, before the table
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str]  # plain text, one line however wide
    rich_notes: list[str]  # rich markup, after `notes`


def fmt_number(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_printout(sweep: str, table: SweepTable) -> Printout:
    """A row per run or per setting; a setting's benchmark columns as "mean ± std [95% CI]"."""
    rows, by_setting, measures = table
    title = f"sweep {sweep}"
    if by_setting:
        title += ": mean over seeds per setting (--runs: one row per run)"
    columns = _shown_columns(rows)
    cells = [[_cell(row, c) if by_setting and is_benchmark_column(c) else fmt_number(row[c]) for c in columns]
             for row in rows]
    legend = [f"{c}: {LEGEND[c]}" for c in LEGEND if c in columns] + \
        ["pass@k: held-out pass@k of the final model"] * any(c.startswith("pass@") for c in columns) + \
        ["_std: sample std over seeds"] * any(c.endswith("_std") for c in columns)
    rich_notes = []
    if by_setting and any(is_benchmark_column(c) for c in columns):
        rich_notes.append("benchmark columns: mean ± std over seeds [95% bootstrap interval of the mean] (n when it "
                          "differs from the setting's)")
    if measures:
        legend.append("benchmark columns: " + ", ".join(f"{b} {MEASURE_TITLES[m]}" for b, m in measures.items()))
    if any(row.get("note") for row in rows):
        rich_notes.append(f"note: some settings have n < {SMALL_N} seeds: their intervals are not meaningful")
    return Printout([], title, columns or ["run"], cells, ["columns: " + "; ".join(legend)] if legend else [],
                    rich_notes)


def _shown_columns(table: list[dict]) -> list[str]:
    """The table's columns but a benchmark summary's parts (shown in its cell) and the note (said below it)."""
    parts = {f"{c}_{f}" for c in (table[0] if table else {}) if is_benchmark_column(c) for f in SUMMARY_FIELDS}
    return [c for c in (table[0] if table else {}) if c not in parts and c != "note"]


def _cell(row: dict, column: str) -> str:
    """A benchmark column of a setting: "mean ± std [low, high]" and its n when not every run of the setting has it."""
    if row[column] is None:
        return "-"
    text = f"{row[column]:.3f}"
    if row[f"{column}_std"] is not None:
        text += f" ± {row[f'{column}_std']:.3f}"
    text += f" [{row[f'{column}_ci_low']:.3f}, {row[f'{column}_ci_high']:.3f}]"
    return text + (f" (n={row[f'{column}_n']})" if row[f"{column}_n"] != row["n"] else "")


def vs_printout(comparison: Comparison) -> Printout:
    """Before the table the answer; per setting and metric each arm's summary, the paired difference, its seeds and
    the verdict; under it what the columns are and the caveats."""
    from rlvr_vocab.report.answer_text import answer_heading, answer_lines, answer_notes  # loads numpy: only here

    a, b, result, answer = comparison
    rows = result["rows"]
    several = len({r["label"] for r in rows}) > 1
    title = (f"A = {a.sweep} vs B = {b.sweep}: per metric, each arm's mean ± std (n) [95% CI] over seeds; B - A "
             "paired by seed")
    columns = ["setting"] * several + ["metric", f"A {a.sweep}", f"B {b.sweep}", "B - A [95% CI]", "paired on seeds",
                                       "unpaired seeds", "verdict"]
    cells = []
    for r in rows:
        diff, digits = r["diff"], decimals(r)
        cells.append([*[r["label"]] * several, metric_title(r["metric"]), _summary_text(r["a"], digits),
                      _summary_text(r["b"], digits), _diff_text(diff, digits),
                      ", ".join(diff["seeds"]) if diff else "-", unpaired_text(diff, a.name, b.name) if diff else "-",
                      r["verdict"] + (" *" if r["note"] else "")])
    measures = sorted({**a.measures, **b.measures}.items())
    said = [VS_LEGEND] + ["benchmarks: " + ", ".join(f"{k} {MEASURE_TITLES[m]}" for k, m in measures)] * bool(measures)
    if any(r["diff"] and (r["diff"]["a_only"] or r["diff"]["b_only"]) for r in rows):
        said.append("B - A is over the paired seeds only, each arm's mean over all its seeds: they need not agree")
    if result["note"]:
        said.append(f"* n < {SMALL_N} seeds: interval not meaningful")
    mixed = [w for w in (mixed_code_warning(a), mixed_code_warning(b)) if w]
    lead = [answer_heading(a, b), *(f"  {line}" for line in answer_lines(answer)),
            *(f"  note: {line}" for line in answer_notes(answer)), *(f"  warning: {w}" for w in mixed), ""]
    return Printout(lead, title, columns, cells, [f"note: {line}" for line in said], [])


def _summary_text(s: dict | None, digits: int) -> str:
    if s is None:
        return "-"
    std = f" ± {number(s['std'], digits=digits)}" if s["std"] is not None else ""
    return (f"{number(s['mean'], digits=digits)}{std} (n={s['n']}) "
            f"[{number(s['ci_low'], digits=digits)}, {number(s['ci_high'], digits=digits)}]")


def _diff_text(diff: dict | None, digits: int) -> str:
    if diff is None:
        return "-"
    low, high = (number(diff[k], True, digits) for k in ("ci_low", "ci_high"))
    return f"{number(diff['mean_diff'], True, digits)} [{low}, {high}]"
