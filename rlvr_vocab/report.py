"""Does the reasoning vocabulary help under GRPO? Two arms (a baseline sweep A and, say, the same model with a
reasoning vocabulary, sweep B) compared per benchmark, and the self-contained report that says so.

The comparison: runs of each arm are grouped by their swept values but seed (settings); per metric (each benchmark's
accuracy at the final model and at its best checkpoint, held-out accuracy, training reward) every setting gets its
mean, std, n and 95% bootstrap interval over seeds, and every pair of settings the difference B - A paired by seed
with its interval (rlvr_vocab.eval.stats). `rlvr-vocab compare` prints it; `rlvr-vocab report` writes it as one HTML
file (plots embedded as data URIs, inline CSS, nothing fetched: it can be mailed) or as Markdown with PNGs beside it.

Cheap to import (the CLI imports it): numpy, loguru and matplotlib load only when statistics or plots are made.
"""

import base64
import html
import itertools
import math
import shlex
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.keys import is_one_off, override_key
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.eval import results
from rlvr_vocab.plotting import group_by_arm, render_png, run_overrides, sort_key, swept_keys
from rlvr_vocab.run.overrides import launcher_overrides, recorded_overrides

QUESTION = "Does the reasoning vocabulary help under GRPO?"
SMALL_N = 3
# Decimals shown for a statistic; a comparison row may need more for its means to agree with its difference.
DIGITS, MAX_DIGITS = 3, 6
# Columns of a run's benchmark results: accuracy (pass@1) at the final model and at the best evaluated step.
FINAL, BEST, BEST_STEP = " final", " best", " best_step"
# Metrics besides the benchmarks', named as `rlvr-vocab compare` names its columns.
HELD_OUT, REWARD = "acc_final", "reward"
METRIC_TITLES = {HELD_OUT: "held-out accuracy (final)", REWARD: "training reward (last logged)"}
# Config keys that differ between any two runs without being part of the experiment.
NOT_CONFIG = {"run_name", "sweep_id", "experiments_root"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


# ---------------------------------------------------------------------------------------------- a run's measures


def benchmark_names(runs) -> list[str]:
    """The benchmarks any of these runs has results for."""
    return sorted({b for r in runs for b in results.benchmarks_of(r.paths, r.m)})


def benchmark_values(view, benchmarks: list[str]) -> dict[str, Any]:
    """Per benchmark: `<b> final` and `<b> best` (accuracy) and `<b> best_step`; None where the run has none.

    "final" is the final model (or the evaluation at max_steps): a run still training has no final value.
    """
    summary = results.benchmarks_of(view.paths, view.m)
    out: dict[str, Any] = {}
    for b in benchmarks:
        final, best = results.final_and_best(summary, b, view.m.get("max_steps"))
        out[b + FINAL] = (final or {}).get("accuracy")
        out[b + BEST] = (best or {}).get("accuracy")
        out[b + BEST_STEP] = (best or {}).get("step")
    return out


def run_metrics(view, benchmarks: list[str]) -> dict[str, float | None]:
    """Every metric the comparison averages: benchmarks at final and best, held-out accuracy, reward."""
    values = benchmark_values(view, benchmarks)
    final_eval = (view.m.get("eval") or {}).get("final") or {}
    return {**{k: v for k, v in values.items() if not k.endswith(BEST_STEP)},
            HELD_OUT: final_eval.get("accuracy"), REWARD: (view.m.get("metrics") or {}).get("reward")}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace(FINAL, " (final model)").replace(BEST, " (best checkpoint)"))


def run_seed(view) -> str | None:
    """The run's seed: its override, else its config.yaml's (a run left at the default seed)."""
    seed = run_overrides(view).get("seed")
    if seed is None:
        seed = _config(view).get("seed")
    return None if seed is None else str(seed)


