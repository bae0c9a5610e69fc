"""How a store that rebuilds documents gives them back, for tests that compare documents.

Tiled keeps a run's columns, not its documents (``sources/tiled/documents.py``):
event uids are synthetic, ``filled`` is dropped (nothing is filled in a store),
event pages come back as single events, and TiledWriter's normalizer adds
``dtype_numpy`` to data keys. All else, values, times and order included, is
equal, and :func:`as_stored` compares exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from event_model import unpack_event_page

from scandeck.documents import normalize

Docs = Iterable[tuple[str, dict[str, Any]]]


def rebuilds_documents(cat: Any) -> bool:
    """Whether ``cat``'s source rebuilds documents rather than storing them verbatim (Tiled)."""
    return str(cat.source.uri).startswith("tiled+")


def _strip(keys: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in dk.items() if f != "dtype_numpy"} for k, dk in keys.items()}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def equivalent(docs: Docs) -> list[tuple[str, dict[str, Any]]]:
    """``docs`` reduced to what a rebuilt copy keeps, keys sorted (a rebuilt dict has its own order)."""
    return [(name, _sorted(doc)) for name, doc in _reduced(docs)]


def _reduced(docs: Docs) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name, doc in docs:
        doc = normalize(doc)
        if name == "event_page":
            for event in unpack_event_page(doc):
                out.append(("event", {k: v for k, v in normalize(event).items() if k not in ("uid", "filled")}))
            continue
        if name == "event":
            doc = {k: v for k, v in doc.items() if k not in ("uid", "filled")}
        elif name == "descriptor":
            doc["data_keys"] = _strip(doc["data_keys"])
            doc["configuration"] = {
                obj: {**conf, "data_keys": _strip(conf.get("data_keys", {}))}
                for obj, conf in doc.get("configuration", {}).items()
            }
        out.append((name, doc))
    return out


def as_stored(cat: Any, docs: Docs) -> list[tuple[str, dict[str, Any]]]:
    """``docs`` as ``cat`` gives them back: themselves, or :func:`equivalent` for a rebuilding store."""
    return equivalent(docs) if rebuilds_documents(cat) else [(name, normalize(doc)) for name, doc in docs]
