"""The jupyter_server extension ``scandeck.server``: the API of the Scans panel.

Enabled on install (``jupyter-config/server-config/scandeck.json``); check with
``jupyter server extension list``. The endpoints, under ``{base_url}scandeck/api/``,
are specified in ``labextension/API.md``:

- ``catalogs``, ``runs``, ``runs/UID``, ``runs/UID/preview``: :mod:`.handlers_runs`
- ``provenance``, ``provenance/ID``, ``provenance/ID/open``: :mod:`.handlers_provenance`
- ``reruns``, ``reruns/JOB``: :mod:`.handlers_reruns` (jobs in :mod:`.jobs`)
- ``auto``, ``auto/ID/stop``: :mod:`.handlers_auto` (standing analyses in :mod:`.auto_services`)
- ``events`` (WebSocket): :mod:`.push` (watcher threads in :mod:`.watcher`)

Imported by jupyter_server only: ``%load_ext scandeck`` never imports it.
"""

from __future__ import annotations

from typing import Any

from .. import __version__

__all__ = ["ScandeckApp", "__version__", "_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """What jupyter_server loads for ``scandeck.server``."""
    from .app import ScandeckApp

    return [{"module": "scandeck.server", "app": ScandeckApp}]


def __getattr__(name: str) -> Any:
    if name == "ScandeckApp":
        from .app import ScandeckApp

        return ScandeckApp
    raise AttributeError(name)
