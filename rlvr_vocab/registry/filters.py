"""Which runs `status` lists (filters that run in the index) and what it shows of them."""

from typing import NamedTuple


class RunFilter(NamedTuple):
    """Which runs `status` lists; None matches every run."""

    exp: str | None = None
    sweep: str | None = None
    state: str | None = None  # a RunState's value
    since: float | None = None  # created at or after, epoch seconds

    def sql(self, with_state: bool = False) -> tuple[str, list]:
        """The condition on the index's `runs` and its parameters; the state is known there for settled runs only
        (the others' is SLURM's to say), so `with_state` lets those through."""
        terms = [("exp_name = ?", self.exp), ("sweep_id = ?", self.sweep), ("created_ts >= ?", self.since),
                 ("(state is null or state = ?)", self.state if with_state else None)]
        used = [(term, value) for term, value in terms if value is not None]
        return " and ".join(term for term, _ in used) or "1", [value for _, value in used]


class StatusRows(NamedTuple):
    """What `status` shows: rows as JSON text, and every matched run's state -> how many."""

    rows: list[str]
    counts: dict[str, int]
