"""The report's sections on the answer of two arms (rlvr_vocab.report.answer): the answer itself, its table per
benchmark and overall, how fast each arm learns, how each arm generates (lengths, reasoning-token shares), and how sure
the answer is (the seeds a difference of --effect needs). Loads numpy: rlvr_vocab.report.sections imports it when a
report of two arms is built."""

from typing import Any

from rlvr_vocab.eval.paired import Estimate
from rlvr_vocab.report.answer import Answer, where
from rlvr_vocab.report.answer_text import (
    answer_heading,
    answer_lines,
    answer_notes,
    needed_text,
    probability_text,
)
from rlvr_vocab.report.arms import Arm
from rlvr_vocab.report.curves import USAGE, USAGE_TITLES
from rlvr_vocab.report.document import Heading, Image, Para, Table, Verdict
from rlvr_vocab.report.learning import learning_speed
from rlvr_vocab.report.lengths import usage_rows
from rlvr_vocab.report.plotting import render_png
from rlvr_vocab.report.wording import DIGITS, agreeing_digits, interval, number


def answer_section(a: Arm, b: Arm, answer: Answer) -> list:
    """The answer first: one line per benchmark and one overall, then its notes."""
    question = answer_heading(a, b).removeprefix("answer: ")
    return [Heading("Answer"), Para(question[0].upper() + question[1:]),
            *(Para(line, "answer") for line in answer_lines(answer)),
            *(Para(note, "note") for note in answer_notes(answer))]


def answer_tables(a: Arm, b: Arm, answer: Answer) -> list:
    """Per benchmark the numbers of its answer line; overall each arm's mean and IQM and their difference."""
    rows = []
    for x in answer.benchmarks:
        d = agreeing_digits(x.a_mean, x.b_mean, x.difference.difference)  # as in the answer's line
        rows.append([where(x.benchmark, x.label), x.measure, str(x.n_problems or "-"),
                     str(len(x.seeds)), number(x.a_mean, digits=d), number(x.b_mean, digits=d),
                     number(x.difference.difference, True, d), _ci(x.difference.low, x.difference.high, d),
                     ", ".join(x.difference.levels) or "-", probability_text(x.improvement),
                     _detectable(x.planning.detectable), _verdict(x.verdict)])
    blocks: list = [Heading("The answer per benchmark (final model)", 3), Table(
        ["benchmark", "measure", "problems", "seeds", f"A {a.sweep}", f"B {b.sweep}", "B - A", "95% CI", "resampled",
         "P(B > A)", "detectable at this n", "verdict"], rows)]
    for x in answer.overall:
        blocks += [Heading(where("Overall", x.label) + f": {', '.join(x.benchmarks)} x {len(x.seeds)} seeds", 3),
                   Table(["statistic", f"A {a.sweep}", f"B {b.sweep}", "B - A", "verdict"], [
            ["mean", _estimate(x.a.mean), _estimate(x.b.mean), _estimate(x.mean, True), _verdict(x.verdict)],
            ["IQM", _estimate(x.a.iqm), _estimate(x.b.iqm), _estimate(x.iqm, True), ""],
            ["P(B > A)", "", "", probability_text(x.improvement), ""]])]
    return blocks


