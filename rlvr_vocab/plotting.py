"""Learning curves from run dirs: training reward and held-out accuracy against step, averaged over seeds.

matplotlib is imported only inside `plot_runs`, so the CLI can import this module and stay fast.
"""

import json
from pathlib import Path

from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest

# Overrides that differ between runs of a sweep without being settings of the experiment.
IGNORED = {"run_name", "sweep_id", "hydra.launcher.wait"}


def run_overrides(view) -> dict[str, str]:
    """A run's Hydra overrides as key -> value (from its manifest, else from its last submission)."""
    raw = view.m.get("overrides") or (view.submissions[-1].get("overrides") if view.submissions else []) or []
    pairs = (o.split("=", 1) for o in raw if "=" in o)
    return {k.lstrip("+~"): v.strip("'\"") for k, v in pairs if k.lstrip("+~") not in IGNORED}


def swept_keys(values: list[dict[str, str]]) -> list[str]:
    """The override keys whose values differ across runs (missing counts as a value), `seed` last."""
    swept = {k for v in values for k in v if len({x.get(k) for x in values}) > 1}
    return sorted(swept, key=lambda k: (k == "seed", k))


def sort_key(value):
    """Numbers in numeric order (1e-6 < 3e-6 < 1e-5), then strings, then missing values."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, "" if value is None else str(value))


def group_by_setting(runs) -> dict[str, list]:
    """Runs grouped by their swept values other than `seed`, labelled like "learning_rate=1e-05", in sweep order."""
    values = [run_overrides(r) for r in runs]
    keys = [k for k in swept_keys(values) if k != "seed"]
    names = _short_names(keys)
    ordered = sorted(zip(runs, values, strict=True), key=lambda pair: [sort_key(pair[1].get(k)) for k in keys])
    groups: dict[str, list] = {}
    for run, ov in ordered:
        label = ", ".join(f"{names[k]}={ov.get(k, '-')}" for k in keys) or _fallback_label(runs)
        groups.setdefault(label, []).append(run)
    return groups


def _short_names(keys: list[str]) -> dict[str, str]:
    # "training.learning_rate" reads as "learning_rate" unless another swept key ends the same way.
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _fallback_label(runs) -> str:
    # No setting differs: one line for all of them (seeds only, or a single run).
    return runs[0].run_name if len(runs) == 1 else ", ".join(sorted({r.exp_name for r in runs}))


def load_curves(run_dir: Path) -> dict[str, dict[int, float]]:
    """{"reward": {step: value}, "accuracy": {step: value}}, steps ascending; after a resume the last line wins."""
    return {"reward": _reward_curve(RunPaths(run_dir).metrics), "accuracy": _accuracy_curve(Path(run_dir))}


def _reward_curve(path: Path) -> dict[int, float]:
    curve: dict[int, float] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return curve
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a crash mid-write
            continue
        if isinstance(record, dict) and _is_number(record.get("reward")) and _is_number(record.get("step")):
            curve[int(record["step"])] = float(record["reward"])
    return dict(sorted(curve.items()))


def _accuracy_curve(run_dir: Path) -> dict[int, float]:
    try:
        manifest = read_manifest(run_dir) or {}
    except UnreadableManifest:  # listed as UNREADABLE by `status`; no curve to draw
        manifest = {}
    ev = manifest.get("eval") or {}
    # Before training, any periodic evaluations, after training: later entries win for the same step.
    points = [(ev.get("initial"), 0), *((h, None) for h in ev.get("history") or []),
              (ev.get("final"), manifest.get("last_step"))]
    curve: dict[int, float] = {}
    for entry, default_step in points:
        if not isinstance(entry, dict) or not _is_number(entry.get("accuracy")):
            continue
        step = entry.get("step", default_step)
        if _is_number(step):
            curve[int(step)] = float(entry["accuracy"])
    return dict(sorted(curve.items()))


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _spread(curves: list[dict[int, float]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per step (any run's): mean, min and max over the runs that logged that step."""
    steps = sorted({s for c in curves for s in c})
    at = [[c[s] for c in curves if s in c] for s in steps]
    return steps, [sum(v) / len(v) for v in at], [min(v) for v in at], [max(v) for v in at]


def plot_runs(groups: dict[str, list[Path]], out: Path, title: str) -> Path:
    """Two panels (training reward, held-out accuracy vs step): per group the mean over its runs and a
    min-max band over them. Writes a PNG to `out` and returns its path."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    # An Agg figure of its own: headless, and no pyplot state shared with a caller.
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_reward, ax_acc = fig.subplots(1, 2)
    colors = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    handles = []
    for i, (label, run_dirs) in enumerate(groups.items()):
        color = colors(i % colors.N)
        curves = [load_curves(d) for d in run_dirs]
        _draw(ax_reward, [c["reward"] for c in curves], color, marker=None)
        _draw(ax_acc, [c["accuracy"] for c in curves], color, marker="o")
        # One legend entry per group, even for a group with data in one panel only.
        handles.append(Line2D([], [], color=color, linewidth=1.8, label=f"{label}  (n={len(run_dirs)})"))
    _style(ax_reward, "training reward", "reward (mean of the logging step)")
    _style(ax_acc, "held-out accuracy (greedy)", "accuracy")
    band = "lines: mean over seeds; bands: min-max over seeds"
    fig.suptitle(f"{title}\n{band}", fontsize=12)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=9,
                   frameon=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _draw(ax, curves: list[dict[int, float]], color, marker: str | None) -> None:
    curves = [c for c in curves if c]
    if not curves:
        return
    steps, mean, low, high = _spread(curves)
    ax.plot(steps, mean, color=color, marker=marker, markersize=5, linewidth=1.8)
    if len(curves) > 1:
        ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)


def _style(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if not ax.has_data():
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="gray")
