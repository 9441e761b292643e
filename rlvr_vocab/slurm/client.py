"""Every call to Slurm's commands (sbatch, scontrol, squeue, sacct, sacctmgr, scancel, sinfo) and the parsing of their
output (pure parsers of scontrol, squeue, sinfo and sacctmgr text in rlvr_vocab.slurm.parse).

Callers get parsed values or a `SlurmError` whose message is one line saying what Slurm (or its absence) said; none
of them runs a Slurm command itself. Timeouts are short and explicit: a login node's CLI must never hang on an
overloaded controller.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NamedTuple

from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV
from rlvr_vocab.core.states import RunState
from rlvr_vocab.slurm import parse as slurm_parse

# Job states of jobs still in the controller's hands (squeue and sacct spellings).
LIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED",
                         "CONFIGURING", "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT"})
# squeue states of a job whose processes may still be writing files.
HOLDING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"})
_TIMEOUT_S = 30
# sbatch waits for the controller to accept or test a job: longer, and a timeout means "try again", never a hang.
SUBMIT_TIMEOUT_S = 60


class SlurmError(Exception):
    """A Slurm command could not be run or refused: the message is one line."""


def _run(args: list[str], timeout: float = _TIMEOUT_S, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=stdin)
    except FileNotFoundError:
        raise SlurmError(f"{args[0]} not found (no Slurm client on this machine)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer within {timeout:.0f} s (the controller may be overloaded)"
                         ) from None


def _said(out: subprocess.CompletedProcess) -> str:
    text = (out.stderr or out.stdout or "").strip()
    lines = [ln.removeprefix("sbatch: error: ").strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines) or f"exit code {out.returncode}"


def _checked(args: list[str], timeout: float = _TIMEOUT_S) -> str:
    out = _run(args, timeout)
    if out.returncode:
        command = " ".join(args[:2]) if args[0] == "scontrol" else args[0]  # `scontrol requeue`, not `scontrol`
        raise SlurmError(f"{command} failed: {_said(out)}")
    return out.stdout


def job_state(text: str) -> str:
    """A state as sacct/squeue print it: "CANCELLED by 0" and "CANCELLED+" (truncated) both mean CANCELLED."""
    return text.split()[0].rstrip("+") if text.strip() else ""


def array_id(job_id: str) -> str:
    """The job id an array task (`123_4`, `123_[0-9%4]`) belongs to; a plain job's own id."""
    return job_id.split("_", 1)[0]


# Slurm's job states as run states (the rest have the same name).
_AS_RUN_STATE = {"SUSPENDED": RunState.RUNNING, "RESIZING": RunState.RUNNING, "CONFIGURING": RunState.RUNNING,
                 "COMPLETING": RunState.RUNNING, "REQUEUE_HOLD": RunState.REQUEUED, "REQUEUE_FED": RunState.REQUEUED,
                 "BOOT_FAIL": RunState.NODE_FAIL, "DEADLINE": RunState.TIMEOUT, "REVOKED": RunState.CANCELLED}
# Slurm's account of an end that overrides whatever the job recorded: the job saw only a SIGTERM or a SIGKILL.
_SLURM_DECIDES = frozenset({RunState.PREEMPTED, RunState.NODE_FAIL, RunState.OUT_OF_MEMORY, RunState.TIMEOUT})


def run_state(slurm_state: str) -> RunState:
    """A Slurm job state (sacct or squeue spelling) as a run state."""
    state = job_state(slurm_state)
    return _AS_RUN_STATE.get(state) or RunState.parse(state) or RunState.UNKNOWN


def another_task_failed(slurm_state: str, recorded: RunState | None) -> bool:
    """A task of a multi-task job failed and Slurm ended the others: their SIGTERM reads as CANCELLED, but the job
    FAILED."""
    return run_state(slurm_state) == RunState.FAILED and recorded == RunState.CANCELLED


def end_state(slurm_state: str | None, recorded: RunState | None) -> RunState | None:
    """How a job's run ended when Slurm's account overrides the job's own (None: the job's record stands).

    A job killed outright (SIGKILL, a node going down) records no end; one stopped by Slurm records what it saw (a
    SIGTERM, an exception from a killed helper) rather than why.
    """
    state = run_state(slurm_state) if slurm_state else None
    if state in _SLURM_DECIDES and state != recorded:
        return state
    if slurm_state and another_task_failed(slurm_state, recorded):
        return RunState.FAILED
    if recorded is None:
        return state if state in (RunState.FAILED, RunState.CANCELLED) else RunState.LOST
    return None


# Ended for good (a PREEMPTED job may be requeued); with submitit's spellings of a local job's end.
_ENDED_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                           "DEADLINE", "FINISHED", "INTERRUPTED"})


