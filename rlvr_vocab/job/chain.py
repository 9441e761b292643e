"""Evaluation jobs chained to training: the initial weights, milestone checkpoints and the final model, each
evaluated as its own job.

The training job (rank 0) submits an evaluation job for the initial weights once they are on disk (once per run, not
again on a resumed attempt), when a checkpoint completes at every `eval.every_checkpoints`-th checkpoint, and once
`final/` is complete, with the resources of `eval.launcher`; training only waits for the submission. A milestone
checkpoint carries a pending mark until its evaluation job ends, and rotation leaves it alone meanwhile. A
submission that fails is logged and recorded, never a training failure.
"""

import json
from pathlib import Path

from loguru import logger
from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.eval import results
from rlvr_vocab.eval.benchmark_eval import PENDING_MARK, benchmark_configs
from rlvr_vocab.eval.benchmarks import settings_key
from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import pid_alive
from rlvr_vocab.run.manifest import Manifest, now_iso
from rlvr_vocab.slurm import client as slurm_client


class EvalChain:
    def __init__(self, cfg: DictConfig, paths: RunPaths, manifest: Manifest, save_steps: int):
        self.ev, self.seed = cfg.eval, cfg.seed
        self.paths, self.manifest, self.save_steps = paths, manifest, save_steps

    @property
    def enabled(self) -> bool:
        return bool(self.ev.chain and self.ev.benchmarks)

    def on_start(self) -> None:
        """The initial weights, unless an earlier attempt submitted their evaluation or they are evaluated already."""
        if self.enabled and not self._initial_submitted_or_done():
            self._submit(results.INITIAL, None)

    def _initial_submitted_or_done(self) -> bool:
        if any(j["weights"] == results.INITIAL and j.get("job_id") for j in self.manifest.data.get("eval_jobs", [])):
            return True
        local = OmegaConf.to_container(self.ev.benchmark_paths, resolve=True)
        configs = benchmark_configs(list(self.ev.benchmarks), local, self.ev.benchmark_max_samples)
        return all(results.has_result(self.paths, c.name, results.INITIAL, settings_key(c)) for c in configs)

    def on_checkpoint(self, path: Path, step: int, max_steps: int) -> None:
        """A milestone is evaluated; the last step's checkpoint is not: final/ (the same weights) will be."""
        if self.enabled and step < max_steps and (step // self.save_steps) % self.ev.every_checkpoints == 0:
            self._submit(str(step), path)

    def on_final(self) -> None:
        if self.enabled:
            self._submit("final", None)

    def _submit(self, which: str, checkpoint: Path | None) -> None:
        from rlvr_vocab.eval.benchmark_eval import evaluate_benchmarks
        from rlvr_vocab.job.evaluate import submit_job

        benchmarks = list(self.ev.benchmarks)
        entry = {"weights": checkpoint.name if checkpoint is not None else which, "benchmarks": benchmarks,
                 "launcher": self.ev.launcher, "submitted": now_iso()}
        try:
            job = submit_job(self.ev.launcher, self.paths.run_dir, evaluate_benchmarks, str(self.paths.run_dir),
                             which, benchmarks, self.ev.backend,
                             OmegaConf.to_container(self.ev.benchmark_paths, resolve=True),
                             self.ev.benchmark_max_samples, self.seed)
        except Exception as e:  # noqa: BLE001 - evaluation must never fail training
            entry["error"] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            logger.warning(f"evaluation of {entry['weights']} not submitted: {entry['error']}")
        else:
            entry["job_id"] = job.job_id
            logger.info(f"evaluation of {entry['weights']} on {', '.join(benchmarks)} submitted as job {job.job_id}")
            if checkpoint is not None:
                atomic_write_text(checkpoint / PENDING_MARK, json.dumps({"job_id": job.job_id, **entry}))
        self.manifest.data.setdefault("eval_jobs", []).append(entry)
        self.manifest.save()


def needed_by_evaluation(checkpoint: Path) -> bool:
    """Whether an evaluation job still needs this checkpoint (its job is queued or running); a mark whose job has
    ended is removed (its results are written, or it failed and `rlvr-vocab eval` can redo it from later weights)."""
    mark = checkpoint / PENDING_MARK
    try:
        pending = json.loads(mark.read_text())
    except (OSError, ValueError):
        return False
    job = str(pending.get("job_id") or "")
    try:
        if pending.get("launcher") == "local":  # submitit's local jobs are processes of this machine
            live = job.isdigit() and pid_alive(int(job))
        else:
            live = bool(job) and job in slurm_client.queue_states([job])
    except slurm_client.SlurmError:
        return True  # Slurm cannot say: keep it
    if not live:
        mark.unlink(missing_ok=True)
    return live
