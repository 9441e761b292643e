"""Continuing runs from their latest complete checkpoint, in the same run dir, the way they ran (what `rlvr-vocab
resume` does).

A run submitted by a sweep (`--multirun`) is submitted again with its launcher settings; a run of an sbatch wrapper
goes back through `sbatch` with the same wrapper and the resources Slurm gave it; a local run runs here. `local`
runs any of them here instead. The run keeps its W&B id; extra overrides (more steps, more time) are appended, but
one that changes the experiment is refused with the keys it changes, unless forced (this attempt only). A run whose
job is pending or running is refused: two jobs must never write one run dir, however many resumes race.

A search trial's run (made by a worker, it has no submission of its own) goes through its search's launcher settings
as a run of its own, unless its search still holds the trial: then the search's workers resume it, and the search is
what to submit again.
"""

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.keys import override_key
from rlvr_vocab.core.secrets import redact_override
from rlvr_vocab.core.states import LIVE, UNFINISHED
from rlvr_vocab.launch.search_submission import last_submission, submit_again
from rlvr_vocab.run.claims import record_submission, submit_lock
from rlvr_vocab.run.code import code_env
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.run.manifest import end_stands, now_iso
from rlvr_vocab.run.overrides import grid_of, launcher_overrides, recorded_overrides, run_overrides
from rlvr_vocab.slurm import client as slurm_client


def select_targets(selected: list, failed: bool) -> tuple[list, list[str]]:
    """The runs to resume among `selected` (one run, or a sweep's), and a line for each one passed over."""
    targets = list(selected)
    if failed:  # a job that recorded its failure may still be exiting: said below, not passed over
        targets = [r for r in targets if r.state in UNFINISHED or r.state in LIVE and r.recorded in UNFINISHED]
    live = [r for r in targets if r.state in LIVE]
    if len(targets) == 1 and live:
        r = live[0]
        raise ConfigError(f"run {r.exp_name}/{r.run_name}", f"is {r.state} as SLURM job {r.job_id}",
                          f"two jobs must not write one run dir: {_wait_or_cancel(r)}")
    skipped = []
    for r in live:
        if r.recorded in UNFINISHED:
            skipped.append(f"skip {r.run_name}: recorded {r.recorded} but SLURM job {r.job_id} is still ending; "
                           "resume it once `rlvr-vocab status` shows it ended")
        else:
            skipped.append(f"skip {r.run_name}: {r.state} as SLURM job {r.job_id}")
    return [r for r in targets if r.state not in LIVE], skipped


def check_not_a_search(root: Path, sweep: str) -> None:
    """`resume --sweep` of a search id: its unfinished trials are its workers' to resume (the study has them)."""
    if RootPaths(root).search(sweep).is_dir():
        raise ConfigError(f"--sweep {sweep}", "is a search: its workers resume its unfinished trials, and its pruned "
                          "ones stay pruned", f"submit it again: {submit_again(root, sweep)}; or resume one trial's "
                          "run by name, as a run of its own")


def held_by_search(view) -> int | None:
    """The trial number of a run whose search still holds the trial: a worker trained its last attempt, which ended
    without an end that stands (stopped for a requeue, cancelled, killed). The study has it RUNNING: the search's next
    worker resumes it from the run's checkpoint."""
    last = view.attempts[-1] if view.attempts else {}
    trial = last.get("search_trial")
    return trial if trial is not None and not end_stands(last) else None


def leave_to_searches(targets: list, single: bool) -> tuple[list, list[str]]:
    """The targets but those their search holds: a one-line refusal for a `single` run, else a line each."""
    kept, skipped = [], []
    for view in targets:
        trial = held_by_search(view)
        if trial is None:
            kept.append(view)
            continue
        what = f"is trial {trial} of search {view.sweep_id}, which its workers resume (its study still runs it)"
        fix = f"submit the search again: {submit_again(view.paths.experiments_root, view.sweep_id)}"
        if single:
            raise ConfigError(f"run {view.exp_name}/{view.run_name}", what, fix)
        skipped.append(f"skip {view.run_name}: {what}; {fix}")
    return kept, skipped


def _wait_or_cancel(view) -> str:
    """What a user can do about a live run: cancel their own; a teammate's is theirs to cancel."""
    import pwd

    try:
        uid = view.run_dir.stat().st_uid
        owner = pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        uid, owner = None, None
    if uid is None or uid == os.getuid():
        return f"wait, or `rlvr-vocab cancel {view.run_name}` first"
    return f"it is {owner}'s run: wait for it, or ask {owner} to cancel it"


