"""``python -m meta``: the same command line as the ``meta`` script (see :mod:`meta.cli`)."""

import sys

from meta.cli import main

sys.exit(main())
