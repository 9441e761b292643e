"""Does the reasoning vocabulary help under GRPO? Two arms (a baseline sweep A and, say, the same model with a
reasoning vocabulary, sweep B) compared per benchmark, and the self-contained report that says so.

The answer first: per benchmark at the final model, its headline measure (avg@n, the papers' pass@1, else greedy
accuracy) B - A paired by seed and by problem with a two-level bootstrap interval, P(B > A) over seeds and the
difference detectable at this many seeds (or, below 3 seeds, that the seeds needed are not known yet); overall, the
mean and IQM of B - A across benchmarks with stratified intervals (rlvr_vocab.eval.paired). Then the comparison: runs
of each arm are grouped by their swept values but seed (settings); per metric (each benchmark's measure at the final
model and at its best checkpoint, held-out accuracy, training reward) every setting gets its mean, std, n and 95%
bootstrap interval over seeds, and every pair of settings the difference B - A paired by seed with its interval
(rlvr_vocab.eval.stats). `rlvr-vocab compare` prints it; `rlvr-vocab report` writes it as one HTML file (plots embedded
as data URIs, inline CSS, nothing fetched: it can be mailed) or as Markdown with PNGs beside it.

One module per job:
  curves       a run's curves from its run dir; a benchmark's headline measure
  measures     a run's measures: benchmarks (final, best), held-out accuracy, reward, seed, config
  summaries    summaries over seeds and paired differences (rlvr_vocab.eval.stats), the verdict, the n < 3 note
  arms         an arm's runs grouped by setting, one headline measure per benchmark; the pairing of two arms' settings
  problems     per-problem scores of two arms at the final model, paired by seed and problem index
  answer       the answer per benchmark and overall, and how many seeds a difference needs
  answer_text  the answer as lines
  learning     how fast each arm learns: area under its curve, first step reaching A's final value
  lengths      each arm's lengths and reasoning-token shares at the final model
  comparison   the comparison rows of two arms, or one arm's settings: what `compare --vs` prints as JSON or CSV
  sweep_table  `compare`'s table of one sweep: a row per run, or per setting with its mean over seeds
  wording      numbers as shown
  provenance   what the arms ran: config differences, the commands that submit them again, git, each run's attempts
  document     the report's blocks (Heading, Para, Table, ...)
  sections     the report of one or two arms as blocks; answer_sections those about the answer
  html, markdown  the two renderers
  writing      the report written to a file
  terminal     `compare`'s tables for the terminal
  plotting     the curves drawn: a line per setting or arm, a band over seeds
  browser      the page rendered by headless Chromium (a screenshot)

`screenshot` is re-exported here for the demo's test (tests/test_demo_slurm.py). Cheap to import (the CLI imports
it): numpy, scipy, yaml and matplotlib load only when statistics, configs or plots are made (answer, answer_text,
answer_sections, problems and learning load numpy at import: the modules the CLI imports import them where used).
"""

from rlvr_vocab.report.browser import screenshot

__all__ = ["screenshot"]
