"""`python -m rlvr_vocab.demo`: the README's main command, end to end on this machine.

Brings up the local Slurm (slurm/local_cluster.sh; where it cannot, e.g. without root, it says
so and runs the sweep with the local launcher), submits the offline demo as a 2x2 sweep
(conf/sweep/demo.yaml), follows it with a progress display, then shows the sweep's status, the comparison of
its settings (held-out accuracy before and after GRPO) and the plot of its learning curves.
"""

import subprocess
import sys

from rlvr_vocab.local_slurm import ensure_local_cluster

SWEEP_ID = "demo-grid"


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    _step("local Slurm")
    launcher = "slurm_cpu" if ensure_local_cluster(quiet=False) is None else "local"
    if launcher == "local":
        print("no local Slurm here (see above): running the sweep with the local launcher instead", flush=True)

    _step(f"the demo as a 2x2 sweep ({launcher} launcher)")
    sweep = subprocess.run([
        sys.executable, "-m", "rlvr_vocab.train", "--multirun", f"hydra/launcher={launcher}",
        "hydra.launcher.wait=true", "+sweep=demo",
    ])

    _step(f"rlvr-vocab status --sweep {SWEEP_ID}")
    subprocess.run([sys.executable, "-m", "rlvr_vocab", "status", "--sweep", SWEEP_ID])
    _step(f"rlvr-vocab compare --sweep {SWEEP_ID}")
    subprocess.run([sys.executable, "-m", "rlvr_vocab", "compare", "--sweep", SWEEP_ID])
    _step(f"rlvr-vocab plot --sweep {SWEEP_ID}")
    subprocess.run([sys.executable, "-m", "rlvr_vocab", "plot", "--sweep", SWEEP_ID])
    return sweep.returncode


if __name__ == "__main__":
    sys.exit(main())
