"""Faults injected into a job on purpose, to test what the framework does about them (never set in real runs).

`RLVR_INJECT_FAULT=<kind>:<step>[:<attempt>[:<rank>]]` makes the job's reward computation, at that training step and
in that attempt (default 1, so a retried attempt runs clean), on that rank (default every rank), do one of:

    hang       block forever (the watchdog must see the stall, dump stacks naming the blocking function, end it)
    freeze     stop the whole process (SIGSTOP, as `kill -STOP` would: its watchdog stops too; the job's supervisor
               must end it)
    transient  raise an error a transient pattern recognises (a retry must follow)
    bug        raise an ordinary error (no retry)
"""

import os
import signal
import threading

FAULT_ENV = "RLVR_INJECT_FAULT"
KINDS = ("hang", "freeze", "transient", "bug")


class InjectedTransientError(RuntimeError):
    """Shaped like an NCCL collective timeout, which the retry policy's transient patterns match."""


def planned() -> tuple[str, int, int, int | None] | None:
    """(kind, step, attempt, rank or None for every rank) from the environment, or None."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    parts = spec.split(":")
    if parts[0] not in KINDS or len(parts) < 2 or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"{FAULT_ENV}={spec}: expected <hang|freeze|transient|bug>:<step>[:<attempt>[:<rank>]]")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) > 2 else 1, int(parts[3]) if len(parts) > 3 else None


def maybe_inject(step: int, attempt: int) -> None:
    plan = planned()
    if plan is None or (plan[1], plan[2]) != (step, attempt):
        return
    if plan[3] is not None and plan[3] != int(os.environ.get("RANK", "0")):
        return
    if plan[0] == "hang":
        injected_blocking_reward()
    elif plan[0] == "freeze":
        os.kill(os.getpid(), signal.SIGSTOP)
        return
    elif plan[0] == "transient":
        raise InjectedTransientError(f"NCCL collective operation timeout (injected at step {step})")
    raise ValueError(f"injected bug at step {step}")


def injected_blocking_reward() -> None:
    """Blocks forever, as a reward call stuck on a dead remote verifier would (the stack dump names it)."""
    threading.Event().wait()
