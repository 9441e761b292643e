"""A run's overrides as typed: what a resume repeats, and where they are recorded."""

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.keys import is_one_off, names_experiment, override_key
from rlvr_vocab.core.secrets import is_secret_key, redact_override


def run_overrides(overrides: list[str]) -> list[str]:
    """The overrides that describe the run (what a resume repeats), redacted."""
    return [redact_override(o) for o in overrides if not is_one_off(override_key(o))]


def launcher_overrides(hydra_overrides: list[str]) -> list[str]:
    """A submission's launcher settings (partition, account, time...) without its one-off states."""
    return [o for o in hydra_overrides if not is_one_off(override_key(o))]


def recorded_overrides(manifest: dict[str, Any], submissions: list[dict[str, Any]]) -> list[str]:
    """A run's overrides as recorded: by its latest attempt, else (never started) by its latest submission."""
    return list(manifest.get("overrides") or (submissions[-1].get("overrides") if submissions else None) or [])


def grid_of(raws: list[list[str]]) -> list[str] | None:
    """Runs' overrides as one Hydra grid (`key=v1,v2`, values in numeric order), or None when the runs are not
    exactly such a grid. Keys a `+sweep=<name>` file sweeps are left to the file (given again, Hydra would sweep them
    twice)."""
    typed: dict[str, str] = {}  # key -> the key as typed (`+sweep`, `seed`)
    values: dict[str, list[str]] = {}
    for raw in raws:
        for o in raw:
            typed_key, value = o.split("=", 1)
            key = override_key(o)
            typed.setdefault(key, typed_key)
            if value not in values.setdefault(key, []):
                values[key].append(value)
    points = {frozenset(raw) for raw in raws}
    every_key = all({override_key(o) for o in raw} == values.keys() for raw in raws)
    if not every_key or math.prod(len(v) for v in values.values()) != len(points):
        return None
    from_file = _sweep_file_keys(values.get("sweep", []))
    return [f"{typed[k]}={','.join(sorted(v, key=_numeric_first))}" for k, v in values.items() if k not in from_file]


def _numeric_first(value: str) -> tuple:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _sweep_file_keys(names: list[str]) -> set[str]:
    if len(names) != 1:
        return set()
    import yaml

    try:
        data = yaml.safe_load((CONF_DIR / "sweep" / f"{names[0]}.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    params = ((data.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return set(params)


# Short names for common swept keys in run names (lr=3e-06,beta=0.04,seed=1).
ALIASES = {"learning_rate": "lr", "per_device_train_batch_size": "bs", "num_generations": "gens", "size": "rv_size"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]")


def run_name_for(job: Sequence[str], keys: Sequence[str]) -> str:
    """`lr=3e-06,seed=1`: the values of `keys` as `job` sets them (a key set twice takes its last value, as Hydra
    does), in the order the keys first appear."""
    values: dict[str, str] = {}
    for override in job:
        key = override_key(override)
        if key in keys:
            values[key] = override.split("=", 1)[1] if "=" in override else ""
    parts = []
    for key, raw in values.items():
        short = key.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        value = _UNSAFE.sub("_", raw)
        while ".." in value:  # no parent-directory hops in a directory name
            value = value.replace("..", "_")
        parts.append(f"{ALIASES.get(short, short)}={value}")
    name = ",".join(parts).strip("._-") or "run"
    if len(name) > 100:  # keep it a valid file and W&B name; the hash keeps it unique
        name = f"{name[:90]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def name_of_overrides(overrides: Sequence[str]) -> str:
    """A run named by what its command line sets that names an experiment (not `experiment=`, which is its folder,
    and never a secret's value): the same command finds the same run."""
    keys = [override_key(o) for o in overrides if names_experiment(override_key(o)) and override_key(o) != "experiment"
            and not is_secret_key(override_key(o))]
    return run_name_for(overrides, keys)
