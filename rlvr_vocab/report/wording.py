"""A comparison in words: numbers as shown (enough decimals for means and difference to agree), the unpaired seeds,
and the answer, one sentence per benchmark: what `rlvr-vocab report` puts first and `compare --vs` prints under its
table."""

from decimal import Decimal
from typing import Any

from rlvr_vocab.report.arms import Arm
from rlvr_vocab.report.measures import FINAL, HELD_OUT, metric_title

# Decimals shown for a statistic; a comparison row may need more for its means to agree with its difference.
DIGITS, MAX_DIGITS = 3, 6


def number(value: float | None, signed: bool = False, digits: int = DIGITS) -> str:
    """`value` to `digits` decimals ("-" for None); a value that rounds to zero shows no sign of its own (+0.000)."""
    if value is None:
        return "-"
    text = f"{value:+.{digits}f}"
    if float(text) == 0:
        text = "+" + text[1:]
    return text if signed else text.removeprefix("+")


def decimals(row: dict[str, Any]) -> int:
    """Decimals for a comparison row's numbers: DIGITS, or more where the arms' means rounded to DIGITS would not
    differ by the difference rounded to DIGITS (0.587 and 0.588 beside +0.000). Only where the difference is over
    the same runs as the means; with unpaired seeds the means and the paired difference need not agree."""
    diff, a, b = row["diff"], row["a"], row["b"]
    if diff is None or a is None or b is None or diff["a_only"] or diff["b_only"] or not a["n"] == b["n"] == diff["n"]:
        return DIGITS
    for digits in range(DIGITS, MAX_DIGITS + 1):
        shown = Decimal(number(b["mean"], digits=digits)) - Decimal(number(a["mean"], digits=digits))
        if shown == Decimal(number(diff["mean_diff"], digits=digits)):
            return digits
    return MAX_DIGITS


def mean_std(s: dict[str, Any], digits: int = DIGITS) -> str:
    """The mean and std as "0.502 ± 0.017" (the mean alone where there is no std)."""
    return number(s["mean"], digits=digits) + (f" ± {number(s['std'], digits=digits)}" if s["std"] is not None
                                               else "")


def interval(low: float, high: float, signed: bool = False, digits: int = DIGITS) -> str:
    return f"[{number(low, signed, digits)}, {number(high, signed, digits)}]"


def unpaired_text(diff: dict[str, Any], a: str, b: str) -> str:
    """The seeds only one arm has, as "only A: 3; only B: 5" ("-" for none)."""
    said = [f"only {a}: {', '.join(diff['a_only'])}"] * bool(diff["a_only"]) + \
           [f"only {b}: {', '.join(diff['b_only'])}"] * bool(diff["b_only"])
    return "; ".join(said) or "-"


def answer_lines(rows: list[dict[str, Any]], a: Arm, b: Arm) -> list[str]:
    """The answer in plain words, one sentence per benchmark at the final model and for held-out accuracy."""
    lines = [answer_sentence(r, a, b) for r in rows if r["metric"].endswith(FINAL) or r["metric"] == HELD_OUT]
    return lines or ["No benchmark or held-out results in either arm yet."]


def answer_sentence(row: dict[str, Any], a: Arm, b: Arm) -> str:
    where = f"{metric_title(row['metric'])}" + ("" if row["label"] == "all runs" else f", {row['label']}")
    diff = row["diff"]
    if diff is None:
        return f"{where}: no seed has results in both arms; nothing to compare."
    said = {f"{b.name} better": f"B ({b.sweep}) is better", f"{a.name} better": f"A ({a.sweep}) is better",
            "interval includes 0": "no difference shown (the interval includes 0)"}[row["verdict"]]
    caveat = f" Caveat: {row['note']}." if row["note"] else ""
    d = decimals(row)
    means = f"A {number(row['a']['mean'], digits=d)}, B {number(row['b']['mean'], digits=d)}; " \
        if row["a"] is not None and row["b"] is not None else ""
    return (f"{where}: {said}. {means}B - A = {number(diff['mean_diff'], True, d)} (95% CI "
            f"{number(diff['ci_low'], True, d)} to {number(diff['ci_high'], True, d)}, {diff['n']} paired seeds: "
            f"{', '.join(diff['seeds'])}).{caveat}")
