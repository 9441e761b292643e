"""SLURM's word on many runs at once: one sacct call for all their jobs (every run of each, requeues included),
and one question to the controller when accounting may be stale."""

import json

from rlvr_vocab.slurm import client as slurm_client


class SlurmView:
    """What one sacct call said: job id -> its latest run's row (and every run of it), or why it could not be asked."""

    # Plain classes here, not dataclasses: importing `dataclasses` (inspect, ast) costs `status` ~20 ms.
    def __init__(self, rows: dict[str, slurm_client.SacctRow], error: str | None = None,
                 runs: dict[str, list[slurm_client.SacctRow]] | None = None) -> None:
        self.rows, self.error = rows, error
        self.runs = runs if runs is not None else {job: [row] for job, row in rows.items()}
        # Set when sacct answered but the controller does not: accounting's live states may be stale.
        self.controller_error: str | None = None
        # The controller's queue state of the jobs asked about that accounting has no record of (yet): a held job,
        # or one slurmdbd has not recorded, is still queued.
        self.queued: dict[str, str] = {}

    def job(self, job_id: str) -> slurm_client.SacctRow | None:
        return slurm_client.row_for(self.rows, job_id)

    def job_runs(self, job_id: str) -> list[slurm_client.SacctRow] | None:
        """Every run of the job, oldest first (an array task not started yet: its array's pending row)."""
        if job_id in self.runs:
            return self.runs[job_id]
        row = self.job(job_id)
        return [row] if row is not None else None

    def finished_jobs(self) -> dict[str, list[slurm_client.SacctRow]]:
        """The jobs SLURM is done with (their latest run ended), and every run of each."""
        return {job: runs for job, runs in self.runs.items()
                if runs[-1].end is not None and runs[-1].state not in slurm_client.LIVE_STATES and "[" not in job}


def query_sacct(job_ids: list[str]) -> SlurmView:
    """One sacct call for all the given jobs (never one per job: it would load the controller), every run of each."""
    try:
        rows = slurm_client.sacct(job_ids, every_run=True)
    except (slurm_client.SlurmError, OSError) as e:  # OSError: the kernel refused the command line (too long)
        return SlurmView({}, f"sacct could not be asked: {e}" if isinstance(e, OSError) else str(e))
    runs: dict[str, list[slurm_client.SacctRow]] = {}
    for row in rows:  # oldest first: the last row of a job is its latest run
        runs.setdefault(row.job_id, []).append(row)
    return SlurmView({job: job_runs[-1] for job, job_runs in runs.items()}, runs=runs)


def ask_slurm(job_ids: list[str], also: list[str] = ()) -> SlurmView:
    """What SLURM says of these jobs (and of `also`'s, asked only for their resources): one sacct call, and one
    question to the controller when that may be stale: `squeue` for the jobs sacct has no record of, else
    `scontrol ping` when it reports live jobs."""
    # Asked for an array's id, sacct lists every task of it: asking by array keeps the call's one argument short
    # (Linux takes 128 KiB: some 12,000 task ids) whatever the number of tasks.
    asked = sorted({slurm_client.array_id(job_id) for job_id in (*job_ids, *also)})
    slurm = query_sacct(asked) if asked else SlurmView({})
    if slurm.error:
        return slurm
    unknown = [j for j in job_ids if slurm.job(j) is None]
    if unknown:
        try:
            slurm.queued = slurm_client.queue_states(unknown)
        except slurm_client.SlurmError as e:
            slurm.controller_error = str(e)
    elif any(row.state in slurm_client.LIVE_STATES for row in slurm.rows.values()):
        slurm.controller_error = slurm_client.controller_down()
    return slurm


def job_runs(slurm: SlurmView, held: dict[str, str], job: str) -> list[slurm_client.SacctRow] | None:
    """Every run of a job: SLURM's answer if it gave one, else the index's (`held`: job -> its runs as JSON); None if
    neither knows it."""
    runs = slurm.job_runs(job)
    if runs is None and job in held:
        runs = [slurm_client.SacctRow(*row) for row in json.loads(held[job])]
    return runs
