"""Offline staging: which hub files an experiment needs, whether the caches hold them, prefetch's record and pins.

Nothing can be downloaded here: the caches are built in tmp the way huggingface_hub and datasets lay them out
(blobs, snapshots of symlinks, refs/main; a prepared `<ns>___<name>/<config>/<version>/<hash>/`).
"""

import json
import os
from pathlib import Path

import pytest

from rlvr_vocab.cli import main as cli
from rlvr_vocab.doctor.experiment import compose_experiment
from rlvr_vocab.model.hub_cache import _snakecase, datasets_cache, hub_cache, pinned_revision
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.validation.prefetch import cache_state, hub_repos, offline_problem

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "89abcdef0123456789abcdef0123456789abcdef"
MODEL, DATA = "acme/TinyModel", "acme/TinyMath"
# The baseline experiment on our own small hub repos, evaluation off: one model and one data set.
OVERRIDES = [
    "experiment=baseline",
    f"model.name_or_path={MODEL}",
    f"dataset.path={DATA}",
    "eval.chain=false",
    "eval.benchmarks=[]",
]


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def safetensors_bytes(shapes: dict[str, list[int]]) -> bytes:
    """A safetensors file's header (the tensors' data is not needed to count parameters)."""
    header = json.dumps(
        {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]} for name, shape in shapes.items()}
    ).encode()
    return len(header).to_bytes(8, "little") + header


def cache_repo(kind: str, repo_id: str, sha: str, files: dict[str, bytes], ref: str | None = "main") -> Path:
    """A snapshot as huggingface_hub writes it: content in blobs/, the snapshot's files symlinks to them."""
    folder = hub_cache() / f"{kind}s--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / sha
    for name, content in files.items():
        blob = folder / "blobs" / f"{abs(hash((sha, name))):x}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(os.path.relpath(blob, (snapshot / name).parent))
    if ref:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(sha)
    return snapshot


MODEL_FILES = {
    "config.json": b'{"hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 16}',
    "model.safetensors": safetensors_bytes({"w": [16, 8]}),
    "tokenizer.json": b"{}",
}


def cache_model(sha: str = SHA, files: dict[str, bytes] | None = None, ref: str | None = "main") -> Path:
    return cache_repo("model", MODEL, sha, MODEL_FILES if files is None else files, ref)


def prepare_dataset(repo_id: str = DATA, config: str = "default") -> Path:
    """datasets' prepared copy, what load_dataset reads offline."""
    namespace, _, name = repo_id.rpartition("/")
    prepared = datasets_cache() / f"{namespace}___{_snakecase(name)}" / config / "0.0.0" / "f00d"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text(json.dumps({"config_name": config}))
    (prepared / f"{name.lower()}-train.arrow").write_bytes(b"")
    return prepared


def cache_everything() -> None:
    cache_model()
    cache_repo("dataset", DATA, SHA2, {"data/train.jsonl": b'{"problem": "1+1", "answer": "2"}\n'})
    prepare_dataset()


def test_cache_paths_and_names_follow_the_libraries():
    import datasets.config
    import datasets.naming
    import huggingface_hub.constants

    assert hub_cache() == Path(huggingface_hub.constants.HF_HUB_CACHE)
    assert datasets_cache() == Path(datasets.config.HF_DATASETS_CACHE)
    for name in ("DeepScaleR-Preview-Dataset", "MATH-500", "gsm8k", "aime_2024", "TinyMath"):
        assert _snakecase(name) == datasets.naming.camelcase_to_snakecase(name)


def test_the_experiments_hub_repos():
    cfg, _ = compose_experiment(["experiment=baseline"])
    repos = {r.where: r for r in hub_repos(cfg)}
    assert repos["model.name_or_path"].repo_id == "Qwen/Qwen3-0.6B"
    assert repos["dataset.path"].repo_id == "agentica-org/DeepScaleR-Preview-Dataset"
    assert repos["eval.benchmarks.gsm8k"].config_name == "main"
    local = tuple(hub_repos(compose_experiment(["experiment=baseline", "+eval.benchmark_paths.gsm8k=/data/g"])[0]))
    assert "eval.benchmarks.gsm8k" not in {r.where for r in local}
    assert hub_repos(compose_experiment(["experiment=demo"])[0]) == []  # built locally, nothing from the hub


