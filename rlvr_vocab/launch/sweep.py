"""Submission side of a sweep: names, pre-flight validation, and what to skip.

Run names are derived from the swept values, so submitting the same sweep again finds the same run dirs: completed
runs are skipped, pending or running ones are left alone, and the others are submitted again and resume from their
checkpoints. A name stays readable but is unique per distinct config: where two configs would share one (two values
that read the same once made safe for a directory name, or the same grid over another data set whose run dirs already
exist), each gets its config's short fingerprint. Two points that would still share a run dir are refused before
anything is submitted.
"""

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.keys import VALIDITY_NEUTRAL, names_experiment, override_key
from rlvr_vocab.core.secrets import is_secret_key
from rlvr_vocab.core.states import RunState
from rlvr_vocab.run import checkpoints, claims
from rlvr_vocab.run.identity import Identity, fingerprint, flatten, identity_of
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import lease_is_live
from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest
from rlvr_vocab.run.overrides import name_of_overrides, run_name_for
from rlvr_vocab.slurm import client as slurm_client

_HASH_LEN = 6
_WRITERS = 8  # threads writing run dirs (see in_parallel)


def _value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def swept_keys(jobs: Sequence[Sequence[str]]) -> list[str]:
    """Keys whose value differs between the sweep's points, in command-line order."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            values.setdefault(override_key(override), set()).add(_value(override))
    return [k for k, v in values.items() if len(v) > 1]


def _identifying(override: str) -> bool:
    return names_experiment(override_key(override))


def sweep_id_for(exp_name: str, jobs: Sequence[Sequence[str]]) -> str:
    """Stable for the same grid, fixed overrides included: the same grid over another data set is another sweep,
    while more steps, a dry run or other launcher settings leave it the same sweep. A named run is a submission of
    its own: two named runs never share a sweep id."""
    grid = sorted({o for job in jobs for o in job if _identifying(o) or override_key(o) == "run_name"})
    return f"{exp_name}-{hashlib.sha1(json.dumps(grid).encode()).hexdigest()[:8]}"


@dataclass
class SweepPoint:
    overrides: list[str]
    run_dir: Path
    identity: Identity
    force_resume: bool = False
    max_steps: int = 0
    action: str = "submit"  # submit | skip
    note: str = ""
    # The newest complete checkpoint the job will resume from (what validation found).
    resume_from: Path | None = None
    claimed: bool = False  # this submission created the run dir's identity (undone if the submission fails)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    @property
    def name(self) -> str:
        return f"{self.run_dir.parent.name}/{self.run_dir.name}"


@dataclass
class SweepPlan:
    sweep_id: str
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def to_submit(self) -> list[SweepPoint]:
        return [p for p in self.points if p.action == "submit"]

    def summary(self) -> str:
        n = len(self.points)
        lines = [f"sweep {self.sweep_id}: {n} run{'s' if n != 1 else ''}, {len(self.to_submit)} to submit"]
        lines += [f"  {p.action:<6} {p.run_dir.name}  {p.note}".rstrip() for p in self.points]
        return "\n".join(lines)


def _with(overrides: list[str], extra: dict[str, str]) -> list[str]:
    """`overrides` with these keys set once (replacing any earlier value of the same key)."""
    return [o for o in overrides if override_key(o) not in extra] + [f"{k}={v}" for k, v in extra.items()]


def plan_sweep(
    jobs: Sequence[Sequence[str]],
    compose: Callable[[list[str]], DictConfig],
    validate: Callable[[DictConfig], object],
    sweep_id: str | None,
    resolve: Callable[[list[str]], dict[str, Any]] | None = None,
) -> SweepPlan:
    """Name, resolve and validate every point before anything is submitted (what to skip is decided later, under
    the submit lock: `decide`).

    `resolve(overrides)` gives a point's config resolved and flattened, as `flat_config(compose(overrides))` would
    (the default; hydra_plugin's SweepComposer.resolved is that, fast). A point is composed and validated in full
    unless its config differs from one validated in full only in VALIDITY_NEUTRAL keys and its run dir does not
    exist yet: then nothing validation reads can differ.
    """
    from rlvr_vocab.validation.names import check_name

    if not jobs:
        raise ConfigError("sweep", "has no points")
    resolve = resolve or (lambda overrides: flat_config(compose(overrides)))
    first = resolve(list(jobs[0]))
    keys = swept_keys(jobs)
    sweep_id = sweep_id or first["sweep_id"] or sweep_id_for(first["exp_name"], jobs)
    plan = SweepPlan(sweep_id)
    explicit_name = any(override_key(o) == "run_name" for o in jobs[0])
    if explicit_name and len(jobs) > 1:
        raise ConfigError("run_name", f"is fixed ({first['run_name']}) but the sweep has {len(jobs)} points, which "
                          "would share one run dir", "drop run_name: each point is named from its swept values")
    # Every point resolved before any is validated: a sweep's validation waits for TRL's import in another process
    # (rlvr_vocab.validation.library_check), which overlaps this.
    resolved = []
    # One point without a name is named from what it sets: submitted again, it finds its run (no second run).
    single = None if keys or explicit_name else name_of_overrides(jobs[0])
    for job in jobs:
        overrides = _with(list(job), {"sweep_id": sweep_id})
        flat = resolve(overrides)
        readable = _single_name(flat) if explicit_name else single or run_name_for(job, keys)
        resolved.append((overrides, flat, readable, _identity(flat)))
    names = _unique_names(resolved, Path(first["experiments_root"]), explicit_name)
    validated: set[str] = set()
    for (overrides, flat, _, identity), name in zip(resolved, names, strict=True):
        run_dir = Path(flat["experiments_root"]) / flat["exp_name"] / name
        # Quoted: the name holds '=' and ',' which Hydra's override grammar would parse.
        named = overrides if explicit_name else _with(overrides, {"run_name": f"'{name}'"})
        same = fingerprint({k: v for k, v in flat.items() if k not in VALIDITY_NEUTRAL})
        resume_from = None
        if same in validated and not run_dir.exists():
            check_name("run_name", name)
        else:
            resume_from = _validate(compose(overrides), name, validate, len(jobs) > 1)
            validated.add(same)
        plan.points.append(SweepPoint(named, run_dir, identity, force_resume=bool(flat.get("force_resume")),
                                      max_steps=flat.get("training.max_steps") or 0, resume_from=resume_from))
    return plan


def _validate(cfg: DictConfig, name: str, validate: Callable[[DictConfig], object], many: bool) -> Path | None:
    """Validate one point's config under its run name; the checkpoint it would resume from."""
    with open_dict(cfg):
        cfg.run_name = name
    try:
        checked = validate(cfg)
    except ConfigError as e:
        where = f" (run {name})" if many else ""
        raise ConfigError(e.where, e.problem + where, e.fix) from None
    return getattr(checked, "resume_from", None)


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The config resolved and flattened to dotted keys, without Hydra's own node (and with its secrets:
    `rlvr_vocab.run.identity.resolved` is this without them)."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return flatten(container)


