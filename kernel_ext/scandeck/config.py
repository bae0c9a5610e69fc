"""Where scandeck keeps things: the data directory and the catalog search path."""

from __future__ import annotations

import os
from pathlib import Path

#: Catalog files shipped with scandeck (inside the wheel; the repository's
#: ``catalogs/`` in an editable install).
_PACKAGED = Path(__file__).parent / "catalogs"
_REPOSITORY = Path(__file__).resolve().parents[2] / "catalogs"


def data_dir() -> Path:
    """``$SCANDECK_DATA``, else the user data directory (``~/.local/share/scandeck``)."""
    env = os.environ.get("SCANDECK_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("scandeck", appauthor=False))


def default_store() -> Path:
    """Directory of the embedded default store."""
    return data_dir() / "store"


def catalog_dirs() -> list[Path]:
    """Directories searched for Intake catalog files, first match wins.

    ``$SCANDECK_CATALOGS`` (``os.pathsep``-separated), then ``<data dir>/catalogs``,
    then the files shipped with scandeck.
    """
    dirs = [Path(p).expanduser() for p in os.environ.get("SCANDECK_CATALOGS", "").split(os.pathsep) if p]
    dirs.append(data_dir() / "catalogs")
    dirs.append(_PACKAGED if _PACKAGED.is_dir() else _REPOSITORY)
    return dirs
