"""The run a batch notebook is about: one rule for every scandeck entry point.

Under papermill or nbclient (``scandeck run``, ``scandeck rerun``, ``papermill
--engine scandeck``) nobody watches the notebook, and its parameters name the
run it is about: ``scan_uid`` (or the parameter ``nb.metadata.scandeck.scan_parameter``
names, passed to the kernel as ``$SCANDECK_SCAN_PARAMETER``). ``%%bind``,
``scandeck.live()`` and ``scandeck.plot.*`` then read that run, once, instead of
the newest run and each new one, so the record's inputs are exactly the runs the
notebook read. :func:`batch_scan` says which run; it is the only place that decides.

Stdlib only: ``%load_ext scandeck`` imports it.

Examples
--------
>>> batch_scan(None) is None   # no IPython shell: nothing is batch
True
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..exceptions import ScandeckError

__all__ = [
    "DEFAULT_SCAN_PARAMETER",
    "SCAN_PARAMETER_ENV",
    "batch_scan",
    "current_shell",
    "in_batch",
    "live_front_end",
    "scan_parameter",
]

#: The parameter that names the run, unless the notebook names another.
DEFAULT_SCAN_PARAMETER = "scan_uid"
#: The environment variable through which the engine and reruns tell the kernel another name.
SCAN_PARAMETER_ENV = "SCANDECK_SCAN_PARAMETER"
#: ``$SCANDECK_BIND=live|once`` overrides what the front end says.
BIND_ENV = "SCANDECK_BIND"


def _forced() -> bool | None:
    forced = os.environ.get(BIND_ENV, "").strip().lower()
    return forced == "live" if forced in ("live", "once") else None


def live_front_end(shell: Any) -> bool:
    """True when a bound cell can update live: a kernel whose front end takes input.

    papermill and nbclient execute with ``allow_stdin=False``; JupyterLab and
    the classic notebook with True; a terminal IPython has no kernel (False).
    ``$SCANDECK_BIND=live|once`` overrides.
    """
    forced = _forced()
    if forced is not None:
        return forced
    kernel = getattr(shell, "kernel", None)
    return kernel is not None and bool(getattr(kernel, "_allow_stdin", False))


def in_batch(shell: Any) -> bool:
    """True under papermill or nbclient: a kernel whose front end takes no input.

    Unlike :func:`live_front_end`, a terminal IPython (no kernel) is not batch:
    someone watches it. ``$SCANDECK_BIND=once`` makes any shell batch, ``live`` none.
    """
    forced = _forced()
    if forced is not None:
        return not forced
    return getattr(shell, "kernel", None) is not None and not live_front_end(shell)


def scan_parameter() -> str:
    """The name of the parameter that names the run: ``$SCANDECK_SCAN_PARAMETER``, else ``scan_uid``."""
    name = os.environ.get(SCAN_PARAMETER_ENV, "").strip()
    return name if name.isidentifier() else DEFAULT_SCAN_PARAMETER


def batch_scan(shell: Any = "auto") -> str | int | None:
    """The run a batch execution is about, as a catalog key; None when someone watches.

    Parameters
    ----------
    shell
        The IPython shell (default: the running one, if any). Without a shell
        nothing is batch: a script follows runs as asked.

    Returns
    -------
    None when not :func:`in_batch` (JupyterLab, the classic notebook, a
    terminal, no shell); else the scan parameter's value (a uid, a uid prefix or a
    scan_id), or ``-1`` (the newest run) when the parameter is unset or None.

    Raises
    ------
    ScandeckError
        The parameter holds something that names no run (not a string or an int).

    Examples
    --------
    >>> cat[batch_scan()]                 # doctest: +SKIP
    """
    if shell == "auto":
        shell = current_shell()
    if shell is None or not in_batch(shell):
        return None
    name = scan_parameter()
    value = (getattr(shell, "user_ns", None) or {}).get(name)
    if value is None or value == "":
        return -1
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ScandeckError(
            f"the parameter {name} is a {type(value).__name__}; set it to a run's uid (or uid prefix) "
            f"or scan_id, e.g. -p {name} 3f2a9c"
        )
    return value


def current_shell() -> Any:
    """The running IPython shell, or None (IPython is not imported here: a plain process has none)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None
