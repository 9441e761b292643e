"""Learning curves of runs grouped by setting or arm: training reward, held-out accuracy, each benchmark's headline
measure and its lengths and reasoning-token shares against step, averaged over seeds; and how runs are grouped.

matplotlib is imported only inside `build_figure`, so the CLI can import this module and stay fast.
"""

import io
from collections.abc import Sequence
from pathlib import Path

from rlvr_vocab.core.keys import is_one_off, override_key
from rlvr_vocab.report.curves import MEASURE_TITLES, USAGE, USAGE_TITLES, headline, load_curves, measure_curve
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.run.overrides import recorded_overrides

# Panels `build_figure` can draw: training reward, held-out accuracy, one panel per benchmark (its headline
# measure), and with "usage" each benchmark's lengths and reasoning-token shares (not drawn by default).
PANELS = ("reward", "accuracy", "benchmarks")
BAND = "lines: mean over seeds; bands: min-max over seeds"
# Each group's marker and line style (its colour differs too): equal curves of two arms stay two visible lines.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def run_overrides(view) -> dict[str, str]:
    """A run's Hydra overrides as key -> value (from its manifest, else from its last submission)."""
    pairs = (o.split("=", 1) for o in recorded_overrides(view.m, view.submissions) if "=" in o)
    return {k.lstrip("+~"): v.strip("'\"") for k, v in pairs if not is_one_off(override_key(k))}


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


def group_by_arm(arms: dict[str, list]) -> dict[str, list]:
    """Runs of several arms (sweep id -> runs): one group per arm, or per arm and setting when an arm has several
    settings ("S: learning_rate=1e-05")."""
    groups: dict[str, list] = {}
    for arm, runs in arms.items():
        settings = group_by_setting(runs)
        for label, group in settings.items():
            groups[arm if len(settings) == 1 else f"{arm}: {label}"] = group
    return groups


def _short_names(keys: list[str]) -> dict[str, str]:
    # "training.learning_rate" reads as "learning_rate" unless another swept key ends the same way.
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _fallback_label(runs) -> str:
    # No setting differs: one line for all of them (seeds only, or a single run).
    return runs[0].run_name if len(runs) == 1 else ", ".join(sorted({r.exp_name for r in runs}))


