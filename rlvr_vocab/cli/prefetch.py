"""`rlvr-vocab prefetch [overrides]`: on a login node (with internet), download the experiment's model, tokenizer and
data sets into the shared Hugging Face cache and record their commit hashes in `<root>/_prefetch/<exp_name>.json`,
so jobs on compute nodes run offline (HF_HUB_OFFLINE=1) on exactly those. `--check`: only say whether this machine's
caches hold what the jobs load (exit 2 with one line if not).
"""

import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "prefetch",
        help="download an experiment's hub files for offline jobs and pin their revisions",
        description=__doc__,
    )
    p.add_argument("overrides", nargs="*", help="the experiment's Hydra overrides (experiment=baseline ...)")
    p.add_argument("--check", action="store_true", help="download nothing: exit 2 if a job could not find them offline")
    p.set_defaults(handler=run)


def run(args) -> int:
    from rlvr_vocab.doctor.experiment import compose_experiment
    from rlvr_vocab.model.hub_cache import hf_home, offline
    from rlvr_vocab.validation.prefetch import offline_problem, prefetch
    from rlvr_vocab.validation.user_errors import EXIT_BAD_INPUT, exit_on_user_error

    overrides = [*args.overrides, *([f"experiments_root={args.root}"] if getattr(args, "root", None) else [])]
    with exit_on_user_error():
        cfg, _ = compose_experiment(overrides)
    if args.check:
        problem = offline_problem(cfg, args.overrides)
        if problem:
            sys.stderr.write(f"error: {problem}\n")
            return EXIT_BAD_INPUT
        print(f"{cfg.exp_name}: every hub file its jobs load is in this machine's caches ({hf_home()})")
        return 0
    if offline():
        print("HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set: nothing is downloaded, revisions are read from the cache")
    record, fetched = prefetch(cfg, args.overrides)
    if record is None:
        print(f"{cfg.exp_name}: nothing to fetch (the model and data are built locally or local paths)")
        return 0
    for entry in fetched:
        print(f"{entry['kind']:<7} {entry['repo_id']} @ {entry['revision'][:12]}  {entry['path']}")
    print(
        f"recorded in {record}; jobs load these revisions offline: export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        f"(HF_HOME={hf_home()} must be the same file system on the compute nodes)"
    )
    return 0
