"""One run's state, reconciled: what its job recorded in its files, SLURM's word on its jobs (and the controller's
queue), its lease and its disk for a local run, its heartbeat for a stall."""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr_vocab.core.states import FINAL, RunState
from rlvr_vocab.registry.run_files import disk_full, read_run
from rlvr_vocab.registry.slurm_view import SlurmView
from rlvr_vocab.run.layout import CONFIG_NAME, RunPaths, notified_marker
from rlvr_vocab.run.manifest import end_stands, iso, parse_iso, slurm_ended
from rlvr_vocab.slurm import client as slurm_client

# A run whose job SLURM is done with (or has no record of) is served from the index, like a completed one, once this
# long has passed since the job ended (or, unknown to SLURM, since the run's files last changed): no requeue comes
# that late, and a resume or a new attempt replaces its files, which makes it SLURM's to say again.
SETTLE_AFTER_S = 3600


class lazy:
    """`functools.cached_property` without its lock: Python 3.11 takes one on every first access, which cost a third
    of the time `status` spends on each run it resolves. Views are never shared between threads."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute, self.name = compute, compute.__name__

    def __get__(self, view: Any, owner: type | None = None) -> Any:
        if view is None:
            return self
        value = view.__dict__[self.name] = self.compute(view)  # found in the instance from now on
        return value


def _job(attempt: dict) -> str | None:
    return attempt.get("slurm_array_id") or attempt.get("slurm_job_id")


class RunView:
    """One run as `status` shows it: its files merged with SLURM's word on its jobs.

    Resolving reads `brief` and `brief_submissions`: the files whole, or the index's brief of them. `manifest`,
    `submissions`, `m` and `attempts` are the files whole; a view built from a brief with `read_whole` reads them
    from the run dir when first asked (else they are the brief).
    """

    def __init__(self, run_dir: Path | str, manifest: dict[str, Any] | None, submissions: list[dict[str, Any]],
                 read_whole: bool = False) -> None:
        # A Path only when asked for: `status` builds tens of thousands of views and rarely needs one.
        self.run_dir_text = str(run_dir)
        self.brief, self.brief_submissions = manifest, submissions
        if not read_whole:  # else the lazy attributes below read them
            self.manifest, self.submissions = manifest, submissions
        self.state, self.stale, self.note = RunState.UNKNOWN, False, ""
        self.suspended = False  # Slurm suspended its job: no progress is expected
        self.heartbeat_step: int | None = None  # a RUNNING run's step by its heartbeat (ahead of the manifest's)
        # Set by `Registry.runs(usage=True)`: job id -> every run of it (None: SLURM has no record of it).
        self.job_runs: dict[str, list[slurm_client.SacctRow] | None] = {}
        # Attempt index -> when SLURM says its run of the job ended, where SLURM was asked about that job.
        self.slurm_ends: dict[int, float] = {}

    @lazy
    def manifest(self) -> dict[str, Any] | None:
        return self._read_whole()[0]

    @lazy
    def submissions(self) -> list[dict[str, Any]]:
        return self._read_whole()[1]

    def _read_whole(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        manifest, submissions = read_run(self.run_dir_text)
        self.__dict__.update(manifest=manifest, submissions=submissions)
        return manifest, submissions

    @lazy
    def run_dir(self) -> Path:
        return Path(self.run_dir_text)

    @lazy
    def m(self) -> dict[str, Any]:
        """The manifest whole ({} if there is none or it cannot be read)."""
        return self.manifest if self.manifest is not None and "unreadable" not in self.manifest else {}

    @lazy
    def brief_m(self) -> dict[str, Any]:
        return self.brief if self.brief is not None and "unreadable" not in self.brief else {}

    @property
    def attempts(self) -> list[dict]:
        return self.m.get("attempts", [])

    @property
    def brief_attempts(self) -> list[dict]:
        return self.brief_m.get("attempts", [])

    @property
    def unreadable(self) -> str | None:
        return (self.brief or {}).get("unreadable")

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    @lazy
    def recorded(self) -> RunState | None:
        return RunState.parse(self.brief_m.get("status"))

    @property
    def run_id(self) -> str:
        return self.brief_m.get("run_id") or f"pending:{os.path.basename(self.run_dir_text)}"

    @lazy
    def exp_name(self) -> str:
        return self.brief_m.get("exp_name") or os.path.basename(os.path.dirname(self.run_dir_text))

    @lazy
    def run_name(self) -> str:
        return self.brief_m.get("run_name") or os.path.basename(self.run_dir_text)

    @property
    def sweep_id(self) -> str | None:
        if self.brief_m.get("sweep_id"):
            return self.brief_m["sweep_id"]
        return self.brief_submissions[-1].get("sweep_id") if self.brief_submissions else None

    @property
    def created(self) -> str | None:
        return self.brief_m.get("created") or (self.brief_submissions[0].get("submitted")
                                               if self.brief_submissions else None)

    @lazy
    def slurm_jobs(self) -> list[str]:
        """Every SLURM job of this run, its attempts' and its submissions' (one that never started an attempt too)."""
        jobs = (*map(_job, self.brief_attempts), *(s.get("job_id") for s in self.brief_submissions))
        return list(dict.fromkeys(j for j in jobs if j))

    @lazy
    def job_id(self) -> str | None:
        """The newest SLURM job of this run: a later submission, or the last attempt's job."""
        if self.submitted_since_last_attempt:
            return self.brief_submissions[-1].get("job_id")
        return next((j for j in reversed(list(map(_job, self.brief_attempts))) if j), None)

    @lazy
    def submitted_since_last_attempt(self) -> bool:
        """A job was submitted after the run's last attempt started (it has not started yet, or is starting)."""
        if not self.brief_submissions or not self.brief_submissions[-1].get("job_id"):
            return False
        last, attempts = self.brief_submissions[-1], self.brief_attempts
        if last["job_id"] in set(map(_job, attempts)):
            return False
        return not attempts or (last.get("submitted") or "") >= (attempts[-1].get("started") or "")

    def needs_slurm(self) -> bool:
        if self.unreadable:
            return False
        if self.brief is None or self.recorded in (RunState.RUNNING, RunState.REQUEUED):
            return True
        # Whatever the job recorded last (a SIGTERM reads as CANCELLED, a killed W&B service as FAILED), Slurm may
        # have requeued it (preemption, node failure); only an end that stands is final: completion, pruning, or any
        # end of a search trial's attempt after which its worker job went on to another trial (that job's state is
        # the other trial's).
        if self.job_id is None:
            return False
        last = self.brief_attempts[-1] if self.brief_attempts else {}
        stands = self.recorded in (RunState.COMPLETED, RunState.PRUNED) or end_stands(last)
        return not stands or self.submitted_since_last_attempt

    def resolve(self, slurm: SlurmView) -> None:
        self._resolve_state(slurm)
        self.note_slurm_ends(slurm.runs)
        if self.state == RunState.RUNNING and not self.suspended:  # a suspended job makes no progress by design
            self._check_progress()
        if self.state == RunState.RUNNING:  # a run waiting for its services says so (a vLLM start takes minutes)
            waiting = [f"service {name} {s.get('state')}" for name, s in self.services().items()
                       if s.get("state") != "healthy"]
            self.note = "; ".join(filter(None, [self.note, *waiting]))
        skipped = self.brief_m.get("skipped_checkpoints") or []
        if skipped:
            last = skipped[-1]
            more = f" ({len(skipped)} set aside in all)" if len(skipped) > 1 else ""
            self.note = "; ".join(filter(None, [
                self.note, f"skipped incomplete {last['checkpoint']}: {last['reason']}{more}"]))

    def _resolve_state(self, slurm: SlurmView) -> None:
        recorded, error = self.recorded, self.brief_m.get("error") or ""
        if self.unreadable:
            self.state, self.note = RunState.UNREADABLE, self.unreadable
            return
        if not self.needs_slurm():
            self.state, self.note = recorded or RunState.UNKNOWN, error
            return
        if self.job_id is None:  # a local run: its lease tells whether it still lives
            from rlvr_vocab.run.lease import lease_is_live

            if recorded == RunState.RUNNING and not lease_is_live(self.paths):
                if disk_full(self.run_dir_text):  # the job's last write, its end, found no room
                    self.state = RunState.FAILED
                    self.note = f"disk full at {self.run_dir_text}: the job could not record how it ended"
                else:
                    self.state, self.note = RunState.LOST, "manifest says running but no process holds the run dir"
            else:
                self.state, self.note = recorded or RunState.UNKNOWN, error
            return
        if slurm.error:
            if recorded in FINAL and not self.submitted_since_last_attempt:
                self.state, self.note = recorded, error  # the job's own account stands
                return
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {recorded or 'PENDING'}; {slurm.error}"
            return
        row = slurm.job(self.job_id)
        if self.submitted_since_last_attempt:
            self._resolve_new_job(row, slurm)
            return
        if row is None and self.job_id in slurm.queued:  # not in accounting yet
            self.state = slurm_client.run_state(slurm.queued[self.job_id])
            self.note = f"job {self.job_id} is {slurm.queued[self.job_id]} (not in SLURM accounting yet)"
            return
        if row is None:
            self.state = RunState.LOST if recorded == RunState.RUNNING else (recorded or RunState.UNKNOWN)
            self.note = f"SLURM has no record of job {self.job_id}"
            return
        if row.state in slurm_client.LIVE_STATES and slurm.controller_error:
            # Accounting only learns from the controller: its live states may be out of date.
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {row.state}; {slurm.controller_error}"
            return
        state = slurm_client.run_state(row.state)
        if state == RunState.PENDING:
            state = RunState.REQUEUED  # it ran before: Slurm put it back in the queue
        task_failed = slurm_client.another_task_failed(row.state, recorded)
        if state in (RunState.COMPLETED, RunState.FAILED) and recorded in FINAL and not task_failed:
            state = recorded  # the job's own account is more precise than its exit code
        self.state, self.suspended = state, row.state == "SUSPENDED"
        if error and state == recorded:
            self.note = error
        elif state == RunState.REQUEUED and recorded not in (RunState.REQUEUED, None):
            self.note = f"Slurm requeued the job after it recorded {recorded}"
        elif row.state == "SUSPENDED":
            self.note = f"job {self.job_id} is suspended"
        elif task_failed:
            self.note = (f"a task of job {self.job_id} failed (exit code {row.exit_code}) and Slurm ended the others; "
                         "see `rlvr-vocab logs`")
        elif state == RunState.FAILED:
            self.note = f"job ended FAILED (exit code {row.exit_code}) before it could record why"
        elif state in FINAL and recorded == RunState.RUNNING:
            self.note = f"job ended {state} before it could record it"

    def _resolve_new_job(self, row: slurm_client.SacctRow | None, slurm: SlurmView) -> None:
        """The run's newest job was submitted after its last attempt: that job's state is the run's."""
        if row is None and self.job_id in slurm.queued:
            self.state = slurm_client.run_state(slurm.queued[self.job_id])
            self.note = f"submitted as job {self.job_id} ({slurm.queued[self.job_id]}, not in SLURM accounting yet)"
            return
        if row is None:
            if slurm.controller_error:
                self.state, self.stale = RunState.UNKNOWN, True
                self.note = f"submitted as job {self.job_id}, not in SLURM accounting yet; {slurm.controller_error}"
            elif (submitted := self._last_written()) is not None and time.time() - submitted > SETTLE_AFTER_S:
                self.state = RunState.LOST
                self.note = f"submitted as job {self.job_id}, which SLURM has no record of (nor its queue)"
            else:  # slurmdbd records a new job with a short delay
                self.state, self.note = RunState.PENDING, f"submitted as job {self.job_id}"
            return
        if row.state in slurm_client.LIVE_STATES and slurm.controller_error:
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {row.state}; {slurm.controller_error}"
            return
        self.state = slurm_client.run_state(row.state)
        if self.state in FINAL:
            self.note = f"job {self.job_id} ended {row.state} (exit code {row.exit_code}) before the run started"

    def _check_progress(self) -> None:
        """A RUNNING run whose heartbeat has not moved for its watchdog.stall_after_s is STALLED."""
        try:
            beat = json.loads(RunPaths(self.run_dir_text).heartbeat.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(beat, dict) or not beat.get("stall_after_s"):
            return
        if isinstance(beat.get("step"), int):
            self.heartbeat_step = beat["step"]
        idle = time.time() - float(beat.get("time") or 0)
        if idle > beat["stall_after_s"]:
            self.state = RunState.STALLED
            minutes = f"{idle / 60:.0f} min" if idle >= 60 else f"{idle:.0f} s"
            self.note = f"no progress for {minutes} in phase {beat.get('phase')} (step {beat.get('step')})"

    def unreported_event(self) -> str | None:
        """The event of a run Slurm (or the watchdog's heartbeat) says ended or stalled where its job recorded no
        such thing: a death the job could not report, for `status` to notify."""
        if self.state == RunState.STALLED:
            return "stalled"
        if (
            self.state in FINAL
            and self.recorded in (RunState.RUNNING, RunState.REQUEUED, None)
            and self.job_id is not None
            and not self.submitted_since_last_attempt
        ):
            return self.state.value.lower()
        return None

    def event_to_weigh(self) -> tuple[str, int] | None:
        """(event, attempt) of an unreported death no refresh has weighed yet (notified, or passed over)."""
        event = self.unreported_event()
        if event is None:
            return None
        attempt = max(1, len(self.brief_attempts))
        return None if os.path.exists(notified_marker(self.run_dir_text, attempt, event)) else (event, attempt)

    def settled_by(self, slurm: SlurmView, now: float) -> bool:
        """Whether this answer of SLURM's (resolved) is the run's last: its job ended (or is unknown to SLURM)
        over SETTLE_AFTER_S ago, and any death it could not report was weighed for notification."""
        if slurm.error or slurm.controller_error or self.stale or self.state not in FINAL or self.job_id is None:
            return False
        row = slurm.job(self.job_id)
        if row is not None:
            ended = row.end if row.state not in slurm_client.LIVE_STATES else None
        else:
            ended = self._last_written()
        if ended is None or now - ended < SETTLE_AFTER_S:
            return False
        # A run without a config has no notify settings: nothing to weigh.
        return self.event_to_weigh() is None or not os.path.isfile(f"{self.run_dir_text}/{CONFIG_NAME}")

    def _last_written(self) -> float | None:
        """When the run's files last changed, as they say: its manifest's last write, or its last submission."""
        times = [parse_iso(self.brief_m.get("updated")), parse_iso(self.brief_submissions[-1].get("submitted"))
                 if self.brief_submissions else None]
        return max((t for t in times if t is not None), default=None)

    def note_slurm_ends(self, runs_of: dict[str, list[slurm_client.SacctRow] | None]) -> None:
        """When SLURM ended each attempt's run of its job, from every run of the jobs it was asked about (job id ->
        runs, oldest first)."""
        for i, attempt in enumerate(self.brief_attempts):
            job = _job(attempt)
            runs = runs_of.get(job) if job else None
            end = slurm_ended(attempt, runs) if runs else None
            if end is not None:
                self.slurm_ends[i] = end

    def _ended(self, i: int, recorded: float | None) -> float | None:
        """When attempt i ended: SLURM's end of its run where known. A job killed outright records no end, and the
        next attempt records the takeover's time for it; the job's own record stands where it is the earlier."""
        slurm = self.slurm_ends.get(i)
        return recorded if slurm is None else slurm if recorded is None else min(recorded, slurm)

    def settled_attempts(self) -> list[dict]:
        """The attempts as `show` lists them (whole): the last one ended as `status` says when its job could not
        record it, each ended when SLURM ended its run where that is known."""
        attempts = [dict(a) for a in self.attempts]
        for i, attempt in enumerate(attempts):
            recorded = parse_iso(attempt.get("ended"))
            ended = self._ended(i, recorded)
            if ended != recorded:
                attempt["ended"] = iso(ended)
        if attempts and attempts[-1].get("end_state") is None and self.state in FINAL and \
                not self.submitted_since_last_attempt:
            attempts[-1]["end_state"] = self.state.value
            attempts[-1]["reason"] = self.note or "per Slurm"
        return attempts

    def last_checkpoint(self) -> str | None:
        ckpts = self.brief_m.get("checkpoints") or []
        return ckpts[-1]["path"].rpartition("/")[2] if ckpts else None

    def elapsed_s(self) -> float | None:
        now = time.time() if self.state == RunState.RUNNING else None
        total = 0.0
        for i, attempt in enumerate(self.brief_attempts):
            start, end = parse_iso(attempt.get("started")), self._ended(i, parse_iso(attempt.get("ended"))) or now
            if start and end:
                total += max(0.0, end - start)
        return total or None

    def services(self) -> dict[str, dict]:
        """The last attempt's services and their states (rlvr_vocab.job.services)."""
        return (self.brief_attempts[-1] if self.brief_attempts else {}).get("services") or {}

    def to_json(self) -> dict[str, Any]:
        """The run's `status --json` row; its run dir first, which the index's settled rows spell relative to the
        root (`index.SETTLED_ROW`)."""
        m = self.brief_m
        return {
            "run_dir": self.run_dir_text, "run_id": self.run_id, "exp_name": self.exp_name,
            "run_name": self.run_name, "sweep_id": self.sweep_id,
            "state": self.state.value, "stale": self.stale, "note": self.note, "job_id": self.job_id,
            "last_step": max(m.get("last_step") or 0, self.heartbeat_step or 0) or m.get("last_step"),
            "max_steps": m.get("max_steps"),
            "reward": (m.get("metrics") or {}).get("reward"), "last_checkpoint": self.last_checkpoint(),
            "elapsed_s": self.elapsed_s(), "wandb_id": m.get("wandb_id"), "wandb_url": m.get("wandb_url"),
            "created": self.created, "updated": m.get("updated"), "attempts": len(self.brief_attempts),
            "error": m.get("error"), "identity": m.get("identity"), "benchmarks": m.get("benchmarks") or {},
            "disk_bytes": (m.get("disk_bytes") or {}).get("total"),
            "skipped_checkpoints": m.get("skipped_checkpoints") or [], "services": self.services(),
        }
