"""The code cells the panel inserts into a notebook for a run.

``load`` opens the catalog by the name the panel uses and reads the run; ``bind``
is a ``%%bind`` cell that re-runs as the run's events arrive; ``setup`` is what a
kernel needs before ``bind`` works (the extension loaded, the session's catalog
chosen when it is not the default one).

Every value is quoted for where it goes: ``repr`` in Python,
:func:`~scandeck.notebook.magic_args.quote_arg` on a magic line (scandeck's magics
never expand ``{...}`` or ``$name``). A run whose uid is not of event-model's form
(:data:`CODE_UID`) gets no code at all, and no value with a line break or another
control character goes on a magic line: :class:`UnsafeValue`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

from ..exceptions import UnsafeValue
from ..notebook.magic_args import quote_arg

__all__ = ["CODE_UID", "check_code_uid", "code_for"]

#: The uids code is written for: ASCII letters, digits, '-', '_', '.' and ':', starting
#: with a letter or digit, at most 200 characters (event-model's uuid4 strings and the
#: like). Other text a RunEngine was given can be browsed but never goes into a cell.
CODE_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}", re.ASCII)


def check_code_uid(uid: str) -> str:
    """``uid`` if code may name it (:data:`CODE_UID`); else :class:`UnsafeValue`."""
    if not isinstance(uid, str) or not CODE_UID.fullmatch(uid):
        raise UnsafeValue(
            "uid",
            str(uid),
            "code is only written for uids of letters, digits, '-', '_', '.' and ':' "
            "(as event-model makes them); copy the run's scan_id or open it by hand, "
            "e.g. cat[-1]",
        )
    return uid


def _stream_access(name: str) -> str:
    """``run.primary`` when the stream name is a plain attribute of a Run, else ``run["name"]``."""
    from ..catalog import Run

    # ASCII only: Python NFKC-normalises identifiers, so run.ｄｏｃｕｍｅｎｔｓ is run.documents.
    if (
        name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and not hasattr(Run, name)
    ):
        return f"run.{name}"
    return f"run[{name!r}]"


def code_for(uid: str, catalog: str | None, streams: Sequence[str]) -> dict[str, str]:
    """``{"load", "bind", "setup"}`` cells for run ``uid`` of the catalog ``open_catalog(catalog)`` opens.

    Raises
    ------
    UnsafeValue
        For a uid outside :data:`CODE_UID`, or a stream or catalog name that cannot go
        on a magic line.

    Examples
    --------
    >>> print(code_for("3f2a9c1e-77", "local", ["primary"])["load"])
    import scandeck
    <BLANKLINE>
    cat = scandeck.open_catalog('local')
    run = cat['3f2a9c1e-77']
    ds = run.primary.read()  # xarray.Dataset; run.primary.to_pandas() for a DataFrame
    >>> print(code_for("3f2a9c1e-77", None, ["dark frames"])["bind"].splitlines()[0])
    %%bind --uid 3f2a9c1e-77 --stream "dark frames"
    """
    check_code_uid(uid)
    opener = "scandeck.open_catalog()" if catalog is None else f"scandeck.open_catalog({catalog!r})"
    load = ["import scandeck", "", f"cat = {opener}", f"run = cat[{uid!r}]"]
    stream = "primary" if "primary" in streams else (streams[0] if streams else None)
    if stream is not None:
        access = _stream_access(stream)
        load.append(f"ds = {access}.read()  # xarray.Dataset; {access}.to_pandas() for a DataFrame")
    bind_line = f"%%bind --uid {quote_arg(uid, 'uid')}"
    if stream is not None and stream != "primary":
        bind_line += f" --stream {quote_arg(stream, 'stream name')}"
    bind = [
        bind_line,
        "# re-runs as events arrive: run, df (rows so far), new (rows since the last run), event (newest row)",
        "df.tail()",
    ]
    setup = ["%load_ext scandeck"]
    if catalog is not None:
        setup.append(f"%catalog {quote_arg(catalog, 'catalog name')}")
    return {"load": "\n".join(load), "bind": "\n".join(bind), "setup": "\n".join(setup)}