def has_ended(slurm_state: str) -> bool:
    """The job will not run again: a waiting launcher may stop polling it."""
    return job_state(slurm_state) in _ENDED_STATES


def parse_time(text: str) -> float | None:
    """sacct's local timestamps (2026-12-02T10:00:00) as epoch seconds; None for Unknown/None."""
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------ sacct


class SacctRow(NamedTuple):
    """One run of a job (a requeued job has one per run), its steps' figures folded in."""

    job_id: str  # `123`, `123_4`, or a pending array's `123_[0-9%4]`
    state: str
    exit_code: str
    nodes: str
    start: float | None
    end: float | None
    submit: float | None = None
    elapsed_s: float = 0.0  # so far, for a run still running
    cpus: int = 0  # allocated
    gpus: int = 0  # allocated: gres/gpu of its AllocTRES
    max_rss: int | None = None  # bytes: the most any of its steps used (None: not measured)


# Steps (`123.batch`, `123.0`, `16_3.extern`) are asked for too: only they carry MaxRSS.
_SACCT_FIELDS = "JobID,State,ExitCode,NodeList,Start,End,Submit,ElapsedRaw,AllocCPUS,AllocTRES,MaxRSS"
_RSS_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def gpus_of_tres(tres: str) -> int:
    """Allocated GPUs in a TRES list (`billing=8,cpu=8,gres/gpu:a100=4,gres/gpu=4,mem=64G,node=1`): its
    `gres/gpu=N`, else the sum of its typed `gres/gpu:TYPE=N`; 0 without either."""
    plain, typed = None, 0
    for item in tres.split(","):
        name, _, value = item.partition("=")
        if not value.isdigit():
            continue
        if name == "gres/gpu":
            plain = int(value)
        elif name.startswith("gres/gpu:"):
            typed += int(value)
    return typed if plain is None else plain


def parse_rss(text: str) -> int | None:
    """sacct's MaxRSS (`123456K`, `1.50G`, `0`) as bytes; None when empty. A bare number is in KiB, sacct's unit."""
    text = text.strip()
    unit = _RSS_UNITS.get(text[-1:].upper()) if text else None
    number = text[:-1] if unit else text
    try:
        return int(float(number) * (unit or 1024))
    except ValueError:
        return None


