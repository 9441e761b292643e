"""Which config keys name an experiment and which do not: the one classification that identity, resume, sweeps,
reports and plots share.

A key belongs to a class when it equals an entry or lies below it (`eval` covers `eval.k`). Keys added to the config
schema later are identity unless listed here (a run created before them shows them as `(absent) -> value`).
"""

# Name one submission, never the run: not recorded for resumes, never part of any fingerprint.
# `search` describes the study a trial belongs to; the trial itself is its sampled values.
ONE_OFF = ("force_resume", "dry_run", "run_name", "sweep_id", "search")
# Never part of any fingerprint: they name the attempt or where it lives, not its config.
VOLATILE = (*ONE_OFF, "experiments_root")
# May change between attempts without changing the experiment: how long and how often it trains, checkpoints,
# logs and evaluates, where it is tracked and launched.
ALLOWED_TO_CHANGE = (
    *VOLATILE, "max_requeues",
    # Tracking, held-out evaluation (its own RNG: it never changes training) and operations.
    "logging", "eval", "watchdog", "retry", "notify", "retention",
    # Where rewards are computed and which services run beside the trainers: the same rewards either way.
    "services", "remote_rewards",
    # How long, and how often it checkpoints and logs.
    "training.max_steps", "training.save_steps", "training.save_strategy", "training.save_total_limit",
    "training.save_only_model", "training.logging_steps", "training.logging_first_step",
    "training.logging_strategy", "training.log_completions", "training.num_completions_to_print",
    "training.log_level",
    # Throughput and memory knobs that leave the maths alone.
    "training.dataloader_num_workers", "training.dataloader_pin_memory", "training.dataloader_persistent_workers",
    "training.dataloader_prefetch_factor", "training.activation_checkpointing", "training.gradient_checkpointing",
    "training.gradient_checkpointing_kwargs", "training.vllm_gpu_memory_utilization", "training.ddp_timeout",
    "training.torch_empty_cache_steps",
)
# Configs that differ only here validate alike (a sweep validates one seed of a grid point in full).
VALIDITY_NEUTRAL = ("seed",)
# Launcher overrides of one submission (its mode, a held or followed submission), not the run's launcher settings.
ONE_OFF_LAUNCHER = ("hydra.mode", "hydra.launcher.wait", "hydra.launcher.additional_parameters.hold")


def within(key: str, entries: tuple[str, ...]) -> bool:
    """`key` is one of `entries` or lies below one."""
    return any(key == e or key.startswith(e + ".") for e in entries)


def override_key(override: str) -> str:
    """The key an override sets: `+training.beta=0.1` -> `training.beta`."""
    return override.split("=", 1)[0].lstrip("+~")


def is_one_off(key: str) -> bool:
    return within(key, ONE_OFF) or within(key, ONE_OFF_LAUNCHER)


def names_experiment(key: str) -> bool:
    """Changing it makes another experiment (another run, another arm of a comparison)."""
    return not within(key, ALLOWED_TO_CHANGE) and not key.startswith("hydra")
