"""Which runs a command is about: `status`'s filters (run in the index), a sweep's or an experiment's runs."""

from typing import NamedTuple

from rlvr_vocab.core.errors import ConfigError


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


def select(runs: list, exp: str | None = None, sweep: str | None = None, state: str | None = None) -> list:
    """Runs of this experiment, sweep and state; a one-line error for a sweep without runs."""
    if sweep and not any(r.sweep_id == sweep for r in runs):
        raise ConfigError(f"sweep '{sweep}'", "has no runs", "see `rlvr-vocab status` for sweep ids")
    return [
        r for r in runs
        if (exp is None or r.exp_name == exp)
        and (sweep is None or r.sweep_id == sweep)
        and (state is None or r.state == state.upper())
    ]
