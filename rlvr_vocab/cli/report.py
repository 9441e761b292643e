"""`rlvr-vocab report --sweep S [--vs S2] [--effect 0.02]`: one self-contained file that answers whether arm B beats
arm A, leading with the answer `compare --vs` prints first.

HTML by default (plots embedded, inline CSS, nothing fetched: it can be mailed), or Markdown with its PNGs beside it
(`--format md`, or an --out ending in .md). The document is built by rlvr_vocab.report.
"""

from pathlib import Path

from rlvr_vocab.cli.common import registry, relative
from rlvr_vocab.cli.compare import effect_arg
from rlvr_vocab.report.summaries import DEFAULT_EFFECT
from rlvr_vocab.report.writing import FORMATS, write_report


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML (or Markdown) report of a sweep, or of two arms")
    p.add_argument("--sweep", required=True, help="arm A (the baseline)")
    p.add_argument("--vs", metavar="S2", help="arm B (e.g. the reasoning-vocabulary sweep): B - A paired by seed")
    p.add_argument("--out", type=Path,
                   help="file to write (default: <root>/_reports/<sweep>[-vs-<S2>].<format>)")
    p.add_argument("--format", choices=FORMATS, help="html (default) or md (default from --out's suffix)")
    p.add_argument("--effect", type=effect_arg, default=DEFAULT_EFFECT,
                   help=f"with --vs: the difference to say how many seeds would detect (default {DEFAULT_EFFECT})")
    p.set_defaults(handler=run)


def run(args) -> int:
    fmt = args.format or ("md" if args.out is not None and args.out.suffix == ".md" else "html")
    reg = registry(args)
    out = write_report(reg.runs(), reg.root, args.sweep, args.vs, args.out, fmt, args.effect)
    print(f"report written to {relative(out)}")
    return 0
