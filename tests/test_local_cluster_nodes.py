"""Two Slurm nodes on this machine (slurm/local_cluster.sh start --nodes 2): multi-node jobs.

Node 2 is a second slurmd in a network namespace of its own; these tests check that jobs see two
real nodes: placement, `srun` across both, a torch.distributed (gloo) all_reduce between them, and a
node failure ending or requeueing a two-node job. The module starts the two nodes and goes back to
one node at the end.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLUSTER_LOCK, DEMO, REPO, manifest, release, run_module, run_train, wait_for

from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.overrides import name_of_overrides

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPT = REPO / "slurm" / "local_cluster.sh"
NODE2 = "rlvr-node2"  # node 2's name in slurm/local_cluster.sh
USABLE = ("idle", "mixed", "allocated", "completing")


def cluster(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


def node_states() -> dict[str, str]:
    out = subprocess.run(["sinfo", "-h", "-N", "-p", "debug", "-o", "%N %T"], capture_output=True, text=True,
                         timeout=30)
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def job_fields(job: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def sacct_rows(job: str) -> list[tuple[str, str]]:
    """(State, NodeList) of each run of the job (-D: a requeued job's earlier runs too)."""
    out = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-o", "State,NodeList", "-j", job],
                         capture_output=True, text=True).stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def sacct_nodes(job: str) -> set[str]:
    """The nodes of the job's last run. Accounting may first name only the batch host of a short job."""
    rows = sacct_rows(job)
    return set(subprocess.run(["scontrol", "show", "hostnames", rows[-1][1]], capture_output=True, text=True)
               .stdout.split()) if rows else set()


def is_done(job: str) -> bool:
    return not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip()


def wait_state(job: str, state: str, timeout: float = 120) -> dict[str, str]:
    return wait_for(lambda: (f := job_fields(job)).get("JobState") == state and f, timeout,
                    f"job {job} to be {state}", interval=0.5)


@pytest.fixture(scope="module")
def nodes():
    """[node 1, node 2] of a two-node cluster, back to one node afterwards; the cluster to these tests alone.

    Skips with the reason when two nodes cannot be had, except under CI=true, where that fails.
    """
    with CLUSTER_LOCK.hold(exclusive=True):
        start = cluster("start", "--nodes", "2")
        states = node_states() if start.returncode == 0 else {}
        if start.returncode or len(states) != 2 or NODE2 not in states:
            why = (start.stderr or start.stdout).strip() or f"sinfo shows {states}"
            cluster("start")  # whatever was half set up goes
            if os.environ.get("CI") == "true":
                pytest.fail(f"two local Slurm nodes needed under CI=true: {why}")
            pytest.skip(f"two local Slurm nodes not available: {why}")
        yield [next(n for n in states if n != NODE2), NODE2]
        back = cluster("start")
        assert back.returncode == 0, f"could not go back to one node: {back.stderr or back.stdout}"


@pytest.fixture
def submit(tmp_path):
    """sbatch ARGS... -> (job id, its output file); the jobs are cancelled at the end."""
    jobs = []

    def _submit(*args: str) -> tuple[str, Path]:
        out = tmp_path / f"job{len(jobs)}.out"
        job = subprocess.run(["sbatch", "--parsable", "-t", "10", "-o", str(out), *args],
                             capture_output=True, text=True, check=True).stdout.strip()
        jobs.append(job)
        return job, out

    yield _submit
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True)


def finished(job: str, timeout: float = 180) -> str:
    """The job's final state (sacct), once it has left the queue."""
    wait_for(lambda: is_done(job), timeout, f"job {job} to finish", interval=0.5)
    return wait_for(lambda: (rows := sacct_rows(job)) and rows[-1][0] not in ("PENDING", "RUNNING") and rows[-1][0],
                    60, f"job {job} in accounting", interval=0.5)


def test_sinfo_shows_two_idle_nodes(nodes):
    states = wait_for(lambda: (s := node_states()) and all(v == "idle" for v in s.values()) and s, 60,
                      "both nodes idle", interval=0.5)
    assert sorted(states) == sorted(nodes)
    status = cluster("status")
    assert status.returncode == 0 and NODE2 in status.stdout, status.stdout


def test_jobs_land_on_each_node(nodes, submit):
    for node in nodes:
        job, out = submit("-w", node, "--wrap", "hostname")
        assert finished(job) == "COMPLETED"
        assert out.read_text().split() == [node]
        wait_for(lambda job=job, node=node: sacct_nodes(job) == {node}, 60, f"sacct to show job {job} on {node}",
                 interval=0.5)


