"""A run's overrides as typed, and which of them belong to one submission only (never repeated by a resume)."""

from rlvr_vocab.secrets import redact_override

# Overrides that belong to one submission, never to the run: they are not recorded for later resumes.
ONE_OFF_KEYS = ("force_resume", "dry_run", "run_name", "sweep_id")
# Launcher overrides of one submission (its mode, a held or followed submission), not the run's launcher settings.
ONE_OFF_LAUNCHER = ("hydra.mode", "hydra.launcher.wait=", "+hydra.launcher.additional_parameters.hold=")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def run_overrides(overrides: list[str]) -> list[str]:
    """The overrides that describe the run (what a resume repeats), redacted."""
    return [redact_override(o) for o in overrides if override_key(o) not in ONE_OFF_KEYS]


def launcher_overrides(hydra_overrides: list[str]) -> list[str]:
    """A submission's launcher settings (partition, account, time...) without its one-off states."""
    return [o for o in hydra_overrides if not o.startswith(ONE_OFF_LAUNCHER)]
