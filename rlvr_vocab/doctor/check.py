"""The result of one doctor check."""

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    found: str
    fix: str = ""
