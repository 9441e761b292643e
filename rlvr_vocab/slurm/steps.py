"""Steps a job starts inside its own allocation: which of the job's nodes each step takes, and its `srun` line.

Pure: the job (rlvr_vocab.job.services) runs the line. The trainers keep the allocation's first nodes (the batch
script and the torch.distributed rendezvous run on the first one) and services take the last ones, as TRL's and
open-r1's multi-node GRPO scripts do.
"""

import re
import shlex
from collections.abc import Mapping, Sequence

from rlvr_vocab.slurm.client import DISTRIBUTED_ENV

# Slurm sends the stop signal (`--signal=USR2@...`) to every step of the job, a service's too, and the watchdog asks
# every step for its stacks with USR1 (`scancel --signal=USR1`): either would end a process that has no handler for
# it, and the trainers need their services until they have checkpointed. An ignored signal stays ignored across exec,
# so a service sees neither unless it handles one itself (the reward server dumps its stacks on USR1); SIGTERM still
# ends it.
IGNORE_JOB_SIGNALS = ("sh", "-c", 'trap "" USR1 USR2; exec "$@"')
_TASK_BINDING = ("SLURM_CPU_BIND", "SLURM_MEM_BIND")
# accelerate's launch settings of the trainers (mixed precision, DeepSpeed, ...): a service is none of them.
_ACCELERATE = "ACCELERATE_"
# SLURM_JOB_CPUS_PER_NODE: "32(x2),16", the job's CPUs on each of its nodes in order.
_CPUS_RUN = re.compile(r"(\d+)(?:\(x(\d+)\))?")


def split_nodes(hostnames: Sequence[str], services: dict[str, int]) -> tuple[list[str], dict[str, list[str]]]:
    """(the trainers' nodes, each service's nodes) out of the allocation's `hostnames`, in order: the trainers first,
    then each service (name -> node count) in turn, so one service takes the last nodes."""
    taken = sum(services.values())
    if taken >= len(hostnames):
        raise ValueError(f"services take {taken} of the job's {len(hostnames)} nodes: none is left to the trainers")
    trainers, start, placed = list(hostnames[:len(hostnames) - taken]), len(hostnames) - taken, {}
    for name, count in services.items():
        placed[name] = list(hostnames[start:start + count])
        start += count
    return trainers, placed


def node_cpus(spec: str) -> list[int]:
    """The job's CPUs on each of its nodes, in the order of its node list, from SLURM_JOB_CPUS_PER_NODE."""
    counts = []
    for run in spec.split(","):
        match = _CPUS_RUN.fullmatch(run.strip())
        if match is None:
            raise ValueError(f"SLURM_JOB_CPUS_PER_NODE={spec!r} is not Slurm's format (e.g. 32(x2),16)")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def task_cpus(cpus_per_node: int, tasks: int, nodes: int) -> int:
    """CPUs per task of `tasks` tasks over `nodes` nodes with `cpus_per_node` CPUs each: the nodes' whole share."""
    return max(1, cpus_per_node // -(-tasks // nodes))


def srun_line(name: str, nodes: Sequence[str], ntasks: int, command: Sequence[str], cpus_per_task: int | str,
              gpus_per_node: int | None = None) -> list[str]:
    """The srun command that starts `command` as a step of the current job on exactly `nodes`.

    `--nodelist` with `--nodes` pins the step to those nodes (which the trainers' step does not hold, so it needs no
    `--overlap`); `--export=ALL` passes this process's environment (the run's token) whatever the job was submitted
    with; without `--gpus-per-node` a step gets all the job's GPUs on its nodes (Slurm's default for GRES).
    `--cpus-per-task` is always given: srun 22.05 does not take it from the job, and a step without it gets one CPU
    per task, a vLLM server's whole step confined to one core.
    """
    line = ["srun", f"--nodes={len(nodes)}", f"--ntasks={ntasks}", f"--nodelist={','.join(nodes)}",
            f"--job-name={name}", "--export=ALL", f"--cpus-per-task={cpus_per_task}"]
    if gpus_per_node is not None:
        line.append(f"--gpus-per-node={gpus_per_node}")
    return [*line, *IGNORE_JOB_SIGNALS, name, *command]


def service_env(environ: Mapping[str, str], srun: bool) -> dict[str, str]:
    """The environment a service is started with, from rank 0's: without the trainers' torch.distributed and
    accelerate variables (a service that uses torch.distributed itself, as vLLM does, would join the trainers'
    rendezvous) and, for an srun step (`srun`), without rank 0's task binding: CPU and memory masks of the trainers'
    own node, which srun would otherwise apply to the new step's nodes."""
    return {k: v for k, v in environ.items() if k not in DISTRIBUTED_ENV and not k.startswith(_ACCELERATE)
            and not (srun and k.startswith(_TASK_BINDING))}


def option(args: Sequence[str], name: str) -> str | None:
    """The value of srun option `name` (`--nodes`) in `args`, written `--nodes=2` or `--nodes 2`; None if absent."""
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def shown(line: Sequence[str]) -> str:
    return shlex.join(line)
