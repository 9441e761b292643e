"""Which rank's failure a distributed attempt records: the first real one, not the others' lost connections."""

import pytest

from rlvr_vocab.job import ranks
from rlvr_vocab.ops.retry import RetryConfig, classify_exception

RESET = "RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [10.0.0.2]:5871"


def classify(summary: str) -> str:
    return classify_exception(RetryConfig(), summary)


@pytest.fixture
def attempt(monkeypatch, tmp_path):
    """Rank 0 of attempt 2 (restart 1) of Slurm job 77; ranks.record writes as the rank RANK names."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setattr(ranks, "_WAIT_S", 0.3)

    def as_rank(rank: int, summary: str, restart: int = 1) -> None:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("SLURM_RESTART_COUNT", str(restart))
        ranks.record(tmp_path, summary)
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv("SLURM_RESTART_COUNT", "1")

    return tmp_path, as_rank


def test_the_first_real_failure_of_another_rank_is_the_cause(attempt):
    run_dir, as_rank = attempt
    as_rank(1, "ValueError: a bug from the previous attempt", restart=0)  # another attempt's: not this one's cause
    as_rank(2, RESET)  # an echo
    as_rank(3, "NCCL error: unhandled system error, NCCL version 2.21.5")  # transient by the default patterns
    as_rank(1, "KeyboardInterrupt: ")
    reason, klass = ranks.attribute(run_dir, RESET, classify)
    assert reason.startswith("rank 3 failed first: NCCL error: unhandled system error")
    assert f"rank 0 then: {RESET}" in reason
    assert klass == classify("NCCL error: unhandled system error")


def test_a_lost_connection_no_rank_explains_is_transient(attempt):
    run_dir, as_rank = attempt
    as_rank(1, RESET)
    reason, klass = ranks.attribute(run_dir, RESET, classify)
    assert klass == "transient" and "no other rank recorded a failure" in reason


def test_rank_0s_own_error_is_its_own_cause(attempt):
    run_dir, as_rank = attempt
    as_rank(1, "ValueError: later")
    assert ranks.attribute(run_dir, "ZeroDivisionError: division by zero", classify) == (
        "ZeroDivisionError: division by zero", "code_error")


def test_a_sigterm_from_a_cancel_is_not_a_peers_failure(attempt, monkeypatch):
    run_dir, _ = attempt
    monkeypatch.delenv("SLURM_JOB_ID")
    assert ranks.ended_by_peer(run_dir) is None