def _config(view) -> dict[str, Any]:
    """The run's config.yaml flattened to dotted keys ({} when it has none yet)."""
    import yaml

    from rlvr_vocab.run.identity import flatten

    try:
        data = yaml.safe_load(view.paths.config.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return flatten(data) if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------------------- statistics


def summary(values: list[float]) -> dict[str, Any] | None:
    """stats.summarize of the values given (None for none): mean, std, n, ci_low, ci_high, note."""
    from rlvr_vocab.eval import stats

    numbers = [v for v in values if v is not None]
    return stats.summarize(numbers) if numbers else None


def paired(a: dict[str, float | None], b: dict[str, float | None]) -> dict[str, Any] | None:
    """stats.paired_difference of b - a over the seeds both have values for (None when none)."""
    from rlvr_vocab.eval import stats

    a = {s: v for s, v in a.items() if v is not None}
    b = {s: v for s, v in b.items() if v is not None}
    if not a.keys() & b.keys():
        return None
    diff = stats.paired_difference(a, b)
    return {**diff, **{k: sorted(diff[k], key=sort_key) for k in ("seeds", "a_only", "b_only")}}


def verdict(diff: dict[str, Any] | None, a: str, b: str) -> str:
    """Which arm is better by the paired difference's 95% interval, or that it includes 0."""
    if diff is None:
        return "no seed in both arms"
    if diff["ci_low"] > 0:
        return f"{b} better"
    if diff["ci_high"] < 0:
        return f"{a} better"
    return "interval includes 0"


def small_n_note(*summaries: dict[str, Any] | None) -> str | None:
    from rlvr_vocab.eval import stats

    return stats.SMALL_N_NOTE if any(s is not None and s["n"] < SMALL_N for s in summaries) else None


# ---------------------------------------------------------------------------------------------- arms


class Arm:
    """One sweep's runs, each with its seed and setting (its swept values but seed) and its metrics."""

    def __init__(self, name: str, sweep: str, runs: list) -> None:
        self.name, self.sweep, self.runs = name, sweep, runs
        self.overrides = [run_overrides(r) for r in runs]
        self.setting_keys = [k for k in swept_keys(self.overrides) if k != "seed"]
        self.seeds = [run_seed(r) for r in runs]
        self.benchmarks = benchmark_names(runs)
        self.metrics = [run_metrics(r, self.benchmarks) for r in runs]

    def setting(self, i: int) -> tuple:
        return tuple(self.overrides[i].get(k) for k in self.setting_keys)

    def settings(self) -> dict[tuple, list[int]]:
        """Setting values -> indices of its runs, in sweep order."""
        groups: dict[tuple, list[int]] = {}
        for i in sorted(range(len(self.runs)), key=lambda i: [sort_key(v) for v in self.setting(i)]):
            groups.setdefault(self.setting(i), []).append(i)
        return groups


def load_arms(runs: list, sweep: str, vs: str | None = None) -> list[Arm]:
    """Arm A (the sweep) and, with `vs`, arm B; one-line errors for an unknown sweep or arms without a common seed."""
    from rlvr_vocab.cli.common import select

    if vs is not None and vs == sweep:
        raise ConfigError("--vs", f"compares sweep '{sweep}' with itself", "give the other arm's sweep id")
    arms = [Arm("A", sweep, select(runs, sweep=sweep))]
    if vs is not None:
        arms.append(Arm("B", vs, select(runs, sweep=vs)))
        a, b = ({s for s in arm.seeds if s is not None} for arm in arms)
        if not a & b:
            raise ConfigError(f"--vs {vs}", f"no seed in both arms ({sweep} has seeds {_seeds(a)}, {vs} has "
                              f"{_seeds(b)})", "pair the arms by running them with the same seeds")
    return arms


def _seeds(seeds) -> str:
    return "[" + ", ".join(sorted(seeds, key=sort_key)) + "]" if seeds else "none"


class Pairing(NamedTuple):
    """A setting of A against a setting of B: the same values of the keys both arms sweep."""

    label: str
    setting: dict[str, dict[str, str | None]]
    a: list[int]
    b: list[int]


def pairings(a: Arm, b: Arm) -> list[Pairing]:
    """Settings of A against those of B with the same values of the keys both sweep (every pair when they sweep
    none in common: then each arm's other swept values tell its settings apart)."""
    common = [k for k in a.setting_keys if k in b.setting_keys]
    a_only = [k for k in a.setting_keys if k not in common]
    b_only = [k for k in b.setting_keys if k not in common]
    out = []
    for a_values, a_runs in a.settings().items():
        for b_values, b_runs in b.settings().items():
            a_set, b_set = dict(zip(a.setting_keys, a_values, strict=True)), dict(zip(b.setting_keys, b_values,
                                                                                       strict=True))
            if any(a_set[k] != b_set[k] for k in common):
                continue
            setting = {"both": {k: a_set[k] for k in common}, a.name: {k: a_set[k] for k in a_only},
                       b.name: {k: b_set[k] for k in b_only}}
            out.append(Pairing(_pairing_label(setting), setting, a_runs, b_runs))
    return out


def _pairing_label(setting: dict[str, dict[str, str | None]]) -> str:
    parts = [", ".join(f"{_short(k)}={v}" for k, v in values.items()) for values in setting.values()]
    named = [p if arm == "both" else f"{arm}: {p}" for arm, p in zip(setting, parts, strict=True) if p]
    return "; ".join(named) or "all runs"


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def metrics_of(arms: list[Arm]) -> list[str]:
    """The metrics to compare: each benchmark any arm has at final and best, then held-out accuracy and reward."""
    benchmarks = sorted({b for arm in arms for b in arm.benchmarks})
    return [b + at for b in benchmarks for at in (FINAL, BEST)] + [HELD_OUT, REWARD]


def _by_seed(arm: Arm, runs: list[int], metric: str) -> dict[str, float | None]:
    return {arm.seeds[i]: arm.metrics[i].get(metric) for i in runs if arm.seeds[i] is not None}


def compare_arms(a: Arm, b: Arm) -> list[dict[str, Any]]:
    """One row per pairing of settings and metric: each arm's summary over seeds, the paired difference B - A
    with its 95% interval, which seeds paired and which did not, the verdict and the n < 3 note."""
    rows = []
    for pairing, metric in itertools.product(pairings(a, b), metrics_of([a, b])):
        # Each arm's summary over all its runs of the setting; the difference over the seeds both have.
        a_sum, b_sum = (summary([arm.metrics[i].get(metric) for i in runs])
                        for arm, runs in ((a, pairing.a), (b, pairing.b)))
        if a_sum is None and b_sum is None:
            continue
        diff = paired(_by_seed(a, pairing.a, metric), _by_seed(b, pairing.b, metric))
        rows.append({"setting": pairing.setting, "label": pairing.label, "metric": metric, "a": a_sum, "b": b_sum,
                     "diff": diff, "verdict": verdict(diff, a.name, b.name), "note": small_n_note(a_sum, b_sum, diff)})
    return rows


def setting_summaries(arm: Arm) -> list[dict[str, Any]]:
    """One row per setting and metric of a single arm: its summary over seeds."""
    labels = _setting_labels(arm)
    rows = []
    for (values, runs), metric in itertools.product(arm.settings().items(), metrics_of([arm])):
        s = summary([arm.metrics[i].get(metric) for i in runs])
        if s is not None:
            rows.append({"setting": dict(zip(arm.setting_keys, values, strict=True)), "label": labels[values],
                         "metric": metric, "summary": s, "note": small_n_note(s)})
    return rows


def _setting_labels(arm: Arm) -> dict[tuple, str]:
    return {v: ", ".join(f"{_short(k)}={x}" for k, x in zip(arm.setting_keys, v, strict=True)) or "all runs"
            for v in arm.settings()}


def comparison_json(arms: list[Arm]) -> dict[str, Any]:
    """What `compare --vs` prints as JSON (and the report tabulates)."""
    a, b = arms
    rows = compare_arms(a, b)
    return {
        "a": _arm_json(a), "b": _arm_json(b), "difference": "b - a, paired by seed; 95% bootstrap intervals",
        "rows": rows, "note": next((r["note"] for r in rows if r["note"]), None),
    }


def _arm_json(arm: Arm) -> dict[str, Any]:
    return {"sweep": arm.sweep, "runs": len(arm.runs), "setting_keys": arm.setting_keys,
            "seeds": sorted({s for s in arm.seeds if s is not None}, key=sort_key), "benchmarks": arm.benchmarks}


# ---------------------------------------------------------------------------------------------- configs, commands


def config_difference(a: Arm, b: Arm | None = None) -> list[tuple[str, str, str | None]]:
    """(key, A's values, B's values) for every config key whose values differ between the arms; with one arm, (key,
    values, None) for the keys that vary between its runs (its swept keys). Read from the runs' config.yaml."""
    a_values = _config_values(a)
    if b is None:
        return [(k, ", ".join(v), None) for k, v in a_values.items() if len(v) > 1 and k not in NOT_CONFIG]
    b_values = _config_values(b)
    keys = sorted((a_values.keys() | b_values.keys()) - NOT_CONFIG)
    return [(k, ", ".join(a_values.get(k, ["(absent)"])), ", ".join(b_values.get(k, ["(absent)"]))) for k in keys
            if a_values.get(k) != b_values.get(k)]


def _config_values(arm: Arm) -> dict[str, list[str]]:
    """Key -> its distinct values in the arm's runs, in order."""
    configs = [c for c in (_config(r) for r in arm.runs) if c]
    keys = {k for c in configs for k in c}
    return {k: sorted({_text(c.get(k)) for c in configs}, key=sort_key) for k in sorted(keys)}


def _text(value: Any) -> str:
    return "null" if value is None else str(value) if not isinstance(value, bool) else str(value).lower()


def reproduce_commands(arm: Arm) -> list[str]:
    """The `python -m rlvr_vocab.train --multirun ...` that submits the arm's runs again: one grid command when the
    runs form a grid of their overrides, else one command per run."""
    raws = [_raw_overrides(r) for r in arm.runs]
    hydra = next((h for h in (_hydra_overrides(r) for r in arm.runs) if h), ["hydra/launcher=slurm"])
    prefix = ["python", "-m", "rlvr_vocab.train", "--multirun", *hydra]
    grid = _grid(raws)
    commands = [grid] if grid is not None else [list(dict.fromkeys(raw)) for raw in raws]
    return [shlex.join(prefix + c) for c in commands]


def _raw_overrides(view) -> list[str]:
    """The run's overrides as typed, without those naming the run or the submission."""
    return [o for o in recorded_overrides(view.m, view.submissions) if "=" in o and not is_one_off(override_key(o))]


def _hydra_overrides(view) -> list[str]:
    submission = view.submissions[-1] if view.submissions else {}
    return launcher_overrides(submission.get("hydra_overrides") or [])


def _grid(raws: list[list[str]]) -> list[str] | None:
    """The runs' overrides as one Hydra grid (`key=v1,v2`), or None when the runs are not exactly such a grid."""
    typed: dict[str, str] = {}  # key -> the key as typed (`+sweep`, `seed`)
    values: dict[str, list[str]] = {}
    for raw in raws:
        for o in raw:
            typed_key, value = o.split("=", 1)
            key = override_key(o)
            typed.setdefault(key, typed_key)
            if value not in values.setdefault(key, []):
                values[key].append(value)
    points = {frozenset(raw) for raw in raws}
    every_key = all({override_key(o) for o in raw} == values.keys() for raw in raws)
    if not every_key or math.prod(len(v) for v in values.values()) != len(points):
        return None
    from_file = _sweep_file_keys(values.get("sweep", []))
    return [f"{typed[k]}={','.join(sorted(v, key=sort_key))}" for k, v in values.items() if k not in from_file]


def _sweep_file_keys(names: list[str]) -> set[str]:
    """Keys a `+sweep=<name>` grid file sweeps: they come with the file (given again, Hydra would sweep them twice)."""
    if len(names) != 1:
        return set()
    import yaml

    try:
        data = yaml.safe_load((CONF_DIR / "sweep" / f"{names[0]}.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    params = ((data.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return set(params)


def git_state(arm: Arm) -> str:
    """The code the arm ran: its runs' git commits (and whether the tree had uncommitted changes)."""
    commits = {(r.m.get("git_commit"), r.m.get("git_dirty")) for r in arm.runs if r.m.get("git_commit")}
    return "; ".join(f"{c[:12]}{' with uncommitted changes' if dirty else ''}" for c, dirty in sorted(commits)) \
        or "not recorded"


# ---------------------------------------------------------------------------------------------- runs


def run_rows(arm: Arm) -> list[dict[str, Any]]:
    """Each run as the report lists it: state, steps, attempts with their end states, requeues, W&B."""
    rows = []
    for i, view in enumerate(arm.runs):
        attempts = view.settled_attempts()
        rows.append({
            "arm": arm.name, "run": view.run_name, "seed": arm.seeds[i],
            "setting": ", ".join(f"{_short(k)}={arm.overrides[i].get(k)}" for k in arm.setting_keys) or "-",
            "state": view.state.value, "step": f"{view.m.get('last_step') or 0}/{view.m.get('max_steps') or '?'}",
            "attempts": " -> ".join(a.get("end_state") or "running" for a in attempts) or "-",
            "requeues": _requeues(attempts), "wandb_url": view.m.get("wandb_url"), "note": view.note,
        })
    return sorted(rows, key=lambda r: (sort_key(r["setting"]), sort_key(r["seed"]), r["run"]))


def _requeues(attempts: list[dict]) -> int:
    """Attempts that continued the same SLURM job (a requeue), not a new submission (a resume)."""
    jobs = [a.get("slurm_job_id") for a in attempts]
    return sum(1 for before, after in itertools.pairwise(jobs) if after and after == before)


# ---------------------------------------------------------------------------------------------- the document


class Link(NamedTuple):
    text: str
    url: str


class Verdict(NamedTuple):
    text: str
    kind: str  # better | worse | unclear


class Heading(NamedTuple):
    text: str
    level: int = 2


class Para(NamedTuple):
    text: str
    kind: str = "p"  # p | note | answer


class Table(NamedTuple):
    headers: list[str]
    rows: list[list[Any]]


class Image(NamedTuple):
    name: str
    png: bytes
    alt: str


class Code(NamedTuple):
    lines: list[str]


def build(runs: list, sweep: str, vs: str | None = None) -> list:
    """The report of sweep `sweep` (arm A) against `vs` (arm B) as a list of blocks (Heading, Para, Table, ...)."""
    arms = load_arms(runs, sweep, vs)
    rows = compare_arms(*arms) if vs is not None else setting_summaries(arms[0])
    blocks: list = [Heading(QUESTION, 1), Para(_arms_line(arms)), Para(_generated(), "note")]
    blocks += _answer(arms, rows) + _config_section(arms) + _results_section(arms, rows) + _curves_section(arms)
    blocks += _runs_section(arms) + _reproduce_section(arms) + _method_section()
    return blocks


def _arms_line(arms: list[Arm]) -> str:
    described = [f"{arm.name} = sweep {arm.sweep} ({len(arm.runs)} runs)" for arm in arms]
    if len(arms) == 1:
        return f"One arm: {described[0]}. Compare it with the other arm: `rlvr-vocab report --sweep {arms[0].sweep} " \
               "--vs <sweep>`."
    return f"Arm {described[0]}, the baseline; arm {described[1]}. Differences are B - A, paired by seed."


def _generated() -> str:
    return f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `rlvr-vocab report`."


def _answer(arms: list[Arm], rows: list[dict[str, Any]]) -> list:
    if len(arms) == 1:
        return []
    return [Heading("Answer in short"), *(Para(line, "answer") for line in answer_lines(rows, *arms))]


def answer_lines(rows: list[dict[str, Any]], a: Arm, b: Arm) -> list[str]:
    """The answer in plain words, one sentence per benchmark at the final model and for held-out accuracy: what
    `rlvr-vocab report` puts first and `rlvr-vocab compare --vs` prints under its table."""
    lines = [answer_sentence(r, a, b) for r in rows if r["metric"].endswith(FINAL) or r["metric"] == HELD_OUT]
    return lines or ["No benchmark or held-out results in either arm yet."]


def answer_sentence(row: dict[str, Any], a: Arm, b: Arm) -> str:
    where = f"{metric_title(row['metric'])}" + ("" if row["label"] == "all runs" else f", {row['label']}")
    diff = row["diff"]
    if diff is None:
        return f"{where}: no seed has results in both arms; nothing to compare."
    said = {f"{b.name} better": f"B ({b.sweep}) is better", f"{a.name} better": f"A ({a.sweep}) is better",
            "interval includes 0": "no difference shown (the interval includes 0)"}[row["verdict"]]
    caveat = f" Caveat: {row['note']}." if row["note"] else ""
    d = decimals(row)
    means = f"A {number(row['a']['mean'], digits=d)}, B {number(row['b']['mean'], digits=d)}; " \
        if row["a"] is not None and row["b"] is not None else ""
    return (f"{where}: {said}. {means}B - A = {number(diff['mean_diff'], True, d)} (95% CI "
            f"{number(diff['ci_low'], True, d)} to {number(diff['ci_high'], True, d)}, {diff['n']} paired seeds: "
            f"{', '.join(diff['seeds'])}).{caveat}")


def _config_section(arms: list[Arm]) -> list:
    if len(arms) == 1:
        diff = config_difference(arms[0])
        head = [Heading("Configuration"), Para(f"Keys swept in arm A ({arms[0].sweep}), from its runs' config.yaml:")]
        return head + [Table(["key", "values"], [[k, v] for k, v, _ in diff]) if diff else
                       Para("No key varies between its runs but the seed (or no run has a config.yaml yet).")]
    a, b = arms
    diff = config_difference(a, b)
    head = [Heading("What differs between the arms"),
            Para(f"Config keys whose values differ, from the runs' config.yaml (A: {a.sweep} -> B: {b.sweep}; "
                 "several values: swept within the arm).")]
    return head + [Table(["key", "A", "B"], [[k, x, y] for k, x, y in diff]) if diff else
                   Para("No config.yaml differs (or no run has written one yet).")]


def _results_section(arms: list[Arm], rows: list[dict[str, Any]]) -> list:
    """Per metric a table: with one arm its settings' summaries; with two, the comparison rows."""
    blocks: list = [Heading("Results per benchmark")]
    if len(arms) == 1:
        for metric in metrics_of(arms):
            table = [[r["label"], *_summary_cells(r["summary"]), r["note"] or ""]
                     for r in rows if r["metric"] == metric]
            if table:
                blocks += [Heading(metric_title(metric), 3),
                           Table(["setting", "mean ± std", "n", "95% CI", "note"], table)]
        return blocks
    a, b = arms
    for metric in metrics_of(arms):
        table = [_comparison_cells(r, a, b) for r in rows if r["metric"] == metric]
        if table:
            blocks += [Heading(metric_title(metric), 3), Table(
                ["setting", f"A {a.sweep}: mean ± std", "n", "95% CI", f"B {b.sweep}: mean ± std", "n", "95% CI",
                 "B - A", "95% CI", "paired on seeds", "unpaired seeds", "verdict", "note"], table)]
    return blocks


def _summary_cells(s: dict[str, Any] | None, digits: int = DIGITS) -> list[str]:
    if s is None:
        return ["-", "0", "-"]
    return [_mean_std(s, digits), str(s["n"]), _interval(s["ci_low"], s["ci_high"], digits=digits)]


def _comparison_cells(row: dict[str, Any], a: Arm, b: Arm) -> list[Any]:
    diff, d = row["diff"], decimals(row)
    if diff is None:
        diff_cells = ["-", "-", "-", "-"]
    else:
        diff_cells = [number(diff["mean_diff"], True, d), _interval(diff["ci_low"], diff["ci_high"], True, d),
                      ", ".join(diff["seeds"]), unpaired_text(diff, a.name, b.name)]
    kind = {f"{b.name} better": "better", f"{a.name} better": "worse"}.get(row["verdict"], "unclear")
    return [row["label"], *_summary_cells(row["a"], d), *_summary_cells(row["b"], d), *diff_cells,
            Verdict(row["verdict"], kind), row["note"] or ""]


def unpaired_text(diff: dict[str, Any], a: str, b: str) -> str:
    """The seeds only one arm has, as "only A: 3; only B: 5" ("-" for none)."""
    said = [f"only {a}: {', '.join(diff['a_only'])}"] * bool(diff["a_only"]) + \
           [f"only {b}: {', '.join(diff['b_only'])}"] * bool(diff["b_only"])
    return "; ".join(said) or "-"


def _curves_section(arms: list[Arm]) -> list:
    groups = {label: [r.run_dir for r in runs] for label, runs in
              group_by_arm({f"{arm.name} {arm.sweep}": arm.runs for arm in arms}).items()}
    title = " vs ".join(f"{arm.name} {arm.sweep}" for arm in arms)
    blocks: list = [Heading("Curves")]
    if any(arm.benchmarks for arm in arms):
        blocks.append(Image("benchmarks", render_png(groups, f"benchmark accuracy vs step: {title}", ["benchmarks"]),
                            "benchmark accuracy against training step, one line per arm, a min-max band over seeds"))
    else:
        blocks.append(Para("No benchmark results yet: only the training curves."))
    blocks.append(Image("training", render_png(groups, f"training: {title}", ["reward", "accuracy"]),
                        "training reward and held-out accuracy against step, one line per arm"))
    return blocks


def _runs_section(arms: list[Arm]) -> list:
    rows = [[r["arm"], r["run"], r["seed"] or "-", r["setting"], r["state"], r["step"], r["attempts"],
             str(r["requeues"]), Link("W&B", r["wandb_url"]) if r["wandb_url"] else "-", r["note"] or ""]
            for arm in arms for r in run_rows(arm)]
    return [Heading("Runs"),
            Para("Attempts lists how each attempt ended; a requeue is an attempt that continued the same SLURM job "
                 "(after a timeout or preemption), a resume one that was submitted again."),
            Table(["arm", "run", "seed", "setting", "state", "step", "attempts", "requeues", "W&B", "note"], rows)]


def _reproduce_section(arms: list[Arm]) -> list:
    blocks: list = [Heading("Reproduce")]
    for arm in arms:
        blocks += [Para(f"Arm {arm.name} ({arm.sweep}), code at git {git_state(arm)}:"), Code(reproduce_commands(arm))]
    blocks.append(Para("Each command submits the arm's sweep afresh (another experiments root, or after moving the "
                       "run dirs aside); `rlvr-vocab resume` continues runs, it does not reproduce them.", "note"))
    return blocks


def _method_section() -> list:
    return [Heading("How these numbers are made"), Para(
        "Per setting, mean and sample std over seeds, n, and a 95% percentile-bootstrap interval of the mean "
        "(10,000 resamples, seeded). The difference B - A is paired by seed (same seed, same other swept values) "
        "and has its own bootstrap interval; seeds only one arm has are left out and listed. 'best' is each run's "
        "best evaluated checkpoint chosen on the benchmark itself, so it is optimistic; 'final' is the final model. "
        "With n < 3 seeds no interval means much.")]


def number(value: float | None, signed: bool = False, digits: int = DIGITS) -> str:
    """`value` to `digits` decimals ("-" for None); a value that rounds to zero shows no sign of its own (+0.000)."""
    if value is None:
        return "-"
    text = f"{value:+.{digits}f}"
    if float(text) == 0:
        text = "+" + text[1:]
    return text if signed else text.removeprefix("+")


def decimals(row: dict[str, Any]) -> int:
    """Decimals for a comparison row's numbers: DIGITS, or more where the arms' means rounded to DIGITS would not
    differ by the difference rounded to DIGITS (0.587 and 0.588 beside +0.000). Only where the difference is over
    the same runs as the means; with unpaired seeds the means and the paired difference need not agree."""
    diff, a, b = row["diff"], row["a"], row["b"]
    if diff is None or a is None or b is None or diff["a_only"] or diff["b_only"] or not a["n"] == b["n"] == diff["n"]:
        return DIGITS
    for digits in range(DIGITS, MAX_DIGITS + 1):
        shown = Decimal(number(b["mean"], digits=digits)) - Decimal(number(a["mean"], digits=digits))
        if shown == Decimal(number(diff["mean_diff"], digits=digits)):
            return digits
    return MAX_DIGITS


def _mean_std(s: dict[str, Any], digits: int = DIGITS) -> str:
    return number(s["mean"], digits=digits) + (f" ± {number(s['std'], digits=digits)}" if s["std"] is not None
                                               else "")


def _interval(low: float, high: float, signed: bool = False, digits: int = DIGITS) -> str:
    return f"[{number(low, signed, digits)}, {number(high, signed, digits)}]"


# ---------------------------------------------------------------------------------------------- HTML and Markdown

_CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1b1f24; margin: 0;
       background: #fff; }
main { max-width: 1220px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 4px 0 10px; } h2 { font-size: 20px; margin: 30px 0 8px; border-bottom: 1px solid #d8dee4;
     padding-bottom: 4px; } h3 { font-size: 16px; margin: 18px 0 6px; }
p.note { color: #57606a; font-size: 13px; } p.answer { background: #f6f8fa; border-left: 4px solid #0969da;
         padding: 6px 10px; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tr:nth-child(even) td { background: #fbfcfd; }
td.better { background: #dafbe1 !important; } td.worse { background: #ffebe9 !important; }
td.unclear { background: #fff8c5 !important; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; white-space: pre-wrap;
      word-break: break-all; }
img { max-width: 100%; border: 1px solid #d8dee4; }
"""


def to_html(blocks: list, title: str) -> str:
    """One self-contained page: inline CSS, images as data URIs, no scripts, nothing fetched."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def _html_block(block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f'<p class="{block.kind}">{_inline_code(block.text)}</p>'
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>\n" for row in block.rows)
        return f"<table>\n<tr>{head}</tr>\n{rows}</table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode()
        return f'<p><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}"></p>'
    return "<pre>" + "\n".join(html.escape(line) for line in block.lines) + "</pre>"


def _html_cell(cell: Any) -> str:
    if isinstance(cell, Link):
        return f'<td><a href="{html.escape(cell.url)}">{html.escape(cell.text)}</a></td>'
    if isinstance(cell, Verdict):
        return f'<td class="{cell.kind}">{html.escape(cell.text)}</td>'
    return f"<td>{html.escape(str(cell))}</td>"


def _inline_code(text: str) -> str:
    """`code` spans as <code>, the rest escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_markdown(blocks: list, image_names: dict[str, str]) -> str:
    """Markdown of the blocks; images referenced by the relative file names given (name -> file)."""
    return "\n\n".join(_md_block(b, image_names) for b in blocks) + "\n"


def _md_block(block, image_names: dict[str, str]) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Para):
        return f"*{block.text}*" if block.kind == "note" else f"> {block.text}" if block.kind == "answer" else \
            block.text
    if isinstance(block, Table):
        lines = ["| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        return f"![{block.alt}]({image_names[block.name]})"
    return "```bash\n" + "\n".join(block.lines) + "\n```"


def _md_cell(cell: Any) -> str:
    if isinstance(cell, Link):
        return f"[{cell.text}]({cell.url})"
    text = cell.text if isinstance(cell, Verdict) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


def default_out(root: Path, sweep: str, vs: str | None, fmt: str) -> Path:
    return Path(root) / "_reports" / f"{sweep}{f'-vs-{vs}' if vs else ''}.{fmt}"


def write(blocks: list, out: Path, fmt: str = "html") -> Path:
    """The report as one HTML file, or (fmt "md") Markdown with its PNGs beside it (`<stem>-<plot>.png`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = next((b.text for b in blocks if isinstance(b, Heading)), QUESTION)
    if fmt == "html":
        out.write_text(to_html(blocks, title))
        return out
    names = {}
    for image in (b for b in blocks if isinstance(b, Image)):
        names[image.name] = f"{out.stem}-{image.name}.png"
        (out.parent / names[image.name]).write_bytes(image.png)
    out.write_text(to_markdown(blocks, names))
    return out


# ---------------------------------------------------------------------------------------------- the screenshot


def screenshot(html_file: Path, png: Path, width: int = 1280, height: int = 2400, timeout_s: float = 120
               ) -> list[str]:
    """The page as a person sees it: headless Chromium (Debian's `chromium`) renders `html_file` to `png`, offline.

    Returns the page's console messages (Chromium logs errors and `console.*` alike as CONSOLE; the report has no
    scripts, so any is a fault); raises if no PNG was written.
    """
    chromium = shutil.which("chromium") or CHROMIUM
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)  # a PNG left from before must not pass for this one
    with tempfile.TemporaryDirectory(prefix="rlvr-chromium-") as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
             Path(html_file).resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout_s)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
