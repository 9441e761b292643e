"""`rlvr-vocab registry rebuild`: recreate the index from the run dirs alone."""

from rlvr_vocab.cli.common import registry


def add_parser(sub) -> None:
    p = sub.add_parser("registry", help="maintain the registry's index")
    p.add_argument("action", choices=["rebuild"])
    p.set_defaults(handler=run)


def run(args) -> int:
    n = registry(args).rebuild()
    print(f"registry rebuilt from run dirs: {n} runs")
    return 0
