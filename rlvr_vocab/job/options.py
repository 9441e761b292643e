"""The evaluation job's options, shared by `python -m rlvr_vocab.job.evaluate` and `rlvr-vocab eval` (no heavy import:
the CLI builds its parser on every call)."""

import argparse


def add_options(p: argparse.ArgumentParser) -> None:
    """The evaluation's options, also `rlvr-vocab eval`'s (which passes on those given): unset ones are None."""
    p.add_argument("--benchmarks", help="comma-separated conf/benchmark/ names (math500,gsm8k,...)")
    p.add_argument("--checkpoints",
                   help="with --benchmarks: all, last (default), or a list of initial, final and steps N,M")
    p.add_argument("--backend", help="with --benchmarks: transformers (default) or vllm")
    p.add_argument("--benchmark-path", action="append", metavar="NAME=PATH",
                   help="with --benchmarks: a local copy of a benchmark (repeatable)")
    p.add_argument("--checkpoint", help="a checkpoint step or 'final' (default: final, else the newest checkpoint)")
    p.add_argument("--dataset", help="a conf/dataset/ name or a local file (default: the run's own held-out split)")
    p.add_argument("--k", type=int, help="pass@k from k samples besides greedy accuracy (default: the run's eval.k)")
    p.add_argument("--max-samples", type=int, help="evaluate at most this many rows (of each benchmark)")
    p.add_argument("--launcher", help="run as a SLURM job with this conf/hydra/launcher/ profile (e.g. slurm)")
    p.add_argument("--wait", action="store_true", help="with --launcher: wait for the job's result")
