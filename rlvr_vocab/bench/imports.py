"""Import weight: `import rlvr_vocab.cli` against `python -c pass`, and the job's start-up before its model loads
against the plain TRL script's (both stopped at `from_pretrained` by bench.stop_at_model_load)."""

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from rlvr_vocab.bench import training
from rlvr_vocab.bench.common import BenchError, Context, Figure, interleave, median, median_ratio, time_command
from rlvr_vocab.bench.stop_at_model_load import MARK

HEAVY = ("torch", "transformers", "trl", "datasets", "accelerate")
_COUNT_MODULES = (
    "import json, sys; before = set(sys.modules); import rlvr_vocab.cli; "
    f"print(json.dumps({{'before': len(before), 'after': len(sys.modules), "
    f"'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
)


def module_counts(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _COUNT_MODULES], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def until_model_load(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Seconds from spawn to the program's first model load."""
    spawned = time.time()
    with log.open("a") as err:
        out = subprocess.run([sys.executable, "-m", "rlvr_vocab.bench.stop_at_model_load", *cmd], env=env,
                             stdout=subprocess.PIPE, stderr=err, text=True, timeout=600)
    marks = [line for line in out.stdout.splitlines() if line.startswith(MARK)]
    if not marks:
        raise BenchError(f"{cmd[0]} ended (exit {out.returncode}) before loading a model; see {log}")
    return float(marks[0].removeprefix(MARK)) - spawned


def run(ctx: Context) -> list[Figure]:
    counts = module_counts(ctx.env)
    repeats = ctx.repeats * 5  # cheap: more samples, tighter medians
    t = interleave(repeats, {
        "pass": lambda: time_command([sys.executable, "-c", "pass"], ctx.env),
        "cli": lambda: time_command([sys.executable, "-c", "import rlvr_vocab.cli"], ctx.env),
    })

    root = ctx.scratch("job")
    spec = training.plain_spec(root)
    (root / "spec.json").write_text(json.dumps({**spec, "grpo_kwargs": {
        **spec["grpo_kwargs"], "output_dir": str(root / "plain")}}))
    env = {**ctx.env, "RLVR_EXPERIMENTS_ROOT": str(root)}
    run_names = (f"r{i}" for i in itertools.count())
    job = interleave(ctx.repeats, {
        "plain": lambda: until_model_load(["rlvr_vocab.bench.plain_trl", str(root / "spec.json"),
                                           str(root / "times.jsonl")], env, root / "plain.log"),
        "framework": lambda: until_model_load(["rlvr_vocab.train", *training.OVERRIDES, f"run_name={next(run_names)}"],
                                              env, root / "framework.log"),
    })
    extra = median([f - p for f, p in zip(job["framework"], job["plain"], strict=True)])
    return [
        Figure("import rlvr_vocab.cli: time", median(t["cli"]), "s", baseline=median(t["pass"]),
               baseline_name="python -c pass", ratio=median_ratio(t["cli"], t["pass"]), samples=repeats,
               note=f"import cost {1000 * (median(t['cli']) - median(t['pass'])):.0f} ms above the interpreter"),
        Figure("import rlvr_vocab.cli: modules", counts["after"], "modules", target="no " + "/".join(HEAVY[:3]),
               met=not counts["heavy"], baseline=counts["before"], baseline_name="python start-up",
               ratio=counts["after"] / counts["before"],
               note=f"{counts['after'] - counts['before']} modules added; heavy ones loaded: "
                    f"{', '.join(counts['heavy']) or 'none'}"),
        Figure("job start-up before the model loads", median(job["framework"]), "s",
               target=f"<= plain + {training.STARTUP_BUDGET_S:g} s", met=extra <= training.STARTUP_BUDGET_S,
               baseline=median(job["plain"]), baseline_name="plain TRL script",
               ratio=median_ratio(job["framework"], job["plain"]), samples=ctx.repeats,
               note=f"median difference {extra:+.2f} s (spawn to the first from_pretrained)"),
    ]
