"""Evaluate a run's initial weights, checkpoints and final model on benchmarks (conf/benchmark/), here or as a job.

For each weights (the initial weights at step 0, a complete `checkpoint-N` or `final/`) the model is loaded once
and every benchmark not yet evaluated with the same settings is: greedy accuracy (pass@1), pass@k from sampled
completions, format rate and mean length, scored by the benchmark's verifier (the rewards' own) on base text (a
reasoning vocabulary's tokens mapped back). Results go to the run's `eval/<benchmark>/` and its `evals.json`
summary (rlvr_vocab.eval.results); nothing else of the run is touched, so an evaluation that fails leaves the
training run as it was.
"""

import dataclasses
import time
from pathlib import Path
from typing import Any

from loguru import logger

from rlvr_vocab.config.schema import EVAL_BACKENDS
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.eval import results
from rlvr_vocab.eval.benchmarks import BenchmarkConfig, load_benchmark_config, load_rows, settings_key
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.layout import RunPaths

# Beside a checkpoint while an evaluation job still needs it: rotation leaves the checkpoint alone meanwhile.
PENDING_MARK = "rlvr_eval_pending.json"


def select_weights(paths: RunPaths, which: str) -> list[tuple[str, Path | None, int]]:
    """(label, directory, step) of the weights to evaluate: `all` (the initial weights, every complete checkpoint
    and final/), `last` (final/, else the newest complete checkpoint), or a comma list of `initial`, `final` and
    steps (`initial,20,final`). The initial weights' directory is None: `initial_weights` resolves it when loading,
    since it may be a hub name or the demo's model, built on demand."""
    complete = checkpoints.complete_checkpoints(paths.checkpoints)
    final_step = checkpoints.final_step(paths)
    final = [("final", paths.final, final_step)] if final_step is not None else []
    initial_missing = _initial_missing(paths)
    initial = [(results.INITIAL, None, 0)] if initial_missing is None else []
    kept = sorted([(p.name, p, checkpoints.checkpoint_step(p)) for p in checkpoints.milestones(paths) + complete],
                  key=lambda entry: entry[2])
    if which == "all":
        chosen = initial + kept + final
    elif which == "last":
        chosen = final or kept[-1:]
    else:
        items = which.split(",")
        bad = [s for s in items if not s.isdigit() and s not in (results.INITIAL, "final")]
        if bad:
            raise ConfigError("--checkpoints", f"'{bad[0]}' is not all, last, initial, final or a step",
                              "e.g. --checkpoints all, or initial,20,final")
        if results.INITIAL in items and initial_missing:
            raise ConfigError("--checkpoints initial", initial_missing, "wait for the run to start")
        if "final" in items and not final:
            raise ConfigError("--checkpoints final", f"{paths.final} is not complete (the run has not finished)",
                              "give checkpoint steps, or `last`")
        by_name = {results.INITIAL: initial, "final": final, **{str(entry[2]): [entry] for entry in kept}}
        missing = [s for s in items if s not in by_name]
        if missing:
            raise ConfigError("--checkpoints", f"no complete checkpoint at step {missing[0]}",
                              f"complete checkpoints: {sorted(step for _, _, step in kept) or 'none'}")
        chosen = [entry for s in items for entry in by_name[s]]
    if not chosen:
        raise ConfigError(str(paths.run_dir), "has neither final/ nor a complete checkpoint", "train it first")
    return chosen


def _initial_missing(paths: RunPaths) -> str | None:
    """Why the initial weights cannot be loaded yet, or None: a reasoning-vocabulary run's extended model is
    written by its training job; a base model is there from the start."""
    if not paths.config.is_file():
        return f"{paths.config} does not exist (the run has not started)"
    if _run_config(paths).model.reasoning_vocab.size and checkpoints.incompleteness(paths.extended_model):
        return f"{paths.extended_model} is not complete (the training job writes it before its first step)"
    return None


