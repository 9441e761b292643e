"""What a trial's training tells its study while it runs: the objective at each evaluated step, and whether the
pruner stops it there (rlvr_vocab.job.search_callback calls this at every step end)."""

from collections.abc import Iterable
from typing import Any

import optuna
from loguru import logger

from rlvr_vocab.launch.search_objective import intermediate
from rlvr_vocab.validation.search import rungs


class TrialReporter:
    def __init__(self, trial: optuna.trial.Trial, search: dict[str, Any], max_steps: int, reported: Iterable[int] = ()):
        """`reported`: the steps the study already has (a resumed trial's)."""
        self.trial, self.search, self.max_steps = trial, search, max_steps
        self.reported = set(reported)

    def report(self, points: dict[int, float]) -> str | None:
        """Report the steps not reported yet; why the run stops, if the pruner says it should."""
        new = {s: v for s, v in intermediate(points, self.search["objective"]["at"]).items() if s not in self.reported}
        for step, value in sorted(new.items()):
            self.trial.report(value, step)
            self.reported.add(step)
        if not new:
            return None
        step = max(new)
        logger.info(f"trial {self.trial.number}: {self.search['objective']['metric']} {new[step]:.4g} at step {step}")
        if not self.trial.should_prune():
            return None
        return self._why(step, new[step])

    def _why(self, step: int, value: float) -> str:
        """The run's note, as `status` shows it: where first (its step, and the rung by its step), then why."""
        pruner = self.search["pruner"]
        if pruner["kind"] == "asha":
            rung = max(r for r in rungs(pruner["first_rung"], pruner["reduction_factor"], self.max_steps) if r <= step)
            return (f"pruned at step {step} (rung {rung}) by ASHA: {value:.4g} is not in the top "
                    f"1/{pruner['reduction_factor']} of the trials that reached it")
        return f"pruned at step {step} by the median pruner: {value:.4g} is worse than the trials' median there"
