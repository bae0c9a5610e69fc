"""Every source the conformance suites run through: name -> URI factory ``(request, tmp_path) -> str``.

A module of its own (not conftest.py) so that test modules can import it: several
``conftest`` modules (tests/, tests/server, tests/ui) share that name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOURCES: dict[str, Callable[[Any, Path], str]] = {
    "sqlite": lambda request, tmp_path: str(tmp_path / "store"),
    "memory": lambda request, tmp_path: f"memory://test-{uuid.uuid4().hex}",
    # A fresh prefix on the session's redis-server, its archive in tmp_path.
    "redis": lambda request, tmp_path: (
        f"{request.getfixturevalue('redis_server').url}?prefix=test-{uuid.uuid4().hex[:12]}"
        f"&archive={tmp_path / 'archive'}"
    ),
    # A fresh container of runs on the session's Tiled server (TiledWriter writes, one event per write).
    "tiled": lambda request, tmp_path: request.getfixturevalue("tiled_server").new_catalog(),
}