def initial_weights(paths: RunPaths, cfg) -> str:
    """Where the initial weights load from, picked as training picks them: a reasoning-vocabulary run's extended
    model, else the base model (a hub name, a path, or the demo's model, cached once built)."""
    from rlvr_vocab.model.modeling import model_path

    return str(paths.extended_model) if cfg.model.reasoning_vocab.size else model_path(cfg)


def benchmark_configs(names: list[str], local_paths: dict[str, str] | None = None,
                      max_samples: int | None = None) -> list[BenchmarkConfig]:
    """The benchmarks' configs (checked), with a local copy's path and a row limit where given."""
    configs = []
    for name in names:
        overrides = {"max_samples": max_samples} if max_samples is not None else {}
        if (local_paths or {}).get(name):
            overrides["path"] = str(local_paths[name])
        configs.append(load_benchmark_config(name, overrides))
    return configs


def check_backend(backend: str) -> None:
    if backend not in EVAL_BACKENDS:
        raise ConfigError("eval.backend", f"unknown backend '{backend}'", f"use one of {', '.join(EVAL_BACKENDS)}")


def _settings(cfg: BenchmarkConfig, backend: str) -> dict[str, Any]:
    return {**dataclasses.asdict(cfg), "backend": backend}


def _scorer(verifier: str):
    from rlvr_vocab.model.rewards import REWARDS

    def score(completions: list[str], answers: list[str]) -> list[float]:
        # Partial credit (numeric's "close") is not a correct answer.
        return [1.0 if (s or 0.0) >= 1.0 else 0.0 for s in REWARDS[verifier](completions, answer=answers)]

    return score


def _prompts(tokenizer, cfg: BenchmarkConfig, rows: list[dict[str, str]]) -> list[str]:
    system = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
    return [tokenizer.apply_chat_template([*system, {"role": "user", "content": r["question"]}], tokenize=False,
                                          add_generation_prompt=True) for r in rows]


def _evaluate_transformers(model, tokenizer, rv, cfg: BenchmarkConfig, rows, seed: int) -> dict[str, Any]:
    from rlvr_vocab.eval.generation import evaluate
    from rlvr_vocab.reasoning_vocab.logits import generation_logits_processors

    return evaluate(
        model, tokenizer, _prompts(tokenizer, cfg, rows), [r["answer"] for r in rows], _scorer(cfg.verifier),
        _scorer("format"), max_new_tokens=cfg.max_new_tokens, k=cfg.k, num_samples=cfg.num_samples,
        sampling={"temperature": cfg.temperature, "top_p": cfg.top_p, "top_k": cfg.top_k}, seed=seed,
        logits_processor=generation_logits_processors(rv, tokenizer),
        decode=(lambda ids: rv.decode_to_base(ids, tokenizer)) if rv is not None else None,
    )


def _evaluate_vllm(weights: str, tokenizer, rv, cfg: BenchmarkConfig, rows, seed: int) -> dict[str, Any]:
    """The same measures with vLLM's generation (GPU clusters; built for, not yet run here)."""
    from vllm import LLM, SamplingParams

    from rlvr_vocab.eval.passk import mean_pass_at_k

    llm = LLM(model=weights, seed=seed)
    prompts, answers = _prompts(tokenizer, cfg, rows), [r["answer"] for r in rows]

    def texts(outputs) -> list[list[str]]:
        decode = (lambda o: rv.decode_to_base(o.token_ids, tokenizer)) if rv is not None else (lambda o: o.text)
        return [[decode(o) for o in out.outputs] for out in outputs]

    greedy = texts(llm.generate(prompts, SamplingParams(temperature=0, max_tokens=cfg.max_new_tokens)))
    first = [c[0] for c in greedy]
    score, n = _scorer(cfg.verifier), len(rows)
    result = {"accuracy": sum(score(first, answers)) / n, "format_rate": sum(_scorer("format")(first, answers)) / n,
              "mean_length": sum(len(tokenizer(t)["input_ids"]) for t in first) / n, "n": n}
    if cfg.k > 1:
        samples = cfg.num_samples or cfg.k
        params = SamplingParams(n=samples, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k or -1,
                                max_tokens=cfg.max_new_tokens, seed=seed)
        sampled = texts(llm.generate(prompts, params))
        counts = [(samples, int(sum(score(c, [a] * samples)))) for c, a in zip(sampled, answers, strict=True)]
        result[f"pass@{cfg.k}"] = mean_pass_at_k(counts, cfg.k)
    return result


