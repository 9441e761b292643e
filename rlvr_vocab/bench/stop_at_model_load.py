"""`python -m rlvr_vocab.bench.stop_at_model_load MODULE ARGS...`: `python -m MODULE ARGS...` until a model loads.

At the first `AutoModelForCausalLM.from_pretrained` it prints `MODEL_LOAD <wall-clock time>` and ends the
process at once: everything before that moment is the program's start-up before the model loads.
"""

import os
import runpy
import sys
import time

from transformers import AutoModelForCausalLM

MARK = "MODEL_LOAD "


def _stop(cls, *args, **kwargs):
    print(f"{MARK}{time.time()}", flush=True)  # noqa: T201
    os._exit(0)  # nothing after the load is measured, not even interpreter teardown


if __name__ == "__main__":
    AutoModelForCausalLM.from_pretrained = classmethod(_stop)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