def _spread(curves: list[dict[int, float]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per step (any run's): mean, min and max over the runs that logged that step."""
    steps = sorted({s for c in curves for s in c})
    at = [[c[s] for c in curves if s in c] for s in steps]
    return steps, [sum(v) / len(v) for v in at], [min(v) for v in at], [max(v) for v in at]


def plot_sweep(sweep: str, runs: list, root: Path, out: Path | None = None, vs: str | None = None,
               vs_runs: list | None = None) -> Path:
    """A sweep's curves, a line per setting; with `vs` (and its runs) a line per arm (and setting). Written to `out`,
    else to the root's plots (RootPaths.plot) as <sweep>[-vs-<vs>].png."""
    if vs is None:
        return _plot_groups(group_by_setting(runs), out or RootPaths(root).plot(sweep), f"sweep {sweep}")
    groups = group_by_arm({sweep: runs, vs: vs_runs})
    return _plot_groups(groups, out or RootPaths(root).plot(f"{sweep}-vs-{vs}"), f"sweep {sweep} vs {vs}")


def plot_some_runs(runs: list, root: Path, out: Path | None = None) -> Path:
    """These runs' curves (a run given twice drawn once), a line per setting; written to `out`, else to
    the root's plots as <first run>.png."""
    runs = list({r.run_dir: r for r in runs}.values())
    names = [f"{r.exp_name}/{r.run_name}" for r in runs]
    title = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return _plot_groups(group_by_setting(runs), out or RootPaths(root).plot(runs[0].run_name), title)


def _plot_groups(runs_by_group: dict[str, list], out: Path, title: str) -> Path:
    return plot_runs({label: [r.run_dir for r in group] for label, group in runs_by_group.items()}, out, title)


def plot_runs(groups: dict[str, list[Path]], out: Path, title: str, panels: Sequence[str] = PANELS) -> Path:
    """Writes `render_png` to `out` and returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_png(groups, title, panels))
    return out


def render_png(groups: dict[str, list[Path]], title: str, panels: Sequence[str] = PANELS) -> bytes:
    """`build_figure` as PNG bytes."""
    buffer = io.BytesIO()
    build_figure(groups, title, panels).savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def build_figure(groups: dict[str, list[Path]], title: str, panels: Sequence[str] = PANELS):
    """A matplotlib Figure of the `panels` against training step (training reward, held-out accuracy, one panel per
    benchmark any run has, its usage measures): per group the mean over its runs and a min-max band over them, each
    group with its own colour, marker and line style. Only panels some run has data for are drawn; the evaluation
    before training is step 0."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    curves = {label: [load_curves(d) for d in run_dirs] for label, run_dirs in groups.items()}
    every = [c for cs in curves.values() for c in cs]
    layout = [p for p in _layout(panels, every) if any(_panel_curve(c, p) for c in every)]
    # Usage: a row of small panels per benchmark (its lengths and shares side by side); else two or three a row.
    ncols, (width, height) = (len(USAGE), (4.2, 3.2)) if "usage" in panels else \
        (2 if len(layout) <= 4 else 3, (6.5, 4.2))
    nrows = max(1, -(-len(layout) // ncols))
    # An Agg figure of its own: headless, and no pyplot state shared with a caller.
    fig = Figure(figsize=(width * ncols, height * nrows + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{title}\n{BAND}", fontsize=12)
    if not layout:
        fig.text(0.5, 0.5, "no data yet: no run has logged a curve", ha="center", va="center", color="gray")
        return fig
    axes = _panel_axes(fig, len(layout), ncols)
    colors = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    handles = []
    for i, (label, runs) in enumerate(curves.items()):
        style = _group_style(i, colors(i % colors.N))
        drawn = [_draw(ax, [_panel_curve(c, panel) for c in runs], style, every=panel[0] == "reward")
                 for ax, panel in zip(axes, layout, strict=True)]
        # One legend entry per group, even for a group with data in some panels only (or none yet).
        handles.append(Line2D([], [], **style, label=f"{label}  (n={len(runs)})" + ("" if any(drawn) else
                                                                                     ", no data yet")))
    for ax, panel in zip(axes, layout, strict=True):
        _style(ax, *_panel_titles(panel))
        if panel[2].startswith("reasoning_share"):
            # From 0, with room above the highest point: a flat 2% would otherwise fill the panel.
            ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
        if panel[0] == "benchmark" and not any(0 in _panel_curve(c, panel) for c in every):
            # Benchmarks are evaluated on checkpoints and final/: the model before GRPO has a point only where a
            # result at step 0 was written.
            ax.text(0.01, 0.02, "no evaluation at step 0 (before GRPO)", transform=ax.transAxes, fontsize=8,
                    color="gray")
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=9, frameon=False)
    return fig


def _panel_axes(fig, n: int, ncols: int) -> list:
    """n axes, `ncols` a row; a last row with fewer panels spreads them over the full width (no empty slot)."""
    rows = fig.add_gridspec(-(-n // ncols), 1)
    axes = []
    for row in range(rows.nrows):
        count = min(ncols, n - row * ncols)
        cells = rows[row].subgridspec(1, count)
        axes += [fig.add_subplot(cells[0, j]) for j in range(count)]
    return axes


def _group_style(i: int, color) -> dict:
    """Group i's look: colour, marker and line style all differ, so equal curves stay visible as two. Groups drawn
    later (on top) get thinner lines and hollow markers, so a group beneath still shows through and around them."""
    return {"color": color, "marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "linewidth": max(1.4, 3.0 - 0.8 * i), "markersize": 8.0 if i == 0 else 7.0,
            "markerfacecolor": color if i == 0 else "none", "markeredgewidth": 1.0 if i == 0 else 1.6}


def _layout(panels: Sequence[str], curves: list[dict]) -> list[tuple[str, str, str]]:
    """The panels asked for as (kind, benchmark, measure): "benchmarks" stands for one panel per benchmark found (its
    headline measure over all the runs drawn), "usage" for each benchmark's USAGE measures."""
    names = sorted({b for c in curves for b in c["benchmarks"]})
    layout = [(p, "", p) for p in panels if p in ("reward", "accuracy")]
    if "benchmarks" in panels:
        layout += [("benchmark", b, headline(e for c in curves for e in c["benchmarks"].get(b, {}).values()))
                   for b in names]
    if "usage" in panels:
        layout += [("usage", b, m) for b in names for m in USAGE]
    return layout


def _panel_curve(curves: dict, panel: tuple[str, str, str]) -> dict[int, float]:
    kind, benchmark, measure = panel
    if kind in ("benchmark", "usage"):
        return measure_curve(curves["benchmarks"].get(benchmark, {}), measure)
    return curves[kind]


def _panel_titles(panel: tuple[str, str, str]) -> tuple[str, str]:
    kind, benchmark, measure = panel
    if kind == "reward":
        return "training reward", "reward (mean of the logging step)"
    if kind == "accuracy":
        return "held-out accuracy (greedy; step 0: before GRPO)", "accuracy"
    if kind == "benchmark":
        return f"{benchmark}: {MEASURE_TITLES[measure]}", measure
    return f"{benchmark}: {USAGE_TITLES[measure]}", "tokens" if measure.endswith("length") else "share"


def _draw(ax, curves: list[dict[int, float]], style: dict, every: bool) -> bool:
    """The mean over the runs' curves and their min-max band; False when none has a point."""
    curves = [c for c in curves if c]
    if not curves:
        return False
    steps, mean, low, high = _spread(curves)
    # A dense curve (reward: every logging step) gets a marker every tenth of its points.
    ax.plot(steps, mean, **style, markevery=max(1, len(steps) // 10) if every else None)
    if len(curves) > 1:
        ax.fill_between(steps, low, high, color=style["color"], alpha=0.2, linewidth=0)
    return True


def _style(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    low, high = ax.get_xlim()
    if low > 0:  # every axis shows step 0 (before GRPO): a curve without it is seen to start later
        ax.set_xlim(-0.02 * high, high)
