"""Deaths the jobs could not report themselves (a node lost, a kill -9, a stall), which a refresh of the registry
finds: notified once per event as their runs' notify settings say."""

import os

from rlvr_vocab.registry.run_view import RunView
from rlvr_vocab.run.layout import CONFIG_NAME


def notify_unreported(views: list[RunView]) -> None:
    """Notify the unreported deaths among these resolved views; only for run dirs this user may write (the
    notification's marker). An event is weighed once (sent, or not among the run's notify.events): its marker keeps
    later refreshes to a stat."""
    unreported = []
    for view in views:
        weighed = view.event_to_weigh()
        if weighed is None:
            continue
        run_dir = view.run_dir_text  # strings, not Paths: thousands of runs may be weighed per refresh
        if os.path.isfile(f"{run_dir}/{CONFIG_NAME}") and os.access(run_dir, os.W_OK):
            unreported.append((view, *weighed))
    if not unreported:
        return
    # Only now: OmegaConf and the notifier (loguru) cost a refresh that notifies nothing tens of milliseconds.
    from omegaconf import OmegaConf

    from rlvr_vocab.ops.notify import NotifyConfig, notify, pass_over, wait_for_pending

    timeout = 0.0
    for view, event, attempt in unreported:
        try:
            settings = OmegaConf.load(view.paths.config).get("notify") or {}
        except (OSError, ValueError):
            continue
        cfg = OmegaConf.merge(OmegaConf.structured(NotifyConfig), settings)
        if notify(cfg, view.run_dir, event, attempt, view.note):
            timeout = max(timeout, cfg.timeout_s + 1)
        elif event not in cfg.events:  # the run's own setting: weighed again only if a webhook was missing here
            pass_over(view.run_dir, event, attempt)
    wait_for_pending(timeout)
