"""`rlvr-vocab doctor [overrides]`: can this machine run the experiment? One line per check; exit 2 if one fails.

Takes the overrides of the submission it vets (`experiment=baseline hydra/launcher=slurm +sweep=seeds ...`; without
a launcher profile, the experiment's own: its eval.launcher, slurm_cpu for the demo) and checks Slurm and the
profile's partition, account, QOS and limits, this node's GPUs, the locked library versions, the hub files jobs load
offline, W&B, disk and the experiments root. The first line and the last say which profile was checked.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine for an experiment before submitting it", description=__doc__)
    p.add_argument("overrides", nargs="*", help="the submission's Hydra overrides (experiment=baseline ...)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from rlvr_vocab.doctor_checks import FAIL, WARN, compose_experiment, run_checks
    from rlvr_vocab.user_errors import EXIT_BAD_INPUT, exit_on_user_error

    overrides = [*args.overrides, *([f"experiments_root={args.root}"] if getattr(args, "root", None) else [])]
    with exit_on_user_error():
        cfg, n_runs = compose_experiment(overrides)
        checks = run_checks(cfg, n_runs, overrides)
    what_width = max(len(c.what) for c in checks)
    for c in checks:
        fix = f"  -> {c.fix}" if c.fix else ""
        print(f"{c.status:<4}  {c.what:<{what_width}}  {c.found}{fix}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    runs = f"{n_runs} runs of " if n_runs > 1 else ""
    launcher = f"hydra/launcher={cfg.hydra.runtime.choices['hydra/launcher']}"
    if failed:
        print(f"{failed} check{'s' if failed > 1 else ''} failed: {runs}{cfg.exp_name} cannot run as configured "
              f"({launcher})")
        return EXIT_BAD_INPUT
    warnings = f" ({warned} warning{'s' if warned > 1 else ''})" if warned else ""
    print(f"{runs}{cfg.exp_name} can run here with {launcher}{warnings}")
    return 0
