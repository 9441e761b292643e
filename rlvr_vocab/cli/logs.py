"""`rlvr-vocab logs RUN`: the job's stdout/stderr (SLURM's files), or its train.log for local runs."""

import sys
import time
from pathlib import Path

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("logs", help="a run's job output")
    p.add_argument("run")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    p.add_argument("--err", action="store_true", help="stderr instead of stdout")
    p.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    p.set_defaults(handler=run)


def log_path(view, attempt_n: int | None, err: bool) -> Path:
    attempts = view.attempts
    if attempt_n is not None and not 1 <= attempt_n <= len(attempts):
        raise ConfigError("--attempt", f"run {view.run_name} has attempts 1..{len(attempts)}")
    attempt = attempts[attempt_n - 1] if attempt_n else (attempts[-1] if attempts else {})
    key = "stderr" if err else "stdout"
    candidates = [attempt.get(key)]
    job = attempt.get("slurm_array_id") or attempt.get("slurm_job_id") or view.job_id
    candidates += [s.get(key) for s in reversed(view.submissions) if not job or s.get("job_id") == job]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    train_log = view.run_dir / "train.log"
    if train_log.exists():
        return train_log
    raise ConfigError(f"run {view.run_name}", "has no log yet", "it may still be pending")


def run(args) -> int:
    view = find_run(registry(args).runs(ask_slurm=args.follow), args.run)
    path = log_path(view, args.attempt, args.err)
    with path.open(errors="replace") as f:
        sys.stdout.write(f.read())
        while args.follow:
            chunk = f.read()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            else:
                time.sleep(1.0)
    return 0
