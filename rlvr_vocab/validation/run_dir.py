"""Checks against what the run dir already holds: its identity, its checkpoints, the world size that saved them."""

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.layout import RunPaths


def check_identity(paths: RunPaths, cfg: DictConfig) -> None:
    """The run dir must belong to this experiment: a changed config is refused (with the keys that differ) unless
    force_resume=true accepts it for this attempt."""
    from rlvr_vocab.run.claims import stored_identity
    from rlvr_vocab.run.identity import Identity, mismatch_error

    stored = stored_identity(paths)
    wanted = Identity.of(cfg)
    if stored is not None and stored != wanted and not cfg.force_resume:
        raise mismatch_error(f"{cfg.exp_name}/{paths.run_dir.name}", stored, wanted)


def _recorded(paths: RunPaths) -> dict:
    from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest

    try:
        return read_manifest(paths.run_dir) or {}
    except UnreadableManifest as e:
        raise ConfigError(str(paths.manifest), f"cannot be read ({e})",
                          "restore it from a backup, or move the run dir aside and start again") from None


def check_world_size(paths: RunPaths, ws: int, checkpoint: str) -> None:
    """Optimizer state is saved per process: a checkpoint resumes only with the world size that saved it."""
    attempts = _recorded(paths).get("attempts") or []
    old_ws = attempts[-1].get("world_size") if attempts else None
    if old_ws is not None and old_ws != ws:
        raise ConfigError("world size", f"{checkpoint} was saved by {old_ws} processes, this run has {ws}",
                          "start a new run_name, or force it (rlvr-vocab resume --force / force_resume=true)")


def check_recorded_checkpoint(paths: RunPaths, max_steps: int) -> None:
    """A run whose manifest records a checkpoint must find one: else it would silently restart at step 0."""
    from rlvr_vocab.core.states import RunState

    manifest = _recorded(paths)
    recorded = manifest.get("last_checkpoint")
    completed = RunState.parse(manifest.get("status")) == RunState.COMPLETED
    finished = completed and manifest.get("last_step", 0) >= max_steps
    if not recorded or finished:
        return  # nothing to resume, or nothing left to train (checkpoints of finished runs may be cleaned up)
    path = paths.run_dir / recorded
    raise ConfigError(
        str(path), f"run.json resumes from it but {checkpoints.incompleteness(path)}, and no other complete "
        "checkpoint is left",
        "restore it, or start again from step 0 with force_resume=true (rlvr-vocab resume --force)",
    )
