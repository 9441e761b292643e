"""The run's held-out evaluation: its data split, scored by the same verifier as the rewards."""

from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.eval.generation import evaluate


def held_out_eval(model, tokenizer, test_ds, cfg: DictConfig, rv=None, k: int | None = None) -> dict[str, Any]:
    """Greedy accuracy, format rate and mean length on the held-out split; pass@k when `eval.k` (or `k`) > 1.

    Accuracy uses the `accuracy` reward's verifier (math-verify) and format the `format` reward's check, whatever
    rewards the run trains with. With a reasoning vocabulary, generation obeys its mode and completions are scored
    in base text.
    """
    from rlvr_vocab.model.rewards import REWARDS
    from rlvr_vocab.reasoning_vocab.logits import generation_logits_processors

    def scorer(name: str):
        return lambda completions, answers: [s or 0.0 for s in REWARDS[name](completions, answer=answers)]

    rows = test_ds.select(range(min(len(test_ds), cfg.eval.max_samples or len(test_ds))))
    return evaluate(
        model, tokenizer, list(rows["prompt"]), list(rows["answer"]), scorer("accuracy"), scorer("format"),
        max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size,
        k=cfg.eval.k if k is None else k, num_samples=cfg.eval.num_samples,
        sampling=OmegaConf.to_container(cfg.model.generation_kwargs, resolve=True), seed=cfg.seed,
        logits_processor=generation_logits_processors(rv, tokenizer),
        decode=(lambda ids: rv.decode_to_base(ids, tokenizer)) if rv is not None else None,
    )


def summary(result: dict[str, Any]) -> str:
    """`accuracy 65.0%, pass@4 80.0%, format 100.0%, length 7.5` for logs."""
    shown = [f"accuracy {result['accuracy']:.1%}"]
    shown += [f"{key} {value:.1%}" for key, value in result.items() if key.startswith("pass@")]
    if "format_rate" in result:
        shown.append(f"format {result['format_rate']:.1%}")
    return ", ".join([*shown, f"length {result['mean_length']:.1f}"])
