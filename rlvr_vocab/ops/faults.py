"""Faults injected into a job on purpose, to test what the framework does about them (never set in real runs).

`RLVR_INJECT_FAULT=<kind>:<step>[:<attempt>]` makes the job's reward computation, at that training step and in that
attempt (default 1, so a retried attempt runs clean), do one of:

    hang       block forever (the watchdog must see the stall, dump stacks naming the blocking function, end it)
    transient  raise an error a transient pattern recognises (a retry must follow)
    bug        raise an ordinary error (no retry)
"""

import os
import threading

FAULT_ENV = "RLVR_INJECT_FAULT"
KINDS = ("hang", "transient", "bug")


class InjectedTransientError(RuntimeError):
    """Shaped like an NCCL collective timeout, which the retry policy's transient patterns match."""


def planned() -> tuple[str, int, int] | None:
    """(kind, step, attempt) from the environment, or None."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    parts = spec.split(":")
    if parts[0] not in KINDS or len(parts) < 2 or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"{FAULT_ENV}={spec}: expected <hang|transient|bug>:<step>[:<attempt>]")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) > 2 else 1


def maybe_inject(step: int, attempt: int) -> None:
    plan = planned()
    if plan is None or (plan[1], plan[2]) != (step, attempt):
        return
    if plan[0] == "hang":
        injected_blocking_reward()
    elif plan[0] == "transient":
        raise InjectedTransientError(f"NCCL collective operation timeout (injected at step {step})")
    raise ValueError(f"injected bug at step {step}")


def injected_blocking_reward() -> None:
    """Blocks forever, as a reward call stuck on a dead remote verifier would (the stack dump names it)."""
    threading.Event().wait()
