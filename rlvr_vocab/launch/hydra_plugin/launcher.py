"""`hydra/launcher=slurm|local|slurm_multi_gpu`: hydra-submitit-launcher that returns after submitting.

The plain submitit launcher blocks until every job ends (hydra issues #2479, #3201); ours
records each run's SLURM job, prints the sweep id and the status command, and returns,
unless `wait: true`, which shows progress until the jobs end.
"""

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.private_api import sbatch_script
from rlvr_vocab.launch.distributed import export_in_submitit_job
from rlvr_vocab.launch.search_plan import SearchPlan
from rlvr_vocab.launch.search_submission import record_workers
from rlvr_vocab.launch.sweep import SweepPlan, in_parallel
from rlvr_vocab.ops.notify import sbatch_mail_parameters
from rlvr_vocab.run.claims import record_submission
from rlvr_vocab.run.code import ensure_snapshot, job_setup, snapshot_dir
from rlvr_vocab.run.manifest import now_iso
from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.validation.training import check_time_limit

_POLL_S = 10.0


class _SubmitAndReturn:
    _EXECUTOR: str

    def __init__(self, wait: bool = False, **params: Any) -> None:
        self.wait = wait
        # A search's tasks are its workers: they create their runs as they go.
        self.plan: SweepPlan | SearchPlan | None = None
        # Whose code snapshot the jobs run: the config's experiments root unless set (an evaluation job's run).
        self.code_root: str | None = None
        super().__init__(**params)

    def __getstate__(self) -> dict[str, Any]:
        # submitit pickles the launcher into every job: with the plan (every point's config) that is
        # O(n^2) for n points. The job needs no plan: it finds its state in its run dir.
        return {**self.__dict__, "plan": None}

    def prepare(self, plan: SweepPlan | SearchPlan) -> None:
        self.plan = plan
        # Resolved at instantiation, before the sweeper had chosen the sweep id it depends on.
        self.params["submitit_folder"] = str(self.config.hydra.launcher.submitit_folder)

    def _executor(self):
        # The same executor set-up as BaseSubmititLauncher.launch, which offers no hook for it.
        import submitit

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            **{f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k == "max_num_timeout"},
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        params = dict(self.params)
        root = self.code_root or (self.config.experiments_root if self.config is not None else None)
        if self._EXECUTOR == "slurm" and root is not None:
            # The job imports the code as it is now, whatever happens to the checkout while it waits.
            params["setup"] = [*(params.get("setup") or []), *job_setup(snapshot_dir(root))]
        if self._EXECUTOR == "slurm" and self.config is not None and "notify" in self.config:
            # Slurm's own mail (notify.mail_type) besides the profile's additional parameters.
            params["additional_parameters"] = {**(params.get("additional_parameters") or {}),
                                               **sbatch_mail_parameters(self.config.notify)}
        executor.update_parameters(**{
            k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items() if k not in init_keys
        })
        return executor

    def submit_one(self, root: str | Path, fn, *args: Any, **kwargs: Any):
        """One job of `fn(*args, **kwargs)` through this profile, its settings checked and Slurm asked first (an
        evaluation job): the same executor as a sweep's, running the code snapshot under experiments root `root`."""
        self.code_root = str(root)
        self.check_settings()
        self.preflight(1)
        if self._EXECUTOR == "slurm":
            ensure_snapshot(root)
        return self._executor().submit(fn, *args, **kwargs)

    def sbatch_script(self, n_jobs: int) -> str | None:
        """The exact sbatch script submitit will submit for an array of n_jobs (None off SLURM)."""
        if self._EXECUTOR != "slurm":
            return None
        return sbatch_script(self._executor(), n_jobs)

    def check_settings(self) -> None:
        """The launcher's own values: cheap, so before any point is composed."""
        self._check_types()
        check_time_limit(self.params.get("timeout_min"), self.params.get("signal_delay_s"))

    def check_cluster_limits(self, n_jobs: int) -> None:
        """The settings against this cluster's limits (not for dry runs: the script may be for another cluster)."""
        if self._EXECUTOR != "slurm":
            return
        gpus, partition = self.params.get("gpus_per_node"), self.params.get("partition")
        most = slurm_client.most_gpus_per_node(partition) if isinstance(gpus, int) and gpus > 0 else None
        if most is not None and gpus > most:
            raise ConfigError("hydra.launcher.gpus_per_node",
                              f"asks for {gpus} GPUs per node but partition {partition or '(default)'} "
                              f"has at most {most} per node",
                              "lower gpus_per_node, or pick a GPU partition with hydra.launcher.partition=...")

    def _check_types(self) -> None:
        """Our profiles are plain YAML: check their values against the submitit plugin's typed schema."""
        from omegaconf.errors import ValidationError

        schema = OmegaConf.structured(SlurmQueueConf if self._EXECUTOR == "slurm" else LocalQueueConf)
        skip = ("_target_", "name", "submitit_folder")
        values = {k: v for k, v in self.params.items() if k in schema and k not in skip}
        try:
            OmegaConf.merge(schema, values)
        except ValidationError as e:
            raise ConfigError(f"hydra.launcher.{e.full_key}", str(e.msg).splitlines()[0], "fix the value") from None

    def preflight(self, n_jobs: int) -> None:
        """Ask Slurm itself (`sbatch --test-only`) whether it would accept the job array (the largest, if split)."""
        limit = slurm_client.max_array_size() if self._EXECUTOR == "slurm" else None
        script = self.sbatch_script(min(n_jobs, limit) if limit else n_jobs)
        if script is None:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
            f.write(script)
            f.flush()
            try:
                slurm_client.sbatch_test_only(f.name)
            except slurm_client.SlurmError as e:
                raise ConfigError("hydra.launcher", str(e), "fix partition, account, qos, gpus_per_node, mem_gb, "
                                  "timeout_min or the array size; if Slurm did not answer, retry") from None

    def launch(self, job_overrides, initial_job_idx: int):
        assert self.config is not None
        code = ensure_snapshot(self.config.experiments_root).name if self._EXECUTOR == "slurm" else None
        executor = self._executor()
        # The same launcher and Hydra state go into every job's pickle: pickle them once, not per job.
        state = _PickledOnce(Singleton.get_state())
        job_params = [
            (list(overrides), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}", state)
            for i, overrides in enumerate(job_overrides)
        ]
        # A sweep larger than the cluster's MaxArraySize goes as several arrays, each within it.
        size = (slurm_client.max_array_size() if self._EXECUTOR == "slurm" else None) or len(job_params) or 1
        task = _PickledOnce(self)
        jobs = []
        for start in range(0, len(job_params), size):
            jobs += executor.map_array(task, *zip(*job_params[start:start + size], strict=True))
        if isinstance(self.plan, SearchPlan) and self._EXECUTOR == "slurm":
            # Before any wait: `cancel --sweep` reaches workers still pending, which no trial's run names yet.
            record_workers(self.plan.experiments_root, self.plan.sweep_id, [job.job_id for job in jobs])
        points = self.plan.to_submit if isinstance(self.plan, SweepPlan) else []
        hydra_overrides = list(self.config.hydra.overrides.hydra)

        def record(submitted: tuple) -> None:
            point, job = submitted
            record_submission(point.paths, {
                "job_id": job.job_id, "submitted": now_iso(), "sweep_id": self.plan.sweep_id,
                "launcher": self._EXECUTOR, "overrides": point.overrides, "identity": point.identity.fingerprint,
                "hydra_overrides": hydra_overrides, "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                "code": code,
            })

        in_parallel(record, list(zip(points, jobs, strict=False)))
        sweep_id = self.plan.sweep_id if self.plan else self.config.get("sweep_id")
        arrays = sorted({slurm_client.array_id(job.job_id) for job in jobs}, key=lambda a: (len(a), a)) or ["-"]
        kind, unit = ("search", "worker") if isinstance(self.plan, SearchPlan) else ("sweep", "run")
        runs = f"{len(jobs)} {unit}{'s' if len(jobs) != 1 else ''}"
        print(f"submitted {kind} {sweep_id}: {runs} as {self._EXECUTOR} job array{'s' if len(arrays) > 1 else ''} "  # noqa: T201
              f"{', '.join(arrays)}")
        print(f"watch it with: rlvr-vocab status --sweep {sweep_id}")  # noqa: T201
        if not self.wait:
            return [JobReturn(overrides=list(o), status=JobStatus.UNKNOWN) for o in job_overrides]
        return _wait_with_progress(jobs, job_overrides)

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        # In the job: several tasks (GPUs, nodes) form one torch.distributed job.
        export_in_submitit_job()
        return super().__call__(*args, **kwargs)


class _PickledOnce:
    """Pickles as the object pickled once (it unpickles as that object)."""

    def __init__(self, obj: Any) -> None:
        self.data = cloudpickle.dumps(obj)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return cloudpickle.loads, (self.data,)


def _wait_with_progress(jobs, job_overrides) -> list[JobReturn]:
    last = None
    while True:
        states = Counter(job.state for job in jobs)  # submitit batches these into one sacct call
        line = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)  # noqa: T201
            last = line
        if all(slurm_client.has_ended(s) for s in states):
            break
        time.sleep(_POLL_S)
    results = []
    for job, overrides in zip(jobs, job_overrides, strict=True):
        try:
            results.append(job.results()[0])
        except Exception as e:  # the job's own failure, already in its log and manifest
            print(f"  {' '.join(filter_overrides(overrides))}: {str(e).strip().splitlines()[-1]}")  # noqa: T201
            results.append(JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=e))
    return results


class RlvrSlurmLauncher(_SubmitAndReturn, SlurmLauncher):
    pass


class RlvrLocalLauncher(_SubmitAndReturn, LocalLauncher):
    def __init__(self, wait: bool = True, **params: Any) -> None:
        super().__init__(wait=wait, **params)
