"""Where the profile's jobs would run: its partition (state, accounts, time limit, GPUs per node), its account and
its QOS (time limit, queued jobs per user), as Slurm reports them through rlvr_vocab.slurm.client."""

import getpass
from typing import Any

from rlvr_vocab.doctor.check import FAIL, OK, WARN, Check
from rlvr_vocab.doctor.experiment import requested_gpus
from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.slurm.client import SlurmError
from rlvr_vocab.slurm.parse import slurm_minutes


def _limits_line(timeout_min: float | None, limit: float | None, of: str) -> tuple[str, str]:
    if limit is None:
        return OK, f"{of}: no time limit"
    if not timeout_min:
        return OK, f"{of}: time limit {limit:g} min (the profile sets no timeout_min)"
    if timeout_min > limit:
        return FAIL, f"{of}: time limit {limit:g} min, the profile asks timeout_min={timeout_min:g}"
    return OK, f"{of}: time limit {limit:g} min >= timeout_min={timeout_min:g}"


def partition_checks(params: dict[str, Any]) -> list[Check]:
    try:
        known = slurm_client.partitions()
    except SlurmError as e:
        return [Check(WARN, "partition", f"cannot read partitions: {e}")]
    wanted = params.get("partition")
    name = wanted or next((n for n, f in known.items() if f.get("Default") == "YES"), None)
    fix = f"hydra.launcher.partition=<one of {', '.join(known)}>"
    if name not in known:
        what = f"'{wanted}' does not exist" if wanted else "no default partition: the profile must name one"
        return [Check(FAIL, "partition", f"{what} (partitions: {', '.join(known)})", fix)]
    fields = known[name]
    label = f"{name}{'' if wanted else ' (default)'}"
    state = fields.get("State", "UP")
    if state != "UP":
        return [Check(FAIL, "partition", f"{label} is {state}: jobs would not start", fix)]
    account = params.get("account")
    allowed = fields.get("AllowAccounts", "ALL")
    if account and allowed != "ALL" and account not in allowed.split(","):
        return [
            Check(
                FAIL,
                "partition",
                f"{label} does not allow account {account} (AllowAccounts={allowed})",
                "another hydra.launcher.account or partition",
            )
        ]
    status, found = _limits_line(params.get("timeout_min"), slurm_minutes(fields.get("MaxTime", "UNLIMITED")), label)
    checks = [
        Check(
            status,
            "partition",
            found,
            "lower hydra.launcher.timeout_min (runs requeue and resume at the "
            "limit) or pick a partition with a longer one"
            if status == FAIL
            else "",
        )
    ]
    gpus = requested_gpus(params)
    if not gpus:
        checks.append(Check(OK, "GPUs per node", "none requested (CPU jobs)"))
        return checks
    most = slurm_client.most_gpus_per_node(name)
    if most is None:
        checks.append(Check(WARN, "GPUs per node", f"cannot read {name}'s GPUs from sinfo"))
    elif most < gpus:
        checks.append(
            Check(
                FAIL,
                "GPUs per node",
                f"the profile asks {gpus}, {label}'s nodes have at most {most}",
                "a GPU partition (hydra.launcher.partition=...), fewer gpus_per_node, or "
                "hydra/launcher=slurm_cpu for CPU jobs",
            )
        )
    else:
        checks.append(Check(OK, "GPUs per node", f"{gpus} requested, {label}'s nodes have up to {most}"))
    return checks


def association_checks(params: dict[str, Any], n_runs: int) -> list[Check]:
    user = getpass.getuser()
    try:
        rows = slurm_client.associations(user)
        account = params.get("account") or slurm_client.default_account(user)
    except SlurmError as e:
        return [Check(WARN, "account", f"cannot ask sacctmgr: {e}")]
    mine = sorted({r["account"] for r in rows})
    if not rows:
        return [
            Check(
                FAIL,
                "account",
                f"user {user} has no Slurm association: the cluster refuses their jobs",
                "ask the cluster's admins to add you (sacctmgr add user)",
            )
        ]
    if account not in mine:
        return [
            Check(
                FAIL,
                "account",
                f"user {user} has no association with account {account} (theirs: {', '.join(mine)})",
                f"hydra.launcher.account=<one of {', '.join(mine)}>",
            )
        ]
    how = "" if params.get("account") else " (the user's default)"
    checks = [Check(OK, "account", f"{account}{how}")]
    rows = [r for r in rows if r["account"] == account]
    # Without a QOS in the profile or the association, Slurm gives the cluster's default, `normal` unless renamed.
    qos = params.get("qos") or next((r["default_qos"] for r in rows if r["default_qos"]), None) or "normal"
    allowed = sorted({q for r in rows for q in r["qos"].split(",") if q})
    try:
        limits = slurm_client.qos_limits(qos)
    except SlurmError as e:
        checks.append(Check(WARN, "QOS", f"cannot ask sacctmgr about {qos}: {e}"))
        return checks
    if limits is None and not params.get("qos"):
        checks.append(Check(OK, "QOS", "the association's default (no limits read)"))
        return checks
    if limits is None or (params.get("qos") and allowed and qos not in allowed):
        what = "does not exist" if limits is None else f"is not allowed for account {account}"
        checks.append(
            Check(
                FAIL,
                "QOS",
                f"{qos} {what} (the account's: {', '.join(allowed) or 'none listed'})",
                f"hydra.launcher.qos=<one of {', '.join(allowed)}>" if allowed else "ask the admins",
            )
        )
        return checks
    wall, max_submit = limits
    label = f"{qos}{'' if params.get('qos') else ' (default)'}"
    status, found = _limits_line(params.get("timeout_min"), wall, label)
    checks.append(
        Check(status, "QOS", found, "lower hydra.launcher.timeout_min or use another QOS" if status == FAIL else "")
    )
    # Every array task counts as one job against the per-user limit: a larger sweep is refused at sbatch.
    if max_submit is not None and n_runs > max_submit:
        checks.append(
            Check(
                FAIL,
                "QOS",
                f"{label} takes at most {max_submit} queued jobs per user, the sweep has {n_runs} runs",
                "submit the grid in parts, or another QOS",
            )
        )
    return checks
