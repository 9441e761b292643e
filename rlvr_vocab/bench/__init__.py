"""Benchmarks: `python -m rlvr_vocab.bench [--only NAME ...] [--repeats N] [--out FILE.md]`.

Every figure is a ratio against a baseline measured in the same run, baseline and subject
interleaved so drift on the machine hits both; medians are reported. Not tests: nothing here
asserts, it measures and says which targets were met.

Modules, one benchmark each: training (the job against a plain TRL script), cli_latency
(`rlvr-vocab status` over synthetic registries), sweep (our SLURM launcher against plain
hydra-submitit-launcher), requeue (preemption to resumed step), imports (import weight).
"""
