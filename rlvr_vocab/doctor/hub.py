"""The hub files jobs load: in this machine's caches, so that jobs on compute nodes run offline?"""

from omegaconf import DictConfig

from rlvr_vocab.doctor.check import FAIL, OK, WARN, Check


def hub_checks(cfg: DictConfig, overrides: list[str]) -> list[Check]:
    from rlvr_vocab.model.hub_cache import offline
    from rlvr_vocab.validation.prefetch import cache_state, hub_repos, prefetch_command

    repos = hub_repos(cfg, benchmarks=bool(cfg.eval.chain))
    if not repos:
        return [Check(OK, "hub files", "none needed (model and data built locally or local paths)")]
    checks = []
    for repo in repos:
        state = cache_state(repo, cfg.experiments_root)
        if state.problem:
            # Without HF_HUB_OFFLINE the job would download it, on a compute node that may have no internet.
            status = FAIL if offline() else WARN
            checks.append(
                Check(
                    status,
                    repo.where,
                    f"{repo.repo_id} {state.problem}",
                    f"on a login node: {prefetch_command(overrides)}",
                )
            )
        else:
            checks.append(Check(OK, repo.where, f"{repo.repo_id}: {state.found}"))
    return checks
