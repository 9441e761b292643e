"""Standalone held-out evaluation of a run's checkpoint or final model (what `rlvr-vocab eval RUN` runs).

`python -m rlvr_vocab.job.evaluate RUN_DIR [--checkpoint N|final] [--dataset X] [--k K] [--launcher PROFILE]`
checks everything first (run dir, checkpoint, data set), then evaluates here or submits itself as a SLURM
job through a launcher profile of conf/hydra/launcher/. Results go to `RUN_DIR/eval/<label>.json` and the
manifest's `eval.standalone`. torch and transformers are imported only by the evaluation itself.
"""

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import DictConfig, OmegaConf

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.job.options import add_options


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
    from rlvr_vocab.config.schema import DatasetConfig, RootConfig
    from rlvr_vocab.run.layout import RunPaths
    from rlvr_vocab.validation.sections import check_dataset, check_eval

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
    check_dataset(cfg.dataset, held_out_only=dataset is not None)
    return cfg, name


def evaluate_run(run_dir: str, checkpoint: str | None = None, dataset: str | None = None, k: int | None = None,
                 max_samples: int | None = None) -> dict[str, Any]:
    """Evaluate and record; returns the record written to eval/<label>.json."""
    from rlvr_vocab.eval.heldout import held_out_eval, summary
    from rlvr_vocab.model.data import load_held_out, load_splits, to_prompts
    from rlvr_vocab.model.modeling import load_model_and_tokenizer, match_threads_to_allocation
    from rlvr_vocab.model.precision import choose_precision
    from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab

    run = Path(run_dir)
    weights, label = model_dir(run, checkpoint)
    cfg, data_name = eval_config(run, dataset, k, max_samples)
    match_threads_to_allocation()
    model, tokenizer = load_model_and_tokenizer(cfg, str(weights), choose_precision(cfg.precision))
    rv = load_reasoning_vocab(model, tokenizer)
    # The run's own held-out rows (carved as training carved them), or another data set's held-out split whole.
    test = load_splits(cfg.dataset, cfg.seed)[1] if dataset is None else load_held_out(cfg.dataset)
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


def submit_job(launcher: str, run_dir: Path, fn, *args: Any, **kwargs: Any):
    """Submit `fn(*args, **kwargs)` as one job with the resources of conf/hydra/launcher/<launcher>.yaml: its
    values type-checked and Slurm asked (`sbatch --test-only`) first, like a training submission. From inside a
    training job, the job's own Slurm and torch.distributed environment is not handed on."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from rlvr_vocab.config.schema import register_configs
    from rlvr_vocab.launch import register_hydra_plugins
    from rlvr_vocab.run.layout import RunPaths
    from rlvr_vocab.slurm import client as slurm_client
    from rlvr_vocab.validation.sections import check_launcher

    register_configs()
    register_hydra_plugins()
    check_launcher("--launcher", launcher)
    overrides = [f"hydra/launcher={launcher}", "sweep_id=eval"]
    if GlobalHydra.instance().is_initialized():  # inside a training job: Hydra is set up with these configs
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    params.update(name=f"eval-{run_dir.name}", submitit_folder=str(run_dir / "eval" / ".submitit" / "%j"),
                  nodes=1, tasks_per_node=1)
    target = instantiate({"_target_": cfg.hydra.launcher._target_, **params})
    with slurm_client.outside_job():
        return target.submit_one(RunPaths(run_dir).experiments_root, fn, *args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    from rlvr_vocab.core.logs import setup_logging
    from rlvr_vocab.validation.user_errors import exit_on_user_error

    p = argparse.ArgumentParser(prog="python -m rlvr_vocab.job.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    add_options(p)
    args = p.parse_args(argv)
    args.checkpoints, args.backend = args.checkpoints or "last", args.backend or "transformers"
    args.benchmark_path = args.benchmark_path or []
    setup_logging()
    with exit_on_user_error():
        run_dir = args.run_dir.resolve()
        if args.benchmarks:
            fn, fn_args = _benchmark_job(run_dir, args)
        else:
            kwargs = {"checkpoint": args.checkpoint, "dataset": args.dataset, "k": args.k,
                      "max_samples": args.max_samples}
            # Everything a job could trip over is checked here, before anything is queued.
            model_dir(run_dir, args.checkpoint)
            eval_config(run_dir, args.dataset, args.k, args.max_samples)
            fn, fn_args = functools.partial(evaluate_run, **kwargs), (str(run_dir),)
        if args.launcher in (None, "none"):
            print(json.dumps(fn(*fn_args)))  # noqa: T201
            return 0
        job = submit_job(args.launcher, run_dir, fn, *fn_args)
        print(f"submitted eval of {run_dir.name} as job {job.job_id}; results: {run_dir / 'eval'}")  # noqa: T201
        if args.wait:
            print(json.dumps(job.result()))  # noqa: T201
    return 0


def _benchmark_job(run_dir: Path, args) -> tuple:
    """`evaluate_benchmarks` and its arguments, everything it could trip over checked first."""
    from rlvr_vocab.eval.benchmark_eval import benchmark_configs, check_backend, evaluate_benchmarks, select_weights
    from rlvr_vocab.run.layout import RunPaths

    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    local = {}
    for item in args.benchmark_path:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).expanduser().exists():
            raise ConfigError("--benchmark-path", f"'{item}' is not NAME=PATH of an existing file or directory",
                              "e.g. --benchmark-path math500=/data/math500")
        local[name] = str(Path(path).expanduser().resolve())
    check_backend(args.backend)
    benchmark_configs(names, local, args.max_samples)
    select_weights(RunPaths(run_dir), args.checkpoints)
    seed = int(OmegaConf.load(RunPaths(run_dir).config).get("seed", 0)) if RunPaths(run_dir).config.exists() else 0
    return evaluate_benchmarks, (str(run_dir), args.checkpoints, names, args.backend, local, args.max_samples, seed)


if __name__ == "__main__":
    from rlvr_vocab.job.evaluate import main as importable_main  # submitit pickles functions of the importable module

    sys.exit(importable_main())
