"""Evaluate a run's initial weights, checkpoints and final model on benchmarks (conf/benchmark/), here or as a job.

For each weights (the initial weights at step 0, a complete `checkpoint-N` or `final/`) the model is loaded once
and every benchmark not yet evaluated with the same settings is, by the benchmark's protocol (rlvr_vocab.eval.protocol):
n seeded samples per problem give avg@n, pass@k, cons@n, lengths, format rate and reasoning-vocabulary shares, and a
greedy completion greedy accuracy, all scored by the benchmark's verifier (the rewards' own) on base text (a
reasoning vocabulary's tokens mapped back). Results, per problem and aggregated, go to the run's `eval/<benchmark>/`
and its `evals.json` summary (rlvr_vocab.eval.results); nothing else of the run is touched, so an evaluation that
fails leaves the training run as it was.
"""

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

from loguru import logger

from rlvr_vocab.config.schema import EVAL_BACKENDS
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.eval import protocol, results
from rlvr_vocab.eval.benchmarks import BenchmarkConfig, load_benchmark_config, load_rows, pass_ks, settings_key
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


def _settings(cfg: BenchmarkConfig, backend: str, seed: int) -> dict[str, Any]:
    return {**dataclasses.asdict(cfg), "pass_k": pass_ks(cfg), "backend": backend, "seed": seed}


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


def measure_benchmark(model, tokenizer, rv, cfg: BenchmarkConfig, rows: list[dict[str, str]], seed: int,
                      backend: str = "transformers", source: str = "") -> dict[str, Any]:
    """One benchmark's measures on a loaded model (`source`: where vLLM loads it from): the aggregates and
    `problems`. The same model, rows, settings and seed give the same result."""
    prompts = _prompts(tokenizer, cfg, rows)
    samples, greedy = _completions(backend, model, source, tokenizer, rv, cfg, prompts, seed)
    return _measure(tokenizer, rv, cfg, prompts, [r["answer"] for r in rows], samples, greedy)


def _completions(backend: str, model, source: str, tokenizer, rv, cfg: BenchmarkConfig, prompts: list[str],
                 seed: int):
    """The n samples of each prompt, and its greedy completion when the benchmark asks for greedy accuracy."""
    from rlvr_vocab.eval.generation import complete, complete_vllm, stop_ids
    from rlvr_vocab.reasoning_vocab.logits import generation_logits_processors

    decode = (lambda ids: rv.decode_to_base(ids, tokenizer)) if rv is not None else None
    if backend == "vllm":  # GPU clusters; built for, not yet run here (it ignores think_only's logits processor)
        from vllm import LLM

        generate = functools.partial(complete_vllm, LLM(model=source, seed=seed), tokenizer, prompts,
                                     cfg.max_new_tokens, stop_ids(model, tokenizer), decode)
    else:
        generate = functools.partial(complete, model, tokenizer, prompts, cfg.max_new_tokens,
                                     logits_processor=generation_logits_processors(rv, tokenizer), decode=decode)
    greedy = [row[0] for row in generate()] if cfg.greedy else None
    sampling = {"temperature": cfg.temperature, "top_p": cfg.top_p, "top_k": cfg.top_k}
    return generate(sampling=sampling, n=cfg.num_samples, seed=seed), greedy


def _measure(tokenizer, rv, cfg: BenchmarkConfig, prompts: list[str], golds: list[str], samples, greedy
             ) -> dict[str, Any]:
    """The protocol's measures (rlvr_vocab.eval.protocol) of the completions, scored by the benchmark's verifier on
    base text."""
    from rlvr_vocab.reasoning_vocab.tokens import THINK_END, THINK_START, think_is_open

    score, n = _scorer(cfg.verifier), cfg.num_samples
    texts = [c.text for row in samples for c in row]
    repeated = [g for g in golds for _ in range(n)]
    correct, formatted = score(texts, repeated), _scorer("format")(texts, repeated)
    think = _think_ids(tokenizer)
    facts = []
    for i, (prompt, row) in enumerate(zip(prompts, samples, strict=True)):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        opened = think_is_open(prompt_ids, *think) if think else prompt.rfind(THINK_START) > prompt.rfind(THINK_END)
        for j, c in enumerate(row):
            at = i * n + j
            facts.append(protocol.Sample(
                correct=correct[at] >= 1.0, answer=protocol.extracted_answer(c.text, cfg.verifier),
                formatted=formatted[at] >= 1.0, tokens=c.length, chars=len(c.text),
                think_tokens=protocol.think_tokens(c.ids, opened, *think) if think else None,
                think_chars=protocol.think_chars(c.text, opened),
                # Without think markers every token counts as outside (-1 is no token's id).
                vocab_counts=tuple(rv.token_counts([c.ids], *(think or (-1, -1)), [prompt_ids])) if rv else None,
            ))
    greedy_correct = [s >= 1.0 for s in score([c.text for c in greedy], golds)] if greedy is not None else None
    table = [facts[i * n : (i + 1) * n] for i in range(len(prompts))]
    return protocol.aggregate(table, pass_ks(cfg), greedy_correct)


def _think_ids(tokenizer) -> tuple[int, int] | None:
    """The ids of <think> and </think>, None when the tokenizer has no such single tokens."""
    from rlvr_vocab.reasoning_vocab.tokens import think_token_ids

    try:
        return think_token_ids(tokenizer)
    except ConfigError:
        return None


def evaluate_benchmarks(run_dir: str, which: str, benchmarks: list[str], backend: str = "transformers",
                        local_paths: dict[str, str] | None = None, max_samples: int | None = None,
                        seed: int = 0) -> list[dict[str, Any]]:
    """Evaluate the chosen weights of a run on the benchmarks; returns the results written (skips what is there)."""
    from rlvr_vocab.model.modeling import load_model_and_tokenizer, match_threads_to_allocation
    from rlvr_vocab.model.precision import choose_precision
    from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab

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
                measured = measure_benchmark(model, tokenizer, rv, bench, rows, seed, backend, source)
                record = {"benchmark": bench.name, "weights": label, "step": step,
                          "settings_key": settings_key(bench), "settings": _settings(bench, backend, seed),
                          "protocol": protocol.PROTOCOL, **measured, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "seconds": round(time.time() - start, 1)}
                results.write_result(paths, record)
                # The per-problem records stay in the result file: what is returned (and printed) is the aggregate.
                written.append({k: v for k, v in record.items() if k != "problems"})
                shown = ", ".join(f"{k} {v:.3g}" for k, v in measured.items() if isinstance(v, float))
                logger.info(f"{paths.run_dir.name} {label} on {bench.name}: {shown} (n={measured['n']} problems x "
                            f"{bench.num_samples} samples)")
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
