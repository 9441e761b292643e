"""Standalone held-out evaluation of a run's checkpoint or final model (what `rlvr-vocab eval RUN` runs).

`python -m rlvr_vocab.eval.job RUN_DIR [--checkpoint N|final] [--dataset X] [--k K] [--launcher PROFILE]`
checks everything first (run dir, checkpoint, data set), then evaluates here or submits itself as a SLURM
job through a launcher profile of conf/hydra/launcher/. Results go to `RUN_DIR/eval/<label>.json` and the
manifest's `eval.standalone`. torch and transformers are imported only by the evaluation itself.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import DictConfig, OmegaConf

from rlvr_vocab import CONF_DIR
from rlvr_vocab.errors import ConfigError


def model_dir(run_dir: Path, checkpoint: str | None) -> tuple[Path, str]:
    """The weights to evaluate and their label: `final`, `checkpoint-N`; by default final, else the newest
    complete checkpoint."""
    from rlvr_vocab.run import checkpoints
    from rlvr_vocab.run.layout import RunPaths

    paths = RunPaths(run_dir)
    final_missing = checkpoints.incompleteness(paths.final)
    if checkpoint in (None, "final") and final_missing is None:
        return paths.final, "final"
    if checkpoint == "final":
        raise ConfigError("--checkpoint final", f"{paths.final} is not complete ({final_missing}: the run has not "
                          "finished)", "give a checkpoint step (see `rlvr-vocab show RUN`)")
    kept = checkpoints.list_checkpoints(paths.checkpoints)
    if checkpoint is None:
        # Read-only: unlike a resume, an evaluation sets nothing aside.
        complete = [p for p in kept if checkpoints.incompleteness(p) is None]
        if not complete:
            raise ConfigError(str(run_dir), "has neither final/ nor a complete checkpoint", "train it first")
        return complete[-1], complete[-1].name
    if not checkpoint.isdigit():
        raise ConfigError("--checkpoint", f"'{checkpoint}' is neither a step nor 'final'", "e.g. --checkpoint 40")
    path = paths.checkpoint(int(checkpoint))
    steps = [checkpoints.checkpoint_step(p) for p in kept]
    if not path.is_dir():
        raise ConfigError("--checkpoint", f"{path} does not exist", f"kept checkpoints: {steps or 'none'}, or final")
    why = checkpoints.incompleteness(path)
    if why:
        raise ConfigError("--checkpoint", f"{path.name} is incomplete ({why})", f"use another of {steps}")
    return path, path.name


def eval_config(run_dir: Path, dataset: str | None, k: int | None, max_samples: int | None) -> tuple[DictConfig, str]:
    """The run's own resolved config, with another data set (a conf/dataset/ name or a local file) if asked."""
    from rlvr_vocab.config import DatasetConfig, RootConfig
    from rlvr_vocab.run.layout import RunPaths
    from rlvr_vocab.validate import check_dataset, check_eval

    snapshot = RunPaths(run_dir).config
    if not snapshot.is_file():
        raise ConfigError(str(snapshot), "does not exist", "is this a run dir? see `rlvr-vocab status`")
    cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), OmegaConf.load(snapshot))
    name = "own"
    if dataset is not None:
        group = CONF_DIR / "dataset" / f"{dataset}.yaml"
        if group.is_file():
            cfg.dataset = OmegaConf.merge(OmegaConf.structured(DatasetConfig), OmegaConf.load(group))
            name = dataset
        elif Path(dataset).exists():
            cfg.dataset.path, cfg.dataset.embedded, name = str(Path(dataset).resolve()), None, Path(dataset).stem
        else:
            known = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
            raise ConfigError("--dataset", f"'{dataset}' is neither a data set config nor a file",
                              f"use one of {', '.join(known)} or a local .jsonl/.parquet path")
    if k is not None:
        cfg.eval.k = k
    if max_samples is not None:
        cfg.eval.max_samples = max_samples
    check_eval(cfg.eval)
    check_dataset(cfg.dataset)
    return cfg, name


