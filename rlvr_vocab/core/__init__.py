"""The foundation: errors, secrets, logging, the config-key classes, resources; no knowledge of training or Slurm."""
