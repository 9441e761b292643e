"""What TRL, transformers and peft say of a config: GRPOConfig's fields with their types and whether it accepts
the arguments, the generation options with theirs, peft.LoraConfig's fields with theirs and whether it accepts a
LoRA node, what a model's chat template says of a prompt.

Importing them takes several seconds. A job pays that once and asks in process (`LibraryCheck`).
A sweep submission asks a worker process (`LibraryCheckWorker`), started as soon as the command
line shows a sweep, so that the import overlaps Hydra's set-up and the composition of the points;
every point is still instantiated as `trl.GRPOConfig` before anything is submitted. The worker,
`python -m rlvr_vocab.validation.library_check`, speaks JSON lines: its first line gives the fields and
options, then one reply per request.
"""

import atexit
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import typing
from typing import Any

from rlvr_vocab.core.config_types import Spec, either, spec_of
from rlvr_vocab.core.errors import ConfigError


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _grpo_refusal(problem: str) -> ConfigError:
    return ConfigError("training", f"trl.GRPOConfig rejected it: {problem}")


def _lora_refusal(problem: str) -> ConfigError:
    return ConfigError("model.lora", problem, "see peft.LoraConfig's arguments")


def _schema() -> dict[str, Any]:
    """GRPOConfig's init fields -> default (None for defaults made by a factory, or that JSON cannot carry) and
    -> type (a config_types.Spec as JSON, from its annotations); the generation options transformers knows ->
    type."""
    from transformers import GenerationConfig
    from trl import GRPOConfig

    # TRL narrows some of transformers' annotations (gradient_checkpointing: bool, where TrainingArguments takes
    # bool | None and handles None): a field takes what any class declaring it takes.
    hints = [typing.get_type_hints(c) for c in GRPOConfig.__mro__ if dataclasses.is_dataclass(c)]
    fields, types = {}, {}
    for f in dataclasses.fields(GRPOConfig):
        if f.init:
            default = None if f.default is dataclasses.MISSING else f.default
            fields[f.name] = default if isinstance(default, (bool, int, float, str, type(None))) else None
            spec = either([spec_of(h[f.name]) for h in hints if f.name in h])
            # HfArgumentParser's choices for plain string fields (log_level, ddp_backend, ...).
            if f.metadata.get("choices") and not spec.choices:
                spec = dataclasses.replace(spec, choices=tuple(f.metadata["choices"]))
            types[f.name] = spec.to_json()
    generation = {key: _documented_spec(GenerationConfig.__doc__ or "", key).to_json()
                  for key in sorted(GenerationConfig().to_dict())}
    return {"grpo_fields": fields, "grpo_types": types, "generation_types": generation}


def _documented_spec(doc: str, key: str) -> Spec:
    """An option's type as GenerationConfig's docstring gives it (`top_k (`int`, *optional*, ...)`): its defaults
    are all None, and it has no annotations. Every option may be null (the model's own default)."""
    entry = re.search(rf"^\s+{re.escape(key)}:? \(((?:`[^`]*`(?:,? or |, )?)+)", doc, re.MULTILINE)
    if entry is None:
        return Spec(("any",), nullable=True)
    kinds = []
    for text in re.findall(r"`([^`]*)`", entry.group(1)):
        union = re.fullmatch(r"(?:typing\.)?Union\[(.*)\]", text)
        for member in _top_level(union.group(1)) if union else [text]:
            head = re.match(r"\w*", member.strip()).group(0)
            kinds.append(_DOC_KINDS.get(head, "any"))
    return Spec(tuple(dict.fromkeys(kinds)), nullable=True)


_DOC_KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "list": "list", "tuple": "list",
              "dict": "dict"}


def _top_level(text: str) -> list[str]:
    """`int, list[int]` -> [`int`, `list[int]`]: commas inside brackets stay."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


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


@functools.lru_cache(maxsize=4)
def _tokenizer(source: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)


def _chat_problem(request: dict[str, Any]) -> str | None:
    """What the chat template of the model at `source` says of `messages`, rendered as the job renders prompts.
    A tokenizer that does not load here is the job's to report (this asks only about the template)."""
    try:
        tokenizer = _tokenizer(request["source"], request["trust_remote_code"])
    except Exception:  # noqa: BLE001 - missing files, remote code: not what this check is about
        return None
    try:
        tokenizer.apply_chat_template(request["messages"], tokenize=False, add_generation_prompt=True)
    except Exception as e:  # a template raises whatever its Jinja code raises
        return first_line(e)
    return None


def _lora_types(_: dict[str, Any]) -> dict[str, Any]:
    """peft.LoraConfig's init fields -> type (asked only of configs with a LoRA node: importing peft takes seconds)."""
    from peft import LoraConfig

    hints = typing.get_type_hints(LoraConfig)
    return {f.name: spec_of(hints[f.name]).to_json() for f in dataclasses.fields(LoraConfig) if f.init}


# Request name -> its answer, in either process (a check's: its first line of trouble, or None).
_REQUESTS = {"grpo": _grpo_problem, "lora": _lora_problem, "chat": _chat_problem, "lora_types": _lora_types}


class LibraryCheck:
    """In this process."""

    def __init__(self) -> None:
        self._schema: dict[str, Any] | None = None
        self._built: dict[str, dict[str, Spec]] = {}

    def _get_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = _schema()
        return self._schema

    def grpo_fields(self) -> dict[str, Any]:
        return self._get_schema()["grpo_fields"]

    def grpo_types(self) -> dict[str, Spec]:
        return self._specs("grpo_types")

    def generation_types(self) -> dict[str, Spec]:
        return self._specs("generation_types")

    def lora_types(self) -> dict[str, Spec]:
        if "lora_types" not in self._built:
            self._built["lora_types"] = {k: Spec.from_json(v) for k, v in self._ask("lora_types", {}).items()}
        return self._built["lora_types"]

    def _specs(self, part: str) -> dict[str, Spec]:
        # Built once: validation asks for every leaf, a sweep for every point.
        if part not in self._built:
            self._built[part] = {k: Spec.from_json(v) for k, v in self._get_schema()[part].items()}
        return self._built[part]

    def generation_keys(self) -> set[str]:
        return set(self._get_schema()["generation_types"])

    def _ask(self, op: str, arg: dict[str, Any]) -> Any:
        return _REQUESTS[op](arg)

    def check_grpo(self, grpo_kwargs: dict[str, Any]) -> None:
        if problem := self._ask("grpo", grpo_kwargs):
            raise _grpo_refusal(problem)

    def check_lora(self, lora: dict[str, Any]) -> None:
        if problem := self._ask("lora", lora):
            raise _lora_refusal(problem)

    def chat_problem(self, source: str, trust_remote_code: bool, messages: list[dict[str, str]]) -> str | None:
        """What the model's chat template says of these messages (None: it renders them)."""
        return self._ask("chat", {"source": source, "trust_remote_code": trust_remote_code, "messages": messages})

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

    def _ask(self, op: str, arg: dict[str, Any]) -> Any:
        self._get_schema()  # the first line
        try:
            self._proc.stdin.write(json.dumps({"op": op, "arg": arg}) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: _reply says why
        return self._reply()["answer"]

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
        reply({"answer": _REQUESTS[request["op"]](request["arg"])})


if __name__ == "__main__":
    _serve()
