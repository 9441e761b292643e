"""The report of sweep A (and B) as blocks: the question, the answer (rlvr_vocab.report.answer_sections), what differs
between the arms, the results per benchmark, the curves and how fast each arm learns, length and vocabulary use, how
sure the answer is, the runs, how to reproduce them, and how the numbers are made."""

from datetime import datetime, timezone
from typing import Any

from rlvr_vocab.report.arms import Arm, load_arms, metrics_of
from rlvr_vocab.report.comparison import compare_arms, setting_summaries
from rlvr_vocab.report.document import Code, Heading, Image, Link, Para, Table, Verdict
from rlvr_vocab.report.measures import metric_title
from rlvr_vocab.report.plotting import group_by_arm, render_png
from rlvr_vocab.report.provenance import (
    config_difference,
    git_state,
    mixed_code_warning,
    reproduce_commands,
    run_rows,
)
from rlvr_vocab.report.summaries import DEFAULT_EFFECT
from rlvr_vocab.report.wording import DIGITS, decimals, interval, mean_std, number, unpaired_text

QUESTION = "Does the reasoning vocabulary help under GRPO?"


def build(runs: list, sweep: str, vs: str | None = None, effect: float = DEFAULT_EFFECT) -> list:
    """The report of sweep `sweep` (arm A) against `vs` (arm B) as a list of blocks (Heading, Para, Table, ...);
    `effect`: the difference to say how many seeds would detect."""
    arms = load_arms(runs, sweep, vs)
    blocks: list = [Heading(QUESTION, 1), Para(_arms_line(arms)), Para(_generated(), "note")]
    groups = {label: [r.run_dir for r in runs] for label, runs in
              group_by_arm({f"{arm.name} {arm.sweep}": arm.runs for arm in arms}).items()}
    title = " vs ".join(f"{arm.name} {arm.sweep}" for arm in arms)
    if vs is None:
        blocks += _config_section(arms) + _results_section(arms, setting_summaries(arms[0]))
        blocks += _curves_section(arms, groups, title)
    else:
        # Here: the answer's statistics load numpy and scipy, which the CLI's start does not.
        from rlvr_vocab.report import answer_sections as sections
        from rlvr_vocab.report.answer import answer

        found = answer(*arms, effect)
        blocks += sections.answer_section(*arms, found) + _config_section(arms)
        blocks += _results_section(arms, compare_arms(*arms), sections.answer_tables(*arms, found))
        blocks += _curves_section(arms, groups, title) + sections.learning_section(*arms)
        blocks += sections.usage_section(arms, groups, title) + sections.how_sure_section(found)
    blocks += _runs_section(arms) + _reproduce_section(arms) + _method_section(len(arms))
    return blocks


def _arms_line(arms: list[Arm]) -> str:
    described = [f"{arm.name} = sweep {arm.sweep} ({len(arm.runs)} runs)" for arm in arms]
    if len(arms) == 1:
        return f"One arm: {described[0]}. Compare it with the other arm: `rlvr-vocab report --sweep {arms[0].sweep} " \
               "--vs <sweep>`."
    return f"Arm {described[0]}, the baseline; arm {described[1]}. Differences are B - A, paired by seed."


def _generated() -> str:
    return f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `rlvr-vocab report`."


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


def _results_section(arms: list[Arm], rows: list[dict[str, Any]], lead: list | None = None) -> list:
    """Per metric a table: with one arm its settings' summaries; with two, after the answer's tables (`lead`), the
    comparison rows over seeds."""
    blocks: list = [Heading("Results per benchmark"), *(lead or [])]
    if len(arms) == 1:
        for metric in metrics_of(arms):
            table = [[r["label"], *_summary_cells(r["summary"]), r["note"] or ""]
                     for r in rows if r["metric"] == metric]
            if table:
                blocks += [Heading(metric_title(metric), 3),
                           Table(["setting", "mean ± std", "n", "95% CI", "note"], table)]
        return blocks
    a, b = arms
    several = len({r["label"] for r in rows}) > 1
    table = [[metric_title(r["metric"]), *_comparison_cells(r, a, b)[0 if several else 1:]]
             for metric in metrics_of(arms) for r in rows if r["metric"] == metric]
    return blocks + [Heading("Each metric over seeds", 3), Para(
        "Per metric (each benchmark's measure at the final model and at its best checkpoint, chosen on the benchmark "
        "itself and so optimistic; held-out accuracy; training reward): each arm's mean over its seeds and B - A "
        "paired by seed, from each run's own value.", "note"), Table(
        ["metric", *["setting"] * several, f"A {a.sweep}: mean ± std", "n", "95% CI", f"B {b.sweep}: mean ± std", "n",
         "95% CI", "B - A", "95% CI", "paired on seeds", "unpaired seeds", "verdict", "note"], table)]


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


def _curves_section(arms: list[Arm], groups: dict[str, list], title: str) -> list:
    blocks: list = [Heading("Curves")]
    if any(arm.benchmarks for arm in arms):
        blocks.append(Image("benchmarks", render_png(groups, f"benchmarks vs step: {title}", ["benchmarks"]),
                            "each benchmark's measure against training step (step 0: before GRPO, where evaluated), "
                            "one line per arm, a min-max band over seeds"))
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
        if warning := mixed_code_warning(arm):
            blocks.append(Para(f"Warning: {warning}.", "note"))
    blocks.append(Para("Each command submits the arm's sweep afresh (another experiments root, or after moving the "
                       "run dirs aside); `rlvr-vocab resume` continues runs, it does not reproduce them.", "note"))
    return blocks


def _method_section(n_arms: int) -> list:
    blocks = [Heading("How these numbers are made")]
    if n_arms == 2:
        blocks.append(Para(
            "The answer: each benchmark's measure is avg@n (the fraction of a problem's n sampled completions that "
            "are correct, averaged over problems: the reasoning papers' pass@1) where every result has it, else greedy "
            "accuracy (results of the old protocol). Runs of A and B are paired by seed and problems by index; a "
            "problem missing from any run of either arm is dropped from both. B - A has a 95% interval from a "
            "bootstrap that resamples seeds and problems together (Owen's pigeonhole bootstrap, widened for few "
            "seeds), or seeds only where results have no per-problem records. P(B > A) is the chance that a seed "
            "of B scores above a seed of A (Mann-Whitney), with a stratified bootstrap interval. Overall: the mean "
            "and interquartile mean (IQM) of B - A over seeds x benchmarks, each benchmark a stratum (rliable). "
            "2,000 resamples from a fixed seed: the same runs give the same numbers. Below 3 seeds no interval is "
            "given."))
    blocks.append(Para(
        "Per setting, mean and sample std over seeds, n, and a 95% percentile-bootstrap interval of the mean "
        "(10,000 resamples, seeded). The difference B - A is paired by seed (same seed, same other swept values) "
        "and has its own bootstrap interval; seeds only one arm has are left out and listed. 'best' is each run's "
        "best evaluated checkpoint chosen on the benchmark itself, so it is optimistic; 'final' is the final model. "
        "With n < 3 seeds no interval means much."))
    return blocks
