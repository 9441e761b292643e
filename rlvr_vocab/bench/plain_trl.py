"""The baseline of the training benchmark: the demo's GRPO as a plain TRL script.

`python -m rlvr_vocab.bench.plain_trl SPEC.json TIMES.jsonl`. SPEC (written by bench.training from
the job's own plan) holds the model dir, data dir, system prompt, reward names, seed and the exact
GRPOConfig values; TIMES gets one line per trainer log: step, wall-clock time, tokens so far.
"""

import json
import sys
import time
from pathlib import Path

from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
from trl import GRPOConfig, GRPOTrainer

from rlvr_vocab.model.rewards import REWARDS


class LogTimes(TrainerCallback):
    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, "time": time.time(),
                                "num_tokens": (logs or {}).get("num_tokens")}) + "\n")


def main(spec_path: str, times_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    set_seed(spec["seed"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    tokenizer.padding_side = "left"

    def to_prompt(row):
        messages = [{"role": "system", "content": spec["system_prompt"]}, {"role": "user", "content": row["question"]}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return {"prompt": prompt, "answer": str(row["answer"]).strip()}

    data = load_dataset(spec["data_dir"], split="train")
    data = data.map(to_prompt, remove_columns=data.column_names)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[REWARDS[name] for name in spec["rewards"]],
        args=GRPOConfig(**spec["grpo_kwargs"]),
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[LogTimes(Path(times_path))],
    )
    trainer.train()


if __name__ == "__main__":
    main(*sys.argv[1:3])
