"""What each config leaf takes, and the one line that says so when a value is not that.

A leaf's type comes from where its section is declared: our structured configs (rlvr_vocab.config.schema),
trl.GRPOConfig's annotations and transformers' GenerationConfig (both read by rlvr_vocab.validation.library_check),
the rewards' signatures.
What a number may be lives in DOMAINS, one table for every section (the strings of ours that take only some values
are listed beside our structured configs: rlvr_vocab.config.schema.CHOICES). rlvr_vocab.validation.typed checks every
leaf against these before anything else reads the config.

Standard library only: rlvr_vocab.model.rewards imports it, and it must stay cheap to import.
"""

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlvr_vocab.core.errors import ConfigError

_ARTICLE = {"bool": "a bool", "int": "an int", "float": "a float", "str": "a string", "list": "a list",
            "dict": "a mapping", "any": "any value"}


@dataclass(frozen=True)
class Domain:
    """Where a number must lie: bounds (None: unbounded), each open or closed; `whole`: an int, whatever the
    annotation says."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False
    why: str = ""

    def holds(self, value: float) -> bool:
        if math.isnan(value) or (self.whole and not isinstance(value, int)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{text} ({self.why})" if self.why else text


def above(low: float, why: str = "", whole: bool = False) -> Domain:
    return Domain(low=low, low_open=True, whole=whole, why=why)


def at_least(low: float, why: str = "", whole: bool = False) -> Domain:
    return Domain(low=low, whole=whole, why=why)


def fraction(low_open: bool = False, high_open: bool = False) -> Domain:
    return Domain(0, 1, low_open, high_open)


# The domain of every number that has one, by dotted key. Sampling keys set under model.generation_kwargs are
# GRPOConfig fields: they take training.<key>'s type and domain.
DOMAINS: dict[str, Domain] = {
    # trl.GRPOConfig (and transformers' TrainingArguments) fields
    "training.learning_rate": above(0),
    "training.beta": at_least(0, "the KL coefficient; 0 drops the reference model"),
    "training.epsilon": at_least(0),
    "training.epsilon_high": at_least(0),
    "training.delta": above(0),
    "training.num_generations": at_least(2, "GRPO compares completions", whole=True),
    "training.num_generations_eval": at_least(1),
    "training.max_completion_length": above(0),
    "training.vllm_max_model_length": above(0),
    "training.max_steps": above(0),
    # Whole steps: checkpoints are named, rotated and evaluated by step.
    "training.save_steps": above(0, whole=True),
    "training.logging_steps": above(0),
    "training.eval_steps": above(0),
    "training.num_train_epochs": above(0),
    "training.per_device_train_batch_size": above(0),
    "training.per_device_eval_batch_size": above(0),
    "training.gradient_accumulation_steps": above(0),
    "training.generation_batch_size": above(0),
    "training.steps_per_generation": above(0),
    "training.num_iterations": at_least(1),
    "training.warmup_steps": at_least(0),
    "training.weight_decay": at_least(0),
    "training.max_grad_norm": at_least(0, "0: no clipping"),
    "training.adam_beta1": fraction(high_open=True),
    "training.adam_beta2": fraction(high_open=True),
    "training.adam_epsilon": at_least(0),
    "training.label_smoothing_factor": fraction(),
    "training.save_total_limit": at_least(0, "0: keep every checkpoint"),
    "training.dataloader_num_workers": at_least(0),
    "training.dataloader_prefetch_factor": above(0),
    "training.ddp_timeout": above(0),
    "training.torch_empty_cache_steps": above(0),
    "training.temperature": above(0),
    "training.top_p": fraction(low_open=True),
    "training.top_k": at_least(0, "0: no top-k filtering"),
    "training.min_p": fraction(),
    "training.repetition_penalty": above(0),
    "training.top_entropy_quantile": fraction(),
    "training.ref_model_mixup_alpha": fraction(),
    "training.ref_model_sync_steps": at_least(1),
    "training.vllm_gpu_memory_utilization": fraction(low_open=True),
    "training.vllm_tensor_parallel_size": at_least(1),
    "training.vllm_server_timeout": above(0),
    # transformers' GenerationConfig options other than sampling (model.generation_kwargs)
    "model.generation_kwargs.max_new_tokens": above(0),
    "model.generation_kwargs.min_new_tokens": at_least(0),
    "model.generation_kwargs.max_length": above(0),
    "model.generation_kwargs.min_length": at_least(0),
    "model.generation_kwargs.num_beams": at_least(1),
    "model.generation_kwargs.num_return_sequences": at_least(1),
    "model.generation_kwargs.typical_p": fraction(low_open=True),
    "model.generation_kwargs.epsilon_cutoff": fraction(high_open=True),
    "model.generation_kwargs.eta_cutoff": fraction(high_open=True),
    "model.generation_kwargs.no_repeat_ngram_size": at_least(0),
    "model.generation_kwargs.encoder_repetition_penalty": above(0),
    "model.generation_kwargs.top_h": fraction(),
    # rewards (rlvr_vocab.model.rewards)
    "reward.repetition_penalty.max_penalty": Domain(high=0, why="it is a penalty"),
    "reward.repetition_penalty.ngram_size": at_least(1),
    "reward.cosine.max_len": above(0, "characters"),
    "reward.reasoning_steps.n_steps": at_least(1),
    "reward.numeric.close_tolerance": at_least(0, "relative error"),
    "reward.finqa_numerical_match.rel_tolerance": at_least(0, "relative error"),
    # ours not checked elsewhere (the others have checks of their own, with their own hints)
    "max_requeues": at_least(0),
    "model.embedded.hidden_size": above(0),
    "model.embedded.num_layers": above(0),
    "model.embedded.warm_start_steps": at_least(0),
    "model.embedded.warm_start_lr": above(0),
    "model.embedded.warm_start_batch_size": above(0),
}


@dataclass(frozen=True)
class Spec:
    """A leaf's declared type: `kinds` among bool, int, float, str, list, dict, any; `choices`: the only values a
    string may be (an enum or Literal), empty for any string."""

    kinds: tuple[str, ...]
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    domain: Domain | None = None

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable or "any" in self.kinds
        for kind in self.kinds:
            if not _IS[kind](value):
                continue
            if self.choices and isinstance(value, str):
                return value in self.choices
            if self.domain is not None and kind in ("int", "float"):
                return self.domain.holds(value)
            return True
        return False

    def describe(self) -> str:
        words = []
        for kind in self.kinds:
            if kind == "str" and self.choices:
                words.append(f"one of {', '.join(str(c) for c in self.choices)}")
            elif kind in ("int", "float") and self.domain is not None:
                words.append(f"{_ARTICLE['int' if self.domain.whole else kind]} {self.domain}")
            else:
                words.append(_ARTICLE[kind])
        return " or ".join(words + (["null"] if self.nullable else []))

    def with_domain(self, domain: Domain | None) -> "Spec":
        return dataclasses.replace(self, domain=domain)

    def to_json(self) -> dict[str, Any]:
        """Without the domain: a worker process sends types, DOMAINS is read here."""
        return {"kinds": list(self.kinds), "nullable": self.nullable, "choices": list(self.choices)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Spec":
        return cls(tuple(data["kinds"]), data["nullable"], tuple(data["choices"]))


# trl.GRPOConfig's strings that take only some values (its annotations say `str`; its help text lists them, and
# tests/test_validation_types.py checks this table against it).
GRPO_CHOICES: dict[str, tuple[str, ...]] = {
    "training.vllm_mode": ("server", "colocate"),
    "training.loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
    "training.importance_sampling_level": ("token", "sequence"),
}

# from_pretrained's options (model.model_kwargs) that configs here set; any other passes on to the model's config.
MODEL_KWARGS: dict[str, Spec] = {
    "torch_dtype": Spec(("str",), nullable=True, choices=("auto", "bfloat16", "float16", "float32", "float64")),
    "attn_implementation": Spec(("str",), nullable=True),
    "revision": Spec(("str",), nullable=True),
    "trust_remote_code": Spec(("bool",)),
    "low_cpu_mem_usage": Spec(("bool",)),
    "use_safetensors": Spec(("bool",), nullable=True),
    "device_map": Spec(("str", "dict"), nullable=True),
    "subfolder": Spec(("str",)),
}

_IS = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list | tuple),
    "dict": lambda v: isinstance(v, Mapping),
    "any": lambda v: True,
}


def spec_of(annotation: Any) -> Spec:
    """The Spec of a type annotation (resolved, as typing.get_type_hints gives it). An enum's values are the choices
    even beside `str` (`SchedulerType | str` takes the enum's values as strings); a Literal's only without `str`."""
    kinds: list[str] = []
    enum_values: list[Any] = []
    literals: list[Any] = []
    nullable = any_string = False
    origin = typing.get_origin(annotation)
    members = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    for member in members:
        inner = typing.get_origin(member) or member
        if member is type(None):
            nullable = True
        elif inner is typing.Literal:
            for value in typing.get_args(member):
                if value is None:
                    nullable = True
                elif isinstance(value, bool):
                    kinds.append("bool")
                elif isinstance(value, str):
                    kinds.append("str")
                    literals.append(value)
                else:
                    kinds.append(type(value).__name__ if type(value) in (int, float) else "any")
        elif isinstance(inner, type) and issubclass(inner, enum.Enum):
            kinds.append("str")
            enum_values.extend(m.value for m in inner)
        elif inner in (bool, int, float, str):
            kinds.append(inner.__name__)
            any_string = any_string or inner is str
        elif isinstance(inner, type) and issubclass(inner, list | tuple | set | frozenset):
            kinds.append("list")
        elif isinstance(inner, type) and (issubclass(inner, dict | Mapping) or dataclasses.is_dataclass(inner)):
            kinds.append("dict")  # a config file writes a dataclass as the mapping of its fields
        else:  # Any, or a class no config file can write
            kinds.append("any")
    choices = enum_values or ([] if any_string else literals)
    return Spec(tuple(dict.fromkeys(kinds)), nullable, tuple(dict.fromkeys(choices)))


def either(specs: list[Spec]) -> Spec:
    """What any of these specs takes (a field that a subclass re-annotates: the base class still handles what its
    own annotation allows)."""
    kinds = tuple(dict.fromkeys(k for s in specs for k in s.kinds))
    any_string = any("str" in s.kinds and not s.choices for s in specs)
    choices = () if any_string else tuple(dict.fromkeys(c for s in specs for c in s.choices))
    return Spec(kinds, any(s.nullable for s in specs), choices)


def dataclass_specs(cls: type, choices: Mapping[str, tuple[str, ...]], prefix: str = "") -> dict[str, Spec]:
    """Every field of a structured config and of the structured configs inside it, by dotted key (a nested config
    is a mapping, or null where its field is optional); with DOMAINS applied, and `choices`: the only values some
    string fields take."""
    hints = typing.get_type_hints(cls)
    found: dict[str, Spec] = {}
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        annotation = hints[field.name]
        nested = [a for a in typing.get_args(annotation) or (annotation,) if dataclasses.is_dataclass(a)]
        if nested:
            found[key] = Spec(("dict",), nullable=type(None) in typing.get_args(annotation))
            found.update(dataclass_specs(nested[0], choices, f"{key}."))
            continue
        spec = spec_of(annotation).with_domain(DOMAINS.get(key))
        found[key] = dataclasses.replace(spec, choices=choices[key]) if key in choices else spec
    return found


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_value(where: str, value: Any, spec: Spec) -> None:
    """Raise the one-line ConfigError unless `value` is of `spec`."""
    if not spec.accepts(value):
        raise ConfigError(where, f"got {shown(value)}, takes {spec.describe()}")
