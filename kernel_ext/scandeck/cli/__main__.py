"""``python -m scandeck.cli``: the ``scandeck`` command."""

import sys

from .main import main

sys.exit(main())
