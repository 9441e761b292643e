"""`rlvr-vocab status` at scale: the newest runs with counts per state for all, --limit/--all, filters run in the
index (--state, --exp, --sweep, --since), one sacct call, and only the rows shown rendered. Nothing here is timed:
`python -m rlvr_vocab.bench --only cli` times it."""

import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rlvr_vocab.bench.cli_latency import write_synthetic_registry
from rlvr_vocab.cli import main, status
from rlvr_vocab.cli.common import parse_since
from rlvr_vocab.registry import Registry, RunView, index, run_files, slurm_view
from rlvr_vocab.run.layout import RootPaths

HOUR = 3600.0
# The runs `many_runs` writes: 20 an hour back from now, in this cycle of states (FAILED runs have no job: settled).
CYCLE = ["COMPLETED"] * 17 + ["FAILED"] * 2 + ["CANCELLED"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def write_run(root: Path, exp: str, name: str, state: str, created: float, sweep: str | None = None,
              job: str | None = None, updated: float | None = None) -> None:
    """A run dir as its job leaves it (run.json only, last written at `updated`, else when created), changed long
    enough ago for the index to trust its mtime."""
    run_dir = root / exp / name
    run_dir.mkdir(parents=True)
    started = iso(created)
    attempt = {"n": 1, "started": started, "ended": None if state == "RUNNING" else started,
               "slurm_job_id": job, "end_state": None if state == "RUNNING" else state}
    (run_dir / "run.json").write_text(json.dumps({
        "schema_version": 2, "run_id": name, "exp_name": exp, "run_name": name, "sweep_id": sweep, "status": state,
        "created": started, "updated": iso(updated or created), "last_step": 5, "max_steps": 5,
        "metrics": {"reward": 0.5}, "attempts": [attempt], "checkpoints": []}))
    long_ago = time.time() - 60
    os.utime(run_dir, (long_ago, long_ago))


@pytest.fixture
def no_slurm(monkeypatch, tmp_path):
    """A PATH without sacct/scontrol."""
    empty = tmp_path / "no-slurm"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def slurm_shim(monkeypatch, tmp_path):
    """Fake sacct (knows no job), squeue (queues none) and scontrol (the controller is up) that log each call:
    returns the sacct log (squeue's is squeue.log beside it)."""
    bin_dir, log = tmp_path / "shim-bin", tmp_path / "sacct.log"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "squeue").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "squeue.log"}\n')
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'Slurmctld(primary) at vm is UP'\n")
    for tool in ("sacct", "squeue", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def sacct_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def many_runs(experiments_root):
    """1,200 runs of two experiments, one created every 3 minutes back from now: r0000 is the newest."""
    now = time.time()
    for i in range(1200):
        exp = "big" if i % 3 else "small"
        write_run(experiments_root, exp, f"r{i:04d}", CYCLE[i % 20], now - i * HOUR / 20 - 60, sweep=f"s{i % 2}")
    return now


def cli(capsys, *args):
    code = main(["status", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def table_names(out: str) -> list[str]:
    """The runs a table lists, top to bottom (its rows start with the run's name)."""
    return [m[1] for line in out.splitlines() if (m := re.match(r"\s*(r\d{4,5})\s{2,}", line))]


def json_names(out: str) -> list[str]:
    return [row["run_name"] for row in json.loads(out)]


def footer(out: str) -> str:
    return out.rstrip("\n").splitlines()[-1]


def test_table_shows_the_50_newest_newest_last_with_counts_for_all(many_runs, capsys, no_slurm):
    code, out, _ = cli(capsys)
    assert code == 0
    assert table_names(out) == [f"r{i:04d}" for i in range(49, -1, -1)]
    assert footer(out) == ("1200 runs: 1020 COMPLETED, 120 FAILED, 60 CANCELLED; showing the 50 most recent, "
                           "newest last; --all for every run")


def test_limit_and_all(many_runs, capsys, no_slurm):
    _, out, _ = cli(capsys, "--limit", "7")
    assert table_names(out) == [f"r{i:04d}" for i in range(6, -1, -1)]
    assert "showing the 7 most recent" in footer(out)
    _, out, _ = cli(capsys, "--all")
    assert table_names(out) == [f"r{i:04d}" for i in range(1199, -1, -1)]
    assert footer(out) == "1200 runs: 1020 COMPLETED, 120 FAILED, 60 CANCELLED; newest last"
    with pytest.raises(SystemExit):
        cli(capsys, "--limit", "5", "--all")
    assert "not allowed with" in capsys.readouterr().err
    # --json lists every run unless --limit says (as before: sorted by experiment, then creation).
    _, out, _ = cli(capsys, "--json")
    rows = json.loads(out)
    assert len(rows) == 1200 and rows == sorted(rows, key=lambda r: (r["exp_name"], r["created"], r["run_name"]))
    _, out, _ = cli(capsys, "--json", "--limit", "7")
    assert json_names(out) == [f"r{i:04d}" for i in range(6, -1, -1)]


@pytest.mark.parametrize(("args", "expected"), [
    (["--state", "failed"], lambda i: CYCLE[i % 20] == "FAILED"),
    (["--exp", "small"], lambda i: i % 3 == 0),
    (["--sweep", "s1"], lambda i: i % 2 == 1),
    (["--since", "2d"], lambda i: i < 960),  # 20 an hour
    (["--since", "30h", "--exp", "big", "--state", "COMPLETED"],
     lambda i: i < 600 and i % 3 and CYCLE[i % 20] == "COMPLETED"),
], ids=["state", "exp", "sweep", "since-relative", "combined"])
def test_filters_agree_between_table_and_json(many_runs, capsys, no_slurm, args, expected):
    matched = [f"r{i:04d}" for i in range(1199, -1, -1) if expected(i)]
    _, out, _ = cli(capsys, *args, "--json")
    assert sorted(json_names(out)) == sorted(matched)
    _, out, _ = cli(capsys, *args, "--all")
    assert table_names(out) == matched
    assert footer(out).startswith(f"{len(matched)} runs: ")
    _, out, _ = cli(capsys, *args)
    assert table_names(out) == matched[-50:]
    _, out, _ = cli(capsys, *args, "--json", "--limit", "50")
    assert json_names(out) == matched[-50:]


def test_since_an_absolute_date_or_time(experiments_root, capsys, no_slurm):
    for day in range(1, 6):
        write_run(experiments_root, "demo", f"r{day:04d}", "COMPLETED",
                  datetime(2026, 3, day, 12, tzinfo=timezone.utc).timestamp())
    _, out, _ = cli(capsys, "--since", "2026-03-03T12:00:00+00:00", "--json")
    assert json_names(out) == ["r0003", "r0004", "r0005"]
    _, out, _ = cli(capsys, "--since", "2026-03-04T00:00Z")
    assert table_names(out) == ["r0004", "r0005"]
    # A date alone is local midnight.
    local_midnight = datetime(2026, 3, 4).timestamp()
    assert parse_since("2026-03-04") == local_midnight
    _, out, _ = cli(capsys, "--since", "2026-03-04", "--json")
    assert json_names(out) == [f"r{d:04d}" for d in range(1, 6)
                               if datetime(2026, 3, d, 12, tzinfo=timezone.utc).timestamp() >= local_midnight]


def test_since_spans_back_from_now():
    assert parse_since("90m", now=10_000.0) == 10_000.0 - 90 * 60
    assert parse_since("12h", now=100_000.0) == 100_000.0 - 12 * HOUR
    assert parse_since("2d", now=1e6) == 1e6 - 48 * HOUR
    assert parse_since("1.5w", now=1e7) == 1e7 - 1.5 * 7 * 24 * HOUR


@pytest.mark.parametrize("bad", ["yesterday", "2d3h", "-2d", "2026-13-01", ""])
def test_a_bad_since_is_one_line(experiments_root, capsys, no_slurm, bad):
    write_run(experiments_root, "demo", "r0001", "COMPLETED", time.time() - HOUR)
    code, out, err = cli(capsys, f"--since={bad}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: --since '{bad}': is neither a date nor a span") and "2d" in err


def test_a_bad_state_or_unknown_sweep_is_one_line(experiments_root, capsys, no_slurm):
    write_run(experiments_root, "demo", "r0001", "COMPLETED", time.time() - HOUR, sweep="s")
    code, _, err = cli(capsys, "--state", "FINISHED")
    assert code == 2 and err.count("\n") == 1 and "not a run state" in err and "COMPLETED" in err
    code, _, err = cli(capsys, "--sweep", "nope")
    assert code == 2 and err.count("\n") == 1 and "has no runs" in err
    code, out, _ = cli(capsys, "--sweep", "s", "--state", "FAILED")  # a sweep with none in that state: no error
    assert code == 0 and footer(out) == "no runs"


def test_the_table_over_1200_runs_renders_and_serializes_only_the_rows_shown(many_runs, capsys, monkeypatch,
                                                                              slurm_shim):
    # 60 of them need SLURM (RUNNING, with a job, written a minute ago), spread over the whole range: their states
    # count in the footer.
    for i in range(20, 1200, 20):
        write_run(Path(os.environ["RLVR_EXPERIMENTS_ROOT"]), "big", f"r{i + 10000}", "RUNNING",
                  many_runs - i * HOUR / 20 - 61, job=str(1000 + i), updated=many_runs - 60)
    assert cli(capsys, "--json")[0] == 0  # indexes every run
    rendered, serialized = [], []
    real_line, real_to_json = status._line, RunView.to_json
    monkeypatch.setattr(status, "_line", lambda cells, *args: rendered.append(cells[0]) or real_line(cells, *args))
    monkeypatch.setattr(RunView, "to_json", lambda self: serialized.append(self.run_name) or real_to_json(self))
    monkeypatch.setattr(run_files, "read_run", lambda run_dir: pytest.fail(f"{run_dir} read again"))

    code, out, _ = cli(capsys)
    assert code == 0 and rendered[0] == "run" and len(rendered) == 51 and table_names(out) == rendered[1:]
    # The only rows built anew are the shown runs that SLURM was asked about; the others come from the index.
    assert len(serialized) == 2 and set(serialized) <= set(rendered)
    assert footer(out).startswith("1259 runs: 1020 COMPLETED, 120 FAILED, 60 CANCELLED, 59 LOST; showing the 50")


def test_one_sacct_call_for_the_matched_runs_slurm_may_change(experiments_root, capsys, slurm_shim):
    now = time.time()
    recent = now - 60  # their jobs wrote their manifests a minute ago: SLURM's word on them is not final yet
    for i in range(3):  # tasks of one array, asked once by the array's id
        write_run(experiments_root, "a", f"r{i:04d}", "RUNNING", now - HOUR, job=f"500_{i}", updated=recent)
    write_run(experiments_root, "b", "r0100", "FAILED", now - HOUR, job="600", updated=recent)  # may be requeued
    write_run(experiments_root, "b", "r0101", "COMPLETED", now - HOUR, job="601")  # settled: never asked
    write_run(experiments_root, "c", "r0200", "RUNNING", now - 9 * 24 * HOUR, job="700", updated=recent)

    for args in ([], ["--json"], ["--all"], ["--limit", "1", "--json"]):
        before = len(sacct_calls(slurm_shim))
        assert cli(capsys, *args)[0] == 0
        calls = sacct_calls(slurm_shim)[before:]
        assert [c.rpartition(" -j ")[2] for c in calls] == ["500,600,700"], args
    # Filters narrow what SLURM is asked about (the state filter only after it answered); no run to ask, no call.
    for args, asked in ((["--exp", "a"], ["500"]), (["--since", "2d", "--exp", "b"], ["600"]),
                        (["--exp", "b", "--state", "COMPLETED"], ["600"]), (["--since", "1h"], [])):
        before = len(sacct_calls(slurm_shim))
        assert cli(capsys, *args)[0] == 0
        assert [c.rpartition(" -j ")[2] for c in sacct_calls(slurm_shim)[before:]] == asked, args


def asked(log: Path, before: int) -> list[str]:
    """The job ids of each sacct call logged since the before-th."""
    return [c.rpartition(" -j ")[2] for c in sacct_calls(log)[before:]]


def test_runs_slurm_is_done_with_are_served_from_the_index_until_their_files_change(experiments_root, capsys,
                                                                                     slurm_shim):
    """A run whose job ended (here: SLURM has no record of it) over an hour ago is asked about once more, then
    served like a completed run; a resume (a new submission) makes it SLURM's to say again."""
    from rlvr_vocab.run.claims import record_submission
    from rlvr_vocab.run.layout import RunPaths

    now = time.time()
    write_run(experiments_root, "demo", "r0001", "FAILED", now - 3 * HOUR, job="600")
    write_run(experiments_root, "demo", "r0002", "RUNNING", now - 3 * HOUR, job="601")  # its node died unseen
    write_run(experiments_root, "demo", "r0003", "FAILED", now - 3 * HOUR, job="602", updated=now - 60)
    states = {}
    for _ in range(2):
        before = len(sacct_calls(slurm_shim))
        _, out, _ = cli(capsys, "--json")
        states[tuple(asked(slurm_shim, before))] = {r["run_name"]: r["state"] for r in json.loads(out)}
    assert states == {("600,601,602",): {"r0001": "FAILED", "r0002": "LOST", "r0003": "FAILED"},
                      ("602",): {"r0001": "FAILED", "r0002": "LOST", "r0003": "FAILED"}}

    record_submission(RunPaths(experiments_root / "demo" / "r0001"),
                      {"job_id": "700", "submitted": iso(time.time()), "sweep_id": None})
    before = len(sacct_calls(slurm_shim))
    _, out, _ = cli(capsys, "--json")
    assert asked(slurm_shim, before) == ["602,700"]
    assert [(r["run_name"], r["state"], r["note"]) for r in json.loads(out)][0] == \
        ("r0001", "PENDING", "submitted as job 700")


def test_a_submission_slurm_never_heard_of_is_lost_after_an_hour(experiments_root, capsys, slurm_shim):
    """Neither in accounting nor in the queue an hour after its submission: LOST. A job accounting has not recorded
    (yet) but the controller queues stays what the queue says, however old."""
    from rlvr_vocab.run.claims import record_submission
    from rlvr_vocab.run.layout import RunPaths

    (slurm_shim.parent / "shim-bin" / "squeue").write_text("#!/bin/sh\necho '93 PENDING'\n")
    for name, job, ago in (("old", "91", 2 * HOUR), ("new", "92", 60), ("held", "93", 3 * HOUR)):
        record_submission(RunPaths(experiments_root / "demo" / name),
                          {"job_id": job, "submitted": iso(time.time() - ago), "sweep_id": None})
        os.utime(experiments_root / "demo" / name, (time.time() - 60, time.time() - 60))  # older than the clock's step
    for _ in range(2):  # the same the second time: LOST is settled, the queued job still asked about
        _, out, _ = cli(capsys, "--json")
        assert {r["run_name"]: (r["state"], r["note"]) for r in json.loads(out)} == {
            "old": ("LOST", "submitted as job 91, which SLURM has no record of (nor its queue)"),
            "new": ("PENDING", "submitted as job 92"),
            "held": ("PENDING", "submitted as job 93 (PENDING, not in SLURM accounting yet)")}
    assert sacct_calls(slurm_shim)[-1].endswith(" -j 92,93")


def test_a_finished_run_changed_by_its_writers_shows_at_once_and_a_hand_edit_on_the_rescan(
        experiments_root, capsys, no_slurm, monkeypatch):
    """`status` looks into an experiment's finished runs only when its dir's mtime moved: new or removed run dirs
    move it, and so do the writers of a run's files (evaluation results here); a hand edit shows on the periodic
    rescan (or `rlvr-vocab registry rebuild`)."""
    from rlvr_vocab.eval.results import refresh_summary
    from rlvr_vocab.run.layout import RunPaths

    for i in range(3):
        write_run(experiments_root, "demo", f"r{i:04d}", "COMPLETED", time.time() - HOUR)
    exp_dir = experiments_root / "demo"
    long_ago = time.time() - 60
    os.utime(exp_dir, (long_ago, long_ago))
    _, out, _ = cli(capsys, "--json")
    assert [r["benchmarks"] for r in json.loads(out)] == [{}, {}, {}]

    paths = RunPaths(exp_dir / "r0001")
    (paths.eval / "gsm8k").mkdir(parents=True)
    (paths.eval / "gsm8k" / "final.json").write_text(json.dumps(
        {"benchmark": "gsm8k", "step": 5, "weights": "final", "settings_key": "k", "accuracy": 0.5, "time": "t"}))
    refresh_summary(paths)
    _, out, _ = cli(capsys, "--json")
    assert [r["benchmarks"] for r in json.loads(out)][1] == {"gsm8k": {"5": {
        "accuracy": 0.5, "step": 5, "weights": "final", "settings_key": "k"}}}

    # By hand: r0002's manifest replaced by rename (which moves its dir's mtime, not its experiment dir's).
    os.utime(exp_dir, (long_ago, long_ago))
    cli(capsys)
    manifest = json.loads((exp_dir / "r0002" / "run.json").read_text())
    (exp_dir / "r0002" / "new.json").write_text(json.dumps({**manifest, "status": "FAILED", "error": "by hand"}))
    os.replace(exp_dir / "r0002" / "new.json", exp_dir / "r0002" / "run.json")
    _, out, _ = cli(capsys, "--json")
    assert [r["state"] for r in json.loads(out)] == ["COMPLETED", "COMPLETED", "COMPLETED"]
    monkeypatch.setattr(index, "_RESCAN_AFTER_S", 0)
    _, out, _ = cli(capsys, "--json")
    assert [r["state"] for r in json.loads(out)] == ["COMPLETED", "COMPLETED", "FAILED"]


def test_rows_built_anew_equal_the_rows_served_from_the_index(experiments_root, capsys, no_slurm):
    """A run's row is the same whether the index serves it (settled) or `status` resolves it: `show` agrees too."""
    write_run(experiments_root, "demo", "r0001", "COMPLETED", time.time() - HOUR, job="7")
    write_run(experiments_root, "demo", "r0002", "FAILED", time.time() - HOUR, job="8")  # asks SLURM: none here
    _, out, _ = cli(capsys, "--json")
    full = Registry(experiments_root).runs(full=True)
    assert json.loads(out) == [v.to_json() for v in full]


@pytest.mark.slow  # 2,000 realistic run dirs
def test_the_index_keeps_a_brief_of_each_run_under_2_kb(experiments_root, capsys, slurm_shim):
    """Realistic run dirs (a manifest of ~2.3 KB: every metric TRL logs, checkpoints, an evaluation; the sweep's
    submission): the index keeps what `status` and the list commands read, not the files, and `show` reads them
    whole from the run dir."""
    n = 2000
    write_synthetic_registry(experiments_root, n)
    for _ in range(2):  # builds the index, then settles the runs SLURM has no record of
        assert cli(capsys, "--json")[0] == 0
    assert RootPaths(experiments_root).index.stat().st_size / n < 2048

    # A settled run's brief leaves to its row what the row says: the views built from the index are as the files say.
    views = Registry(experiments_root).runs(full=False, ask_slurm=False)
    assert {v.run_dir_text: [v.brief, v.brief_submissions] for v in views} == {
        v.run_dir_text: list(run_files.brief(*run_files.read_run(v.run_dir_text))) for v in views}
    run_dir = next(v.run_dir for v in views if v.brief is not None)
    assert main(["show", f"{run_dir.parent.name}/{run_dir.name}", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"] == json.loads((run_dir / "run.json").read_text())["metrics"]
    assert shown["submissions"] == json.loads((run_dir / "submissions.json").read_text())


def test_states_are_coloured_on_a_terminal_unless_no_color(experiments_root, capsys, no_slurm, monkeypatch):
    write_run(experiments_root, "demo", "r0001", "FAILED", time.time() - HOUR)
    monkeypatch.setattr(status.sys.stdout, "isatty", lambda: True)
    _, out, _ = cli(capsys)
    assert "\033[31mFAILED\033[0m" in out and out.startswith("\033[1mrun")
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = cli(capsys)
    assert "\033[" not in out and table_names(out) == ["r0001"]


def test_a_sacct_the_kernel_refuses_leaves_the_runs_unknown(experiments_root, capsys, monkeypatch):
    """sacct takes one argument of job ids, which Linux caps at 128 KiB: beyond, the runs read as UNKNOWN."""
    write_run(experiments_root, "demo", "r0001", "RUNNING", time.time() - HOUR, job="12")

    def refused(job_ids, every_run=False):
        raise OSError(7, "Argument list too long", "sacct")

    monkeypatch.setattr(slurm_view.slurm_client, "sacct", refused)
    code, out, _ = cli(capsys, "--json")
    [row] = json.loads(out)
    assert code == 0 and row["state"] == "UNKNOWN" and row["stale"]
    assert "sacct could not be asked" in row["note"] and "Argument list too long" in row["note"]
