"""Derived runs: a table computed from other runs, stored as a run of its own.

:func:`derive` writes one run (start, one descriptor, one event page, stop)
whose start document names the runs it came from (``parent_uids``) and the
provenance record it belongs to (``provenance_record``), so derived data is
found with the usual queries::

    cat.search(f'parent_uids contains "{parent.uid}"')

The parents are noted in this process's provenance context as inputs, and the
new run is remembered as an output (:func:`written`) for the next record.

``scandeck.derive(...)`` calls :func:`derive` here.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, Run
from .exceptions import AmbiguousUID, RunNotFound
from .provenance.context import note
from .uris import redact

if TYPE_CHECKING:
    import pandas

#: Names the stream's table already uses (``Stream.to_pandas`` adds ``time``).
_RESERVED = ("time", "seq_num")

_written: list[dict[str, str]] = []
_written_lock = threading.Lock()


def written() -> list[dict[str, str]]:
    """Derived runs written by this process, oldest first: ``{"uid": ..., "catalog": ...}``.

    ``%provenance`` and ``scandeck run`` turn these into a record's ``outputs``.
    """
    with _written_lock:
        return [dict(w) for w in _written]


def note_written(uid: str, catalog: str) -> None:
    """Note run ``uid`` of ``catalog`` (its name) as written by this process (``to_run`` does)."""
    with _written_lock:
        _written.append({"uid": uid, "catalog": catalog})


def clear_written() -> None:
    """Forget the derived runs noted so far (when a record has taken them)."""
    with _written_lock:
        _written.clear()


def _parent(catalog: Catalog, parent: Run | str) -> tuple[str, int | None, str]:
    """``(uid, scan_id, catalog name)`` of one parent; a uid may be a unique prefix in ``catalog``."""
    if isinstance(parent, Run):
        return parent.uid, parent.scan_id, redact(parent.source.uri)  # no credentials in the record
    if not isinstance(parent, str) or not parent:
        raise TypeError(f"parents are Runs or uid strings, not {parent!r}")
    source = catalog.source
    try:
        summary = source.get(parent)
    except RunNotFound:
        matches = source.find_prefix(parent, limit=50)
        if len(matches) > 1:
            raise AmbiguousUID(parent, [m.uid for m in matches]) from None
        if not matches:
            return parent, None, ""  # a run of another catalog: taken as given
        summary = matches[0]
    return summary.uid, summary.scan_id, catalog.name


def _columns(data: Any) -> dict[str, list[Any]]:
    """Column name -> list of row values, from a DataFrame or a mapping of sequences."""
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # pandas.DataFrame, without importing it
        frame = data
        data = {name: frame[name].tolist() for name in frame.columns}
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a pandas.DataFrame or a dict of columns, not {type(data).__name__}")
    columns: dict[str, list[Any]] = {}
    for name, values in data.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"column names must be non-empty strings, not {name!r}")
        if name in _RESERVED:
            raise ValueError(f"a derived run cannot have a column named {name!r}; rename it")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"column {name!r} must be a sequence of values, not {type(values).__name__}")
        columns[name] = list(values.tolist() if hasattr(values, "tolist") else values)
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    if not columns:
        raise ValueError("data has no columns")
    return columns


def _plain(value: Any) -> Any:
    """Python scalars and nested lists (numpy values have ``tolist``)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value


def _data_key(name: str, values: list[Any], units: str | None) -> dict[str, Any]:
    import numpy as np

    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    sample = present[0] if present else (values[0] if values else 0.0)
    shape = list(np.shape(sample))
    key: dict[str, Any] = {"source": f"derived:{name}", "shape": shape}
    if shape:
        arr = np.asarray(sample)
        key["dtype"] = "array"
        key["dtype_numpy"] = arr.dtype.str
    else:
        kinds = {type(v) for v in present}
        if kinds and kinds <= {bool}:
            key["dtype"], key["dtype_numpy"] = "boolean", np.dtype(bool).str
        elif kinds and kinds <= {int}:
            key["dtype"], key["dtype_numpy"] = "integer", np.dtype(np.int64).str
        elif kinds <= {int, float, bool}:
            key["dtype"], key["dtype_numpy"] = "number", np.dtype(np.float64).str
        elif kinds <= {str}:
            key["dtype"] = "string"
        else:
            shown = ", ".join(sorted(t.__name__ for t in kinds))
            raise TypeError(f"column {name!r} mixes or holds values a run cannot store: {shown}")
    if units is not None:
        key["units"] = units
    return key


