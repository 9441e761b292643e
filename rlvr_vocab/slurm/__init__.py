"""The one gateway to Slurm: every command, its parsing, job ids, and Slurm states as run states."""
