"""Structured configs (schemas) for our own config sections.

Their defaults live here; the YAML files under conf/ pick values. Third-party
sections (`training` -> trl.GRPOConfig, `model.lora` -> peft.LoraConfig) are plain
YAML with `_target_`: their leaves are typed by the class they are handed to
(rlvr_vocab.validation.typed.check_types).
"""

import functools
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from rlvr_vocab.config.remote_rewards import RemoteRewardsConfig
from rlvr_vocab.config.search import SEARCH_CHOICES, SearchConfig
from rlvr_vocab.config.services import ServiceConfig
from rlvr_vocab.core.config_types import Spec, dataclass_specs
from rlvr_vocab.ops.notify import NotifyConfig
from rlvr_vocab.ops.retry import RetryConfig
from rlvr_vocab.ops.watchdog import WatchdogConfig
from rlvr_vocab.reasoning_vocab.config import MODES, SELECTIONS, ReasoningVocabConfig


@dataclass
class EmbeddedModelConfig:
    """A tiny model built locally (nothing downloaded): `tiny_qwen2`, the offline demo's character-level Qwen2
    warm-started on its sums (rlvr_vocab.embedded.tiny_model), or `tiny_qwen3`, a random Qwen3 with Qwen's real
    vocabulary (rlvr_vocab.embedded.tiny_qwen3; no warm start)."""

    kind: str = "tiny_qwen2"
    hidden_size: int = 64
    num_layers: int = 2
    warm_start_steps: int = 275
    warm_start_lr: float = 3e-4
    warm_start_batch_size: int = 16
    # Untied input/output embeddings learned faster in the warm start at this size.
    tie_embeddings: bool = False


@dataclass
class ModelConfig:
    # Hub id (e.g. Qwen/Qwen3-0.6B) or local directory; null with `embedded` set.
    name_or_path: str | None = None
    # Passed to AutoModelForCausalLM.from_pretrained (torch_dtype, attn_implementation, ...).
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # Sampling used by GRPO's generation (temperature, top_p, top_k, ...).
    generation_kwargs: dict[str, Any] = field(default_factory=dict)
    # A peft.LoraConfig node (`_target_: peft.LoraConfig`) or null for full fine-tuning.
    lora: dict[str, Any] | None = None
    # 4bit | 8bit: weights loaded through bitsandbytes (QLoRA: needs `lora`, CUDA and bitsandbytes); null: full.
    quantization: str | None = None
    embedded: EmbeddedModelConfig | None = None
    # N added tokens mirroring base tokens (size 0: off); see rlvr_vocab.reasoning_vocab.
    reasoning_vocab: ReasoningVocabConfig = field(default_factory=ReasoningVocabConfig)


@dataclass
class ArithmeticDataConfig:
    """The synthetic data set of the offline demo (see rlvr_vocab.embedded.arithmetic).

    Generated from its own seed, not the run's: like a real data set (and the demo's warm-started
    model, built once from it), it stays fixed while run seeds vary the training.
    """

    seed: int = 0
    n_train: int = 2000
    n_test: int = 40
    max_operand: int = 9


@dataclass
class DatasetConfig:
    # Hub name (openai/gsm8k) or a local .jsonl/.json/.parquet file or directory.
    path: str | None = None
    config_name: str | None = None
    train_split: str = "train"
    # Held-out split; null carves `test_size` rows out of the train split instead.
    test_split: str | None = "test"
    test_size: int = 200
    question_column: str = "question"
    answer_column: str = "answer"
    # Columns shown before the question in the user message (FinQA: pre_text, table, post_text); see
    # rlvr_vocab.model.data_check.user_message.
    context_columns: list[str] = field(default_factory=list)
    # How the gold answer is read from answer_column: `plain`, or `gsm8k` (the number after ####).
    answer_format: str = "plain"
    system_prompt: str = ""
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    embedded: ArithmeticDataConfig | None = None


@dataclass
class PromptConfig:
    """`prompt`: the markers a model writes its reasoning and its solution between (conf/prompt/). The format rewards
    read them, and a data set's system prompt says them with `${prompt.instruction}`."""

    reasoning_start: str = "<think>"
    reasoning_end: str = "</think>"
    # Both null: the answer is whatever follows reasoning_end.
    solution_start: str | None = None
    solution_end: str | None = None
    # The layout asked for, in the markers above.
    instruction: str = "Reason inside ${.reasoning_start}...${.reasoning_end}, then give the final answer after " \
                       "${.reasoning_end}."


