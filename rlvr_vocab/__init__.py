"""rlvr_vocab: Hydra + submitit experiment management for RLVR (GRPO) research on SLURM."""

from pathlib import Path

_PACKAGED_CONF = Path(__file__).resolve().parent / "conf"
# Installed (wheel, `pip install .`): conf/ ships inside the package; a checkout (editable install) keeps it beside.
CONF_DIR = _PACKAGED_CONF if _PACKAGED_CONF.is_dir() else Path(__file__).resolve().parent.parent / "conf"