def _identity(flat: dict[str, Any]) -> Identity:
    """`Identity.of` the config flat is of."""
    return Identity({k: v for k, v in flat.items() if _in_identity(k)})


@functools.cache
def _in_identity(key: str) -> bool:
    """Whether `Identity.of` keeps this flat key (a sweep's points share their keys: each is asked once)."""
    return not is_secret_key(key) and bool(identity_of({key: None}))


def _unique_names(resolved: list, root: Path, explicit: bool) -> list[str]:
    """Each point's run name: readable, with the config's fingerprint where another config claims the same name."""
    by_name: dict[tuple[str, str], set[str]] = {}
    for _, flat, readable, identity in resolved:
        by_name.setdefault((flat["exp_name"], readable), set()).add(identity.fingerprint)
    names, seen = [], {}
    for overrides, flat, readable, identity in resolved:
        exp_name, name = flat["exp_name"], readable
        if not explicit:
            stored = claims.stored_identity(RunPaths(root / exp_name / readable))
            taken = stored is not None and stored != identity
            if len(by_name[(exp_name, readable)]) > 1 or taken:
                name = f"{readable}-{identity.fingerprint[:_HASH_LEN]}"
        key = (exp_name, name)
        if key in seen:
            raise ConfigError("sweep", f"points [{' '.join(seen[key])}] and [{' '.join(overrides)}] are the same run "
                              f"({exp_name}/{name})", "drop the repeated value from the grid")
        seen[key] = overrides
        names.append(name)
    return names


