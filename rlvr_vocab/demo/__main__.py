"""`python -m rlvr_vocab.demo`: the README's main command, the research question answered on the embedded demo.

Brings up the local Slurm (slurm/local_cluster.sh; where it cannot, e.g. without root, it says so and runs the
sweeps with the local launcher), submits both arms, the baseline (experiment=demo) and the reasoning vocabulary
(experiment=demo_reasoning), over 2 seeds each with their evaluations chained (a job for the initial weights, per
milestone checkpoint and per final model), follows them until every training and evaluation job has ended, then
shows the status, the paired comparison of the arms with its intervals, the curves, and writes the report, printing
where it is.
"""

import json
import os
import subprocess
import sys
import time

from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.slurm.local import ensure_local_cluster

ARMS = {"demo": "demo-seeds", "demo_reasoning": "demo_reasoning-seeds"}
_POLL_S = 10


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlvr_vocab", *args], capture_output=True, text=True)


def _pending(rows: list[dict]) -> list[str]:
    """What is still queued or running: training runs, and evaluation jobs the runs submitted."""
    live = [f"{r['exp_name']}/{r['run_name']} {r['state']}" for r in rows if r["state"] in ("PENDING", "RUNNING",
                                                                                             "REQUEUED")]
    jobs = [j for r in rows for j in _eval_jobs(r) if j.get("job_id")]
    on_slurm = [j["job_id"] for j in jobs if j.get("launcher") != "local"]
    if on_slurm:
        try:
            queued = slurm_client.queue_states(on_slurm)
        except slurm_client.SlurmError:
            queued = {}  # unanswered: the runs' own states still say what is pending
        live += [f"evaluation job {j}" for j in queued]
    live += [f"evaluation process {j['job_id']}" for j in jobs if j.get("launcher") == "local" and
             os.path.exists(f"/proc/{j['job_id']}")]
    return live


def _eval_jobs(row: dict) -> list[dict]:
    try:
        with RunPaths(row["run_dir"]).manifest.open() as f:
            return json.load(f).get("eval_jobs") or []
    except (OSError, ValueError):
        return []


def _follow() -> None:
    last = None
    while True:
        out = _cli("status", "--json")
        rows = [r for r in json.loads(out.stdout or "[]") if r.get("sweep_id") in ARMS.values()]
        pending = _pending(rows)
        line = f"{len(rows) - sum(r['state'] in ('PENDING', 'RUNNING', 'REQUEUED') for r in rows)}/{len(rows)} runs " \
               f"ended; waiting for: {', '.join(pending) or 'nothing'}"
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
            last = line
        if rows and not pending:
            return
        time.sleep(_POLL_S)


def main() -> int:
    _step("local Slurm")
    launcher = "slurm_cpu" if ensure_local_cluster(quiet=False) is None else "local"
    if launcher == "local":
        print("no local Slurm here (see above): running the arms with the local launcher instead", flush=True)

    codes = []
    for experiment in ARMS:
        _step(f"{experiment}: 2 seeds, evaluations chained ({launcher} launcher)")
        codes.append(subprocess.run([
            sys.executable, "-m", "rlvr_vocab.train", "--multirun", f"hydra/launcher={launcher}",
            f"experiment={experiment}", "+sweep=seeds", "eval.chain=true", f"eval.launcher={launcher}",
        ]).returncode)
    if any(codes):
        return max(codes)

    _step("following the training and evaluation jobs")
    _follow()
    baseline, reasoning = ARMS.values()
    for title, args in (("status", ["status"]), ("compare", ["compare", "--sweep", baseline, "--vs", reasoning]),
                        ("plot", ["plot", "--sweep", baseline, "--vs", reasoning]),
                        ("report", ["report", "--sweep", baseline, "--vs", reasoning])):
        _step(f"rlvr-vocab {' '.join(args)}")
        done = subprocess.run([sys.executable, "-m", "rlvr_vocab", *args])
        if title == "report" and done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
