"""`rlvr-vocab search status SEARCH`: a search's trials by state, the best so far with its parameters and its runs,
ASHA's rungs and what was pruned where, a row per trial, then its submissions' worker jobs
(rlvr_vocab.launch.search_results reads the study, rlvr_vocab.report.search_text words it). Optuna loads only when
the command runs: the CLI stays quick to start.
"""

import argparse

from rlvr_vocab.cli.common import experiments_root


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="a search's Optuna study: its trials, the best, what was pruned where")
    commands = p.add_subparsers(dest="search_command", required=True)
    status = commands.add_parser("status", help="trials by state, the best so far, the rungs and the pruned trials")
    status.add_argument("search", help="the search id (as its submission printed it; `_searches/` under the root)")
    status.add_argument("--storage", metavar="URL",
                        help="the study's database (the search's search.storage), if it is not a journal file")
    # As every command takes it after its name (cli/__init__.py adds it to `search`, not to its subcommands).
    status.add_argument("--root", default=argparse.SUPPRESS, help="experiments root")
    p.set_defaults(handler=run)


def run(args) -> int:
    from rlvr_vocab.launch.search_results import load_search
    from rlvr_vocab.launch.search_submission import submit_again, worker_jobs
    from rlvr_vocab.report.search_text import summary_lines, table_lines, trial_table, workers_line

    root = experiments_root(args.root)
    results = load_search(root, args.search, args.storage)
    lines = summary_lines(results)
    if results.trials:
        lines += ["  trials:", *(f"    {line}" for line in table_lines(*trial_table(results)))]
    workers = workers_line(worker_jobs(root, args.search))
    lines += [workers] if workers else []
    lines.append(f"  continue:   {submit_again(root, args.search)}")
    print("\n".join(lines))
    return 0
