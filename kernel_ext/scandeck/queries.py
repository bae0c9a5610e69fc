"""The query API under its first name: ``scandeck.queries`` is :mod:`scandeck.query`.

Kept so that ``from scandeck.queries import Key`` (the README's spelling, and code
written against earlier releases) keeps working.
"""

from __future__ import annotations

import sys

from . import query

sys.modules[__name__] = query
