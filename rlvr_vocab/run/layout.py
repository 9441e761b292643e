"""Every path of a run directory and of the experiments root, in one place: nothing else spells "train.log",
"final" or "_reports".

    <experiments_root>/<exp_name>/<run_name>/
      run.json           the manifest: state, attempts, checkpoints, metrics (written by the run's own job)
      identity.json      the config the run dir belongs to (its fingerprint and identity config), set at creation
      submissions.json   the SLURM jobs submitted for it (written at submission)
      config.yaml        the latest attempt's resolved config; configs/attempt-N.yaml keeps each attempt's
      overrides.yaml     the latest attempt's overrides as typed
      train.log          the job's log; metrics.jsonl one line of trainer metrics per logging step
      checkpoints/checkpoint-N/   complete once it holds rlvr_complete.json; incomplete ones go to incomplete/
      final/             the final model and tokenizer, complete once it holds rlvr_complete.json
      model/             with a reasoning vocabulary: the extended base model the policy loads (vLLM too)
      eval/              standalone evaluation results
      services/<name>.log   the output of each service the job starts in its allocation
      wandb/             W&B's files
      .lease/            the single-writer lease
      .heartbeat.json    the job's progress (time, step, phase) for the watchdog and `status`
      .rank_failures/    each failed rank's error, per attempt, for rank 0 to record the first cause
    <experiments_root>/
      .registry.sqlite   the registry's index (a cache: deleting it loses nothing)
      _prefetch/<exp_name>.json   what `rlvr-vocab prefetch` fetched, with commit hashes
      _sweeps/<sweep_id>/          Hydra's multirun dir of a sweep (conf/config.yaml's hydra.sweep.dir)
      _searches/<search_id>/       a search's Optuna journal (study.journal), its last submission
                                   (submission.json), its claim lock and its trials' leases (trials/<N>/.lease)
      _reports/, _plots/           what `report` and `plot` write by default
      _code/<hash>/                the code jobs run, one snapshot per version (rlvr_vocab.run.code)
The root's own entries start with `_` or `.`: no experiment name can take them (names start with a letter or digit).
"""

from pathlib import Path

from rlvr_vocab.core.errors import ConfigError

# File names some hot paths test as strings (`status` checks thousands): RunPaths spells the same.
MANIFEST_NAME = "run.json"
CONFIG_NAME = "config.yaml"
# Written by rank 0 of the run's job once the whole directory it marks is written.
COMPLETE_MARKER = "rlvr_complete.json"
# One marker per (attempt, event) notified, or passed over: what makes a notification happen once.
NOTIFIED_DIR = ".notified"


def notified_marker(run_dir: Path | str, attempt: int, event: str) -> str:
    """The marker of an (attempt, event) notified or passed over; a string: `status` checks thousands per refresh."""
    return f"{run_dir}/{NOTIFIED_DIR}/{attempt}-{event}"


def check_part(where: str, value: str) -> None:
    """A run or experiment name must stay one directory below its parent."""
    if not value or "/" in value or "\\" in value or value in (".", "..") or ".." in value:
        raise ConfigError(where, f"'{value}' is not a directory name", "no path separators or '..'")


class RunPaths:
    def __init__(self, run_dir: Path | str):
        self.run_dir = Path(run_dir)

    @classmethod
    def of(cls, experiments_root: Path | str, exp_name: str, run_name: str) -> "RunPaths":
        check_part("exp_name", exp_name)
        check_part("run_name", run_name)
        return cls(Path(experiments_root) / exp_name / run_name)

    def __repr__(self) -> str:
        return f"RunPaths({self.run_dir})"

    @property
    def experiments_root(self) -> Path:
        return self.run_dir.parent.parent

    @property
    def manifest(self) -> Path:
        return self.run_dir / MANIFEST_NAME

    @property
    def identity(self) -> Path:
        return self.run_dir / "identity.json"

    @property
    def submissions(self) -> Path:
        return self.run_dir / "submissions.json"

    @property
    def config(self) -> Path:
        return self.run_dir / CONFIG_NAME

    @property
    def overrides(self) -> Path:
        return self.run_dir / "overrides.yaml"

    @property
    def configs(self) -> Path:
        return self.run_dir / "configs"

    def attempt_config(self, n: int) -> Path:
        return self.configs / f"attempt-{n}.yaml"

    @property
    def train_log(self) -> Path:
        return self.run_dir / "train.log"

    @property
    def metrics(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def incomplete_checkpoints(self) -> Path:
        return self.checkpoints / "incomplete"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"checkpoint-{step}"

    @property
    def final(self) -> Path:
        return self.run_dir / "final"

    @property
    def extended_model(self) -> Path:
        return self.run_dir / "model"

    @property
    def eval(self) -> Path:
        return self.run_dir / "eval"

    def service_log(self, name: str) -> Path:
        return self.run_dir / "services" / f"{name}.log"

    @property
    def wandb(self) -> Path:
        return self.run_dir / "wandb"

    @property
    def lease(self) -> Path:
        return self.run_dir / ".lease"

    @property
    def heartbeat(self) -> Path:
        return self.run_dir / ".heartbeat.json"

    @property
    def rank_failures(self) -> Path:
        return self.run_dir / ".rank_failures"

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.run_dir))


class RootPaths:
    """The experiments root's own files, beside its experiments' folders."""

    INDEX_NAME = ".registry.sqlite"

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RootPaths({self.root})"

    def run(self, exp_name: str, run_name: str) -> RunPaths:
        return RunPaths.of(self.root, exp_name, run_name)

    @property
    def index(self) -> Path:
        return self.root / self.INDEX_NAME

    @property
    def prefetch(self) -> Path:
        return self.root / "_prefetch"

    def prefetch_record(self, exp_name: str) -> Path:
        return self.prefetch / f"{exp_name}.json"

    def sweep(self, sweep_id: str) -> Path:
        return self.root / "_sweeps" / sweep_id

    @property
    def searches(self) -> Path:
        return self.root / "_searches"

    def search(self, search_id: str) -> Path:
        """A search's own files (rlvr_vocab.launch.search_worker); its trials' runs are run dirs like any."""
        return self.searches / search_id

    def search_journal(self, search_id: str) -> Path:
        """The search's Optuna study, unless it is stored in a database (`search.storage`)."""
        return self.search(search_id) / "study.journal"

    def search_submission(self, search_id: str) -> Path:
        """How the search was last submitted: its overrides and launcher settings (a trial's run has no
        submissions.json of its own)."""
        return self.search(search_id) / "submission.json"

    def search_claim_lock(self, search_id: str) -> Path:
        return self.search(search_id) / ".claim.lock"

    def search_trial(self, search_id: str, number: int) -> Path:
        """Where trial `number`'s lease lives (the lease of a run dir's kind: `<this>/.lease`)."""
        return self.search(search_id) / "trials" / str(number)

    def report(self, name: str, fmt: str) -> Path:
        return self.root / "_reports" / f"{name}.{fmt}"

    def code(self, code_hash: str) -> Path:
        """A snapshot of the code jobs run (rlvr_vocab.run.code)."""
        return self.root / "_code" / code_hash

    def plot(self, name: str) -> Path:
        return self.root / "_plots" / f"{name}.png"