def resume_run(view, extra: list[str], force: bool, launcher: str | None, local: bool,
               say: Callable[[str], None], current_code: bool = False) -> int:
    """Submit (or run here) the run's next attempt; its exit code. It runs the code the run ran (its last attempt's
    snapshot, where it has one) unless `current_code`: then the checkout's, recorded as a code change."""
    wrapper = _wrapper(view)
    if wrapper is not None and not local and not launcher:
        return _resume_wrapper(view, wrapper, extra, force, say)
    cmd = command(view, extra, force, launcher, local=local)
    where = "here" if "--multirun" not in cmd else "through its launcher"
    if not view.submissions and view.sweep_id and last_submission(view.paths.experiments_root, view.sweep_id):
        where += f" (search {view.sweep_id}'s), as a run of its own: its study is not told"
    shown = " ".join(redact_override(a) for a in cmd[3:])
    snapshot = None if current_code else _snapshot(view)
    code = f", code {snapshot.name} (as before)" if snapshot else ", the checkout's current code"
    say(f"resume {view.exp_name}/{view.run_name} ({view.state}) {where}{code}: {shown}")
    env = None if snapshot is None else {**os.environ, **code_env(snapshot)}
    return subprocess.run(cmd, env=env).returncode


def resume_sweep(sweep: str, runs: list, targets: list, extra: list[str], force: bool, launcher: str | None,
                 say: Callable[[str], None], current_code: bool = False) -> int | None:
    """Resubmit a sweep's unfinished runs as one job array: its grid command again (the sweeper skips what is done
    or live). None when that cannot be done (runs not a grid, a wrapper's or a local run among them): resume each."""
    last = [r.submissions[-1] if r.submissions else {} for r in runs]
    if any(_wrapper(r) is not None or s.get("launcher") != "slurm" for r, s in zip(runs, last, strict=True)):
        return None
    grid = grid_of([[o for o in _base_overrides(r) if override_key(o) != "run_name"] for r in runs])
    if grid is None:
        return None
    hydra = launcher_overrides(last[-1].get("hydra_overrides", []))
    if launcher:
        hydra = [o for o in hydra if not o.startswith("hydra/launcher=")] + [f"hydra/launcher={launcher}"]
    replaced = {override_key(o) for o in extra}
    overrides = [o for o in grid if override_key(o) not in replaced] + [
        *extra, f"sweep_id={sweep}", *(["force_resume=true"] if force else [])]
    cmd = [sys.executable, "-m", "rlvr_vocab.train", "--multirun", *hydra, *overrides]
    snapshot = None if current_code else _snapshot(targets[0])
    code = f", code {snapshot.name} (as before)" if snapshot else ", the checkout's current code"
    shown = " ".join(redact_override(a) for a in cmd[3:])
    say(f"resume sweep {sweep} ({len(targets)} of {len(runs)} runs) as one array{code}: {shown}")
    return subprocess.run(cmd, env=None if snapshot is None else {**os.environ, **code_env(snapshot)}).returncode


def _snapshot(view) -> Path | None:
    """The code snapshot the run's last attempt ran, if it is still there."""
    recorded = next((a.get("code") for a in reversed(view.attempts) if a.get("code")), None) or {}
    if not recorded.get("snapshot"):
        return None
    path = RootPaths(view.paths.experiments_root).code(recorded["snapshot"])
    return path if path.is_dir() else None


def check_identity(view, extra: list[str]) -> None:
    """Refuse, in one line naming the keys, a resume that makes the run another experiment: before anything costs
    the user work (the job's checks ask for a prefetch under HF_HUB_OFFLINE=1 before they get to the identity)."""
    from rlvr_vocab.run.claims import stored_identity

    stored = stored_identity(view.paths)
    if stored is None:
        return
    from hydra import compose, initialize_config_dir

    from rlvr_vocab import CONF_DIR
    from rlvr_vocab.config.schema import register_configs
    from rlvr_vocab.run.identity import Identity, mismatch_error
    from rlvr_vocab.validation.user_errors import exit_on_user_error

    register_configs()
    # The job's overrides (an sbatch wrapper's fixed ones are among the run's recorded overrides).
    with exit_on_user_error(), initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        wanted = Identity.of(compose("config", overrides=_merged(view, extra, force=False)))
    if wanted != stored:
        raise mismatch_error(f"{view.exp_name}/{view.run_name}", stored, wanted)