def test_missing_files_are_refused_in_one_line_naming_the_repo_and_prefetch(hf_home, capsys):
    cfg, _ = compose_experiment(OVERRIDES)
    problem = offline_problem(cfg, OVERRIDES)
    assert problem is not None and "\n" not in problem
    assert MODEL in problem and "rlvr-vocab prefetch experiment=baseline" in problem and "login node" in problem

    assert cli(["prefetch", "--check", *OVERRIDES]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and MODEL in err and "rlvr-vocab prefetch" in err

    # Offline (conftest sets HF_HUB_OFFLINE=1) nothing can be fetched: refused, nothing recorded.
    assert cli(["prefetch", *OVERRIDES]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and MODEL in err and "cannot be fetched" in err and "login node" in err
    assert not RootPaths(cfg.experiments_root).prefetch_record("baseline").exists()


def test_cached_files_are_recorded_and_pinned(hf_home, capsys):
    cache_everything()
    cfg, _ = compose_experiment(OVERRIDES)
    assert offline_problem(cfg) is None
    assert cli(["prefetch", "--check", *OVERRIDES]) == 0

    assert cli(["prefetch", *OVERRIDES, "+model.model_kwargs.token=hf_abcdefghijklmnop"]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL} @ {SHA[:12]}" in out and f"{DATA} @ {SHA2[:12]}" in out
    record = json.loads(RootPaths(cfg.experiments_root).prefetch_record("baseline").read_text())
    entries = {e["repo_id"]: e for e in record["repos"]}
    assert entries[MODEL]["revision"] == SHA and entries[MODEL]["kind"] == "model"
    assert entries[DATA]["revision"] == SHA2 and entries[DATA]["kind"] == "dataset"
    assert "hf_abcdefghijklmnop" not in json.dumps(record)  # the token override is recorded redacted
    assert pinned_revision(cfg.experiments_root, MODEL) == SHA

    # The branch moves on the login node: jobs keep the pinned revision while its snapshot is there.
    cache_model(SHA2)
    state = cache_state(hub_repos(cfg)[0], cfg.experiments_root)
    assert state.problem is None and state.found == f"revision {SHA[:12]} (pinned by prefetch)"
    pinned_dir = hub_cache() / f"models--{MODEL.replace('/', '--')}" / "snapshots" / SHA
    for link in pinned_dir.iterdir():
        link.unlink()
    pinned_dir.rmdir()
    assert "at the revision prefetch pinned (0123456789ab)" in offline_problem(cfg)


def test_incomplete_snapshots_are_named(hf_home):
    cfg, _ = compose_experiment(OVERRIDES)
    prepare_dataset()
    repo = hub_repos(cfg)[0]
    cache_model(files={"config.json": MODEL_FILES["config.json"], "tokenizer.json": b"{}"})
    assert "no weights" in cache_state(repo, cfg.experiments_root).problem
    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    index = json.dumps({"weight_map": shards})
    cache_model(
        SHA2,
        {
            **MODEL_FILES,
            "model.safetensors.index.json": index.encode(),
            "model-00001-of-00002.safetensors": safetensors_bytes({"a": [2]}),
        },
    )
    assert "model-00002-of-00002.safetensors missing (1 of 2)" in cache_state(repo, cfg.experiments_root).problem
    # A dangling blob link is a missing file, as from_pretrained would find it.
    snapshot = hub_cache() / f"models--{MODEL.replace('/', '--')}" / "snapshots" / SHA2
    (snapshot / "model-00001-of-00002.safetensors").resolve().unlink()
    assert "missing (2 of 2)" in cache_state(repo, cfg.experiments_root).problem


def test_a_data_set_counts_only_once_prepared_for_offline_loading(hf_home):
    cfg, _ = compose_experiment(OVERRIDES)
    cache_model()
    cache_repo("dataset", DATA, SHA2, {"data/train.jsonl": b"{}\n"})
    problem = offline_problem(cfg)
    assert DATA in problem and "not prepared in the datasets cache" in problem  # a hub snapshot alone is not enough
    prepare_dataset(config="other")
    assert offline_problem(cfg) is None  # no config asked: any prepared config is what load_dataset takes
    gsm8k = compose_experiment([*OVERRIDES, "dataset=gsm8k", f"dataset.path={DATA}"])[0]
    assert "not prepared" in offline_problem(gsm8k)  # config `main` asked, `other` prepared
    prepare_dataset(config="main")
    assert offline_problem(gsm8k) is None


def test_pins_follow_the_requested_revision_and_skip_broken_records(hf_home, tmp_path):
    root = tmp_path / "root"
    (root / "_prefetch").mkdir(parents=True)
    entry = {"repo_id": MODEL, "kind": "model", "requested": "main", "revision": SHA, "time": "2026-12-01T00:00:00"}
    newer = {**entry, "revision": SHA2, "time": "2026-12-02T00:00:00"}
    (root / "_prefetch" / "a.json").write_text(json.dumps({"repos": [entry]}))
    (root / "_prefetch" / "b.json").write_text(json.dumps({"repos": [newer, {**entry, "requested": "v2"}]}))
    (root / "_prefetch" / "broken.json").write_text("{not json")
    assert pinned_revision(root, MODEL) == SHA2  # the newest fetch of main, over every experiment's record
    assert pinned_revision(root, MODEL, "v2") == SHA
    assert pinned_revision(root, MODEL, kind="dataset") is None
    assert pinned_revision(tmp_path / "nowhere", MODEL) is None


def test_a_submission_is_refused_until_prefetched_and_jobs_load_the_pinned_revision(hf_home, capsys):
    from conftest import run_train

    from rlvr_vocab.model.modeling import _prefetched_revision

    args = [*OVERRIDES, "logging.mode=offline", "dry_run=true"]
    refused = run_train(*args, env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-2000:]
    assert lines[0].startswith("error: model.name_or_path:") and "rlvr-vocab prefetch experiment=baseline" in lines[0]

    cache_everything()
    assert cli(["prefetch", *OVERRIDES]) == 0
    cache_model(SHA2)  # main moves on after the prefetch
    accepted = run_train(*args, env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    cfg, _ = compose_experiment(OVERRIDES)
    assert _prefetched_revision(cfg, MODEL, None) == SHA  # what from_pretrained is given in the job
    assert _prefetched_revision(cfg, MODEL, "v2") is None  # another revision was asked for: not pinned
    assert _prefetched_revision(cfg, "/models/local", None) is None
