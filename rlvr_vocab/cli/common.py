"""What the subcommands share: the registry at --root, finding runs by name, filters' values, formatting."""

import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import RunState
from rlvr_vocab.registry import Registry, RunView
from rlvr_vocab.run.layout import RootPaths

# A span back from now, for --since: 30m, 12h, 2d, 1w (1.5d too).
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([mhdw])")
_SPAN_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def experiments_root(cli_root: str | None) -> Path:
    """--root, else RLVR_EXPERIMENTS_ROOT, else ./experiments (as `root_origin` says)."""
    return Path(cli_root or os.environ.get("RLVR_EXPERIMENTS_ROOT") or "experiments")


def registry(args) -> Registry:
    """The registry at the root; a line on stderr when its index cannot be written (the command goes on)."""
    return Registry(experiments_root(args.root), warn=lambda line: print(line, file=sys.stderr))


def with_best_trials(runs: list[RunView], root: Path, arms: list[str | None]) -> tuple[list[RunView], list[str]]:
    """The runs, each search among the `arms` ids standing for its best trial's runs, and a line per such search
    (rlvr_vocab.launch.search_results). Optuna loads only when an arm is a search."""
    named = [a for a in arms if a]
    if not any(RootPaths(root).search(a).is_dir() for a in named):
        return runs, []
    from rlvr_vocab.launch.search_results import best_trial_arms

    return best_trial_arms(runs, root, named)


def root_origin(args) -> str:
    """How the experiments root was chosen, for a message that names it."""
    if args.root:
        return "from --root"
    if os.environ.get("RLVR_EXPERIMENTS_ROOT"):
        return "from RLVR_EXPERIMENTS_ROOT"
    return "the default: ./experiments; set --root or RLVR_EXPERIMENTS_ROOT"


def find_run(runs: list[RunView], query: str) -> RunView:
    """A run by id, by name (or exp/name), or by a unique prefix of either."""
    if ".." in query or query.startswith("/") or query.count("/") > 1:
        raise ConfigError(f"run '{query}'", "is not a run name", "names have no path separators or '..'")
    exp, _, name = query.rpartition("/")

    def matches(exact: bool) -> list[RunView]:
        found = []
        for run in runs:
            if exp and run.exp_name != exp:
                continue
            keys = (run.run_id, run.run_name)
            if any(k == name for k in keys) if exact else any(k.startswith(name) for k in keys):
                found.append(run)
        return found

    found = matches(exact=True) or matches(exact=False)
    if not found:
        raise ConfigError(f"run '{query}'", "not found", "see `rlvr-vocab status` for run names and ids")
    if len(found) > 1:
        names = ", ".join(f"{r.exp_name}/{r.run_name} ({r.run_id})" for r in found[:10])
        raise ConfigError(f"run '{query}'", f"is ambiguous: {names}", "give more of the name or exp/name")
    return found[0]


def parse_since(text: str, now: float | None = None) -> float:
    """--since as epoch seconds: an ISO date or time (local time unless it gives an offset), or a span back from now."""
    span = _SPAN.fullmatch(text.strip().lower())
    if span:
        return (time.time() if now is None else now) - float(span[1]) * _SPAN_S[span[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ConfigError(f"--since '{text}'", "is neither a date nor a span back from now",
                          "give an ISO date or time (2026-01-31, 2026-01-31T12:00) or a span (30m, 12h, 2d, 1w)"
                          ) from None


def parse_state(text: str | None) -> str | None:
    """--state as a state's name (any case); None for no filter."""
    if text is None:
        return None
    state = RunState.parse(text)
    if state is None:
        raise ConfigError(f"--state '{text}'", "is not a run state", f"one of {', '.join(s.value for s in RunState)}")
    return state.value


def fmt_duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def console():
    """A rich console; piped output gets a wide fixed width instead of 80 columns of ellipses."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)


def fmt_bytes(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"
