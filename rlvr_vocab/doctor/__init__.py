"""What `rlvr-vocab doctor` checks: can this machine run an experiment, before anything is submitted?

Every check gives `Check` lines (ok / warn / FAIL, what, what was found, how to fix). One module a concern:
`experiment` composes what is vetted, `cluster` and `allocation` ask Slurm (through rlvr_vocab.slurm.client),
`node` this machine's GPUs, `environment` library versions and W&B, `hub` the offline caches, `model_size` and
`storage` the disk; `report` runs them all.
"""
