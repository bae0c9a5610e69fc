"""A rerun's published values as columns of the run it was pointed at.

A notebook publishes named values with ``scandeck.glue(name, value)``; they are
in its record's ``values``. When a rerun record (``target_scan`` set) succeeded,
:func:`publish_values` writes them as cells of the target run in the catalog the
rerun read: column ``<record name>.<value name>`` (:func:`~scandeck.runtable.model.published_column`),
code hash ``glue:<record id>``, time the record's creation. So the run table shows
``peak-fit.cen`` beside the computed columns and ``columns.peak-fit.cen > 0.5``
searches it (:mod:`scandeck.runtable.model`). The column service never recomputes
nor deletes these cells: they have no code.

``scandeck rerun`` (:func:`scandeck.provenance.rerun.execute_plan`) and the standing
reruns of ``scandeck auto`` call it in the parent process after each rerun.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..runtable.annotate import facts_of
from ..runtable.model import PUBLISHED_MARK, Cell, published_column

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .record import ProvenanceRecord

__all__ = ["publish_values", "published_key"]


def publish_values(catalog: Catalog, record: ProvenanceRecord) -> list[str]:
    """Write a rerun record's published values as cells of its target run in ``catalog``.

    Only a successful record with a ``target_scan`` publishes (a failed rerun leaves
    the values of the last good one). Column ``<record name>.<value name>``; the
    newest record of that name for that run wins: the values of an older record
    (``created`` earlier) do not replace a newer one's, and a name the newer record
    no longer publishes is set to None (no value). Safe to call again for the same
    record (it writes the same cells).

    Parameters
    ----------
    catalog
        The catalog the rerun read its target from (where the run table reads the run).
    record
        The stored rerun record (``values``, ``name``, ``id``, ``created``, ``target_scan``).

    Returns
    -------
    list of str
        The column names written, in the order the values were glued; empty when
        nothing was published (no target, failed, no values, an older record).

    Raises
    ------
    FactsNotSupported
        The catalog's store keeps no facts (cells).
    RunNotFound
        The target run is not in the catalog.

    Examples
    --------
    >>> publish_values(cat, store.get(result.record_id))   # doctest: +SKIP
    ['peak-fit.cen', 'peak-fit.fwhm']
    """
    uid = record.target_scan
    if not uid or record.status != "ok":
        return []
    facts = facts_of(catalog.source)
    prefix = published_column(record.name, "")
    held = {
        name: cell
        for name, cell in facts.cells([uid]).get(uid, {}).items()
        if name.startswith(prefix) and "." not in name[len(prefix) :] and cell.code_hash.startswith(PUBLISHED_MARK)
    }
    if any(cell.time > record.created for cell in held.values()):
        return []  # a newer rerun of this record name already published for this run
    if not record.values and not held:
        return []
    mark = f"{PUBLISHED_MARK}{record.id}"
    cells = {
        published_column(record.name, name): Cell(value, mark, time=record.created)
        for name, value in record.values.items()
    }
    for name in sorted(held.keys() - cells.keys()):
        cells[name] = Cell(None, mark, time=record.created)  # withdrawn by the newer record
    facts.put_cells(uid, cells)
    return list(cells)


def published_key(column: str) -> str:
    """How a search names a published column: ``columns.<record name>.<value name>``, quoted as needed.

    Examples
    --------
    >>> published_key("peak-fit.cen"), published_key("peak fit v1.2.cen")
    ('columns.peak-fit.cen', 'columns.`peak fit v1.2`.cen')
    """
    from ..query.values import text_key

    record, _, value = column.rpartition(".")
    return text_key("facts", ("columns", record, value))
