"""rlvr_vocab: Hydra + submitit experiment management for RLVR (GRPO) research on SLURM."""

from pathlib import Path

# conf/ sits beside the package (editable install); an absolute path works from any cwd or entry point.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
