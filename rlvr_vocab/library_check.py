"""What TRL, transformers and peft say of a config: GRPOConfig's fields and whether it accepts the
arguments, the generation options, whether peft accepts a LoRA node.

Importing them takes several seconds. A job pays that once and asks in process (`LibraryCheck`).
A sweep submission asks a worker process (`LibraryCheckWorker`), started as soon as the command
line shows a sweep, so that the import overlaps Hydra's set-up and the composition of the points;
every point is still instantiated as `trl.GRPOConfig` before anything is submitted. The worker,
`python -m rlvr_vocab.library_check`, speaks JSON lines: its first line gives the fields and
options, then one reply per request.
"""

import atexit
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from rlvr_vocab.errors import ConfigError


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _grpo_refusal(problem: str) -> ConfigError:
    return ConfigError("training", f"trl.GRPOConfig rejected it: {problem}")


def _lora_refusal(problem: str) -> ConfigError:
    return ConfigError("model.lora", problem, "see peft.LoraConfig's arguments")


def _schema() -> dict[str, Any]:
    """GRPOConfig's init fields -> default (None for defaults made by a factory, or that JSON cannot carry),
    and the generation options transformers knows."""
    from transformers import GenerationConfig
    from trl import GRPOConfig

    fields = {}
    for f in dataclasses.fields(GRPOConfig):
        if f.init:
            default = None if f.default is dataclasses.MISSING else f.default
            fields[f.name] = default if isinstance(default, (bool, int, float, str, type(None))) else None
    return {"grpo_fields": fields, "generation_keys": sorted(GenerationConfig().to_dict())}


def _grpo_problem(grpo_kwargs: dict[str, Any]) -> str | None:
    from trl import GRPOConfig

    try:
        GRPOConfig(**grpo_kwargs)
    except (ValueError, TypeError) as e:
        return first_line(e)
    return None


def _lora_problem(lora: dict[str, Any]) -> str | None:
    from hydra.utils import instantiate

    try:
        instantiate(lora)
    except Exception as e:  # peft raises TypeError/ValueError with its own words, which Hydra wraps
        return first_line(e.__cause__ or e)
    return None


# Request name -> the check, in either process: its first line of trouble, or None.
_PROBLEMS = {"grpo": _grpo_problem, "lora": _lora_problem}


class LibraryCheck:
    """In this process."""

    def __init__(self) -> None:
        self._schema: dict[str, Any] | None = None

    def _get_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = _schema()
        return self._schema

    def grpo_fields(self) -> dict[str, Any]:
        return self._get_schema()["grpo_fields"]

    def generation_keys(self) -> set[str]:
        return set(self._get_schema()["generation_keys"])

    def _problem(self, op: str, arg: dict[str, Any]) -> str | None:
        return _PROBLEMS[op](arg)

    def check_grpo(self, grpo_kwargs: dict[str, Any]) -> None:
        if problem := self._problem("grpo", grpo_kwargs):
            raise _grpo_refusal(problem)

    def check_lora(self, lora: dict[str, Any]) -> None:
        if problem := self._problem("lora", lora):
            raise _lora_refusal(problem)

    def close(self) -> None:
        """Nothing to stop in this process (the worker's stops its process)."""


class LibraryCheckWorker(LibraryCheck):
    """In a worker process that starts importing at once. `close()` stops it."""

    def __init__(self) -> None:
        super().__init__()
        self._stderr = tempfile.TemporaryFile("w+")
        self._proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        atexit.register(self.close)  # e.g. a bad override ended the command before the sweep began

    def _reply(self) -> dict[str, Any]:
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._stderr.seek(0)
            said = [s for s in self._stderr.read().splitlines() if s.strip()]
            raise RuntimeError(f"the library check process exited ({self._proc.returncode}): "
                               f"{said[-1] if said else 'no output'}")
        return json.loads(line)

    def _get_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = self._reply()
        return self._schema

    def _problem(self, op: str, arg: dict[str, Any]) -> str | None:
        self._get_schema()  # the first line
        try:
            self._proc.stdin.write(json.dumps({"op": op, "arg": arg}) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: _reply says why
        return self._reply()["problem"]

    def close(self) -> None:
        # It holds no state, and a clean exit after importing torch takes seconds.
        self._proc.kill()
        self._proc.wait()
        self._stderr.close()


_early_worker: LibraryCheckWorker | None = None


def _imported_here() -> bool:
    return "trl" in sys.modules  # e.g. a program that runs several commands in one process


def start_early(argv: list[str]) -> None:
    """At the command's start: a sweep (`--multirun`) will need the worker."""
    global _early_worker
    if {"-m", "--multirun"} & set(argv) and not _imported_here():
        _early_worker = LibraryCheckWorker()


def sweep_worker() -> LibraryCheck:
    """The worker `start_early` started, else a new one; this process itself once TRL is imported here."""
    global _early_worker
    if _early_worker is None and _imported_here():
        return LibraryCheck()
    worker, _early_worker = _early_worker or LibraryCheckWorker(), None
    return worker


def _serve() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # what the libraries print must not mix with the replies

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    reply(_schema())
    for line in sys.stdin:
        request = json.loads(line)
        reply({"problem": _PROBLEMS[request["op"]](request["arg"])})


if __name__ == "__main__":
    _serve()
