"""Pure parsing of what Slurm's commands print: no command is run here (rlvr_vocab.slurm.client runs them)."""

import re


def key_values(line: str) -> dict[str, str]:
    """One `scontrol show ... -o` line (`JobId=12 Partition=debug ...`) as its fields."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def slurm_minutes(text: str) -> float | None:
    """Slurm's time format (`UNLIMITED`, `MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`) in minutes; None: unlimited."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, minutes, seconds = 0, *parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def seconds_left(text: str) -> int | None:
    """squeue's time left (`%L`: `[D-]HH:MM:SS`, `MM:SS`) in seconds; None if unknown or unlimited."""
    text = text.strip()
    if not text or text in ("UNLIMITED", "NOT_SET", "INVALID"):
        return None
    days, _, hms = text.rpartition("-")
    parts = [int(p) for p in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def job_states(text: str) -> dict[str, str]:
    """`squeue -h -o "%i %T"`: job id -> state."""
    states = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


def config_value(text: str, key: str) -> str | None:
    """A setting of `scontrol show config` (`MaxArraySize = 1001`); None if it is not listed."""
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    return None


def partitions(text: str) -> dict[str, dict[str, str]]:
    """`scontrol show partition -o`: name -> fields."""
    found = {}
    for line in text.splitlines():
        fields = key_values(line)
        if "PartitionName" in fields:
            found[fields["PartitionName"]] = fields
    return found


def most_gpus_per_node(text: str, partition: str | None) -> int | None:
    """Most GPUs on one node of the partition (the default one, starred, if None) in `sinfo -h -o "%P %G"`; None if
    the partition is not listed."""
    most = None
    for line in text.splitlines():
        name, _, gres = line.partition(" ")
        if (partition is None and name.endswith("*")) or name.rstrip("*") == partition:
            # e.g. "gpu:a100:4(S:0-1),gpu:v100:2" or "(null)"
            counts = [int(m) for m in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres)]
            most = max(most or 0, sum(counts))
    return most


def associations(text: str) -> list[dict[str, str]]:
    """`sacctmgr -n -P show assoc format=Account,Partition,QOS,DefaultQOS` as rows."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            rows.append({"account": parts[0], "partition": parts[1], "qos": parts[2], "default_qos": parts[3]})
    return rows


def qos_limits(text: str, name: str) -> tuple[float | None, int | None] | None:
    """(MaxWall in minutes, MaxSubmitJobsPerUser) of QOS `name`, None for no limit, in `sacctmgr -n -P show qos
    format=Name,MaxWall,MaxSubmitPU`; None if it is not listed."""
    for line in text.splitlines():
        qos, wall, submit = (line.split("|") + ["", ""])[:3]
        if qos == name:
            return slurm_minutes(wall), int(submit) if submit.isdigit() else None
    return None
