"""Logging: loguru to stderr and the run's train.log; the standard `logging` routed through it."""

import logging
import sys
import warnings
from pathlib import Path

from loguru import logger

from rlvr_vocab.core.secrets import redact

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}"


class _InterceptHandler(logging.Handler):
    """Send records of transformers, trl, datasets, ... to loguru (loguru's documented recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _redact_record(record) -> bool:
    record["message"] = redact(record["message"])
    return True


def setup_logging(log_file: Path | None = None, level: str = "INFO") -> None:
    """(Re)configure sinks; call again with the run's train.log once the run dir exists."""
    logger.remove()
    logger.add(sys.stderr, level=level, format=_FORMAT, filter=_redact_record, diagnose=False)
    if log_file is not None:
        logger.add(log_file, level="DEBUG", format=_FORMAT, filter=_redact_record, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # transformers' v6 renames (gradient -> activation checkpointing) warn on every step from TRL's code.
    warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6.*", category=FutureWarning)
    for name in ("transformers", "trl", "datasets", "accelerate", "wandb"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers = []
        lib_logger.propagate = True


def quiet_progress_bars_off_tty() -> None:
    """Progress bars are for terminals; in SLURM output files they are pages of carriage returns."""
    if sys.stderr.isatty():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
