"""The report of a search (`rlvr-vocab report --search S`) as blocks: the search in a few lines, the objective over
trials, the parameters against the objective (a parallel-coordinate plot, or a slice plot for one parameter), their
importance, the pruned trials' curves beside the kept ones with ASHA's rungs, and a row per trial.

Optuna draws what it has a plot for (optuna.visualization.matplotlib, through pyplot: each figure is closed once
drawn); the curves, pruned beside kept, are drawn here. Importance is Optuna's default, fANOVA over the completed
trials.
"""

import io
import warnings
from pathlib import Path

from rlvr_vocab.launch.search_results import SearchResults, Trial, load_search
from rlvr_vocab.launch.search_submission import search_command
from rlvr_vocab.report.document import Code, Heading, Image, Para, Table
from rlvr_vocab.report.search_text import pruned_text, summary_lines, trial_table
from rlvr_vocab.report.writing import write
from rlvr_vocab.run.layout import RootPaths


def write_search_report(root: Path, search_id: str, out: Path | None = None, fmt: str = "html",
                        storage: str | None = None) -> Path:
    """The search's report written to `out`, else to <root>/_reports/<search id>.<fmt>."""
    results = load_search(root, search_id, storage)
    return write(build_search(results), out or RootPaths(root).report(search_id, fmt), fmt)


def build_search(results: SearchResults) -> list:
    complete = [t for t in results.trials if t.state == "COMPLETE"]
    blocks: list = [Heading(f"Search {results.search_id}", 1), Code(summary_lines(results))]
    blocks.append(Heading("The objective over trials"))
    if complete:
        blocks.append(_optuna_image("history", "the objective of each completed trial and the best so far",
                                    "plot_optimization_history", results))
    else:
        blocks.append(Para("No trial has completed yet: there is no objective to plot.", "note"))
    blocks += _parameters_section(results, len(complete))
    blocks += _curves_section(results)
    headers, rows = trial_table(results)
    again = search_command(results.root, results.search_id)
    blocks += [Heading("Trials"), Table(headers, rows),
               Para(f"Submitting the search again continues its study: `{again}`" if again else
                    "Submitting the search again (the command that started it) continues its study.", "note")]
    return blocks


def _parameters_section(results: SearchResults, complete: int) -> list:
    blocks: list = [Heading("Parameters and the objective")]
    if not complete:
        return blocks + [Para("No trial has completed yet.", "note")]
    n_params = len({k for t in results.trials for k in t.params})
    if n_params > 1:
        blocks.append(_optuna_image("parallel", "each completed trial's parameters and objective",
                                    "plot_parallel_coordinate", results))
    else:
        blocks.append(_optuna_image("slice", "the objective against the parameter", "plot_slice", results))
    blocks.append(Heading("Parameter importance", 3))
    if complete < 2:
        return blocks + [Para("Importance needs at least 2 completed trials.", "note")]
    import optuna

    importances = optuna.importance.get_param_importances(results.study)
    blocks.append(Table(["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in importances.items()]))
    blocks.append(Para("Optuna's fANOVA importance over the completed trials: the share of the objective's "
                       "variance each parameter explains (they sum to 1).", "note"))
    return blocks


def _curves_section(results: SearchResults) -> list:
    kept = [t for t in results.trials if t.state != "PRUNED" and t.curve]
    pruned = [t for t in results.trials if t.state == "PRUNED" and t.curve]
    if not kept and not pruned:
        return [Heading("Curves"), Para("No trial has reported an evaluation yet.", "note")]
    rungs = results.rungs()
    where = f" ASHA's rungs at steps {', '.join(map(str, rungs))} are the dotted lines." if rungs else ""
    return [Heading("Curves: the pruned trials beside the kept ones"),
            Image("curves", _curves_png(results, kept, pruned), "each trial's reported objective against step"),
            Para(f"What each trial reported to the pruner at each evaluation.{where} A pruned curve ends where it "
                 "was pruned.", "note")]


def _curves_png(results: SearchResults, kept: list[Trial], pruned: list[Trial]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # An Agg figure of its own, as report/plotting.py draws: headless, no pyplot state.
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, sharex=True, sharey=True)
    metric = (results.search.get("objective") or {}).get("metric", "objective")
    best = results.best
    for ax, trials, title in ((left, kept, "kept (completed, running, failed)"), (right, pruned, "pruned")):
        for t in trials:
            steps = list(t.curve)
            emphasis = {"linewidth": 2.4, "color": "black"} if t is best else {"linewidth": 1.2, "alpha": 0.8}
            label = f"trial {t.number}" + (" (best)" if t is best else f", {pruned_text(t)}" if t.pruned_at else "")
            ax.plot(steps, [t.curve[s] for s in steps], marker="o", markersize=3, label=label, **emphasis)
        for rung in results.rungs():
            ax.axvline(rung, linestyle=":", color="gray")
        ax.set_title(f"{title}: {len(trials)}")
        ax.set_xlabel("training step")
        if trials and len(trials) <= 12:
            ax.legend(fontsize=7)
    left.set_ylabel(metric)
    return _png(fig)


def _optuna_image(name: str, alt: str, plot: str, results: SearchResults) -> Image:
    import matplotlib
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    # Optuna sets its style sheet for the whole process: kept to this figure (the report's own plots stay as drawn).
    with matplotlib.rc_context(), warnings.catch_warnings():
        # Optuna marks its matplotlib plots experimental; what they draw is what the report shows.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        drawn = getattr(optuna_plots, plot)(results.study)
        fig = (drawn.flat[0] if hasattr(drawn, "flat") else drawn).figure
        try:
            # Optuna lays its figures out for a window: "tight" keeps the axis labels it places past the edge.
            return Image(name, _png(fig, bbox_inches="tight"), alt)
        finally:
            plt.close(fig)


def _png(fig, **options) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, **options)
    return buffer.getvalue()
