"""Honest summaries of a few runs: mean, spread and a bootstrap interval, and the paired difference of two arms.

With a handful of seeds a mean says little on its own; every summary carries n and a 95% percentile-bootstrap
interval of the mean (seeded, so a report is reproducible), and flags n < 3, where no interval means much.
pass@k itself is estimated in rlvr_vocab.eval.passk.
"""

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

CONFIDENCE = 0.95
SMALL_N_NOTE = "n < 3 seeds: interval not meaningful"
# Bootstrap resamples drawn per batch: bounds memory at about 8 MB whatever n_boot and n.
_BATCH_CELLS = 1_000_000


def summarize(values: Sequence[float], n_boot: int = 10_000, seed: int = 0) -> dict:
    """Mean, sample std (ddof=1; None for n < 2), n, and a 95% bootstrap interval of the mean (`ci_low`, `ci_high`).

    `note` says why the interval is not to be trusted (n < 3), else None.
    """
    data = _finite(values)
    n = len(data)
    low, high = _bootstrap_interval(data, n_boot, seed)
    return {
        "mean": float(data.mean()),
        "std": float(data.std(ddof=1)) if n >= 2 else None,
        "n": n,
        "ci_low": low,
        "ci_high": high,
        "note": SMALL_N_NOTE if n < 3 else None,
    }


def paired_difference(a: Mapping[Hashable, float], b: Mapping[Hashable, float], n_boot: int = 10_000,
                      seed: int = 0) -> dict:
    """The mean of b - a over the seeds both arms have, with its std, n and 95% bootstrap interval (as summarize).

    Pairing by seed removes the seed-to-seed variation both arms share. Seeds only one arm has are left out and
    reported (`a_only`, `b_only`); `seeds` lists the paired ones.
    """
    paired = sorted(a.keys() & b.keys())
    a_only, b_only = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if not paired:
        raise ValueError(f"no seed in both arms (a has {sorted(a)}, b has {sorted(b)})")
    summary = summarize([b[s] - a[s] for s in paired], n_boot=n_boot, seed=seed)
    return {"mean_diff": summary.pop("mean"), **summary, "seeds": paired, "a_only": a_only, "b_only": b_only}


def _finite(values: Sequence[float]) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"need a non-empty list of numbers, got {values!r}")
    if not np.isfinite(data).all():
        raise ValueError(f"values must be finite, got {values!r}")
    return data


def _bootstrap_interval(data: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of the means of `n_boot` resamples (with replacement) of `data`."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = len(data)
    per_batch = max(1, _BATCH_CELLS // n)
    means = np.concatenate([
        data[rng.integers(0, n, size=(min(per_batch, n_boot - start), n))].mean(axis=1)
        for start in range(0, n_boot, per_batch)
    ])
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