def _single_name(flat: dict[str, Any]) -> str:
    from rlvr_vocab.validation.names import default_run_name

    return flat["run_name"] or default_run_name()


def decide(plan: SweepPlan, refuse_live: bool, claim: bool = True) -> None:
    """Under the submit lock: which points are done or live (skipped), which are submitted (their identity claimed;
    `claim=False` for a dry run, which writes nothing).

    `refuse_live`: a single named run (e.g. `rlvr-vocab resume RUN`) that is pending or running is an error, not a
    skip, whether the other submission came first by a minute or by a millisecond.
    """
    jobs = [claims.last_submission(p.paths).get("job_id") for p in plan.points]
    try:
        queued = slurm_client.queue_states([j for j in jobs if j])
    except slurm_client.SlurmError:
        queued = {}
    for point, job in zip(plan.points, jobs, strict=True):
        live = (f"{queued[job].lower()} as SLURM job {job}" if job in queued
                else "running (its run dir is leased by a live job)" if lease_is_live(point.paths) else None)
        if live and refuse_live:
            raise ConfigError(f"run {point.name}", f"is {live}",
                              "two jobs must not write one run dir: wait, or `rlvr-vocab cancel` it first")
        done = _completed_at(point)
        if done is not None:
            point.action, point.note = "skip", f"completed at step {done}"
        elif live:
            point.action, point.note = "skip", f"already {live}"
        elif point.resume_from is not None:
            point.note = f"resumes from {point.resume_from.name}"
    if claim:
        try:
            in_parallel(_claim, plan.to_submit)
        except BaseException:
            undo_claims(plan)
            raise


def _claim(point: SweepPoint) -> None:
    point.claimed = claims.claim(point.paths, point.identity, force=point.force_resume) == claims.CREATED


def in_parallel(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """`fn(item)` for every item, a few at a time: a run dir's writes wait on the disk (fsync) more than on Python,
    and a thousand of them one after another take seconds. The first exception is raised once all have ended."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(_WRITERS) as pool:
        futures = [pool.submit(fn, item) for item in items]
    return [f.result() for f in futures]


def _completed_at(point: SweepPoint) -> int | None:
    """The step a point's run completed at, if there is nothing more to train for this config."""
    try:
        manifest = read_manifest(point.run_dir) or {}
    except UnreadableManifest:
        return None
    last = manifest.get("last_step") or 0
    final = checkpoints.final_step(point.paths)
    if RunState.parse(manifest.get("status")) == RunState.COMPLETED and final is not None and \
            final >= point.max_steps and last >= point.max_steps:
        return last
    return None


def undo_claims(plan: SweepPlan) -> None:
    """The submission failed: run dirs this submission created are removed again (nothing half-written)."""
    for point in plan.to_submit:
        if point.claimed:
            claims.unclaim(point.paths)


def slow_saves(plan: SweepPlan, signal_delay_s: float | None) -> list[str]:
    """Warnings for runs whose last measured step and checkpoint save would not fit between the stop signal and the
    time limit: such a run would be killed mid-save at every timeout."""
    if not signal_delay_s:
        return []
    warnings = []
    for point in plan.to_submit:
        try:
            manifest = read_manifest(point.run_dir) or {}
        except UnreadableManifest:
            continue
        save_s, step_s = manifest.get("last_save_s"), (manifest.get("metrics") or {}).get("step_time") or 0.0
        if save_s is not None and save_s + step_s > signal_delay_s:
            warnings.append(f"warning: run {point.run_dir.name}: its last step and checkpoint took {step_s:.0f} s + "
                            f"{save_s:.0f} s, more than the stop signal's lead (signal_delay_s={signal_delay_s}): "
                            "a timeout would kill it mid-save; raise hydra.launcher.signal_delay_s")
    return warnings
