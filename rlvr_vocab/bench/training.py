"""Training overhead: the demo through `python -m rlvr_vocab.train` against the same GRPO as a plain TRL script.

Both get the job's own GRPOConfig values (from its validated plan), the same cached tiny model, data,
reward functions and seed, eval off, and log at step 1 and every 5 steps. Both save a checkpoint every
10 steps (TRL's own saving in the plain script), so the step-1-to-last-step interval holds the same save
at step 10 in both; what the framework adds there (marking checkpoints complete, rotation, manifest
and metrics.jsonl writes, its callbacks) is its overhead. Per-step time is (t_last - t_1) / (steps - 1)
from the logged wall-clock times; start-up is process spawn to the end of step 1.
"""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from rlvr_vocab.bench.common import Context, Figure, interleave, median, median_ratio, run_checked

STEPS = 20
# Step 1 is logged too: its timestamp ends start-up and starts the per-step clock, in both.
OVERRIDES = ["experiment=demo", "eval.enabled=false", f"training.max_steps={STEPS}",
             "+training.logging_first_step=true"]
STARTUP_BUDGET_S = 1.0
STEP_RATIO_TARGET = 1.03


@dataclass
class StepTimes:
    startup_s: float
    per_step_s: float
    # Steps 2 to the first checkpoint's step, whose log comes before its save: steps without a save.
    per_step_unsaved_s: float
    num_tokens: float | None


def step_times(spawned: float, log_lines: list[dict[str, Any]], steps: int, save_steps: int) -> StepTimes:
    """From trainer log lines ({step, time, num_tokens}); the first line of a step is its step log
    (a last one with the same step is the end-of-training summary)."""
    first: dict[int, dict[str, Any]] = {}
    for line in log_lines:
        first.setdefault(line["step"], line)
    if not {1, save_steps, steps} <= set(first):
        raise ValueError(f"no log at step 1, {save_steps} and {steps} (logged: {sorted(first)})")
    t1, ts, tn = first[1]["time"], first[save_steps]["time"], first[steps]["time"]
    return StepTimes(t1 - spawned, (tn - t1) / (steps - 1), (ts - t1) / (save_steps - 1),
                     first[steps].get("num_tokens"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plain_spec(root: Path) -> dict[str, Any]:
    """The plain script's inputs, taken from the job's own validated plan so both train the same thing."""
    from hydra import compose, initialize_config_dir

    from rlvr_vocab import CONF_DIR
    from rlvr_vocab.config.schema import register_configs
    from rlvr_vocab.model.data import embedded_data_dir
    from rlvr_vocab.model.modeling import model_path
    from rlvr_vocab.validation.plan import validate

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[*OVERRIDES, f"experiments_root={root}", "run_name=plain"])
    plan = validate(cfg)
    return {
        "model": model_path(cfg),  # builds the cached tiny model here, before anything is timed
        "data_dir": str(embedded_data_dir(cfg.dataset)),
        "system_prompt": cfg.dataset.system_prompt,
        "rewards": plan.rewards,
        "seed": cfg.seed,
        # As in the job, whose stderr is no terminal either.
        "grpo_kwargs": {**plan.grpo_kwargs, "disable_tqdm": True},
    }


def run_framework(ctx: Context, root: Path, name: str, save_steps: int) -> StepTimes:
    env = {**ctx.env, "RLVR_EXPERIMENTS_ROOT": str(root)}
    spawned = time.time()
    run_checked([sys.executable, "-m", "rlvr_vocab.train", *OVERRIDES, f"run_name={name}"], env,
                log=root / f"{name}.log")
    return step_times(spawned, read_jsonl(root / "demo" / name / "metrics.jsonl"), STEPS, save_steps)


def run_plain(ctx: Context, root: Path, spec: dict[str, Any], name: str) -> StepTimes:
    run_dir = root / "plain" / name
    run_dir.mkdir(parents=True)
    spec = {**spec, "grpo_kwargs": {**spec["grpo_kwargs"], "output_dir": str(run_dir / "checkpoints"),
                                    "run_name": name}}
    (run_dir / "spec.json").write_text(json.dumps(spec))
    spawned = time.time()
    run_checked([sys.executable, "-m", "rlvr_vocab.bench.plain_trl", str(run_dir / "spec.json"),
                 str(run_dir / "times.jsonl")], ctx.env, log=run_dir / "plain.log")
    return step_times(spawned, read_jsonl(run_dir / "times.jsonl"), STEPS, spec["grpo_kwargs"]["save_steps"])


def run(ctx: Context) -> list[Figure]:
    root = ctx.scratch("training")
    spec = plain_spec(root)
    save_steps = spec["grpo_kwargs"]["save_steps"]
    results: dict[str, list[StepTimes]] = {"plain": [], "framework": []}

    def measure(side: str) -> float:
        name = f"{side}{len(results[side])}"
        times = (run_framework(ctx, root, name, save_steps) if side == "framework"
                 else run_plain(ctx, root, spec, name))
        results[side].append(times)
        logger.info(f"{side}: start-up {times.startup_s:.2f} s, {times.per_step_s:.3f} s/step")
        return times.per_step_s

    per_step = interleave(ctx.repeats, {"plain": lambda: measure("plain"), "framework": lambda: measure("framework")})
    fw_step, plain_step = per_step["framework"], per_step["plain"]
    unsaved_ratio = median_ratio([t.per_step_unsaved_s for t in results["framework"]],
                                 [t.per_step_unsaved_s for t in results["plain"]])
    fw_start = [t.startup_s for t in results["framework"]]
    plain_start = [t.startup_s for t in results["plain"]]
    step_ratio = median_ratio(fw_step, plain_step)
    extra_start = median([f - p for f, p in zip(fw_start, plain_start, strict=True)])
    tokens = {t.num_tokens for side in results.values() for t in side}
    same_work = (f"same work: num_tokens {int(tokens.pop())} at step {STEPS} in every run of both"
                 if len(tokens) == 1 else f"tokens by step {STEPS} differ between runs: {sorted(tokens)}")
    return [
        Figure(f"training: s/step after start-up (demo, {STEPS} steps)", median(fw_step), "s",
               target=f"ratio <= {STEP_RATIO_TARGET}", met=step_ratio <= STEP_RATIO_TARGET,
               baseline=median(plain_step), baseline_name="plain TRL", ratio=step_ratio, samples=ctx.repeats,
               note=f"per repeat: {', '.join(f'{f / p:.3f}' for f, p in zip(fw_step, plain_step, strict=True))}; "
                    f"steps 2-{STEPS}, each side's checkpoint at step {save_steps} inside the interval, eval off, "
                    f"logging at step 1 and every 5 steps; steps 2-{save_steps} alone (no save): ratio "
                    f"{unsaved_ratio:.3f}; {same_work}"),
        Figure("training: start-up to end of step 1", median(fw_start), "s",
               target=f"<= plain + {STARTUP_BUDGET_S:g} s", met=extra_start <= STARTUP_BUDGET_S,
               baseline=median(plain_start), baseline_name="plain TRL", ratio=median_ratio(fw_start, plain_start),
               samples=ctx.repeats,
               note=f"median difference {extra_start:+.2f} s (per repeat: "
                    f"{', '.join(f'{f - p:+.2f}' for f, p in zip(fw_start, plain_start, strict=True))}; "
                    "process spawn to step 1's log)"),
    ]
