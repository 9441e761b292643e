"""`python -m rlvr_vocab` is the `rlvr-vocab` CLI."""

import sys

from rlvr_vocab.cli import main

sys.exit(main())
