"""Putting the job on SLURM: Hydra sweeper and launcher plugins, requeue handling.

Hydra only instantiates plugins from the `hydra_plugins` namespace; pyproject.toml installs
this package's `hydra_plugin/` folder there as `hydra_plugins.rlvr_vocab`.
"""


def register_hydra_plugins() -> None:
    """Register our sweeper and launchers with Hydra (its directory scan misses editable installs)."""
    from hydra.core.plugins import Plugins

    # Hydra's first scan re-executes its core plugin modules: subclass them only after it.
    plugins = Plugins.instance()
    from hydra_plugins.rlvr_vocab.launcher import RlvrLocalLauncher, RlvrSlurmLauncher
    from hydra_plugins.rlvr_vocab.sweeper import RlvrSweeper

    for plugin in (RlvrSweeper, RlvrSlurmLauncher, RlvrLocalLauncher):
        plugins.register(plugin)
