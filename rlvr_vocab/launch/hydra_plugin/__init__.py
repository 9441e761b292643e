"""Installed as `hydra_plugins.rlvr_vocab` (see pyproject.toml): Hydra's plugin namespace."""
