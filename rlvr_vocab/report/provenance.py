"""What the arms ran: the config keys that differ, the commands that submit them again, the code (git), and each
run's attempts, requeues and W&B page."""

import itertools
import shlex
from typing import Any

from rlvr_vocab.core.keys import is_one_off, override_key
from rlvr_vocab.report.arms import Arm, short_key
from rlvr_vocab.report.measures import run_config
from rlvr_vocab.report.plotting import sort_key
from rlvr_vocab.run.overrides import grid_of, launcher_overrides, recorded_overrides

# Config keys that differ between any two runs without being part of the experiment.
NOT_CONFIG = {"run_name", "sweep_id", "experiments_root"}


def config_difference(a: Arm, b: Arm | None = None) -> list[tuple[str, str, str | None]]:
    """(key, A's values, B's values) for every config key whose values differ between the arms; with one arm, (key,
    values, None) for the keys that vary between its runs (its swept keys). Read from the runs' config.yaml."""
    a_values = _config_values(a)
    if b is None:
        return [(k, ", ".join(v), None) for k, v in a_values.items() if len(v) > 1 and k not in NOT_CONFIG]
    b_values = _config_values(b)
    keys = sorted((a_values.keys() | b_values.keys()) - NOT_CONFIG)
    return [(k, ", ".join(a_values.get(k, ["(absent)"])), ", ".join(b_values.get(k, ["(absent)"]))) for k in keys
            if a_values.get(k) != b_values.get(k)]


def _config_values(arm: Arm) -> dict[str, list[str]]:
    """Key -> its distinct values in the arm's runs, in order."""
    configs = [c for c in (run_config(r) for r in arm.runs) if c]
    keys = {k for c in configs for k in c}
    return {k: sorted({_text(c.get(k)) for c in configs}, key=sort_key) for k in sorted(keys)}


def _text(value: Any) -> str:
    return "null" if value is None else str(value) if not isinstance(value, bool) else str(value).lower()


def reproduce_commands(arm: Arm) -> list[str]:
    """The `python -m rlvr_vocab.train --multirun ...` that submits the arm's runs again: one grid command when the
    runs form a grid of their overrides, else one command per run."""
    raws = [_raw_overrides(r) for r in arm.runs]
    hydra = next((h for h in (_hydra_overrides(r) for r in arm.runs) if h), ["hydra/launcher=slurm"])
    prefix = ["python", "-m", "rlvr_vocab.train", "--multirun", *hydra]
    grid = grid_of(raws)
    commands = [grid] if grid is not None else [list(dict.fromkeys(raw)) for raw in raws]
    return [shlex.join(prefix + c) for c in commands]


def _raw_overrides(view) -> list[str]:
    """The run's overrides as typed, without those naming the run or the submission."""
    return [o for o in recorded_overrides(view.m, view.submissions) if "=" in o and not is_one_off(override_key(o))]


def _hydra_overrides(view) -> list[str]:
    submission = view.submissions[-1] if view.submissions else {}
    return launcher_overrides(submission.get("hydra_overrides") or [])


def git_state(arm: Arm) -> str:
    """The code the arm ran: its runs' git commits (and whether the tree had uncommitted changes)."""
    commits = {(r.m.get("git_commit"), r.m.get("git_dirty")) for r in arm.runs if r.m.get("git_commit")}
    return "; ".join(f"{c[:12]}{' with uncommitted changes' if dirty else ''}" for c, dirty in sorted(commits)) \
        or "not recorded"


def run_rows(arm: Arm) -> list[dict[str, Any]]:
    """Each run as the report lists it: state, steps, attempts with their end states, requeues, W&B."""
    rows = []
    for i, view in enumerate(arm.runs):
        attempts = view.settled_attempts()
        rows.append({
            "arm": arm.name, "run": view.run_name, "seed": arm.seeds[i],
            "setting": ", ".join(f"{short_key(k)}={arm.overrides[i].get(k)}" for k in arm.setting_keys) or "-",
            "state": view.state.value, "step": f"{view.m.get('last_step') or 0}/{view.m.get('max_steps') or '?'}",
            "attempts": " -> ".join(a.get("end_state") or "running" for a in attempts) or "-",
            "requeues": _requeues(attempts), "wandb_url": view.m.get("wandb_url"), "note": view.note,
        })
    return sorted(rows, key=lambda r: (sort_key(r["setting"]), sort_key(r["seed"]), r["run"]))


def _requeues(attempts: list[dict]) -> int:
    """Attempts that continued the same SLURM job (a requeue), not a new submission (a resume)."""
    jobs = [a.get("slurm_job_id") for a in attempts]
    return sum(1 for before, after in itertools.pairwise(jobs) if after and after == before)


def code_versions(arm: Arm) -> dict[str, list[str]]:
    """The code versions the arm's runs ran (a snapshot, else a git commit), each with the runs that ran it; a run
    whose attempts ran different code is under each version it ran."""
    versions: dict[str, list[str]] = {}
    for run in arm.runs:
        for attempt in run.attempts:
            code = attempt.get("code") or {}
            version = code.get("snapshot") or (f"git {code['git_commit'][:12]}" if code.get("git_commit") else None)
            if version is not None and run.run_name not in versions.setdefault(version, []):
                versions[version].append(run.run_name)
    return versions


def mixed_code_warning(arm: Arm) -> str | None:
    """A warning when the arm did not run one code version: its numbers may not measure one method."""
    versions = code_versions(arm)
    if len(versions) < 2:
        return None
    said = "; ".join(f"{v} ({len(runs)} run{'s' if len(runs) != 1 else ''}: {', '.join(runs[:3])}"
                     f"{', ...' if len(runs) > 3 else ''})" for v, runs in versions.items())
    return (f"arm {arm.name} ({arm.sweep}) ran {len(versions)} code versions: {said}; "
            "see `rlvr-vocab diff RUN1 RUN2`")
