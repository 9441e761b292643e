"""Numbers as shown (enough decimals for means and difference to agree), intervals and the unpaired seeds."""

from decimal import Decimal
from typing import Any

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
    return agreeing_digits(a["mean"], b["mean"], diff["mean_diff"])


def agreeing_digits(a: float, b: float, difference: float) -> int:
    """The fewest decimals from DIGITS (up to MAX_DIGITS) at which `b` shown minus `a` shown is `difference` shown."""
    for digits in range(DIGITS, MAX_DIGITS + 1):
        shown = Decimal(number(b, digits=digits)) - Decimal(number(a, digits=digits))
        if shown == Decimal(number(difference, digits=digits)):
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