def _number(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def parse_sacct(text: str) -> list[SacctRow]:
    """`sacct -n -P -o _SACCT_FIELDS` (without -X) as one row per run of each job: a step row (`ID.step`) follows
    its job's row and only adds its MaxRSS to it."""
    rows: list[SacctRow] = []
    latest: dict[str, int] = {}  # job id -> index of its newest row so far (sacct -D lists a job's runs in order)
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 11:
            continue
        job_id, _, step = parts[0].partition(".")
        rss = parse_rss(parts[10])
        if step:
            i = latest.get(job_id)
            if i is not None and rss is not None:
                rows[i] = rows[i]._replace(max_rss=max(rows[i].max_rss or 0, rss))
            continue
        latest[job_id] = len(rows)
        rows.append(SacctRow(job_id, job_state(parts[1]), parts[2], parts[3], parse_time(parts[4]),
                             parse_time(parts[5]), parse_time(parts[6]), float(_number(parts[7])), _number(parts[8]),
                             gpus_of_tres(parts[9]), rss))
    return rows


# Job ids per sacct (and squeue) call: Linux caps one argument at 128 KiB (about 12,000 plain ids); the controller
# answers several such calls as fast as one.
_IDS_PER_CALL = 5000


def sacct(job_ids: list[str], every_run: bool = False) -> list[SacctRow]:
    """Accounting rows of these jobs (one call per 5,000 of them); `every_run`: one row per run of a requeued job
    (sacct -D), oldest first, else the latest run of each."""
    # Array tasks that have not started yet are only known under their array's id.
    ids = sorted(set(job_ids) | {array_id(j) for j in job_ids})
    rows = []
    for start in range(0, len(ids), _IDS_PER_CALL):
        chunk = ",".join(ids[start:start + _IDS_PER_CALL])
        out = _run(["sacct", "-n", "-P", *(["-D"] if every_run else []), "-o", _SACCT_FIELDS, "-j", chunk], timeout=60)
        if out.returncode:
            raise SlurmError(f"sacct failed: {_said(out)}")
        rows += parse_sacct(out.stdout)
    return rows


def in_task_range(task: int, spec: str) -> bool:
    """Whether array task `task` is in sacct's range spec `0-3,7%2`."""
    for part in spec.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and int(low) <= task <= int(high or low):
            return True
    return False


def row_for(rows: dict[str, SacctRow], job_id: str) -> SacctRow | None:
    """A job's row; array tasks not yet started are only listed under their array (`A` or `A_[0-3%4]`)."""
    if job_id in rows or "_" not in job_id:
        return rows.get(job_id)
    base, task = job_id.split("_", 1)
    for key, row in rows.items():
        if key.startswith(f"{base}_[") and task.isdigit() and in_task_range(int(task), key[len(base) + 2:].rstrip("]")):
            return row
    row = rows.get(base)
    return row if row is not None and row.state == "PENDING" else None


def job_runs(job_id: str) -> list[SacctRow]:
    """Every run of one job (requeues included), oldest first."""
    return [r for r in sacct([job_id], every_run=True) if r.job_id == job_id or "_" not in job_id]


# ------------------------------------------------------------------------------------------------ scontrol


def controller_down() -> str | None:
    """Why slurmctld does not answer (one `scontrol ping`), or None if it does."""
    try:
        out = _run(["scontrol", "ping"])
    except SlurmError as e:
        return str(e)
    if "is UP" in out.stdout:
        return None
    # e.g. "Slurmctld(primary) at vm is DOWN", then a banner of asterisks
    said = (out.stdout.strip() or out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]
    return f"slurmctld not responding ({said})"


def show_job(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` of exactly this job or array task (`A_i`).

    Asked for an array's id, scontrol answers with every task of the array, and the task whose own job id equals the
    array id is not the first line: pick the line that is this job.
    """
    out = _run(["scontrol", "show", "job", "-o", job_id])
    if out.returncode:
        raise SlurmError(f"scontrol show job {job_id} failed: {_said(out)}")
    lines = [slurm_parse.key_values(line) for line in out.stdout.splitlines() if line.strip()]
    if "_" in job_id:
        array, task = job_id.split("_", 1)
        mine = [f for f in lines if f.get("ArrayJobId") == array and f.get("ArrayTaskId") == task]
    else:
        mine = [f for f in lines if f.get("JobId") == job_id]
    if not mine:
        raise SlurmError(f"scontrol show job {job_id}: no such job in its answer")
    return mine[0]


def hostnames(nodelist: str) -> list[str]:
    """`scontrol show hostnames` of a node list (`node[1-2]`)."""
    return _checked(["scontrol", "show", "hostnames", nodelist]).split()


def config_value(key: str) -> str | None:
    return slurm_parse.config_value(_checked(["scontrol", "show", "config"]), key)


def max_array_size() -> int | None:
    try:
        value = config_value("MaxArraySize")
    except SlurmError:
        return None
    return int(value) if value and value.isdigit() else None


def requeue(job_id: str) -> None:
    _checked(["scontrol", "requeue", job_id])


def start_now(job_id: str) -> None:
    """Make a pending (requeued) job eligible at once instead of after its requeue delay."""
    _checked(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])


def version() -> str:
    """The Slurm release of this machine's client commands (`sinfo --version`)."""
    return _checked(["sinfo", "--version"], timeout=15).split()[-1]


def partitions() -> dict[str, dict[str, str]]:
    """`scontrol show partition`: name -> fields (State, MaxTime, AllowAccounts, Default, ...)."""
    return slurm_parse.partitions(_checked(["scontrol", "show", "partition", "-o"]))


# ------------------------------------------------------------------------------------------------ squeue


def queue_states(job_ids: list[str]) -> dict[str, str]:
    """squeue's state of each of these jobs still in the queue (array tasks one a line), from one call."""
    ids = {j for j in job_ids if j}
    if not ids:
        return {}
    arrays = sorted({array_id(j) for j in ids})
    states = {}
    for start in range(0, len(arrays), _IDS_PER_CALL):  # the same limit on one argument as sacct's
        out = _run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays[start:start + _IDS_PER_CALL])])
        if out.returncode and "Invalid job id" not in out.stderr:
            raise SlurmError(f"squeue failed: {_said(out)}")
        states.update(slurm_parse.job_states(out.stdout))
    # A pending array prints as one line `A_[0-9%4]`.
    for key, state in list(states.items()):
        if "_[" in key:
            base, spec = key.split("_[", 1)
            for j in ids:
                if j.startswith(f"{base}_") and j.split("_", 1)[1].isdigit() and \
                        in_task_range(int(j.split("_", 1)[1]), spec.rstrip("]")):
                    states.setdefault(j, state)
    return {j: s for j, s in states.items() if j in ids}


def time_left_s(job_id: str) -> float | None:
    """Seconds until this job's time limit (None if unknown or unlimited)."""
    try:
        out = _run(["squeue", "-h", "-j", job_id, "-o", "%L"], timeout=20)
    except SlurmError:
        return None
    return None if out.returncode else slurm_parse.seconds_left(out.stdout)


# ------------------------------------------------------------------------------------------------ scancel, sbatch


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _checked(["scancel", *job_ids])


def signal_job(job_id: str, signal_name: str) -> None:
    """Send a signal (e.g. USR1) to every task of a job's steps."""
    _checked(["scancel", f"--signal={signal_name}", job_id])


def kill_steps(job_id: str, name: str) -> list[str]:
    """SIGKILL the job's running steps named `name` (srun --job-name): a step can outlive its srun. Their ids."""
    out = _checked(["squeue", "-h", "-s", "-j", job_id, "-o", "%i %j"])
    found = [fields[0] for fields in map(str.split, out.splitlines()) if fields[1:] == [name]]
    for step in found:
        _checked(["scancel", "--signal=KILL", step])
    return found


def sbatch_test_only(script_path: str) -> None:
    """Ask Slurm whether it would accept this script; raises SlurmError in Slurm's own words if not."""
    out = _run(["sbatch", "--test-only", script_path], timeout=SUBMIT_TIMEOUT_S)
    if out.returncode:
        raise SlurmError(f"Slurm refuses the job: {_said(out)}")


def sbatch(args: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str:
    """Submit (`sbatch --parsable ARGS`); returns the job id."""
    try:
        out = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True,
                             timeout=SUBMIT_TIMEOUT_S, cwd=cwd, env={**os.environ, **(env or {})})
    except FileNotFoundError:
        raise SlurmError("sbatch not found (no Slurm client on this machine)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"sbatch did not answer within {SUBMIT_TIMEOUT_S} s (the controller may be overloaded)"
                         ) from None
    if out.returncode:
        raise SlurmError(f"sbatch failed: {_said(out)}")
    return out.stdout.strip().split(";")[0]


# ------------------------------------------------------------------------------------------------ sinfo


def most_gpus_per_node(partition: str | None) -> int | None:
    """Most GPUs (gres gpu) on one node of the partition (the default one if None); None if unknown."""
    try:
        out = _checked(["sinfo", "-h", "-o", "%P %G"])
    except SlurmError:
        return None
    return slurm_parse.most_gpus_per_node(out, partition)


def cluster_problem() -> str | None:
    """None if a Slurm controller answers with a usable node, else why not."""
    try:
        out = _run(["sinfo", "-h", "-o", "%a %t"], timeout=15)
    except SlurmError as e:
        return str(e)
    if out.returncode or "up" not in out.stdout:
        return f"sinfo: {out.stderr.strip() or out.stdout.strip() or 'no partition up'}"
    if not any(state in out.stdout for state in ("idle", "mix", "alloc")):
        return f"no usable node: {out.stdout.strip()}"
    return None


# ------------------------------------------------------------------------------------------------ accounting


def accounting_problem() -> str | None:
    """None when Slurm's accounting answers (sacct has the history `status` reads), else why not."""
    storage = config_value("AccountingStorageType") or ""
    if storage.endswith("/none") or not storage:
        return f"accounting is off (AccountingStorageType={storage or 'unset'})"
    try:
        _checked(["sacct", "-n", "-X", "-P", "-o", "JobID", "-j", "1"])
    except SlurmError as e:
        return str(e)
    return None


def associations(user: str) -> list[dict[str, str]]:
    """The user's associations: account, partition, QOS list, default QOS."""
    return slurm_parse.associations(_checked(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}",
                                              "format=Account,Partition,QOS,DefaultQOS"]))


def default_account(user: str) -> str | None:
    out = _checked(["sacctmgr", "-n", "-P", "show", "user", user, "format=DefaultAccount"]).strip()
    return out.splitlines()[0] if out else None


def qos_limits(name: str) -> tuple[float | None, int | None] | None:
    """(MaxWall in minutes, MaxSubmitJobsPerUser) of a QOS, None for no limit; None if it does not exist."""
    return slurm_parse.qos_limits(_checked(["sacctmgr", "-n", "-P", "show", "qos", "where", f"name={name}",
                                            "format=Name,MaxWall,MaxSubmitPU"]), name)


# ------------------------------------------------------------------------------------------------ this job


@contextmanager
def outside_job() -> Iterator[None]:
    """Submit from inside a job as from a login node: without the job's SLURM_* (sbatch would pass a training
    array task's SLURM_ARRAY_TASK_ID on to a job that is no array task), torch.distributed variables and the token
    of the job's services (void once they stop; no other job needs it)."""
    inherited = {k: v for k, v in os.environ.items()
                 if (k.startswith("SLURM_") and k != "SLURM_CONF") or k in DISTRIBUTED_ENV or k == SERVICE_TOKEN_ENV}
    for key in inherited:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(inherited)


# torch.distributed's variables of a job's rank: no job submitted from it, nor a service it starts, is that rank.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def current_job() -> str | None:
    """This process's job as the registry names it: `A_i` for an array task, else the job id; None outside Slurm."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")
