"""The failures of a distributed job's ranks, for rank 0 to record the first cause.

When one rank fails, the others see only its absence: gloo's "Connection closed by peer", NCCL's remote error, or
the SIGTERM that `srun --kill-on-bad-exit` sends them. Rank 0 records the attempt, so every rank that fails writes
its error into the run dir (`.rank_failures/<attempt key>.rank<N>.json`), and rank 0 records the first failure that
is not such an echo, classifies it for the retry policy, and names the rank. A connection reset that no rank
explains is a transient error (a network blip), not a bug.
"""

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from rlvr_vocab.ops.retry import TRANSIENT
from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.slurm import client as slurm_client

# What a rank sees when another rank of its job went away: a consequence, never the cause.
# Only phrases that mean a lost connection or process: a bug that names gloo is still a bug.
PEER_LOSS = re.compile(
    r"Connection closed by peer|Connection reset by peer|NCCL communicator was aborted|remote process exited|"
    r"ncclRemoteError|terminated by SIGTERM", re.IGNORECASE)
_POLL_S = 0.2
# Records older than this process (less a minute: the ranks start together) are an earlier attempt's, where the
# attempt key cannot tell them apart (torchrun without --standalone names every run "none").
_SINCE = time.time() - 60
# How long rank 0 waits for the failed rank's record (written as it dies, before its connections close); short, as
# srun's SIGTERM is followed by a SIGKILL after Slurm's KillWait (30 s by default, 10 s on the local cluster).
_WAIT_S = 2.0


def is_peer_loss(summary: str) -> bool:
    return bool(PEER_LOSS.search(summary))


def _attempt_key() -> str:
    """This attempt, as every rank of it names it: Slurm's job and restart count, or torchrun's run id."""
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return f"{job}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return os.environ.get("TORCHELASTIC_RUN_ID") or "local"


def rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def record(run_dir: Path, summary: str) -> None:
    """This rank failed with `summary` (`Type: message`). Best effort: the rank is dying, and a run dir rank 0 has not
    made yet (a failure at start-up) is not this rank's to make."""
    folder = RunPaths(run_dir).rank_failures
    try:
        folder.mkdir(exist_ok=True)
        atomic_write_text(folder / f"{_attempt_key()}.rank{rank()}.json",
                          json.dumps({"rank": rank(), "time": time.time(), "summary": summary}))
    except OSError as e:
        logger.warning(f"rank {rank()} could not record its failure for rank 0 ({e})")


def first_cause(run_dir: Path, wait_s: float) -> dict | None:
    """The earliest failure another rank of this attempt recorded that is not the echo of a lost peer, waiting up to
    `wait_s` for one to be written (the failed rank writes it as it dies); None if none."""
    folder, key = RunPaths(run_dir).rank_failures, _attempt_key()
    deadline = time.monotonic() + wait_s
    while True:
        causes = []
        for path in folder.glob(f"{key}.rank*.json"):
            try:
                failure = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written: the next look sees it
            if failure["rank"] != rank() and failure["time"] >= _SINCE and not is_peer_loss(failure["summary"]):
                causes.append(failure)
        if causes or time.monotonic() >= deadline:
            return min(causes, key=lambda f: f["time"]) if causes else None
        time.sleep(_POLL_S)


def attribute(run_dir: Path, summary: str, classify: Callable[[str], str]) -> tuple[str, str]:
    """(reason, failure class) of rank 0's failure `summary` in a job of several ranks: another rank's first failure
    where rank 0 only saw it go away."""
    if not is_peer_loss(summary):
        return summary, classify(summary)
    cause = first_cause(run_dir, _WAIT_S)
    if cause is None:
        return f"{summary} (no other rank recorded a failure: a lost connection, retried as transient)", TRANSIENT
    return f"rank {cause['rank']} failed first: {cause['summary']} (rank 0 then: {summary})", classify(cause["summary"])


def ended_by_peer(run_dir: Path) -> str | None:
    """Why rank 0 got its SIGTERM when a failed rank made `srun --kill-on-bad-exit` (or torchrun) end the others;
    None when it came from a cancel, the time limit or a preemption. Slurm's word first: the job is still RUNNING,
    and not being preempted, only when one of its own tasks failed (a cancel's SIGTERM also ends other ranks with
    errors of their own, which are not the cause)."""
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        try:
            fields = slurm_client.show_job(job)
        except slurm_client.SlurmError:
            return None
        if fields.get("JobState") != "RUNNING" or fields.get("PreemptTime") not in (None, "", "None"):
            return None
    cause = first_cause(run_dir, _WAIT_S)
    if cause is not None:
        return f"rank {cause['rank']} failed first: {cause['summary']} (srun then ended the other ranks)"
    if not job:
        return None
    return "a rank of the job failed without recording an error (killed?); srun then ended the other ranks"
