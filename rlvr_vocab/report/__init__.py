"""Does the reasoning vocabulary help under GRPO? Two arms (a baseline sweep A and, say, the same model with a
reasoning vocabulary, sweep B) compared per benchmark, and the self-contained report that says so.

The comparison: runs of each arm are grouped by their swept values but seed (settings); per metric (each benchmark's
accuracy at the final model and at its best checkpoint, held-out accuracy, training reward) every setting gets its
mean, std, n and 95% bootstrap interval over seeds, and every pair of settings the difference B - A paired by seed
with its interval (rlvr_vocab.eval.stats). `rlvr-vocab compare` prints it; `rlvr-vocab report` writes it as one HTML
file (plots embedded as data URIs, inline CSS, nothing fetched: it can be mailed) or as Markdown with PNGs beside it.

One module per job:
  measures     a run's measures: benchmark accuracies (final, best), held-out accuracy, reward, seed, config
  summaries    summaries over seeds and paired differences (rlvr_vocab.eval.stats), the verdict, the n < 3 note
  selection    the runs of a sweep (experiment, state)
  arms         an arm's runs grouped by setting; the pairing of two arms' settings
  comparison   the comparison rows of two arms, or one arm's settings: what `compare --vs` prints as JSON or CSV
  sweep_table  `compare`'s table of one sweep: a row per run, or per setting with its mean over seeds
  wording      numbers as shown, and the answer in plain words
  provenance   what the arms ran: config differences, the commands that submit them again, git, each run's attempts
  document     the report's blocks (Heading, Para, Table, ...)
  sections     the report of one or two arms as blocks
  html, markdown  the two renderers
  writing      the report written to a file
  terminal     `compare`'s tables for the terminal
  browser      the page rendered by headless Chromium (a screenshot)

`screenshot` is re-exported here for the demo's test (tests/test_demo_slurm.py). Cheap to import (the CLI imports
it): numpy, yaml and matplotlib load only when statistics, configs or plots are made.
"""

from rlvr_vocab.report.browser import screenshot

__all__ = ["screenshot"]