def derive(
    catalog: Catalog | str | Path,
    parents: Run | str | Iterable[Run | str],
    data: pandas.DataFrame | dict[str, list[Any]],
    *,
    stream: str = "primary",
    metadata: dict[str, Any] | None = None,
    record_id: str | None = None,
    units: dict[str, str] | None = None,
) -> Run:
    """Write ``data``, computed from ``parents``, as a new run in ``catalog``; return it.

    Parameters
    ----------
    catalog
        Where the derived run goes (a Catalog, or what ``scandeck.open_catalog`` takes).
    parents
        The runs the data came from: Runs, uids, or uid prefixes unique in ``catalog``.
    data
        A ``pandas.DataFrame`` (its index is dropped) or ``{column: values}``;
        one event per row, scalars or arrays per cell.
    stream
        Name of the stream holding the rows.
    metadata
        Extra start-document metadata (``plan_name`` defaults to ``"derived"``).
    record_id
        The provenance record this run belongs to (``provenance_record`` in its start);
        by default the id the process's next record will take.
    units
        ``{column: units}`` for the data keys.

    Examples
    --------
    >>> df = cat[-1].primary.to_pandas()                                   # doctest: +SKIP
    >>> norm = df.assign(det=df.det / df.det.max())[["motor", "det"]]       # doctest: +SKIP
    >>> run = scandeck.derive(cat, cat[-1], norm, units={"det": "a.u."})    # doctest: +SKIP
    >>> run.start["parent_uids"]                                          # doctest: +SKIP
    """
    from event_model import compose_run

    if not isinstance(catalog, Catalog):
        from .opening import open_catalog

        catalog = open_catalog(catalog)
    if isinstance(parents, (Run, str)):
        parents = [parents]
    resolved = [_parent(catalog, p) for p in parents]
    parent_uids = list(dict.fromkeys(uid for uid, _, _ in resolved))
    columns = _columns(data)
    units = dict(units or {})
    unknown = sorted(set(units) - set(columns))
    if unknown:
        raise ValueError(f"units given for columns not in data: {', '.join(unknown)}")

    if record_id is None:
        from .provenance.context import pending_record_id

        record_id = pending_record_id()  # the id this kernel's next record will take
    md = {"plan_name": "derived", **(metadata or {})}
    for key, value in (("parent_uids", parent_uids), ("provenance_record", record_id)):
        if key in md and md[key] != value:
            raise ValueError(
                f"metadata[{key!r}] is set by derive(); pass "
                f"{'parents' if key == 'parent_uids' else 'record_id'} instead"
            )
        md[key] = value

    # Compose every document first: a bad value fails here, before anything is stored.
    now = time.time()
    bundle = compose_run(metadata=md, time=now)
    data_keys = {name: _data_key(name, values, units.get(name)) for name, values in columns.items()}
    desc = bundle.compose_descriptor(
        name=stream, data_keys=data_keys, hints={"derived": {"fields": list(columns)}}, time=now
    )
    n = len(next(iter(columns.values())))
    docs: list[tuple[str, Any]] = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    if n:
        page = desc.compose_event_page(
            data={name: [_plain(v) for v in values] for name, values in columns.items()},
            timestamps={name: [now] * n for name in columns},
            seq_num=list(range(1, n + 1)),
            time=[now] * n,
        )
        docs.append(("event_page", page))
    docs.append(("stop", bundle.compose_stop(time=time.time())))

    writer = catalog.writer()
    try:
        for name, doc in docs:
            writer(name, doc)
    finally:
        close = getattr(writer, "close", None)
        if close is not None:
            close()

    for uid, scan_id, cat_name in resolved:
        note(uid, scan_id=scan_id, catalog=cat_name)
    uid = bundle.start_doc["uid"]
    note_written(uid, catalog.name)
    # Not catalog[uid]: that would note the new run as read.
    return Run(catalog.source, catalog.source.get(uid))


__all__ = ["derive", "written", "clear_written", "note_written"]
