"""The report of sweep A (and B) as blocks: the question, the answer in short, what differs between the arms, the
results per benchmark, the curves, the runs, how to reproduce them, and how the numbers are made."""

from datetime import datetime, timezone
from typing import Any

from rlvr_vocab.report.arms import Arm, load_arms, metrics_of
from rlvr_vocab.report.comparison import compare_arms, setting_summaries
from rlvr_vocab.report.document import Code, Heading, Image, Link, Para, Table, Verdict
from rlvr_vocab.report.measures import metric_title
from rlvr_vocab.report.plotting import group_by_arm, render_png
from rlvr_vocab.report.provenance import config_difference, git_state, reproduce_commands, run_rows
from rlvr_vocab.report.wording import DIGITS, answer_lines, decimals, interval, mean_std, number, unpaired_text

QUESTION = "Does the reasoning vocabulary help under GRPO?"


def build(runs: list, sweep: str, vs: str | None = None) -> list:
    """The report of sweep `sweep` (arm A) against `vs` (arm B) as a list of blocks (Heading, Para, Table, ...)."""
    arms = load_arms(runs, sweep, vs)
    rows = compare_arms(*arms) if vs is not None else setting_summaries(arms[0])
    blocks: list = [Heading(QUESTION, 1), Para(_arms_line(arms)), Para(_generated(), "note")]
    blocks += _answer(arms, rows) + _config_section(arms) + _results_section(arms, rows) + _curves_section(arms)
    blocks += _runs_section(arms) + _reproduce_section(arms) + _method_section()
    return blocks


def _arms_line(arms: list[Arm]) -> str:
    described = [f"{arm.name} = sweep {arm.sweep} ({len(arm.runs)} runs)" for arm in arms]
    if len(arms) == 1:
        return f"One arm: {described[0]}. Compare it with the other arm: `rlvr-vocab report --sweep {arms[0].sweep} " \
               "--vs <sweep>`."
    return f"Arm {described[0]}, the baseline; arm {described[1]}. Differences are B - A, paired by seed."


def _generated() -> str:
    return f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `rlvr-vocab report`."


def _answer(arms: list[Arm], rows: list[dict[str, Any]]) -> list:
    if len(arms) == 1:
        return []
    return [Heading("Answer in short"), *(Para(line, "answer") for line in answer_lines(rows, *arms))]


def _config_section(arms: list[Arm]) -> list:
    if len(arms) == 1:
        diff = config_difference(arms[0])
        head = [Heading("Configuration"), Para(f"Keys swept in arm A ({arms[0].sweep}), from its runs' config.yaml:")]
        return head + [Table(["key", "values"], [[k, v] for k, v, _ in diff]) if diff else
                       Para("No key varies between its runs but the seed (or no run has a config.yaml yet).")]
    a, b = arms
    diff = config_difference(a, b)
    head = [Heading("What differs between the arms"),
            Para(f"Config keys whose values differ, from the runs' config.yaml (A: {a.sweep} -> B: {b.sweep}; "
                 "several values: swept within the arm).")]
    return head + [Table(["key", "A", "B"], [[k, x, y] for k, x, y in diff]) if diff else
                   Para("No config.yaml differs (or no run has written one yet).")]


def _results_section(arms: list[Arm], rows: list[dict[str, Any]]) -> list:
    """Per metric a table: with one arm its settings' summaries; with two, the comparison rows."""
    blocks: list = [Heading("Results per benchmark")]
    if len(arms) == 1:
        for metric in metrics_of(arms):
            table = [[r["label"], *_summary_cells(r["summary"]), r["note"] or ""]
                     for r in rows if r["metric"] == metric]
            if table:
                blocks += [Heading(metric_title(metric), 3),
                           Table(["setting", "mean ± std", "n", "95% CI", "note"], table)]
        return blocks
    a, b = arms
    for metric in metrics_of(arms):
        table = [_comparison_cells(r, a, b) for r in rows if r["metric"] == metric]
        if table:
            blocks += [Heading(metric_title(metric), 3), Table(
                ["setting", f"A {a.sweep}: mean ± std", "n", "95% CI", f"B {b.sweep}: mean ± std", "n", "95% CI",
                 "B - A", "95% CI", "paired on seeds", "unpaired seeds", "verdict", "note"], table)]
    return blocks


