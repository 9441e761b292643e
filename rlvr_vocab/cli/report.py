"""`rlvr-vocab report --sweep S [--vs S2] [--effect 0.02]`: one self-contained file that answers whether arm B beats
arm A, leading with the answer `compare --vs` prints first. A search id as an arm of `--vs` stands for its best
trial's runs, as in `compare`.

`rlvr-vocab report --search S`: a search's report instead (rlvr_vocab.report.search_page): the objective over trials,
the parameters against it and their importance, the pruned curves beside the kept ones, the trials.

HTML by default (plots embedded, inline CSS, nothing fetched: it can be mailed), or Markdown with its PNGs beside it
(`--format md`, or an --out ending in .md). The document is built by rlvr_vocab.report.
"""

from pathlib import Path

from rlvr_vocab.cli.common import registry, relative, with_best_trials
from rlvr_vocab.cli.compare import effect_arg
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.report.summaries import DEFAULT_EFFECT
from rlvr_vocab.report.writing import FORMATS, write_report


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML (or Markdown) report of a sweep, of two arms, or "
                       "of a search")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--sweep", help="arm A (the baseline); with --vs, a search id stands for its best trial")
    which.add_argument("--search", help="a search's report: its trials, pruning and parameter importance")
    p.add_argument("--vs", metavar="S2", help="arm B (e.g. the reasoning-vocabulary sweep): B - A paired by seed")
    p.add_argument("--storage", metavar="URL", help="with --search: the study's database, if not a journal file")
    p.add_argument("--out", type=Path,
                   help="file to write (default: <root>/_reports/<sweep>[-vs-<S2>].<format>, or <search>.<format>)")
    p.add_argument("--format", choices=FORMATS, help="html (default) or md (default from --out's suffix)")
    p.add_argument("--effect", type=effect_arg, default=DEFAULT_EFFECT,
                   help=f"with --vs: the difference to say how many seeds would detect (default {DEFAULT_EFFECT})")
    p.set_defaults(handler=run)


def run(args) -> int:
    fmt = args.format or ("md" if args.out is not None and args.out.suffix == ".md" else "html")
    reg = registry(args)
    if args.search:
        if args.vs:
            raise ConfigError("--vs", "compares two arms, not a search's trials",
                              f"give the search as an arm: --sweep {args.search} --vs {args.vs}")
        from rlvr_vocab.report.search_page import write_search_report  # Optuna and matplotlib load here

        out = write_search_report(reg.root, args.search, args.out, fmt, args.storage)
    else:
        runs, notes = with_best_trials(reg.runs(), reg.root, [args.sweep, args.vs] if args.vs else [])
        for line in notes:
            print(line)
        out = write_report(runs, reg.root, args.sweep, args.vs, args.out, fmt, args.effect)
    print(f"report written to {relative(out)}")
    return 0
