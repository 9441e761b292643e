"""The answer in words: one line per benchmark (its measure, the verdict, B - A with its interval and the levels
resampled, P(B > A), what this many seeds can detect, each arm's mean, the paired seeds) and one overall; what
`compare --vs` prints first and the report leads with. Loads numpy (rlvr_vocab.report.answer): imported when used."""

from rlvr_vocab.eval.paired import Estimate
from rlvr_vocab.report.answer import Answer, BenchmarkAnswer, OverallAnswer, Planning, where
from rlvr_vocab.report.arms import Arm
from rlvr_vocab.report.curves import MEASURE_TITLES
from rlvr_vocab.report.summaries import SMALL_N
from rlvr_vocab.report.wording import DIGITS, agreeing_digits, interval, number


def answer_heading(a: Arm, b: Arm) -> str:
    """The line before the answer: the question and how its numbers are read."""
    return (f"answer: does B ({b.sweep}) beat A ({a.sweep})? B - A at the final model, paired by seed and problem, "
            "95% intervals")


def answer_lines(answer: Answer) -> list[str]:
    """One line per benchmark (and pairing of settings), one overall, then what could not be compared."""
    lines = [benchmark_line(x) for x in answer.benchmarks] + [overall_line(x) for x in answer.overall]
    return (lines + answer.missing) or ["No benchmark results in both arms yet: nothing to answer."]


def answer_notes(answer: Answer) -> list[str]:
    """What to know besides the lines: per-problem pairing notes, then what the columns of a line mean."""
    notes = [f"{where(x.benchmark, x.label)}: {note}" for x in answer.benchmarks for note in x.notes]
    return notes + [ANSWER_LEGEND]


ANSWER_LEGEND = ("B - A [95% CI]: a benchmark's interval from a bootstrap over the levels named (seeds, then "
                 "problems: for new seeds and new problems like these); overall, seeds resampled within each benchmark "
                 "(these benchmarks and problems), so narrower; P(B > A): the chance a seed of B beats a seed of A; "
                 "detectable: the smallest true difference a paired t-test over this many seeds finds 80% of the time "
                 "(alpha 0.05)")


def benchmark_line(x: BenchmarkAnswer) -> str:
    size = f"{x.n_problems} problems x {len(x.seeds)} seeds" if x.n_problems else f"{len(x.seeds)} seeds"
    d = x.difference
    digits = agreeing_digits(x.a_mean, x.b_mean, d.difference)  # B - A shown is B shown - A shown
    said = [f"B - A = {number(d.difference, True, digits)}" + _interval(d.low, d.high, digits) +
            (f" (resampled: {', '.join(d.levels)})" if d.levels else ""),
            f"P(B > A) = {probability_text(x.improvement)}", planning_text(x.planning)]
    return (f"{where(x.benchmark, x.label)} [{MEASURE_TITLES[x.measure]}, {size}]: {x.verdict}. "
            + "; ".join(said) + f". A {number(x.a_mean, digits=digits)}, B {number(x.b_mean, digits=digits)}; "
            f"{len(x.seeds)} paired seeds: {', '.join(x.seeds)}.")


def overall_line(x: OverallAnswer) -> str:
    said = [f"mean B - A = {number(x.mean.value, True)}" + _interval(x.mean.low, x.mean.high),
            f"IQM B - A = {number(x.iqm.value, True)}" + _interval(x.iqm.low, x.iqm.high),
            f"P(B > A) = {probability_text(x.improvement)}", planning_text(x.planning)]
    benchmarks = f"{len(x.benchmarks)} benchmark{'s' if len(x.benchmarks) > 1 else ''}"
    return (f"{where('overall', x.label)} [{benchmarks} x {len(x.seeds)} seeds]: {x.verdict}. "
            + "; ".join(said) + f". {len(x.seeds)} seeds paired on every benchmark: {', '.join(x.seeds)}.")


def planning_text(planning: Planning) -> str:
    """At SMALL_N seeds or more the difference detectable at this n; below, instead of an interval, the seeds needed
    to detect --effect (rough from 2 seeds' spread; not known from one)."""
    if planning.n_seeds >= SMALL_N:
        shown = f"±{number(planning.detectable)}" if planning.detectable is not None else planning.why
        return f"detectable at this n: {shown}"
    rough = f" (rough: from {planning.n_seeds} seeds' spread)" if planning.seeds_needed is not None else ""
    return f"seeds needed to detect ±{number(planning.effect)}: {needed_text(planning)}{rough}"


def needed_text(planning: Planning) -> str:
    """The seeds needed to detect the effect, or why that is not known."""
    return str(planning.seeds_needed) if planning.seeds_needed is not None else planning.why


def _interval(low: float | None, high: float | None, digits: int = DIGITS) -> str:
    """A difference's interval after it, or that it has none."""
    return f" {interval(low, high, True, digits)}" if low is not None and high is not None else ", no interval"


def probability_text(estimate: Estimate) -> str:
    """P(B > A) to 2 decimals, with its interval where it has one."""
    value = f"{estimate.value:.2f}"
    return value + (f" [{estimate.low:.2f}, {estimate.high:.2f}]" if estimate.low is not None else "")
