"""The runs a command is about: those of an experiment, a sweep and a state."""

from rlvr_vocab.errors import ConfigError


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
