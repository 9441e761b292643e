import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path

import pytest

from rlvr_vocab.slurm.client import cluster_problem
from rlvr_vocab.slurm.local import ensure_local_cluster

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Offline everywhere: no hub downloads, no W&B servers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


# The files of the `slurm` tier: one unit of work for one xdist worker, run first while the other worker runs every
# other test. Tried as two streams side by side (docs/testing.md), it gained no clear time on 2 cores: the streams'
# jobs queued behind each other for the node's CPUs and memory. The tests that take the cluster to themselves (they
# stop daemons, set nodes down, restart it with two nodes, or preempt everything on the node) hold CLUSTER_LOCK
# exclusively, the others shared: a second test session on the same machine never sees a disrupted cluster.
SLURM_FILES = (
    "test_cli_slurm.py", "test_demo_slurm.py", "test_doctor_slurm.py", "test_eval_slurm.py",
    "test_experiments_qwen3_slurm.py", "test_local_cluster_nodes.py", "test_operations_slurm.py",
    "test_reliability.py", "test_slurm.py", "test_trustworthy_slurm.py",
)
CLUSTER_TO_ITSELF = (
    "test_local_cluster_nodes.py",
    "test_reliability.py::test_preemption_by_a_higher_priority_partition",
    "test_reliability.py::test_status_while_slurm_daemons_are_down",
    "test_operations_slurm.py::test_a_node_failure_past_its_budget_is_not_retried",
    "test_doctor_slurm.py::test_doctor_with_slurmctld_stopped",
)


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def takes_the_cluster(nodeid: str) -> bool:
    """Whether a test of the `slurm` tier holds the cluster exclusively (CLUSTER_TO_ITSELF)."""
    name = f"{_file(nodeid)}::{nodeid.split('::', 1)[1]}" if "::" in nodeid else _file(nodeid)
    return any(name == t or name.startswith(f"{t}[") or _file(nodeid) == t for t in CLUSTER_TO_ITSELF)


def pytest_collection_modifyitems(items):
    """A test marked `slurm` lives in one of SLURM_FILES, and every test there is marked `slurm`. The Slurm tier
    comes first: it is the longest unit of work, and the other worker fills in around it."""
    strays = [i.nodeid for i in items if bool(i.get_closest_marker("slurm")) != (i.path.name in SLURM_FILES)]
    if strays:
        raise pytest.UsageError(f"the slurm mark and SLURM_FILES (tests/conftest.py) disagree on: {strays[:5]}")
    items.sort(key=lambda item: item.path.name not in SLURM_FILES)


FAST_TIER = "not slow and not slurm"  # pyproject's default `-m`


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject): the fast tier alone takes three workers (its tests wait on subprocesses and servers as
    much as they compute: 87 s against 98 s with two on 2 cores); with the slow and Slurm tiers, two, the Slurm
    tier's jobs needing the cores."""
    return 3 if config.option.markexpr == FAST_TIER else 2


def pytest_xdist_make_scheduler(config, log):
    """xdist's own groups (`--dist loadgroup`) are lost under pytest 9.2 (it reads node ids that grouping can no
    longer change): this scheduler keeps the Slurm tier as one unit of work, every other test a unit of its own."""
    from xdist.scheduler import LoadScopeScheduling

    class OneSlurmWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "slurm" if _file(nodeid) in SLURM_FILES else nodeid

    return OneSlurmWorker(config, log)


class ClusterLock:
    """A readers-writer lock on the local cluster across test processes (xdist workers, and other test sessions
    on this machine): shared by the tests that only use the cluster, exclusive for those that disrupt it.

    flock(2) on two files: a waiting writer holds the turnstile, so new readers queue behind it instead of
    starving it. Re-entrant within a process (a module's exclusive hold covers its tests' holds).
    """

    def __init__(self, path: Path):
        self.path, self.turnstile = path, path.with_name(path.name + ".turnstile")
        self.mode: str | None = None

    @staticmethod
    def _open(path: Path) -> int:
        """Read-only is enough for flock; made writable by all, whatever the umask, for another user's session."""
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o666)
            os.fchmod(fd, 0o666)
            return fd

    @contextmanager
    def hold(self, exclusive: bool):
        if self.mode == "exclusive" or (self.mode == "shared" and not exclusive):
            yield
            return
        assert self.mode is None, "a shared hold of the cluster cannot become exclusive"
        gate, lock = self._open(self.turnstile), self._open(self.path)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
            self.mode = "exclusive" if exclusive else "shared"
            yield
        finally:
            self.mode = None
            os.close(lock)
            os.close(gate)


CLUSTER_LOCK = ClusterLock(Path(tempfile.gettempdir()) / "rlvr-local-slurm-tests.lock")


