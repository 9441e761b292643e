"""`rlvr-vocab diff A B`: the config and code differences between two runs, or two attempts (`RUN@N`)."""

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.difference import attempt_config, code_changes, config_changes


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help="config and code differences between two runs (or attempts: RUN@N)")
    p.add_argument("a", help="run id, name or unique prefix; RUN@N for its attempt N")
    p.add_argument("b")
    p.set_defaults(handler=run)


def _side(runs: list, text: str):
    name, _, attempt = text.partition("@")
    if attempt and not attempt.isdigit():
        raise ConfigError(text, f"'{attempt}' is not an attempt number", "e.g. RUN@2")
    view = find_run(runs, name)
    n = int(attempt) if attempt else None
    attempts = view.attempts
    if n is not None and not 1 <= n <= len(attempts):
        raise ConfigError(text, f"has attempts 1 to {len(attempts)}" if attempts else "has no attempt yet")
    code = (attempts[n - 1] if n else attempts[-1]).get("code") if attempts else None
    return attempt_config(view.paths, n), code


def run(args) -> int:
    reg = registry(args)
    runs = reg.runs(ask_slurm=False)
    (config_a, code_a), (config_b, code_b) = _side(runs, args.a), _side(runs, args.b)
    code = code_changes(reg.root, code_a, code_b)
    if config_a is None or config_b is None:
        missing = args.a if config_a is None else args.b
        print(f"config: {missing} recorded none (it failed its checks at start)")
    else:
        config = config_changes(config_a, config_b)
        print(f"config: {len(config)} {'key differs' if len(config) == 1 else 'keys differ'}" + (":" if config else ""))
        for line in config:
            print(f"  {line}")
    print("code: the same" if not code else "code:")
    for line in code:
        print(f"  {line}")
    return 0
