"""A run's overrides as typed: what a resume repeats, and where they are recorded."""

from typing import Any

from rlvr_vocab.core.keys import is_one_off, override_key
from rlvr_vocab.core.secrets import redact_override


def run_overrides(overrides: list[str]) -> list[str]:
    """The overrides that describe the run (what a resume repeats), redacted."""
    return [redact_override(o) for o in overrides if not is_one_off(override_key(o))]


def launcher_overrides(hydra_overrides: list[str]) -> list[str]:
    """A submission's launcher settings (partition, account, time...) without its one-off states."""
    return [o for o in hydra_overrides if not is_one_off(override_key(o))]


def recorded_overrides(manifest: dict[str, Any], submissions: list[dict[str, Any]]) -> list[str]:
    """A run's overrides as recorded: by its latest attempt, else (never started) by its latest submission."""
    return list(manifest.get("overrides") or (submissions[-1].get("overrides") if submissions else None) or [])