@pytest.fixture(autouse=True)
def cluster_hold(request):
    """Each test of the `slurm` tier holds the cluster: shared, or to itself (CLUSTER_TO_ITSELF)."""
    if _file(request.node.nodeid) not in SLURM_FILES:
        yield
        return
    with CLUSTER_LOCK.hold(exclusive=takes_the_cluster(request.node.nodeid)):
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory):
    """One cache for the demo's built data and tiny models across the test session, its xdist workers included
    (builds are atomic renames: concurrent builders are safe)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cache = os.environ.get("RLVR_TEST_CACHE_DIR") or str(shared / "rlvr_cache")
    Path(cache).mkdir(parents=True, exist_ok=True)
    os.environ["RLVR_CACHE_DIR"] = cache
    return Path(cache)


@pytest.fixture(autouse=True)
def experiments_root(tmp_path, monkeypatch):
    root = tmp_path / "experiments"
    monkeypatch.setenv("RLVR_EXPERIMENTS_ROOT", str(root))
    return root


def run_module(*args: str, module: str = "rlvr_vocab.train", env: dict | None = None, timeout: int = 600,
               cwd: Path | None = None, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `python -m <module> args` as a user would, capturing output (`unset`: variables the user has not set)."""
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO, env={**environment, **(env or {})},
    )


@contextmanager
def _command_env(argv: list[str], env: dict | None, unset: tuple[str, ...]):
    """The process state a command sees, as `run_module` would give it (argv, cwd, environment); restored after."""
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, Path.cwd()
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(env or {})
    try:
        os.chdir(REPO)
        sys.argv = argv
        yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def run_train(*args: str, env: dict | None = None, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`python -m rlvr_vocab.train ARGS` in this process, for dry runs, refusals and submissions: the TRL import
    is paid once per test session instead of once per command (tests/test_bad_input.py keeps one real shell run)."""
    import trl  # noqa: F401  (imported here, sweeps check their points in this process: no worker to start)
    from hydra.core.global_hydra import GlobalHydra

    from rlvr_vocab.train import main as train_main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _command_env(["rlvr_vocab.train", *args], env, unset):
        GlobalHydra.instance().clear()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                train_main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # as the interpreter would: a traceback and exit code 1
                traceback.print_exc()
                code = 1
            finally:
                GlobalHydra.instance().clear()
    return subprocess.CompletedProcess(["rlvr_vocab.train", *args], code, out.getvalue(), err.getvalue())


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`rlvr-vocab ARGS` in this process."""
    from rlvr_vocab.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with _command_env(["rlvr-vocab", *args], env, ()), redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(args))
    return subprocess.CompletedProcess(["rlvr-vocab", *args], code, out.getvalue(), err.getvalue())


LOCAL_CLUSTER_MARK = "<!-- local-cluster:"


def documented_local_cluster_commands() -> list[str]:
    """Each line of the docs' bash blocks marked as run on the local cluster (README.md and docs/)."""
    commands = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in page.read_text().split(LOCAL_CLUSTER_MARK)[1:]:
            body = block.split("```bash\n", 1)[1].split("```", 1)[0]
            commands += [line.strip() for line in body.splitlines() if line.strip()]
    return commands


