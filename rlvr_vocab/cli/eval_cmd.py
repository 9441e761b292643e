"""`rlvr-vocab eval RUN --benchmarks a,b [--checkpoints all|last|initial,N,final]` (benchmarks) or
`[--checkpoint N|final] [--dataset X] [--k K]` (a held-out split), here or as a SLURM job with `--launcher PROFILE`.

Runs `python -m rlvr_vocab.job.evaluate` (which checks its inputs, then evaluates here or submits a SLURM job with a
launcher profile); this command never imports torch itself.
"""

import json
import subprocess
import sys

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.job.options import add_options
from rlvr_vocab.report.terminal import fmt_number


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run's weights (initial, checkpoints, final) on benchmarks or a "
                                    "held-out split")
    p.add_argument("run")
    add_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    view = find_run(registry(args).runs(ask_slurm=False), args.run)
    cmd = [sys.executable, "-m", "rlvr_vocab.job.evaluate", str(view.run_dir)]
    for flag in ("benchmarks", "checkpoints", "backend", "checkpoint", "dataset", "k", "max_samples", "launcher"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    for item in args.benchmark_path or []:
        cmd += ["--benchmark-path", item]
    if args.wait:
        cmd.append("--wait")
    # The job's logs stream to stderr; its stdout is the submission note or the result as JSON.
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    result = _result(lines[-1]) if lines else None
    for line in lines if result is None else lines[:-1]:
        print(line)
    if result is None:
        return done.returncode
    if args.json:
        print(json.dumps(result))
    elif isinstance(result, list):  # benchmark results, one per (weights, benchmark) evaluated
        for record in result:
            print(_describe(view.run_name, record, record["benchmark"]))
        if not result:
            print(f"{view.run_name}: nothing to evaluate, all of it is evaluated with these settings already")
    else:
        print(_describe(view.run_name, result, result.get("dataset")))
    return done.returncode


def _result(line: str) -> dict | list | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _describe(run_name: str, result: dict, on: str | None) -> str:
    hidden = ("weights", "dataset", "time", "benchmark", "settings", "settings_key", "step", "seconds")
    shown = {k: v for k, v in result.items() if k not in hidden}
    return f"{run_name} {result.get('weights')} on {on}: " + ", ".join(f"{k} {fmt_number(v)}" for k, v in shown.items())