@dataclass
class LoggingConfig:
    # `wandb` or `none`; the trainer's own console/train.log logging is always on.
    backend: str = "none"
    project: str = "rlvr_vocab"
    entity: str | None = None
    # online | offline | disabled
    mode: str = "online"
    # Explicit W&B run id (to attach to an existing run); generated when null.
    run_id: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class EvalConfig:
    """Held-out evaluation before training, every `eval_steps`, and after training (see rlvr_vocab.eval.heldout)."""

    enabled: bool = True
    # Evaluate every N training steps as well (null: only before and after training).
    eval_steps: int | None = None
    max_samples: int | None = 200
    max_new_tokens: int = 64
    batch_size: int = 64
    # pass@k from sampled completions besides greedy accuracy (1: greedy only); num_samples >= k per prompt
    # (null: k), drawn with model.generation_kwargs.
    k: int = 1
    num_samples: int | None = None
    # Benchmarks (conf/benchmark/) evaluated on milestone checkpoints and the final model (rlvr_vocab.job.chain).
    benchmarks: list[str] = field(default_factory=list)
    # Submit those evaluations from the training job as jobs of their own (training never waits for them).
    chain: bool = False
    # Every N-th checkpoint is a milestone: evaluated, and kept from rotation until its evaluation ends.
    every_checkpoints: int = 1
    # The evaluation jobs' resources: a conf/hydra/launcher/ profile (a GPU one on clusters).
    launcher: str = "slurm_cpu"
    # transformers | vllm (GPU clusters)
    backend: str = "transformers"
    # Local copies of benchmarks, name -> file or directory (compute nodes without the hub, tests).
    benchmark_paths: dict[str, str] = field(default_factory=dict)
    # At most this many rows of every benchmark (null: each benchmark's own max_samples).
    benchmark_max_samples: int | None = None


@dataclass
class RetentionConfig:
    """`retention`: which checkpoints are kept besides the last `training.save_total_limit` complete ones."""

    # Every this many steps a rotated checkpoint is kept as a weights-only milestone (milestones/), for evaluation
    # later; null: none.
    milestone_every_steps: int | None = None
    # Incomplete checkpoints set aside (checkpoints/incomplete/) are deleted after this many hours.
    incomplete_grace_h: float = 72.0


@dataclass
class RootConfig:
    seed: int = 0
    exp_name: str = "default"
    # Generated (timestamp, or the SLURM job id) when not given.
    run_name: str | None = None
    sweep_id: str | None = None
    experiments_root: str = "${oc.env:RLVR_EXPERIMENTS_ROOT,experiments}"
    dry_run: bool = False
    # Times a job may requeue itself after a timeout or preemption signal (sbatch wrappers and
    # the submitit launchers' max_num_timeout both follow it).
    max_requeues: int = 3
    # Resume even if the config changed in a way that breaks the checkpoint (model, world size).
    force_resume: bool = False
    # auto: bf16 on GPUs that support it, else fp32 (always fp32 on CPU); or bf16 | fp16 | fp32.
    precision: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    # trl.GRPOConfig values (`_target_: trl.GRPOConfig`), typed by GRPOConfig's annotations.
    training: Any = None
    # Reward name -> {weight, parameters}; see rlvr_vocab.model.rewards and conf/reward/.
    reward: dict[str, Any] = field(default_factory=dict)
    # Processes started inside the job's allocation before training: name -> settings (conf/services/).
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    # Rewards computed by a reward server instead of in the trainers (its url set, e.g. by +services=reward_server).
    remote_rewards: RemoteRewardsConfig = field(default_factory=RemoteRewardsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    # An Optuna study over this config (`+search=<file>`, conf/search/); null: one run, or a grid sweep.
    search: SearchConfig | None = None


def register_configs() -> None:
    """Make the schemas available to the defaults lists under conf/."""
    ConfigStore.instance().store(name="rlvr_schema", node=RootConfig)


# How gold answers are written: plain (the answer itself) or gsm8k (reasoning, then `#### answer`).
ANSWER_FORMATS = ("plain", "gsm8k")
# How model weights may be quantized at load (bitsandbytes; rlvr_vocab.model.quantization).
QUANTIZATIONS = ("4bit", "8bit")
# What generates a benchmark's completions: transformers, or vLLM (GPU clusters).
EVAL_BACKENDS = ("transformers", "vllm")
# The values a string of ours takes, where it takes only some.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset.answer_format": ANSWER_FORMATS,
    "eval.backend": EVAL_BACKENDS,
    "precision": ("auto", "bf16", "fp16", "fp32"),
    "logging.backend": ("wandb", "none"),
    "logging.mode": ("online", "offline", "disabled"),
    "model.embedded.kind": ("tiny_qwen2", "tiny_qwen3"),
    "model.quantization": QUANTIZATIONS,
    "model.reasoning_vocab.selection": SELECTIONS,
    "model.reasoning_vocab.mode": MODES,
    **SEARCH_CHOICES,
}


@functools.cache
def leaf_specs() -> dict[str, Spec]:
    """What each key of ours takes (its type, its domain from rlvr_vocab.core.config_types.DOMAINS, its CHOICES), by
    dotted key."""
    return dataclass_specs(RootConfig, CHOICES)