def checkout_copy(dest: Path) -> Path:
    """A copy of this checkout's package, configs and scripts, to submit from and edit while its jobs wait."""
    for part in ("rlvr_vocab", "conf", "slurm"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", dest)
    return dest


def edit_train(checkout: Path, line: str) -> None:
    """Add a log line at the start of `train()` in a checkout copy."""
    train_py = checkout / "rlvr_vocab" / "train.py"
    edited = train_py.read_text().replace("    name_run(cfg, ", f"    logger.info({line!r})\n    name_run(cfg, ")
    assert line in edited, "train() no longer starts with name_run: update this helper"
    train_py.write_text(edited)


def copy_fixture(name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    shutil.copy(FIXTURES / name, target)
    return target


@pytest.fixture(scope="session")
def slurm_cluster():
    """The real local Slurm; started by slurm/local_cluster.sh if it is not up.

    Skips with the reason when no cluster can be had, except under CI=true, where that fails.
    """
    # Started by one process at a time; one that is up (another worker's) is only shared.
    with CLUSTER_LOCK.hold(exclusive=cluster_problem() is not None):
        why = ensure_local_cluster()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Slurm cluster under CI=true: {why}")
        pytest.skip(f"no Slurm cluster reachable: {why}")
    return True


# The demo, shortened; the tiny model is built once by `demo_cache` so jobs only load it.
# Batches of the old demo size keep steps short under 1-CPU jobs.
DEMO_MODEL = ["model.embedded.warm_start_steps=60", "eval.max_samples=20", "training.per_device_train_batch_size=16"]
DEMO = [*DEMO_MODEL, "dataset.embedded.n_test=20"]


@pytest.fixture(scope="session")
def demo_model(shared_cache):
    """The demo's data and warm-started tiny model, built here (2 cores, no training run) before jobs load them."""
    from rlvr_vocab.doctor.experiment import compose_experiment
    from rlvr_vocab.model.modeling import model_path

    cfg, _ = compose_experiment(DEMO)
    model_path(cfg)
    return shared_cache


@pytest.fixture(scope="session")
def demo_cache(demo_model, slurm_cluster):
    """The demo's model built, and the local Slurm up, for 1-CPU jobs."""
    return demo_model


@pytest.fixture
def job_env():
    # sbatch wrappers activate the venv that runs these tests.
    return {"RLVR_VENV": sys.prefix}


def sacct_states(job: str) -> list[str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job.split("_")[0]],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("|")[1] for line in out.splitlines() if line]


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def release(job: str, restarts: int = 1) -> None:
    """Once Slurm has requeued the job (`restarts` times), make it eligible now: a requeued job waits ~2 min.

    The update only holds once the job is back in the queue: updated while it still runs or completes,
    the requeue afterwards sets its own start time.
    """
    def eligible() -> bool:
        fields = start_now_if_requeued(job)
        if fields is None:
            return False
        return int(fields.get("Restarts", 0)) >= restarts and fields.get("JobState") in ("PENDING", "RUNNING",
                                                                                        "COMPLETED")

    wait_for(eligible, 120, f"job {job} to be requeued and eligible again", interval=1.0)


def start_now_if_requeued(job: str) -> dict[str, str] | None:
    """A requeued job waiting for its begin time is made eligible in 2 s (None then); else its `scontrol` fields.

    Not "now": started in the very second its old credential was revoked in, Slurm kills the job at once
    ("Job credential revoked"). A begin time already that close is left alone, so polling never postpones it.
    """
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    if fields.get("JobState") == "PENDING" and fields.get("Reason") == "BeginTime":
        try:  # EligibleTime: the begin time (StartTime is only the scheduler's guess, often "Unknown")
            wait_s = (datetime.fromisoformat(fields.get("EligibleTime", "")) - datetime.now()).total_seconds()
        except ValueError:
            wait_s = float("inf")
        if wait_s > 3:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+2"], capture_output=True)
        return None
    return fields


def manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


class StepGate:
    """Holds jobs at a known point (rlvr_vocab.job.callbacks.STEP_GATE_ENV): nothing a test does races the job.

    Jobs read the gate from their environment, inherited from the submitting process: create it before submitting.
    """

    def __init__(self, path: Path):
        self.path = path
        self.at = Path(f"{path}.at")

    def hold_at(self, point: int | str) -> None:
        """Hold at the end of step `point` (and later steps), or after the last step with "final"."""
        self.at.unlink(missing_ok=True)
        self.path.write_text(str(point))

    def wait_held(self, timeout: float = 600, job: str | None = None) -> str:
        """Wait until a job is held at the gate; returns where ("12", "final"). `job`: if Slurm requeues it before
        it gets there (a rank lost at start-up), it is made eligible again at once."""
        def held() -> str | bool:
            if job is not None:
                start_now_if_requeued(job)
            return self.at.exists() and self.at.read_text()

        return wait_for(held, timeout, f"a job held at {self.path}", interval=0.5)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self.at.unlink(missing_ok=True)


@pytest.fixture
def step_gate(tmp_path, monkeypatch) -> StepGate:
    from rlvr_vocab.job.callbacks import STEP_GATE_ENV

    gate = StepGate(tmp_path / "step-gate")
    monkeypatch.setenv(STEP_GATE_ENV, str(gate.path))
    yield gate
    gate.release()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed when missing (root here); skipped with the reason when it cannot be, except
    under CI=true, where that fails."""
    if not Path(CHROMIUM).exists():
        why = _install_chromium()
        if why is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"chromium could not be installed under CI=true: {why}")
            pytest.skip(f"chromium could not be installed: {why}")
    return CHROMIUM


def _install_chromium() -> str | None:
    if shutil.which("apt-get") is None:
        return "no apt-get here"
    with open("/tmp/rlvr-tests-apt.lock", "w") as lock:  # two test workers: one apt-get at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if Path(CHROMIUM).exists():
            return None
        return _apt_install_chromium()


def _apt_install_chromium() -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (the local cluster's install) may hold dpkg's lock: wait for it rather than fail.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    install = [*apt, "install", "-y", "-q", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
    if done.returncode != 0:  # stale package lists: update them once and retry
        subprocess.run([*apt, "update", "-q"], capture_output=True, text=True, env=env, timeout=600)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
    if done.returncode != 0 or not Path(CHROMIUM).exists():
        return (done.stderr.strip().splitlines() or [f"apt-get exited {done.returncode}"])[-1]
    return None

