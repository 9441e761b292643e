"""Every check that can run before a model, a data set or a SLURM job is touched: `plan.validate` runs them all."""
