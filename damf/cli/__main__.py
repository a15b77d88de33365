"""``python -m damf.cli``: the ``damf`` command."""

import sys

from . import main

sys.exit(main())
