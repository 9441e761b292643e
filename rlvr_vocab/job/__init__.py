"""What runs inside a job: the run's lifecycle, its trainer callbacks, W&B, evaluation jobs and their chain."""
