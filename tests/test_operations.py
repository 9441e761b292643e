"""Operations without a cluster: the retry policy's table, the watchdog's heartbeat and its end of a hung job."""

import json
import os
import signal

import pytest
from conftest import DEMO, manifest, run_module
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.job.lifecycle import STALLED_EXIT_CODE
from rlvr_vocab.ops import retry
from rlvr_vocab.ops.retry import RetryConfig, check_retry, classify_exception, decide
from rlvr_vocab.ops.watchdog import WatchdogConfig, check_watchdog


def retry_cfg(**overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[f"{k}={v}" for k, v in overrides.items()])
    return cfg.retry


def test_each_class_has_its_budget_counted_over_the_run():
    cfg = retry_cfg(max_requeues=2)
    attempts = [{"failure_class": retry.TIMEOUT}, {"failure_class": retry.PREEMPTION}, {}]
    assert decide(cfg, retry.TIMEOUT, attempts) == (True, "requeued: timeout 2 of 2")  # max_requeues is its budget
    attempts = [{"failure_class": retry.TIMEOUT}] * 2 + [{}]
    ok, why = decide(cfg, retry.TIMEOUT, attempts)
    assert not ok and why == "not requeued: timeout budget used up (2 of retry.timeout.budget)"
    assert decide(cfg, retry.PREEMPTION, [{"failure_class": retry.PREEMPTION}] * 50 + [{}])[0]  # no limit
    ok, why = decide(cfg, retry.CODE_ERROR, [{}])
    assert not ok and "never retried" in why
    assert decide(cfg, retry.STALL, [{}])[0] and not decide(cfg, retry.STALL, [{"failure_class": "stall"}, {}])[0]


def test_transient_errors_are_recognised_by_pattern():
    cfg = OmegaConf.structured(RetryConfig)
    assert classify_exception(cfg, "DistBackendError: NCCL error in: ProcessGroupNCCL.cpp, unhandled system error")\
        == retry.TRANSIENT
    assert classify_exception(cfg, "RuntimeError: CUDA error: uncorrectable ECC error encountered") == retry.TRANSIENT
    assert classify_exception(cfg, "KeyError: 'answer'") == retry.CODE_ERROR


@pytest.mark.parametrize("section, key, value, words", [
    ("retry", "transient.budget", -1, "must be >= 0 or null"),
    ("retry", "transient_patterns", ["(unclosed"], "is not a regular expression"),
    ("watchdog", "kill_after_s", 10, "shorter than stall_after_s"),
    ("watchdog", "stall_after_s", 0, "must be positive"),
])
def test_bad_operations_settings_are_one_line(section, key, value, words):
    cfg = retry_cfg() if section == "retry" else OmegaConf.structured(WatchdogConfig)
    OmegaConf.update(cfg, key, value, merge=False)
    with pytest.raises(ConfigError, match=words):
        (check_retry if section == "retry" else check_watchdog)(cfg)


@pytest.mark.slow
def test_a_hung_reward_is_dumped_recorded_stalled_and_ended(demo_model, experiments_root):
    """A reward call that never returns: the watchdog dumps every thread's stack (naming the function), records
    the attempt STALLED with its phase, and ends the job (not retried here: no Slurm to requeue it)."""
    result = run_module("run_name=hung", "training.max_steps=4", "eval.enabled=false", *DEMO,
                        "watchdog.stall_after_s=5", "watchdog.kill_after_s=15", "watchdog.check_every_s=0.5",
                        env={"RLVR_INJECT_FAULT": "hang:2"})
    assert result.returncode == STALLED_EXIT_CODE, result.stderr[-3000:]
    run_dir = experiments_root / "demo" / "hung"
    log = (run_dir / "train.log").read_text()
    assert "injected_blocking_reward" in log and "stacks of every thread" in log
    attempt = manifest(run_dir)["attempts"][-1]
    assert attempt["end_state"] == "STALLED" and attempt["failure_class"] == "stall"
    assert "in phase reward (step 2)" in attempt["reason"] and attempt["retry"].startswith("not requeued")
    heartbeat = json.loads((run_dir / ".heartbeat.json").read_text())
    assert heartbeat["phase"] == "reward" and heartbeat["step"] == 2


@pytest.mark.slow
def test_a_frozen_process_is_ended_by_the_jobs_supervisor(demo_model, experiments_root):
    """SIGSTOP at step 2 (as `kill -STOP`) stops the watchdog thread with the process: the job's supervisor, a
    process of its own, records the attempt STALLED at the last heartbeat's phase and step and kills the process."""
    result = run_module("run_name=frozen", "training.max_steps=4", "eval.enabled=false", *DEMO,
                        "watchdog.stall_after_s=5", "watchdog.kill_after_s=15", "watchdog.check_every_s=0.5",
                        env={"RLVR_INJECT_FAULT": "freeze:2"})
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    run_dir = experiments_root / "demo" / "frozen"
    m = manifest(run_dir)
    attempt = m["attempts"][-1]
    assert m["status"] == "FAILED" and attempt["end_state"] == "STALLED" and attempt["failure_class"] == "stall"
    assert "in phase reward (step 2)" in attempt["reason"] and "T (stopped)" in attempt["reason"], attempt
    assert attempt["retry"].startswith("not requeued: not running under SLURM")
    assert "supervisor" in (run_dir / "train.log").read_text().splitlines()[-1]


