"""A sweep asks TRL, transformers and peft in a worker process: the same answers as in process."""

import pytest
from conftest import run_train

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.validation.library_check import LibraryCheck, LibraryCheckWorker


@pytest.fixture
def worker():
    w = LibraryCheckWorker()
    yield w
    w.close()


def refusal(check, method: str, arg: dict) -> str:
    with pytest.raises(ConfigError) as info:
        getattr(check, method)(arg)
    return str(info.value)


def test_worker_answers_as_this_process_does(worker, tmp_path):
    here = LibraryCheck()
    assert worker.grpo_fields() == here.grpo_fields()
    assert worker.grpo_fields()["num_generations"] == 8 and "learning_rate" in worker.grpo_fields()
    assert worker.generation_keys() == here.generation_keys() and "max_new_tokens" in here.generation_keys()

    good = {"output_dir": str(tmp_path), "use_cpu": True, "max_steps": 2, "per_device_train_batch_size": 4,
            "num_generations": 4}
    worker.check_grpo(good)
    here.check_grpo(good)
    bad = {**good, "auto_find_batch_size": True}
    assert refusal(worker, "check_grpo", bad) == refusal(here, "check_grpo", bad)
    assert "trl.GRPOConfig rejected it: auto_find_batch_size is not supported" in refusal(here, "check_grpo", bad)

    lora = {"_target_": "peft.LoraConfig", "r": 8, "target_modules": ["q_proj"]}
    worker.check_lora(lora)
    typo = {**lora, "rr": 4}
    assert refusal(worker, "check_lora", typo) == refusal(here, "check_lora", typo)
    assert "unexpected keyword argument 'rr'" in refusal(here, "check_lora", typo)


def test_a_dead_worker_is_an_error_not_a_hang(worker):
    worker._proc.kill()
    with pytest.raises(RuntimeError, match="library check process exited"):
        worker.grpo_fields()
    worker._schema = {}  # past its first line: the next request meets a closed pipe
    with pytest.raises(RuntimeError, match="library check process exited"):
        worker.check_grpo({"output_dir": "x"})


def test_a_sweep_point_refused_by_grpo_config_is_named(experiments_root):
    result = run_train("--multirun", "hydra/launcher=local", "dry_run=true", "seed=0,1",
                        "+training.auto_find_batch_size=true")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "trl.GRPOConfig rejected it: auto_find_batch_size" in lines[0], lines
    assert "(run seed=0)" in lines[0]
    assert not experiments_root.exists()
