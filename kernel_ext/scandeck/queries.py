"""The query API under its first name: ``scandeck.queries`` is :mod:`scandeck.query`.

Kept so that ``from scandeck.queries import Key`` (the README's spelling, and code
written against earlier releases) keeps working.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import query

if TYPE_CHECKING:  # a type checker does not follow the swap below: show it the same names
    from .query import *  # noqa: F403

sys.modules[__name__] = query
