"""Weights & Biases: one W&B run per framework run, however often the job is requeued or resumed."""

from loguru import logger
from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.core.secrets import redact_obj
from rlvr_vocab.job.lifecycle import is_main_process
from rlvr_vocab.run.manifest import Manifest


def start_wandb(cfg: DictConfig, manifest: Manifest):
    """Init (or resume) the run's W&B run before the trainer's callback would start a new one.

    The id is fixed in the manifest on the first attempt and reused with resume="allow".
    """
    if cfg.logging.backend != "wandb" or not is_main_process():
        return None
    import wandb

    # The framework's run id doubles as the W&B id: one W&B run per run dir, across requeues.
    run_id = manifest.data.get("wandb_id") or cfg.logging.run_id or manifest.data["run_id"]
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    run = wandb.init(
        id=run_id,
        resume="allow",
        project=cfg.logging.project,
        entity=cfg.logging.entity,
        group=cfg.sweep_id or cfg.exp_name,
        name=cfg.run_name,
        job_type=cfg.exp_name,
        tags=list(cfg.logging.tags),
        mode=cfg.logging.mode,
        dir=str(manifest.run_dir),
        # W&B keeps its own copy of the config (wandb/*/files/config.yaml): secrets out at every depth.
        config=redact_obj(config),
    )
    url = run.url if cfg.logging.mode == "online" else None
    manifest.update(wandb_id=run.id, wandb_url=url, wandb_project=cfg.logging.project)
    logger.info(f"W&B run {run.id} ({cfg.logging.mode}){f': {url}' if url else ''}")
    return run


def finish_wandb(run, exit_code: int) -> None:
    if run is not None:
        run.finish(exit_code=exit_code)
