"""``python -m meta.simulate`` is ``meta simulate``."""

import sys

from meta.simulate.command import main

sys.exit(main())
