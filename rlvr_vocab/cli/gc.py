"""`rlvr-vocab gc`: remove the code snapshots (`<root>/_code/`) that no run refers to."""

from rlvr_vocab.cli.common import experiments_root
from rlvr_vocab.registry.code_refs import referenced_snapshots
from rlvr_vocab.run.code import remove_snapshots, unused_snapshots


def add_parser(sub) -> None:
    p = sub.add_parser("gc", help="remove code snapshots no run refers to")
    p.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    p.set_defaults(handler=run)


def run(args) -> int:
    root = experiments_root(args.root)
    unused = unused_snapshots(root, referenced_snapshots(root))
    if not args.dry_run:
        remove_snapshots(unused)
    for snapshot in unused:
        print(f"{'would remove' if args.dry_run else 'removed'} {snapshot}")
    if not unused:
        print("no unused code snapshot")
    return 0
