"""The retry policy: one table, per failure class, of how often an attempt ending that way is retried.

Each attempt records its class (`failure_class`) and the decision (`retry`: why it was or was not retried).
Preemption is retried without limit by default, a timeout up to `max_requeues` times, a node failure and a stall
a few times, an error recognised as transient (an NCCL timeout, a CUDA ECC error...) a few times, and a code error
never: a bug fails the same way again and burns GPU hours. Nothing is retried past its budget, counted over the
run's attempts.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.run.manifest import Manifest

PREEMPTION, TIMEOUT, NODE_FAIL, STALL, TRANSIENT, CODE_ERROR = (
    "preemption", "timeout", "node_fail", "stall", "transient", "code_error")
CLASSES = (PREEMPTION, TIMEOUT, NODE_FAIL, STALL, TRANSIENT, CODE_ERROR)
# Run states (rlvr_vocab.core.states) an attempt may end in, by class.
STATE_CLASS = {"PREEMPTED": PREEMPTION, "TIMEOUT": TIMEOUT, "NODE_FAIL": NODE_FAIL, "STALLED": STALL}


@dataclass
class RetryRule:
    # Retries of attempts of this class over the run's life; null: no limit.
    budget: int | None = 0
    # Seconds the requeued job waits before it may start again.
    backoff_s: int = 0


@dataclass
class RetryConfig:
    """`retry`: the retry policy. The timeout budget is the top-level max_requeues (the sbatch wrappers' and
    submitit's own requeue limit)."""

    preemption: RetryRule = field(default_factory=lambda: RetryRule(budget=None))
    timeout: RetryRule = field(default_factory=lambda: RetryRule(budget="${max_requeues}"))  # type: ignore[arg-type]
    node_fail: RetryRule = field(default_factory=lambda: RetryRule(budget=2, backoff_s=60))
    stall: RetryRule = field(default_factory=lambda: RetryRule(budget=1, backoff_s=60))
    transient: RetryRule = field(default_factory=lambda: RetryRule(budget=2, backoff_s=120))
    code_error: RetryRule = field(default_factory=lambda: RetryRule(budget=0))
    # Errors recognised as transient (regular expressions over the exception's type and message).
    transient_patterns: list[str] = field(default_factory=lambda: [
        r"NCCL.*(timeout|timed out|unhandled system error)", r"Watchdog caught collective operation timeout",
        r"DistBackendError", r"ECC error", r"unspecified launch failure", r"CUDA error: an illegal memory access",
        r"RendezvousTimeoutError",
    ])


def check_retry(cfg) -> None:
    for name in CLASSES:
        rule = cfg[name]
        if rule.budget is not None and rule.budget < 0:
            raise ConfigError(f"retry.{name}.budget", f"must be >= 0 or null (no limit), got {rule.budget}")
        if rule.backoff_s < 0:
            raise ConfigError(f"retry.{name}.backoff_s", f"must be >= 0, got {rule.backoff_s}")
    for pattern in cfg.transient_patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError("retry.transient_patterns", f"'{pattern}' is not a regular expression ({e})") from None


def classify_exception(cfg, summary: str) -> str:
    """TRANSIENT if the exception (`Type: message`) matches a transient pattern, else CODE_ERROR."""
    return TRANSIENT if any(re.search(p, summary) for p in cfg.transient_patterns) else CODE_ERROR


def decide(cfg, failure_class: str, attempts: list[dict[str, Any]]) -> tuple[bool, str]:
    """(retry?, why) for an attempt of this class, counting the earlier attempts of the same class as used budget."""
    rule = cfg[failure_class]
    used = sum(1 for a in attempts[:-1] if a.get("failure_class") == failure_class)
    label = failure_class.replace("_", " ")
    if rule.budget is None:
        return True, f"requeued: {label} {used + 1} (no limit)"
    if used < rule.budget:
        return True, f"requeued: {label} {used + 1} of {rule.budget}"
    if rule.budget == 0:
        return False, f"not requeued: a {label} is never retried (retry.{failure_class}.budget 0)"
    return False, f"not requeued: {label} budget used up ({rule.budget} of retry.{failure_class}.budget)"


def record_failure(cfg, manifest: Manifest, failure_class: str, attempt_state: RunState, reason: str) -> bool:
    """End the attempt (`attempt_state`, why) and the run: REQUEUED where the policy (`cfg`: the `retry` section)
    retries this class and the job runs under Slurm, else FAILED. Returns whether the job must ask for its requeue
    (last, once its notifications are out: Slurm may kill a requeued job at once)."""
    attempts = manifest.data["attempts"]
    attempts[-1]["failure_class"] = failure_class
    ok, why = decide(cfg, failure_class, attempts)
    if ok and not os.environ.get("SLURM_JOB_ID"):
        ok, why = False, f"not requeued: not running under SLURM ({why.removeprefix('requeued: ')})"
    attempts[-1]["retry"] = why
    if ok:
        manifest.end_attempt(Event.RETRY, RunState.REQUEUED, reason, attempt_state=attempt_state)
    else:
        manifest.end_attempt(Event.FAIL, RunState.FAILED, reason, attempt_state=attempt_state)
    return ok