def test_two_node_job_runs_srun_on_both(nodes, submit):
    job, out = submit("-N2", "--ntasks-per-node=1", "--wrap", "srun hostname")
    assert finished(job) == "COMPLETED", out.read_text()
    assert sorted(out.read_text().split()) == sorted(nodes)
    wait_for(lambda: sacct_nodes(job) == set(nodes), 60, f"sacct to show job {job} on both nodes", interval=0.5)


# One process per node: rank = SLURM_PROCID, rendezvous at the first node of the allocation.
ALL_REDUCE = """
import os, socket, subprocess
import torch
import torch.distributed as dist
first = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                       capture_output=True, text=True, check=True).stdout.split()[0]
os.environ.update(MASTER_ADDR=first, MASTER_PORT="29533")
rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
dist.init_process_group(backend="gloo", init_method="env://", rank=rank, world_size=world)
value = torch.tensor([rank + 1.0])
dist.all_reduce(value)
print(f"rank={rank} host={socket.gethostname()} sum={value.item():g}", flush=True)
dist.destroy_process_group()
"""


def test_gloo_all_reduce_across_nodes(nodes, submit):
    step = f"srun {shlex.quote(sys.executable)} -c {shlex.quote(ALL_REDUCE)}"
    job, out = submit("-N2", "--ntasks-per-node=1", "--wrap", step)
    assert finished(job, timeout=300) == "COMPLETED", out.read_text()[-3000:]
    results = [line.split() for line in out.read_text().splitlines() if line.startswith("rank=")]
    assert sorted(r[0] for r in results) == ["rank=0", "rank=1"], out.read_text()[-3000:]
    assert sorted(r[1] for r in results) == sorted(f"host={n}" for n in nodes)
    assert all(r[2] == "sum=3" for r in results)  # 1 + 2


# ------------------------------------------------------------------------------------------------------------
# The framework's multi-node job path on the two nodes: the demo as one data-parallel (gloo) job, and its faults.

MULTI = ["--multirun", "hydra/launcher=slurm_cpu_multinode"]
# Two ranks, same global batch either way; a checkpoint every step.
TWO_RANKS = ["training.save_steps=1", "eval.enabled=false", *DEMO]


def hostnames(nodelist: str) -> set[str]:
    return set(subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                              check=True).stdout.split())


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def submitted(run_dir: Path) -> str:
    return json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]


def test_demo_trains_across_two_nodes_as_two_ranks_on_one(nodes, demo_cache, experiments_root):
    one = run_train("--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.tasks_per_node=2",
                     "hydra.launcher.wait=true", "run_name=one-node", "training.max_steps=3", *TWO_RANKS)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    two = run_train(*MULTI, "hydra.launcher.wait=true", "run_name=two-nodes", "training.max_steps=3", *TWO_RANKS)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    single, spread = experiments_root / "demo" / "one-node", experiments_root / "demo" / "two-nodes"
    attempt = manifest(spread)["attempts"][0]
    assert manifest(spread)["status"] == "COMPLETED" and attempt["world_size"] == 2
    assert hostnames(attempt["nodes"]) == set(nodes), "one rank on each node"
    assert len(hostnames(manifest(single)["attempts"][0]["nodes"])) == 1
    shown = run_module("show", "two-nodes", module="rlvr_vocab")
    assert all(node in shown.stdout for node in nodes)  # `show` lists the attempt's nodes
    for a, b in zip(metrics(single), metrics(spread), strict=True):
        assert a["step"] == b["step"]
        for key in ("reward", "loss", "completions/mean_length"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)


def test_an_sbatch_wrapper_job_spans_both_nodes(nodes, demo_cache, experiments_root, job_env):
    experiments_root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["sbatch", "--wait", "--parsable", "-N2", "--ntasks-per-node=1", "--cpus-per-task=1", "--gpus-per-node=0",
         "--mem=2G", "--time=30", "slurm/train_baseline.sh", "model=tiny", "dataset=arithmetic",
         "training=grpo_local", "logging=none", "training.max_steps=2", *TWO_RANKS],
        cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, **job_env})
    assert result.returncode == 0, result.stderr
    name = name_of_overrides(["experiment=baseline", "model=tiny", "dataset=arithmetic", "training=grpo_local",
                              "logging=none", "training.max_steps=2", *TWO_RANKS])
    m = manifest(experiments_root / "baseline" / name)
    assert m["status"] == "COMPLETED" and m["last_step"] == 2
    assert m["attempts"][0]["world_size"] == 2 and hostnames(m["attempts"][0]["nodes"]) == set(nodes)


