"""The code cells the panel inserts into a notebook for a run.

``load`` opens the catalog by the name the panel uses and reads the run; ``bind``
is a ``%%bind`` cell that re-runs as the run's events arrive; ``setup`` is what a
kernel needs before ``bind`` works (the extension loaded, the session's catalog
chosen when it is not the default one).
"""

from __future__ import annotations

import keyword
import shlex
from collections.abc import Sequence

__all__ = ["code_for"]


def _stream_access(name: str) -> str:
    """``run.primary`` when the stream name is a plain attribute of a Run, else ``run["name"]``."""
    from ..catalog import Run

    if name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_") and not hasattr(Run, name):
        return f"run.{name}"
    return f"run[{name!r}]"


def code_for(uid: str, catalog: str | None, streams: Sequence[str]) -> dict[str, str]:
    """``{"load", "bind", "setup"}`` cells for run ``uid`` of the catalog ``open_catalog(catalog)`` opens.

    Examples
    --------
    >>> print(code_for("3f2a9c1e-77", "local", ["primary"])["load"])
    import scandeck
    <BLANKLINE>
    cat = scandeck.open_catalog('local')
    run = cat['3f2a9c1e-77']
    ds = run.primary.read()  # xarray.Dataset; run.primary.to_pandas() for a DataFrame
    """
    opener = "scandeck.open_catalog()" if catalog is None else f"scandeck.open_catalog({catalog!r})"
    load = ["import scandeck", "", f"cat = {opener}", f"run = cat[{uid!r}]"]
    stream = "primary" if "primary" in streams else (streams[0] if streams else None)
    if stream is not None:
        access = _stream_access(stream)
        load.append(f"ds = {access}.read()  # xarray.Dataset; {access}.to_pandas() for a DataFrame")
    bind_line = f"%%bind --uid {uid}"
    if stream is not None and stream != "primary":
        bind_line += f" --stream {shlex.quote(stream)}"
    bind = [
        bind_line,
        "# re-runs as events arrive: run, df (rows so far), new (rows since the last run), event (newest row)",
        "df.tail()",
    ]
    setup = ["%load_ext scandeck"]
    if catalog is not None:
        setup.append(f"%catalog {catalog}")
    return {"load": "\n".join(load), "bind": "\n".join(bind), "setup": "\n".join(setup)}
