"""The private APIs of TRL, transformers and submitit the framework relies on: a release that changes one fails here,
loudly, before a job meets it on a cluster."""

import inspect

from rlvr_vocab.core import private_api
from rlvr_vocab.reasoning_vocab import trainer


def test_trl_private_methods_the_reasoning_vocab_trainer_overrides():
    from trl import GRPOTrainer

    for name, params in trainer.OVERRIDDEN.items():
        method = getattr(GRPOTrainer, name, None)
        assert method is not None, f"TRL's GRPOTrainer has no {name} any more"
        assert list(inspect.signature(method).parameters)[1:] == params, f"GRPOTrainer.{name} changed its parameters"


def test_trl_private_state_the_reasoning_vocab_trainer_reads():
    from trl import GRPOTrainer

    source = inspect.getsource(GRPOTrainer)
    for attribute in trainer.PRIVATE_ATTRIBUTES:
        assert f"self.{attribute}" in source, f"GRPOTrainer no longer keeps self.{attribute}"


def test_transformers_and_submitit_private_functions():
    from submitit.auto.auto import AutoExecutor
    from submitit.slurm.slurm import SlurmExecutor

    signatures = private_api.signatures()
    assert signatures["transformers.Trainer._load_from_checkpoint"][:2] == ["self", "resume_from_checkpoint"]
    assert {"command", "folder", "map_count"} <= set(signatures["submitit.slurm.slurm._make_sbatch_string"])
    assert isinstance(inspect.getattr_static(SlurmExecutor, "_submitit_command_str"), property)
    assert "_executor" in inspect.getsource(AutoExecutor.__init__)
