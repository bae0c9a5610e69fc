"""External-data handlers under their first name: ``scandeck.handlers`` is :mod:`scandeck.external`.

Kept so that ``scandeck.handlers.register_handler(...)`` (the README's spelling,
and plug-ins written against earlier releases) keeps working.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import external

if TYPE_CHECKING:  # a type checker does not follow the swap below: show it the same names
    from .external import *  # noqa: F403

sys.modules[__name__] = external
