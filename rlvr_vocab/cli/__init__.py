"""`rlvr-vocab`: see and steer runs. This root only wires the subcommands, one module each.

It never imports torch, transformers or trl: commands that need them start the job in a
subprocess or import lazily.
"""

import argparse
import os
import sys

from rlvr_vocab.cli import (
    cancel,
    compare,
    diff,
    doctor,
    eval_cmd,
    gc,
    logs,
    plot,
    prefetch,
    registry_cmd,
    report,
    resume,
    search,
    show,
    status,
    usage,
)
from rlvr_vocab.core.errors import ConfigError

COMMANDS = (status, show, logs, resume, cancel, eval_cmd, compare, diff, plot, report, search, registry_cmd, doctor,
            prefetch, usage, gc)


ROOT_HELP = "experiments root (default: $RLVR_EXPERIMENTS_ROOT or ./experiments)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlvr-vocab", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help=ROOT_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    # `rlvr-vocab status --root X` as well as `rlvr-vocab --root X status` (a value given after wins).
    for subparser in sub.choices.values():
        subparser.add_argument("--root", default=argparse.SUPPRESS, help=ROOT_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfigError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`rlvr-vocab show RUN | head`): as any Unix tool, stop quietly. Python would otherwise
        # complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
