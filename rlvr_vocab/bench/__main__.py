"""`python -m rlvr_vocab.bench [--only NAME ...] [--repeats N] [--out FILE.md]`.

Runs the benchmarks (all, or those named), prints each figure as it is measured, then the markdown
report (date, machine, versions, figures, targets), also written to --out.
"""

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from loguru import logger

from rlvr_vocab.bench import cli_latency, imports, requeue, sweep, training, vocab_cost
from rlvr_vocab.bench.common import BenchError, Context, Report, base_env, figure_line, load_average

# In the order they run: the Slurm jobs of sweep and requeue come after the timings they would disturb.
BENCHMARKS = {
    "training": training.run,
    "vocab": vocab_cost.run,
    "cli": cli_latency.run,
    "imports": imports.run,
    "sweep": sweep.run,
    "requeue": requeue.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rlvr_vocab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each baseline/subject pair (default 5)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, run dirs)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in BENCHMARKS if n in (args.only or BENCHMARKS)]
    command = shlex.join(["python", "-m", "rlvr_vocab.bench", *(sys.argv[1:] if argv is None else argv)])
    report = Report(command=command, repeats=args.repeats)
    scratch = Path(tempfile.mkdtemp(prefix="rlvr-bench-"))
    try:
        for name in names:
            logger.info(f"benchmark: {name} ({args.repeats} repeats)")
            ctx = Context(repeats=args.repeats, workdir=scratch / name, env=base_env())
            try:
                figures = BENCHMARKS[name](ctx)
            except (BenchError, OSError, ValueError) as e:
                logger.error(f"{name}: {e}")
                report.errors[name] = str(e).strip().splitlines()[0]
                continue
            for figure in figures:
                print(figure_line(figure), flush=True)  # noqa: T201
            report.figures += figures
    finally:
        if args.keep:
            logger.info(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report.load_end = load_average()
    text = report.markdown()
    print(f"\n{text}", end="")  # noqa: T201
    if args.out:
        args.out.write_text(text)
        logger.info(f"report written to {args.out}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