def _wrapper(view) -> dict | None:
    """The sbatch wrapper a run was submitted with, if it was (and never through a sweep since)."""
    if view.submissions and view.submissions[-1].get("launcher") != "sbatch":
        return None
    recorded = [a.get("sbatch") for a in view.attempts if a.get("sbatch")]
    return recorded[-1] if recorded else None


def _base_overrides(view) -> list[str]:
    return run_overrides(recorded_overrides(view.m, view.submissions))


def _merged(view, extra: list[str], force: bool) -> list[str]:
    wanted = [*extra, *(["force_resume=true"] if force else [])]
    wanted.append(f"run_name='{view.run_name}'")
    if view.sweep_id:
        wanted.append(f"sweep_id={view.sweep_id}")
    replaced = {override_key(o) for o in wanted}
    return [o for o in _base_overrides(view) if override_key(o) not in replaced] + wanted


def command(view, extra: list[str], force: bool, launcher: str | None, local: bool = False) -> list[str]:
    """The `python -m rlvr_vocab.train ...` that continues the run (through its launcher unless `local`)."""
    submission = _submission(view)
    overrides = _merged(view, extra, force)
    # The original launcher settings (partition, account, time...), but not one-off submission states.
    hydra = launcher_overrides(submission.get("hydra_overrides", []))
    if launcher:
        hydra = [o for o in hydra if not o.startswith("hydra/launcher=")] + [f"hydra/launcher={launcher}"]
    if local:
        hydra = []
    mode = ["--multirun"] if hydra or launcher else []
    return [sys.executable, "-m", "rlvr_vocab.train", *mode, *hydra, *overrides]


def _submission(view) -> dict:
    """The run's last submission; a search trial's run has none of its own: its search's, whose launcher trained it."""
    if view.submissions:
        return view.submissions[-1]
    return (last_submission(view.paths.experiments_root, view.sweep_id) if view.sweep_id else None) or {}


def wrapper_command(view, wrapper: dict, extra: list[str], force: bool) -> list[str]:
    """`sbatch [the job's resources] <wrapper script> <overrides>`: the wrapper adds its own fixed overrides."""
    fixed = set(wrapper.get("fixed_overrides") or [])
    overrides = [o for o in _merged(view, extra, force) if o not in fixed]
    options = [f"--{k}={v}" for k, v in (wrapper.get("options") or {}).items()]
    return [*options, wrapper["script"], *overrides]


def _resume_wrapper(view, wrapper: dict, extra: list[str], force: bool, say: Callable[[str], None]) -> int:
    args = wrapper_command(view, wrapper, extra, force)
    fixed = list(wrapper.get("fixed_overrides") or [])
    overrides = args[args.index(wrapper["script"]) + 1:]
    # Everything the job will check, checked here first (exit code 2 and one line if not).
    check = subprocess.run([sys.executable, "-m", "rlvr_vocab.train", *fixed, *overrides, "dry_run=true"],
                           capture_output=True, text=True, cwd=wrapper.get("submit_dir"))
    if check.returncode:
        sys.stderr.write(check.stderr)
        return check.returncode
    shown = " ".join(shlex.quote(redact_override(a)) for a in args)
    with submit_lock(view.run_dir.parent.parent):
        job = view.job_id
        state = slurm_client.queue_states([job]).get(job) if job else None
        if state in slurm_client.LIVE_STATES:
            raise ConfigError(f"run {view.exp_name}/{view.run_name}", f"is {state} as SLURM job {job}",
                              f"two jobs must not write one run dir: {_wait_or_cancel(view)}")
        try:
            job_id = slurm_client.sbatch(args, cwd=wrapper.get("submit_dir"))
        except slurm_client.SlurmError as e:
            raise ConfigError("sbatch", str(e), "check the wrapper's resources") from None
        record_submission(view.paths, {"job_id": job_id, "submitted": now_iso(), "sweep_id": view.sweep_id,
                                       "launcher": "sbatch", "script": wrapper["script"], "overrides": overrides})
    say(f"resume {view.exp_name}/{view.run_name} ({view.state}) through sbatch: {shown}")
    say(f"submitted as SLURM job {job_id}")
    return 0
