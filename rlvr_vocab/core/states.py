"""A run's states and the events that move it between them: one spelling for the job, the registry and the CLI.

The job records RUNNING and how its attempt ended; Slurm's account fills in what the job could not record (a node
lost, the job killed outright); the registry shows PENDING for a queued job, UNKNOWN when Slurm cannot be asked and
UNREADABLE for a run dir whose manifest it cannot read. `TRANSITIONS` is the README's state-transition table;
every state change the job or the registry records goes through `transition()`.
"""

from enum import Enum


class RunState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    REQUEUED = "REQUEUED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    PREEMPTED = "PREEMPTED"
    CANCELLED = "CANCELLED"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    LOST = "LOST"
    # How an attempt ended when the watchdog saw no progress; the registry also shows a RUNNING run without
    # progress as STALLED.
    STALLED = "STALLED"
    # A search's pruner stopped the run early (its trial scored too low at a rung): ended on purpose, not a failure.
    PRUNED = "PRUNED"
    # Views only the registry shows, never recorded.
    UNKNOWN = "UNKNOWN"
    UNREADABLE = "UNREADABLE"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str | None) -> "RunState | None":
        """A recorded state; manifests of schema 1 spelled them in lowercase."""
        if not text:
            return None
        try:
            return cls(str(text).upper())
        except ValueError:
            return None


S = RunState
# Ended: nothing runs until someone resumes the run.
FINAL = frozenset({S.COMPLETED, S.FAILED, S.TIMEOUT, S.PREEMPTED, S.CANCELLED, S.NODE_FAIL, S.OUT_OF_MEMORY, S.LOST,
                   S.PRUNED})
# A job is queued or running for it: nothing else may be submitted for the run.
LIVE = frozenset({S.PENDING, S.RUNNING, S.REQUEUED})
# Ended without finishing: `rlvr-vocab resume` continues them from their latest complete checkpoint. A pruned run
# ended on purpose: only naming it continues it.
UNFINISHED = FINAL - {S.COMPLETED, S.PRUNED}


class Event(str, Enum):
    SUBMIT = "submit"                # a job is queued for the run (sweep, resume, sbatch wrapper)
    START = "start"                  # the job starts an attempt (same identity, or forced)
    ALREADY_COMPLETE = "already_complete"  # a start finds final/ complete at max_steps: nothing is touched
    FINISH = "finish"                # the last step is trained and final/ is complete
    FAIL = "fail"                    # a Python exception, or a config that no longer validates at start
    RETRY = "retry"                  # a failure the retry policy retries (a transient error, a stall): requeued
    STOP_REQUEUE = "stop_requeue"    # the stop signal (time limit near, preemption): checkpoint, requeue
    STOP_END = "stop_end"            # the same, but not requeued (budget used up, requeue refused)
    TERMINATE = "terminate"          # SIGTERM without a stop signal first (scancel)
    SLURM_END = "slurm_end"          # Slurm ended the job in a way it could not record (node down, OOM, kill -9)
    SLURM_REQUEUE = "slurm_requeue"  # Slurm put the job back in the queue (preemption, node failure)
    CANCEL = "cancel"                # scancel of a queued job
    PRUNE = "prune"                  # a search's pruner stopped the run at an evaluation

    def __str__(self) -> str:
        return self.value


# Ends Slurm may report for a job that could not record its own.
_SLURM_ENDS = frozenset({S.NODE_FAIL, S.OUT_OF_MEMORY, S.FAILED, S.CANCELLED, S.TIMEOUT, S.PREEMPTED, S.LOST})
TRANSITIONS: dict[tuple[RunState | None, Event], frozenset[RunState]] = {
    (None, Event.SUBMIT): frozenset({S.PENDING}),
    (None, Event.START): frozenset({S.RUNNING}),
    (S.PENDING, Event.START): frozenset({S.RUNNING}),
    (S.PENDING, Event.CANCEL): frozenset({S.CANCELLED}),
    (S.RUNNING, Event.FINISH): frozenset({S.COMPLETED}),
    (S.RUNNING, Event.PRUNE): frozenset({S.PRUNED}),
    (S.RUNNING, Event.FAIL): frozenset({S.FAILED}),
    (S.RUNNING, Event.RETRY): frozenset({S.REQUEUED}),
    (S.RUNNING, Event.STOP_REQUEUE): frozenset({S.REQUEUED}),
    (S.RUNNING, Event.STOP_END): frozenset({S.TIMEOUT, S.PREEMPTED}),
    (S.RUNNING, Event.TERMINATE): frozenset({S.CANCELLED}),
    (S.RUNNING, Event.SLURM_END): _SLURM_ENDS,
    (S.RUNNING, Event.SLURM_REQUEUE): frozenset({S.REQUEUED}),
    (S.REQUEUED, Event.START): frozenset({S.RUNNING}),
    (S.REQUEUED, Event.STOP_END): frozenset({S.TIMEOUT, S.PREEMPTED}),  # the requeue was refused
    (S.REQUEUED, Event.FAIL): frozenset({S.FAILED}),  # the requeue of a retry was refused
    (S.REQUEUED, Event.CANCEL): frozenset({S.CANCELLED}),
    (S.REQUEUED, Event.SLURM_END): _SLURM_ENDS,
    # What the job saw (a SIGTERM, an exception of a killed helper) was the consequence of Slurm's decision.
    (S.CANCELLED, Event.SLURM_END): frozenset({S.PREEMPTED, S.NODE_FAIL, S.OUT_OF_MEMORY, S.TIMEOUT, S.FAILED}),
    (S.FAILED, Event.SLURM_END): frozenset({S.PREEMPTED, S.NODE_FAIL, S.OUT_OF_MEMORY, S.TIMEOUT}),
    (S.CANCELLED, Event.SLURM_REQUEUE): frozenset({S.REQUEUED}),
    (S.FAILED, Event.SLURM_REQUEUE): frozenset({S.REQUEUED}),
    (S.PREEMPTED, Event.SLURM_REQUEUE): frozenset({S.REQUEUED}),
    # A finished run is never trained again; with a higher training.max_steps it continues.
    (S.COMPLETED, Event.ALREADY_COMPLETE): frozenset({S.COMPLETED}),
    (S.COMPLETED, Event.SUBMIT): frozenset({S.PENDING}),
    (S.COMPLETED, Event.START): frozenset({S.RUNNING}),
    (S.PRUNED, Event.SUBMIT): frozenset({S.PENDING}),
    (S.PRUNED, Event.START): frozenset({S.RUNNING}),
    **{(s, Event.SUBMIT): frozenset({S.PENDING}) for s in UNFINISHED},
    **{(s, Event.START): frozenset({S.RUNNING}) for s in UNFINISHED},
}


class InvalidTransition(RuntimeError):
    """A state change the table does not allow: a bug, never a user error."""


def transition(current: RunState | None, event: Event, target: RunState) -> RunState:
    """`target` if the table allows `event` to move a run from `current` to it; raises InvalidTransition if not."""
    if target not in TRANSITIONS.get((current, event), ()):
        raise InvalidTransition(f"{current or '(new run)'} --{event}--> {target} is not a transition of a run")
    return target