def test_the_stop_signal_stops_both_nodes_at_one_step(nodes, demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "stopped"
    step_gate.hold_at(2)
    submit = run_train(*MULTI, "run_name=stopped", "training.max_steps=4", *TWO_RANKS)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = submitted(run_dir)
    assert step_gate.wait_held() == "2"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # to every rank, as Slurm's lead signal
    step_gate.release()
    stopped = wait_for(lambda: manifest(run_dir).get("status") == "REQUEUED" and manifest(run_dir), 300,
                       "both ranks to checkpoint and the job to requeue")
    assert stopped["last_checkpoint"] == "checkpoints/checkpoint-2" and stopped["attempts"][0]["end_state"] in (
        "PREEMPTED", "TIMEOUT")
    rank1_log = Path(json.loads((run_dir / "submissions.json").read_text())[-1]["stderr"].replace("_0_log", "_1_log"))
    assert "received SIGUSR2" in rank1_log.read_text(), "rank 1 got the signal and stopped with rank 0"
    release(job)
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the requeued two-node job to complete")
    assert final["attempts"][1]["resumed_from_step"] == 2 and final["last_step"] == 4


def test_a_node_down_mid_job_requeues_and_resumes_on_both(nodes, demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "downed"
    step_gate.hold_at(2)  # checkpoint-1 complete on every rank, checkpoint-2 not begun
    submit = run_train(*MULTI, "run_name=downed", "training.max_steps=3", *TWO_RANKS)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = submitted(run_dir)
    step_gate.wait_held(job=job)
    restarts = int(job_fields(job).get("Restarts", 0))  # a rank lost at start-up under load is requeued too
    batch_host = job_fields(job.split("_")[0]).get("BatchHost")
    other = next(n for n in nodes if n != batch_host)  # the node of rank 1
    try:
        subprocess.run(["scontrol", "update", f"nodename={other}", "state=down", "reason=rlvr-multinode-test"],
                       check=True)
        wait_for(lambda: any(state == "NODE_FAIL" for state, _ in sacct_rows(job))
                 and job_fields(job).get("JobState") == "PENDING", 120, "NODE_FAIL in accounting, the job requeued")
    finally:
        subprocess.run(["scontrol", "update", f"nodename={other}", "state=resume"], capture_output=True)
        wait_for(lambda: node_states().get(other) in USABLE, 120, f"{other} back")
    assert states_seen("downed", "REQUEUED") <= {"NODE_FAIL", "REQUEUED"}, "never FAILED or CANCELLED"
    # Released early (Slurm would wait ~2 min), the job must not start while its old steps still exit:
    # a returning node reports them and Slurm kills the job's new run with them.
    job_id = job_fields(job)["JobId"]  # an array task's steps carry its own job id
    wait_for(lambda: subprocess.run(["pgrep", "-f", f"slurmstepd: \\[{job_id}\\."]).returncode == 1, 60,
             "the old job steps to exit")
    step_gate.release()
    release(job, restarts + 1)
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the requeued job to complete")
    first, second = final["attempts"][-2:]
    assert first["end_state"] == "NODE_FAIL" and "NODE_FAIL" in first["reason"], first
    assert second["resumed_from_step"] == 1 and final["last_step"] == 3
    assert hostnames(second["nodes"]) == set(nodes)
    wait_for(lambda: [s for s, _ in sacct_rows(job)][-2:] == ["NODE_FAIL", "COMPLETED"], 60,
             "Slurm to record both runs of the job")


def states_seen(name: str, wanted: str, timeout: float = 60) -> set[str]:
    """Every state `status` shows for the run until it shows `wanted`."""
    seen: set[str] = set()

    def shown() -> bool:
        rows = json.loads(run_module("status", "--json", module="rlvr_vocab").stdout)
        seen.update(r["state"] for r in rows if r["run_name"] == name)
        return wanted in seen

    wait_for(shown, timeout, f"{name} to be {wanted}", interval=1.0)
    return seen


def _rank_pid(job: str, rank: int) -> int | None:
    """The pid of a rank's Python process of this job (any node: the namespaces share this machine's pids)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        env = dict(e.decode(errors="replace").split("=", 1) for e in environ if b"=" in e)
        jobs = {env.get("SLURM_JOB_ID"), f"{env.get('SLURM_ARRAY_JOB_ID')}_{env.get('SLURM_ARRAY_TASK_ID')}"}
        # torch names its main thread pt_main_thread: /proc/PID/comm is no help, the command line is.
        python = command.split(b"\0")[0].endswith((b"python", b"python3"))
        if python and b"submitit.core._submit" in command and job in jobs and env.get("SLURM_PROCID") == str(rank):
            return int(pid)
    return None


def test_one_rank_killed_fails_the_whole_job(nodes, demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "half-dead"
    step_gate.hold_at(2)
    submit = run_train(*MULTI, "run_name=half-dead", "training.max_steps=4", *TWO_RANKS)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = submitted(run_dir)
    step_gate.wait_held()
    pid = wait_for(lambda: _rank_pid(job, 1), 60, "rank 1's process")
    os.kill(pid, signal.SIGKILL)
    # srun --kill-on-bad-exit: rank 0 (held at the gate, in nothing Slurm waits for) goes with it.
    wait_for(lambda: is_done(job.split("_")[0]), 120, "the whole job to end, no rank left behind")
    step_gate.release()
    row = wait_for(lambda: next((r for r in json.loads(run_module("status", "--json", module="rlvr_vocab").stdout)
                                 if r["run_name"] == "half-dead" and r["state"] == "FAILED"), None), 120, "FAILED")
    assert "failed" in row["note"].lower()
    recorded = manifest(run_dir)  # rank 0, ended by srun's SIGTERM, says why as `status` does
    assert recorded["status"] == "FAILED" and "failed without recording an error (killed?)" in recorded["error"]
    complete = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")
                      if (p / "rlvr_complete.json").exists())
    assert complete == ["checkpoint-1"], "nothing half-saved is marked complete"


# Training on the job's first node, the reward server (+services=reward_server) on its last; a checkpoint every step.
SERVED = ["--multirun", "hydra/launcher=slurm_cpu_reward_server", "+services=reward_server", "training.save_steps=1",
          "eval.enabled=false", *DEMO]
PORT = 18765


def service_processes(job: str) -> list[tuple[int, dict[str, str]]]:
    """(pid, environment) of the job's reward-server processes (node 2's pids are this machine's), not its srun."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        python = command.split(b"\0")[0].endswith((b"python", b"python3"))
        if not python or b"rlvr_vocab.model.reward_server" not in command:
            continue
        env = dict(e.decode(errors="replace").split("=", 1) for e in environ if b"=" in e)
        if env.get("SLURM_JOB_ID") == job or env.get("SLURM_ARRAY_JOB_ID") == job.split("_")[0]:
            # The server forks one child per request: the listening process is the one whose parent is no server.
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            if not Path(f"/proc/{parent}/cmdline").exists() or b"reward_server" not in Path(
                    f"/proc/{parent}/cmdline").read_bytes():
                found.append((int(pid), env))
    return found


def http_status(url: str, token: str | None = None) -> int:
    """The HTTP status a GET gets from this process: from outside the run (it is on no node of the job)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_reward_server_beside_training_serves_it_survives_a_requeue_and_refuses_outsiders(
        nodes, demo_cache, experiments_root, step_gate):
    """The service path end to end: started on the job's other node, healthy, its address and token handed to the
    trainer; requests without the run's token refused; a requeue restarts it with a new token; stopped with
    training; the rewards are the in-process ones."""
    run_dir = experiments_root / "demo" / "served"
    step_gate.hold_at(2)  # steps 1 and 2 trained with rewards from the server, checkpoint-1 written
    submit = run_train(*SERVED, "run_name=served", "training.max_steps=3", f"services.reward_server.port={PORT}")
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = submitted(run_dir)
    assert step_gate.wait_held() == "2"
    # The service takes the last node of the allocation (Slurm's order), the trainers' step the first.
    allocation = subprocess.run(["scontrol", "show", "hostnames", job_fields(job)["NodeList"]], capture_output=True,
                                text=True, check=True).stdout.split()
    assert sorted(allocation) == sorted(nodes)
    trainer_node, service_node = allocation
    url = f"http://{service_node}:{PORT}"
    log = (run_dir / "train.log").read_text()
    assert f"service reward_server: started on {service_node} for {url}" in log, log[-3000:]
    assert f"service reward_server is healthy at {url}" in log
    [(first_pid, first_env)] = wait_for(lambda: service_processes(job), 60, "the reward server's process")
    assert first_env.get("SLURMD_NODENAME") == service_node, "a step of the job on the other node"
    token = first_env["RLVR_SERVICE_TOKEN"]
    assert http_status(f"{url}/health") == 401, "no token, from outside the run"
    assert http_status(f"{url}/health", "not-the-run-token-0123456789") == 401
    assert http_status(f"{url}/health", token) == 200
    rows = json.loads(run_module("status", "--json", module="rlvr_vocab").stdout)
    [row] = [r for r in rows if r["run_name"] == "served"]
    assert row["services"]["reward_server"]["state"] == "healthy" and row["services"]["reward_server"]["url"] == url

    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # to every step: the service's ignores it
    step_gate.hold_at(3)  # attempt 2, held once its service is up again
    stopped = wait_for(lambda: manifest(run_dir).get("status") == "REQUEUED" and manifest(run_dir), 300,
                       "the trainer to checkpoint and the job to requeue")
    assert stopped["attempts"][0]["end_state"] in ("PREEMPTED", "TIMEOUT"), "stopped, not failed"
    release(job)
    assert step_gate.wait_held() == "3"
    [(second_pid, second_env)] = wait_for(lambda: service_processes(job), 60, "attempt 2's reward server")
    assert second_pid != first_pid and second_env["RLVR_SERVICE_TOKEN"] != token, "a new server, a new token"
    assert http_status(f"{url}/health", token) == 401, "the first attempt's token is dead"

    step_gate.release()
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the requeued run to complete")
    assert final["attempts"][1]["resumed_from_step"] == 2 and final["last_step"] == 3
    wait_for(lambda: not service_processes(job), 60, "the reward server to stop with training")
    steps = subprocess.run(["sacct", "-n", "-P", "-o", "JobName,NodeList", "-j", job.split("_")[0]],
                           capture_output=True, text=True).stdout.split()
    assert f"reward_server|{service_node}" in steps and f"python|{trainer_node}" in steps, steps
    train_log = (run_dir / "train.log").read_text()
    assert train_log.count("service reward_server is healthy") == 2 and "service reward_server stopped" in train_log
    shown = run_module("show", "served", module="rlvr_vocab").stdout
    assert shown.count(f"service reward_server: stopped: {url} on {service_node}") == 2, shown
    service_log = RunPaths(run_dir).service_log("reward_server").read_text()
    starts = [ln for ln in service_log.splitlines() if ln.startswith("== ")]
    assert len(starts) == 2 and all(f"--nodelist={service_node}" in ln for ln in starts), "started twice, there"
    tokens = (token.encode(), second_env["RLVR_SERVICE_TOKEN"].encode())
    leaked = [p for p in experiments_root.rglob("*") if p.is_file() and any(t in p.read_bytes() for t in tokens)]
    assert leaked == [], "the token reached no file: run dir, submitit's files, logs, registry"

    # The same first steps with every reward computed in the trainer (a local run): the same rewards.
    local = run_module("run_name=in-process", "training.max_steps=2", "training.save_steps=1", "eval.enabled=false",
                      *DEMO)
    assert local.returncode == 0, local.stderr[-2000:]
    [served] = [m for m in metrics(run_dir) if m["step"] == 2]  # logged by attempt 1, before the requeue
    [in_process] = [m for m in metrics(experiments_root / "demo" / "in-process") if m["step"] == 2]
    for key in ("rewards/accuracy/mean", "rewards/format/mean", "reward"):
        assert served[key] == pytest.approx(in_process[key], rel=1e-6, abs=1e-9), key


def test_a_service_that_exits_before_it_is_healthy_fails_the_run_with_its_cause(nodes, demo_cache, experiments_root):
    run_dir = experiments_root / "demo" / "unhealthy"
    submit = run_train(*SERVED, "run_name=unhealthy", "training.max_steps=2", f"services.reward_server.port={PORT}",
                       "services.reward_server.command=[sh,-c,'echo no GPU on this node; exit 3']")
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = submitted(run_dir)
    failed = wait_for(lambda: manifest(run_dir).get("status") == "FAILED" and manifest(run_dir), 300, "the run to fail")
    error = failed.get("error") or failed["attempts"][-1]["reason"]
    assert "ServiceFailed: service reward_server exited with code 3 before it was healthy: no GPU on this node" in error
    assert "services/reward_server.log)" in error and "\n" not in error
    wait_for(lambda: is_done(job.split("_")[0]), 120, "the job to end, not requeued")
    rows = json.loads(run_module("status", "--json", module="rlvr_vocab").stdout)
    assert next(r for r in rows if r["run_name"] == "unhealthy")["state"] == "FAILED"
    shown = run_module("show", "unhealthy", module="rlvr_vocab").stdout
    assert "service reward_server: failed: service reward_server exited with code 3" in shown, shown