def _summary_cells(s: dict[str, Any] | None, digits: int = DIGITS) -> list[str]:
    if s is None:
        return ["-", "0", "-"]
    return [mean_std(s, digits), str(s["n"]), interval(s["ci_low"], s["ci_high"], digits=digits)]


def _comparison_cells(row: dict[str, Any], a: Arm, b: Arm) -> list[Any]:
    diff, d = row["diff"], decimals(row)
    if diff is None:
        diff_cells = ["-", "-", "-", "-"]
    else:
        diff_cells = [number(diff["mean_diff"], True, d), interval(diff["ci_low"], diff["ci_high"], True, d),
                      ", ".join(diff["seeds"]), unpaired_text(diff, a.name, b.name)]
    kind = {f"{b.name} better": "better", f"{a.name} better": "worse"}.get(row["verdict"], "unclear")
    return [row["label"], *_summary_cells(row["a"], d), *_summary_cells(row["b"], d), *diff_cells,
            Verdict(row["verdict"], kind), row["note"] or ""]


def _curves_section(arms: list[Arm]) -> list:
    groups = {label: [r.run_dir for r in runs] for label, runs in
              group_by_arm({f"{arm.name} {arm.sweep}": arm.runs for arm in arms}).items()}
    title = " vs ".join(f"{arm.name} {arm.sweep}" for arm in arms)
    blocks: list = [Heading("Curves")]
    if any(arm.benchmarks for arm in arms):
        blocks.append(Image("benchmarks", render_png(groups, f"benchmark accuracy vs step: {title}", ["benchmarks"]),
                            "benchmark accuracy against training step, one line per arm, a min-max band over seeds"))
    else:
        blocks.append(Para("No benchmark results yet: only the training curves."))
    blocks.append(Image("training", render_png(groups, f"training: {title}", ["reward", "accuracy"]),
                        "training reward and held-out accuracy against step, one line per arm"))
    return blocks


def _runs_section(arms: list[Arm]) -> list:
    rows = [[r["arm"], r["run"], r["seed"] or "-", r["setting"], r["state"], r["step"], r["attempts"],
             str(r["requeues"]), Link("W&B", r["wandb_url"]) if r["wandb_url"] else "-", r["note"] or ""]
            for arm in arms for r in run_rows(arm)]
    return [Heading("Runs"),
            Para("Attempts lists how each attempt ended; a requeue is an attempt that continued the same SLURM job "
                 "(after a timeout or preemption), a resume one that was submitted again."),
            Table(["arm", "run", "seed", "setting", "state", "step", "attempts", "requeues", "W&B", "note"], rows)]


def _reproduce_section(arms: list[Arm]) -> list:
    blocks: list = [Heading("Reproduce")]
    for arm in arms:
        blocks += [Para(f"Arm {arm.name} ({arm.sweep}), code at git {git_state(arm)}:"), Code(reproduce_commands(arm))]
    blocks.append(Para("Each command submits the arm's sweep afresh (another experiments root, or after moving the "
                       "run dirs aside); `rlvr-vocab resume` continues runs, it does not reproduce them.", "note"))
    return blocks


def _method_section() -> list:
    return [Heading("How these numbers are made"), Para(
        "Per setting, mean and sample std over seeds, n, and a 95% percentile-bootstrap interval of the mean "
        "(10,000 resamples, seeded). The difference B - A is paired by seed (same seed, same other swept values) "
        "and has its own bootstrap interval; seeds only one arm has are left out and listed. 'best' is each run's "
        "best evaluated checkpoint chosen on the benchmark itself, so it is optimistic; 'final' is the final model. "
        "With n < 3 seeds no interval means much.")]
