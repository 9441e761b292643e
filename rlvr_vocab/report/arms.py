"""An arm: one sweep's runs, each with its seed, its setting (its swept values but seed) and its metrics; and the
pairing of two arms' settings. Both arms read each benchmark's same headline measure (avg@n, else greedy accuracy)."""

from typing import NamedTuple

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.registry.filters import select
from rlvr_vocab.report.measures import (
    BEST,
    FINAL,
    HELD_OUT,
    REWARD,
    benchmark_names,
    headline_measures,
    run_metrics,
    run_seed,
)
from rlvr_vocab.report.plotting import run_overrides, sort_key, swept_keys


class Arm:
    """One sweep's runs, each with its seed and setting (its swept values but seed) and its metrics."""

    def __init__(self, name: str, sweep: str, runs: list, measures: dict[str, str] | None = None) -> None:
        """`measures`: benchmark -> the measure to read (default: this arm's headline measures)."""
        self.name, self.sweep, self.runs = name, sweep, runs
        self.overrides = [run_overrides(r) for r in runs]
        self.setting_keys = [k for k in swept_keys(self.overrides) if k != "seed"]
        self.seeds = [run_seed(r) for r in runs]
        self.benchmarks = benchmark_names(runs)
        self.measures = {b: m for b, m in (measures or headline_measures(runs, self.benchmarks)).items()
                         if b in self.benchmarks}
        self.metrics = [run_metrics(r, self.measures) for r in runs]

    def setting(self, i: int) -> tuple:
        return tuple(self.overrides[i].get(k) for k in self.setting_keys)

    def settings(self) -> dict[tuple, list[int]]:
        """Setting values -> indices of its runs, in sweep order."""
        groups: dict[tuple, list[int]] = {}
        for i in sorted(range(len(self.runs)), key=lambda i: [sort_key(v) for v in self.setting(i)]):
            groups.setdefault(self.setting(i), []).append(i)
        return groups

    def setting_labels(self) -> dict[tuple, str]:
        """Setting values -> "learning_rate=1e-6" ("all runs" when nothing but the seed is swept)."""
        return {v: ", ".join(f"{short_key(k)}={x}" for k, x in zip(self.setting_keys, v, strict=True)) or "all runs"
                for v in self.settings()}

    def by_seed(self, runs: list[int], metric: str) -> dict[str, float | None]:
        """Seed -> the metric's value, over the runs given that have a seed."""
        return {self.seeds[i]: self.metrics[i].get(metric) for i in runs if self.seeds[i] is not None}


def load_arms(runs: list, sweep: str, vs: str | None = None) -> list[Arm]:
    """Arm A (the sweep) and, with `vs`, arm B; one-line errors for an unknown sweep or arms without a common seed."""
    if vs is not None and vs == sweep:
        raise ConfigError("--vs", f"compares sweep '{sweep}' with itself", "give the other arm's sweep id")
    if vs is None:
        return [Arm("A", sweep, select(runs, sweep=sweep))]
    a_runs, b_runs = select(runs, sweep=sweep), select(runs, sweep=vs)
    both = a_runs + b_runs
    measures = headline_measures(both, benchmark_names(both))  # one measure per benchmark in both arms
    arms = [Arm("A", sweep, a_runs, measures), Arm("B", vs, b_runs, measures)]
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
    parts = [", ".join(f"{short_key(k)}={v}" for k, v in values.items()) for values in setting.values()]
    named = [p if arm == "both" else f"{arm}: {p}" for arm, p in zip(setting, parts, strict=True) if p]
    return "; ".join(named) or "all runs"


def short_key(key: str) -> str:
    """A config key without its section: "training.learning_rate" -> "learning_rate"."""
    return key.rsplit(".", 1)[-1]


def metrics_of(arms: list[Arm]) -> list[str]:
    """The metrics to compare: each benchmark any arm has at final and best, then held-out accuracy and reward."""
    benchmarks = sorted({b for arm in arms for b in arm.benchmarks})
    return [b + at for b in benchmarks for at in (FINAL, BEST)] + [HELD_OUT, REWARD]