def evaluate_benchmarks(run_dir: str, which: str, benchmarks: list[str], backend: str = "transformers",
                        local_paths: dict[str, str] | None = None, max_samples: int | None = None,
                        seed: int = 0) -> list[dict[str, Any]]:
    """Evaluate the chosen weights of a run on the benchmarks; returns the results written (skips what is there)."""
    from rlvr_vocab.model.modeling import load_model_and_tokenizer, match_threads_to_allocation
    from rlvr_vocab.model.precision import choose_precision
    from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab
    from rlvr_vocab.run.identity import flatten

    check_backend(backend)
    paths = RunPaths(run_dir)
    configs = benchmark_configs(benchmarks, local_paths, max_samples)
    written = []
    match_threads_to_allocation()
    for label, weights, step in select_weights(paths, which):
        todo = [c for c in configs if not results.has_result(paths, c.name, label, settings_key(c))]
        for done in (c for c in configs if c not in todo):
            logger.info(f"{paths.run_dir.name} {label} on {done.name}: already evaluated with these settings")
        if todo:
            cfg = _run_config(paths)
            source = str(weights) if weights is not None else initial_weights(paths, cfg)
            model, tokenizer = load_model_and_tokenizer(cfg, source, choose_precision(cfg.precision))
            rv = load_reasoning_vocab(model, tokenizer)
            for bench in todo:
                start = time.time()
                rows = load_rows(bench, local_paths.get(bench.name) if local_paths else None)
                measured = (_evaluate_vllm(source, tokenizer, rv, bench, rows, seed) if backend == "vllm"
                            else _evaluate_transformers(model, tokenizer, rv, bench, rows, seed))
                record = {"benchmark": bench.name, "weights": label, "step": step,
                          "settings_key": settings_key(bench), "settings": _settings(bench, backend), **measured,
                          "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.time() - start, 1)}
                results.write_result(paths, record)
                written.append(record)
                shown = ", ".join(f"{k} {v:.3g}" for k, v in flatten(measured).items() if isinstance(v, float))
                logger.info(f"{paths.run_dir.name} {label} on {bench.name}: {shown} (n={measured['n']})")
        if weights is not None:
            (weights / PENDING_MARK).unlink(missing_ok=True)  # evaluated: rotation may take it now
    if written:
        _summarise_into_manifest(paths)
    return written


def _summarise_into_manifest(paths: RunPaths) -> None:
    """run.json's `benchmarks`, when no training job holds the run dir (a training job copies them itself)."""
    from rlvr_vocab.run.lease import RunLease
    from rlvr_vocab.run.manifest import Manifest

    lease = RunLease(paths)
    try:
        lease.acquire()
    except ConfigError:
        return  # training: its job copies evals.json into run.json
    try:
        manifest = Manifest.load(paths)
        if manifest is not None:
            manifest.guard = lease.check
            manifest.update(benchmarks=results.read_summary(paths))
    finally:
        lease.release()


def _run_config(paths: RunPaths):
    """The run's resolved config (its latest attempt's), for how to load its weights."""
    from omegaconf import OmegaConf

    from rlvr_vocab.config.schema import RootConfig

    if not paths.config.is_file():
        raise ConfigError(str(paths.config), "does not exist", "is this a run dir? see `rlvr-vocab status`")
    return OmegaConf.merge(OmegaConf.structured(RootConfig), OmegaConf.load(paths.config))