def learning_section(a: Arm, b: Arm) -> list:
    """Area under each arm's curve and the steps to reach A's final value, per benchmark."""
    speeds = learning_speed(a, b)
    if not speeds:
        return []
    rows = []
    for s in speeds:
        span = f"{s.span[0]}-{s.span[1]}" if s.span else "-"
        reached = [f"{_summary(s.reached[arm], digits=0)} ({s.reached_by[arm][0]}/{s.reached_by[arm][1]} seeds)"
                   for arm in ("A", "B")]
        diff = s.area_diff
        rows.append([where(s.benchmark, s.label), s.measure, span, _summary(s.area["A"]),
                     _summary(s.area["B"]), f"{number(diff['mean_diff'], True)} {_ci(diff['ci_low'], diff['ci_high'])}"
                     if diff else "-", number(s.threshold), *reached])
    return [Heading("Does B learn faster?", 3), Para(
        "Area: the area under each run's curve over the steps every run of both arms evaluated (step 0 included "
        "where evaluated), divided by those steps: the mean value over training, higher when a run learns sooner. "
        "First step: the first evaluated step at which a run reaches A's mean final value; the seeds that never do "
        "are counted, not averaged. Each over seeds: mean [95% CI]; B - A paired by seed."),
        Table(["benchmark", "measure", "steps", f"A {a.sweep}: area", f"B {b.sweep}: area", "B - A", "threshold",
               "A: first step reaching it", "B: first step reaching it"], rows)]


def usage_section(arms: list[Arm], groups: dict[str, list], title: str) -> list:
    """Lengths and reasoning-token shares per arm at the final model, and their curves."""
    rows = usage_rows(arms)
    if not rows:
        return []
    measures = [m for m in USAGE if any(r[m] for r in rows)]
    # Tokens to one decimal, shares to three.
    table = [[r["benchmark"], f"{r['arm']} {r['sweep']}",
              *(_summary(r[m], digits=1 if m.endswith("length") else 3) for m in measures)] for r in rows]
    return [Heading("Length and vocabulary use"), Para(
        "At the final model, over seeds: mean [95% CI]. Lengths count generated tokens (think: inside "
        "`<think>...</think>`); a reasoning-token share is the share of generated tokens from the reasoning "
        "vocabulary, inside and outside the think span (the vocabulary arm only)."),
        Table(["benchmark", "arm", *(USAGE_TITLES[m] for m in measures)], table),
        Image("usage", render_png(groups, f"length and vocabulary use vs step: {title}", ["usage"]),
              "mean length, think length and reasoning-token shares against training step, one line per arm")]


def how_sure_section(answer: Answer) -> list:
    """Per benchmark and overall: the difference this many seeds detects, the seeds needed for --effect."""
    effect = number(answer.effect)
    rows = [[where(x.benchmark, x.label), str(x.planning.n_seeds), _detectable(x.planning.detectable),
             needed_text(x.planning)] for x in answer.benchmarks]
    rows += [[where("overall", x.label), str(x.planning.n_seeds), _detectable(x.planning.detectable),
              needed_text(x.planning)] for x in answer.overall]
    return [Heading("How sure"), Para(
        f"A paired t-test over seeds, with the seed-to-seed spread of B - A seen here taken as the truth (from 3 "
        f"seeds it can be off by a factor of 2): the smallest true difference it finds 80% of the time (alpha 0.05) "
        f"at this many seeds, and the seeds it needs to find a difference of ±{effect} (`--effect`). Fewer than 3 "
        "seeds cannot tell the spread."),
        Table(["benchmark", "seeds", "detectable at this n", f"seeds needed for ±{effect}"], rows)]


def _ci(low: float | None, high: float | None, digits: int = DIGITS) -> str:
    return interval(low, high, True, digits) if low is not None and high is not None else "-"


def _estimate(e: Estimate, signed: bool = False) -> str:
    text = number(e.value, signed)
    return text + (f" {interval(e.low, e.high, signed)}" if e.low is not None and e.high is not None else "")


def _detectable(value: float | None) -> str:
    return f"±{number(value)}" if value is not None else "-"


def _summary(s: dict[str, Any] | None, digits: int = DIGITS) -> str:
    if s is None:
        return "-"
    return f"{number(s['mean'], digits=digits)} {interval(s['ci_low'], s['ci_high'], digits=digits)}" if s["n"] > 1 \
        else number(s["mean"], digits=digits)


def _verdict(verdict: str) -> Verdict:
    return Verdict(verdict, {"B better": "better", "A better": "worse"}.get(verdict, "unclear"))
