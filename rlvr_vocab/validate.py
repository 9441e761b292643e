"""TEMP: the names other modules import from here, until they import rlvr_vocab.validation's modules."""

from rlvr_vocab.hub_cache import looks_local  # noqa: F401
from rlvr_vocab.validation.names import check_name, default_run_name  # noqa: F401
from rlvr_vocab.validation.plan import Plan, validate  # noqa: F401
from rlvr_vocab.validation.sections import check_dataset, check_eval, wandb_credentials  # noqa: F401
from rlvr_vocab.validation.training import check_time_limit  # noqa: F401
from rlvr_vocab.validation.typed import declared, misplaced_training_key  # noqa: F401
