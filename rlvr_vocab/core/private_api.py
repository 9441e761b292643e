"""The private APIs of transformers and submitit the framework relies on, each behind one function here.

(TRL's, for the reasoning-vocabulary trainer, live in rlvr_vocab/reasoning_vocab/trainer.py.)
`tests/test_private_api.py` fails loudly when a release renames or reshapes any of them.
"""

import inspect
from pathlib import Path


def load_checkpoint_weights(trainer, checkpoint: Path) -> None:
    """Load a checkpoint's weights into the trainer's model without training a step.

    `Trainer.train(resume_from_checkpoint=...)` always runs at least one step, even from a checkpoint at max_steps;
    a run stopped right after its last checkpoint only needs that checkpoint's model saved as final/.
    """
    trainer._load_from_checkpoint(str(checkpoint))


def sbatch_script(executor, map_count: int) -> str:
    """The sbatch script a submitit `AutoExecutor` on Slurm would submit for a job array of `map_count` tasks."""
    from submitit.slurm.slurm import _make_sbatch_string

    inner = executor._executor
    return _make_sbatch_string(command=inner._submitit_command_str, folder=inner.folder, map_count=map_count,
                               **inner.parameters)


def signatures() -> dict[str, list[str]]:
    """Parameter names of every private function used here, for the version test."""
    from submitit.slurm.slurm import _make_sbatch_string
    from transformers import Trainer

    return {
        "transformers.Trainer._load_from_checkpoint": list(inspect.signature(Trainer._load_from_checkpoint).parameters),
        "submitit.slurm.slurm._make_sbatch_string": list(inspect.signature(_make_sbatch_string).parameters),
    }
