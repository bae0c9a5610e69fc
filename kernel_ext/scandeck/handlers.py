"""External-data handlers under their first name: ``scandeck.handlers`` is :mod:`scandeck.external`.

Kept so that ``scandeck.handlers.register_handler(...)`` (the README's spelling,
and plug-ins written against earlier releases) keeps working.
"""

from __future__ import annotations

import sys

from . import external

sys.modules[__name__] = external
