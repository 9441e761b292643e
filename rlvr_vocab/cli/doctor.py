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
    from rlvr_vocab.doctor.report import diagnose
    from rlvr_vocab.validation.user_errors import EXIT_BAD_INPUT, exit_on_user_error

    overrides = [*args.overrides, *([f"experiments_root={args.root}"] if getattr(args, "root", None) else [])]
    with exit_on_user_error():
        report = diagnose(overrides)
    print("\n".join(report.lines()))
    return EXIT_BAD_INPUT if report.failed else 0
