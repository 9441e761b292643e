"""Amounts as financial answers write them (FinQA): "$1,234.5", "-3.2%", "12.5 percent"; read for the
`finqa_numerical_match` reward (rlvr_vocab.model.rewards).

Standard library only: rlvr_vocab.model.rewards imports it, and it must stay cheap to import.
"""

import re
from typing import NamedTuple

# A sign (not the hyphen of a word or a range such as 2019-2020), "$", thousands separators, and "%" or "percent".
_AMOUNT_RE = re.compile(r"((?<![\w-])-)?\$?\s?(\d[\d,]*(?:\.\d+)?|\.\d+)\s?(%|percent\b)?", re.IGNORECASE)


class Amount(NamedTuple):
    value: float
    # Written as a percentage: "12.5%" has the value 0.125.
    percent: bool


def last_amount(text: str) -> Amount | None:
    """The last amount in `text`; None without a number."""
    matches = list(_AMOUNT_RE.finditer(text))
    if not matches:
        return None
    sign, digits, percent = matches[-1].groups()
    value = float(digits.replace(",", "")) * (-1 if sign else 1)
    return Amount(value / 100, True) if percent else Amount(value, False)


def amounts_match(predicted: Amount, gold: Amount, rel_tolerance: float) -> bool:
    """Within `rel_tolerance` of the gold, relative to it (a gold of 0 exactly). A gold percentage also accepts its
    points without the sign: 12.5 for a gold 12.5%."""
    candidates = [predicted.value]
    if gold.percent and not predicted.percent:
        candidates.append(predicted.value / 100)
    return any(abs(c - gold.value) <= rel_tolerance * abs(gold.value) for c in candidates)
