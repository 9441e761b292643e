"""`rlvr-vocab show RUN`: one run in full: paths, resources used, attempts, overrides, config changes, metrics."""

import json

from rlvr_vocab import CONF_DIR
from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.cli.usage import describe
from rlvr_vocab.ops.usage import run_usage


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="everything about one run")
    p.add_argument("run", help="run id, name, exp/name or a unique prefix")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args) -> int:
    # Only this run is resolved against SLURM (and its jobs' resources asked for, if the index does not hold them);
    # its files are read whole from its run dir (the index keeps a brief of them).
    (view,) = registry(args).runs(usage=True, pick=lambda views: [find_run(views, args.run)])
    m, paths = view.m, view.paths
    info = {
        **view.to_json(),
        "paths": {
            "run_dir": str(view.run_dir),
            "config": str(paths.config),
            "identity": str(paths.identity),
            "train_log": str(paths.train_log),
            "final_model": str(paths.final) if paths.final.exists() else None,
        },
        # The last attempt ends as `status` says when its job could not record it (one source of truth).
        "attempts": view.settled_attempts(),
        "submissions": view.submissions,
        "usage": run_usage(view),
        "overrides": m.get("overrides", []),
        "config_changes": config_changes(view),
        "checkpoints": m.get("checkpoints", []),
        "metrics": m.get("metrics", {}),
        "eval": m.get("eval", {}),
        "git": {"commit": m.get("git_commit"), "dirty": m.get("git_dirty")},
    }
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    print(f"{view.exp_name}/{view.run_name}  (run id {view.run_id})  {view.state}{' (stale)' if view.stale else ''}")
    if view.unreadable:
        return 0
    if view.note:
        print(f"  note: {view.note}")
    for key, value in info["paths"].items():
        print(f"  {key:<12} {value or '-'}")
    print(f"  W&B          {m.get('wandb_url') or m.get('wandb_id') or '-'}")
    print(f"  sweep        {view.sweep_id or '-'}")
    print(f"  git          {m.get('git_commit') or '-'}{' (dirty)' if m.get('git_dirty') else ''}")
    print(f"  identity     {m.get('identity') or '-'}")
    disk = m.get("disk_bytes") or {}
    if disk:
        parts = ", ".join(f"{k} {_size(v)}" for k, v in disk.items() if k != "total" and v)
        print(f"  disk         {_size(disk.get('total', 0))}" + (f" ({parts})" if parts else ""))
    print(f"  step         {m.get('last_step', 0)}/{m.get('max_steps') or '?'}")
    print(f"  resources    {describe(info['usage'])}")
    print("attempts:")
    for a in info["attempts"]:
        where = a.get("slurm_array_id") or a.get("slurm_job_id") or f"pid {a.get('pid')}"
        nodes = a.get("nodes") or a.get("host")
        resumed = f", resumed from step {a['resumed_from_step']}" if a.get("resumed_from_step") else ""
        reason = f": {a['reason']}" if a.get("reason") else ""
        print(f"  #{a['n']} {a['started']} -> {a.get('ended') or '...'} on {nodes} ({where}){resumed}: "
              f"{a.get('end_state') or 'running'}{reason}")
        if a.get("retry"):
            print(f"     {a.get('failure_class', '').replace('_', ' ')}: {a['retry']}")
        if a.get("config_changes"):
            forced = " (forced)" if a.get("forced") else ""
            print(f"     config changed{forced}: {'; '.join(a['config_changes'])}")
        if a.get("code"):
            print(f"     code: {describe_code(a['code'])}")
        for name, svc in (a.get("services") or {}).items():  # the failure's one line names its log
            where = f"{svc.get('url')} on {','.join(svc.get('nodes') or [])} (log {svc.get('log')})"
            print(f"     service {name}: {svc.get('state')}: {svc.get('reason') or where}")
    for job in m.get("eval_jobs") or []:
        outcome = f"job {job['job_id']}" if job.get("job_id") else f"not submitted: {job.get('error')}"
        print(f"  evaluation of {job['weights']} on {', '.join(job['benchmarks'])}: {outcome} ({job['submitted']})")
    from rlvr_vocab.ops.notify import sent_notifications

    for sent in sent_notifications(view.run_dir):
        outcome = "delivered" if sent.get("delivered") else f"not delivered: {sent.get('error', 'no answer')}"
        print(f"  notified {sent['event']} of attempt {sent['attempt']} at {sent['time']}: {outcome}")
    for skipped in m.get("skipped_checkpoints") or []:
        print(f"  skipped {skipped['checkpoint']}: {skipped['reason']} (moved to {skipped['moved_to']})")
    print(f"overrides: {' '.join(info['overrides']) or '-'}")
    print("config changed from the experiment's defaults:")
    for key, (default, value) in info["config_changes"].items():
        print(f"  {key}: {default!r} -> {value!r}")
    print("metrics: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in info["metrics"].items() if not k.startswith("completions/")))
    for name, ev in info["eval"].items():
        if isinstance(ev, dict) and "accuracy" in ev:
            print(f"eval {name}: accuracy {ev['accuracy']:.1%} at step {ev.get('step')}")
    for benchmark, steps in sorted((m.get("benchmarks") or {}).items()):
        shown = ", ".join(f"{v['weights']} {v.get('accuracy', v.get('avg@n')):.1%}"
                          for _, v in sorted(steps.items(), key=lambda kv: int(kv[0])))
        print(f"benchmark {benchmark}: {shown}")
    return 0


def describe_code(code: dict) -> str:
    """An attempt's code: its snapshot (under <root>/_code/) and the commit it came from."""
    commit = f"git {code['git_commit'][:12]}{' (dirty)' if code.get('git_dirty') else ''}" if code.get("git_commit") \
        else "no git"
    return f"snapshot {code['snapshot']}, {commit}" if code.get("snapshot") else f"the checkout, {commit}"


def config_changes(view) -> dict[str, tuple]:
    """Flattened keys where the run's config differs from its experiment's defaults."""
    path = view.paths.config
    if not path.exists():
        return {}
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlvr_vocab.config.schema import register_configs

    register_configs()
    choice = [o for o in view.m.get("overrides", []) if o.split("=")[0].lstrip("+") == "experiment"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        base = compose(config_name="config", overrides=choice)
    defaults = _flatten(OmegaConf.to_container(base, resolve=False))
    actual = _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    ignore = {"run_name", "sweep_id", "experiments_root"}
    return {
        k: (defaults.get(k), v) for k, v in actual.items()
        if k not in ignore and defaults.get(k) != v and not str(defaults.get(k, "")).startswith("${")
    }


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