def evaluate_run(run_dir: str, checkpoint: str | None = None, dataset: str | None = None, k: int | None = None,
                 max_samples: int | None = None) -> dict[str, Any]:
    """Evaluate and record; returns the record written to eval/<label>.json."""
    from rlvr_vocab.data import load_splits, to_prompts
    from rlvr_vocab.eval.heldout import held_out_eval, summary
    from rlvr_vocab.modeling import load_model_and_tokenizer, match_threads_to_allocation
    from rlvr_vocab.reasoning_vocab import load_reasoning_vocab
    from rlvr_vocab.validate import choose_precision

    run = Path(run_dir)
    weights, label = model_dir(run, checkpoint)
    cfg, data_name = eval_config(run, dataset, k, max_samples)
    match_threads_to_allocation()
    model, tokenizer = load_model_and_tokenizer(cfg, str(weights), choose_precision(cfg.precision))
    rv = load_reasoning_vocab(model, tokenizer)
    _, test = load_splits(cfg.dataset, cfg.seed)
    result = held_out_eval(model, tokenizer, to_prompts(test, tokenizer, cfg.dataset), cfg, rv)
    record = {"weights": label, "dataset": data_name, **result}
    logger.info(f"{run.name} {label} on {data_name}: {summary(result)}")
    _record(run, f"{label}-{data_name}-k{cfg.eval.k}", record)
    return record


def _record(run: Path, key: str, record: dict[str, Any]) -> None:
    """eval/<key>.json, and the run's manifest when no training job holds the run dir (briefly taking its lease)."""
    from rlvr_vocab.run.fsio import atomic_write_text
    from rlvr_vocab.run.layout import RunPaths
    from rlvr_vocab.run.lease import RunLease
    from rlvr_vocab.run.manifest import Manifest, now_iso

    paths = RunPaths(run)
    record = {**record, "time": now_iso()}
    paths.eval.mkdir(exist_ok=True)
    atomic_write_text(paths.eval / f"{key}.json", json.dumps(record, indent=1) + "\n")
    lease = RunLease(paths)
    try:
        lease.acquire()
    except ConfigError:
        # The training job owns run.json while it runs and would overwrite an addition from here.
        logger.warning(f"{run.name} is training: result kept in eval/{key}.json only")
        return
    try:
        manifest = Manifest.load(paths)
        if manifest is not None:
            manifest.guard = lease.check
            manifest.data["eval"].setdefault("standalone", {})[key] = record
            manifest.save()
    finally:
        lease.release()


def submit(launcher: str, run_dir: Path, **kwargs: Any):
    """Submit `evaluate_run` as one job with the resources of conf/hydra/launcher/<launcher>.yaml."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from rlvr_vocab.config import register_configs
    from rlvr_vocab.launch import register_hydra_plugins

    register_configs()
    register_hydra_plugins()
    known = sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))
    if launcher not in known:
        raise ConfigError("--launcher", f"unknown launcher profile '{launcher}'", f"use one of {', '.join(known)}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}", "sweep_id=eval"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    params["name"] = f"eval-{run_dir.name}"
    params["submitit_folder"] = str(run_dir / "eval" / ".submitit" / "%j")
    target = instantiate({"_target_": cfg.hydra.launcher._target_, **params})
    executor = target._executor()
    return executor.submit(evaluate_run, str(run_dir), **kwargs)


def main(argv: list[str] | None = None) -> int:
    from rlvr_vocab.logs import setup_logging
    from rlvr_vocab.user_errors import exit_on_user_error

    p = argparse.ArgumentParser(prog="python -m rlvr_vocab.eval.job", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--checkpoint", help="a checkpoint step or 'final' (default: final, else the newest checkpoint)")
    p.add_argument("--dataset", help="a conf/dataset/ name or a local file (default: the run's own held-out split)")
    p.add_argument("--k", type=int, help="pass@k from k samples besides greedy accuracy (default: the run's eval.k)")
    p.add_argument("--max-samples", type=int, help="evaluate at most this many held-out rows")
    p.add_argument("--launcher", help="submit as a SLURM job with this conf/hydra/launcher/ profile")
    p.add_argument("--wait", action="store_true", help="with --launcher: wait for the job and print its result")
    args = p.parse_args(argv)
    setup_logging()
    with exit_on_user_error():
        run_dir = args.run_dir.resolve()
        kwargs = {"checkpoint": args.checkpoint, "dataset": args.dataset, "k": args.k, "max_samples": args.max_samples}
        # Everything a job could trip over is checked here, before anything is queued.
        model_dir(run_dir, args.checkpoint)
        eval_config(run_dir, args.dataset, args.k, args.max_samples)
        if args.launcher in (None, "none"):
            print(json.dumps(evaluate_run(str(run_dir), **kwargs)))  # noqa: T201
            return 0
        job = submit(args.launcher, run_dir, **kwargs)
        print(f"submitted eval of {run_dir.name} as job {job.job_id}; results: {run_dir / 'eval'}")  # noqa: T201
        if args.wait:
            print(json.dumps(job.result()))  # noqa: T201
    return 0


if __name__ == "__main__":
    from rlvr_vocab.eval.job import main as importable_main  # submitit pickles functions of the importable module

    sys.exit(importable_main())
