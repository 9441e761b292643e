"""`rlvr-vocab logs RUN`: the job's stdout and stderr (SLURM's files), or its train.log for local runs."""

import sys
import time
from pathlib import Path

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.core.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("logs", help="a run's job output")
    p.add_argument("run")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--err", action="store_true", help="only stderr (the job's log and tracebacks)")
    only.add_argument("--out", action="store_true", help="only stdout")
    p.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    p.set_defaults(handler=run)


def log_paths(view, attempt_n: int | None, keys: tuple[str, ...]) -> list[Path]:
    """The attempt's SLURM output files that exist (stdout, stderr), else the run's train.log."""
    attempts = view.attempts
    if attempt_n is not None and not 1 <= attempt_n <= len(attempts):
        raise ConfigError("--attempt", f"run {view.run_name} has attempts 1..{len(attempts)}")
    attempt = attempts[attempt_n - 1] if attempt_n else (attempts[-1] if attempts else {})
    job = attempt.get("slurm_array_id") or attempt.get("slurm_job_id") or view.job_id
    found = []
    for key in keys:
        candidates = [attempt.get(key)]
        candidates += [s.get(key) for s in reversed(view.submissions) if not job or s.get("job_id") == job]
        path = next((Path(c) for c in candidates if c and Path(c).exists()), None)
        if path is not None and path not in found:
            found.append(path)
    if found:
        return found
    train_log = view.paths.train_log
    if train_log.exists():
        return [train_log]
    raise ConfigError(f"run {view.run_name}", "has no log yet", "it may still be pending")


def run(args) -> int:
    view = find_run(registry(args).runs(ask_slurm=args.follow), args.run)
    keys = ("stderr",) if args.err else ("stdout",) if args.out else ("stdout", "stderr")
    paths = log_paths(view, args.attempt, keys)
    files = [path.open(errors="replace") for path in paths]
    try:
        _print_new(paths, files, headers=len(paths) > 1)
        while args.follow:
            if not _print_new(paths, files, headers=len(paths) > 1):
                time.sleep(1.0)
    finally:
        for f in files:
            f.close()
    return 0


def _print_new(paths: list[Path], files: list, headers: bool) -> bool:
    """Print what each file gained since the last call (with a `==> path <==` line when there are several)."""
    printed = False
    for path, f in zip(paths, files, strict=True):
        chunk = f.read()
        if chunk:
            if headers:
                sys.stdout.write(f"==> {path} <==\n")
            sys.stdout.write(chunk + ("\n" if headers and not chunk.endswith("\n") else ""))
            sys.stdout.flush()
            printed = True
    return printed
