"""The trainer callback of a search trial's run: at each step end, the objective's new evaluations go to the study, and
when the pruner says so the run stops there and ends PRUNED (`JobLifecycle.pruned`).

It runs after the periodic held-out evaluation (which records the step's value first). A search trains each trial in
one process (validation refuses more), so the decision needs no agreement between ranks.
"""

from loguru import logger
from transformers import TrainerCallback

from rlvr_vocab.eval.results import benchmarks_of
from rlvr_vocab.job.lifecycle import JobLifecycle
from rlvr_vocab.launch.search_objective import curve
from rlvr_vocab.launch.search_report import TrialReporter
from rlvr_vocab.validation.search import parse_metric


class TrialCallback(TrainerCallback):
    def __init__(self, job: JobLifecycle, reporter: TrialReporter):
        self.job, self.reporter = job, reporter
        self.metric = parse_metric(reporter.search["objective"]["metric"])

    def points(self) -> dict[int, float]:
        """The objective's curve so far: the manifest's held-out evaluations, or the benchmark results the chained
        evaluation jobs have written by now."""
        manifest = self.job.manifest.data
        benchmarks = benchmarks_of(self.job.paths, manifest) if self.metric.source == "benchmark" else {}
        return curve(self.metric, manifest, benchmarks)

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.job.stop.agreed:
            return  # a stopping job checkpoints for its requeue; the resumed run reports on
        why = self.reporter.report(self.points())
        if why is not None:
            logger.info(f"step {state.global_step}/{state.max_steps}: {why}")
            self.job.pruned = why
            control.should_training_stop = True
        return control