@pytest.mark.slow
def test_a_transient_error_is_classed_for_the_retry_policy(demo_model, experiments_root):
    result = run_module("run_name=flaky", "training.max_steps=4", "eval.enabled=false", *DEMO,
                        env={"RLVR_INJECT_FAULT": "transient:2"})
    assert result.returncode != 0
    attempt = manifest(experiments_root / "demo" / "flaky")["attempts"][-1]
    assert attempt["failure_class"] == "transient" and "NCCL collective operation timeout" in attempt["reason"]
    assert attempt["retry"] == "not requeued: not running under SLURM (transient 1 of 2)"


@pytest.mark.slow
def test_a_retry_slurm_refuses_to_requeue_ends_the_run_failed_saying_why(demo_model, experiments_root, tmp_path):
    """The requeue is asked for last (Slurm may kill the job at once); refused, the run is FAILED, not REQUEUED."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "scontrol").write_text("#!/bin/sh\necho 'scontrol: error: Invalid job id specified' >&2\nexit 1\n")
    (shims / "scontrol").chmod(0o755)
    result = run_module("run_name=flaky", "training.max_steps=4", "eval.enabled=false", *DEMO,
                        env={"RLVR_INJECT_FAULT": "transient:2", "SLURM_JOB_ID": "4242",
                             "PATH": f"{shims}:{os.environ['PATH']}"})
    assert result.returncode != 0
    m = manifest(experiments_root / "demo" / "flaky")
    attempt = m["attempts"][-1]
    assert m["status"] == "FAILED" and attempt["end_state"] == "FAILED" and attempt["failure_class"] == "transient"
    assert attempt["retry"].startswith("not requeued: ") and "Invalid job id" in attempt["retry"]
    assert "NCCL collective operation timeout" in m["error"] and "not requeued" in m["error"]


def test_time_the_job_was_suspended_is_not_time_without_progress(tmp_path):
    """`scontrol suspend` stops the process: on resume the watchdog sees the gap between its own checks and does not
    count it; time without progress while running still ends the job."""
    import threading
    import time

    from rlvr_vocab.ops.watchdog import Watchdog

    stalls = []
    ended = threading.Event()
    cfg = WatchdogConfig(stall_after_s=1, kill_after_s=1, check_every_s=0.05)
    watchdog = Watchdog(cfg, tmp_path, main=True, on_stall=lambda *a: stalls.append(a) or ended.set())
    suspended = [0.0]
    watchdog.clock = lambda: time.monotonic() + suspended[0]
    watchdog.start()
    try:
        watchdog.beat(3, "generation")
        suspended[0] = 3600.0  # an hour suspended, between two of the watchdog's checks
        time.sleep(0.5)
        assert stalls == [], "a suspension is not a stall"
        assert ended.wait(10), "a real stall still ends the job"
        phase, idle, _ = stalls[0]
        assert phase == "generation" and 1 <= idle < 60
    finally:
        watchdog.stop()


def test_a_save_that_would_not_fit_ends_the_attempt_before_it_starts(tmp_path, monkeypatch):
    """The last checkpoint's size against the free space: a warning when two more would not fit, the disk named as
    the cause when one would not (never a torn write the job reports as `unexpected pos`)."""
    import shutil
    from types import SimpleNamespace

    from loguru import logger

    from rlvr_vocab.job.callbacks import DiskFull, DiskSpaceCallback
    from rlvr_vocab.run import checkpoints
    from rlvr_vocab.run.layout import RunPaths

    said: list[str] = []
    sink = logger.add(said.append, level="WARNING")

    paths = RunPaths(tmp_path / "run")
    ckpt = paths.checkpoint(2)
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"x" * 10 * 2**20)
    checkpoints.mark_complete(ckpt)
    callback = DiskSpaceCallback(SimpleNamespace(paths=paths))
    state, control = SimpleNamespace(is_world_process_zero=True, global_step=4), SimpleNamespace(should_save=True)
    for free_mib, outcome in ((100, "quiet"), (15, "warned"), (10, "refused")):
        monkeypatch.setattr(shutil, "disk_usage", lambda _, mib=free_mib: SimpleNamespace(free=mib * 2**20))
        if outcome == "refused":
            with pytest.raises(DiskFull, match=r"disk full at .*checkpoints: checkpoint-4 needs about 10 MiB, 10 MiB "
                                                r"free; free space, or lower training.save_total_limit"):
                callback.on_step_end(None, state, control)
        else:
            said.clear()
            callback.on_step_end(None, state, control)
            assert any("disk nearly full" in m for m in said) == (outcome == "warned")
    logger.remove(sink)


def test_a_full_disk_stops_train_log_with_one_line_not_a_traceback_per_message(tmp_path, capsys):
    import errno

    from loguru import logger

    from rlvr_vocab.core import logs

    logs.setup_logging(tmp_path / "train.log")
    try:
        logger.info("before")

        def full(_):
            raise OSError(errno.ENOSPC, "No space left on device")

        logs._run_log.file.write = full
        for i in range(3):
            logger.info(f"message {i}")
        err = capsys.readouterr().err
        assert err.count("No space left on device") == 1 and "Traceback" not in err and "Logging error" not in err
        assert f"cannot write {tmp_path / 'train.log'} (No space left on device)" in err
        assert err.count("message ") == 3, "the log goes on on stderr"
        assert "before" in (tmp_path / "train.log").read_text()
    finally:
        logs.setup_logging()
