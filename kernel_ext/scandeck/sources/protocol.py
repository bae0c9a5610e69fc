"""The one contract every run store ("source") implements.

A source stores documents and serves them back: it searches runs, reads a
run's documents from any position, and follows a live run (or the arrival of
new runs) from a given position without gaps or duplicates. The Catalog and
everything above it speak only this protocol; ``tests/test_source_conformance.py``
runs every registered source through the same cases.

Optional capabilities are small protocols of their own, checked with
``isinstance(source, Capability)`` by the code that can use them:
:class:`RawDocuments` (undecoded bulk reads), :class:`WaitRun` (block on one
run's documents), :class:`OpenRuns` (the runs without a stop document, from
an index), :class:`FieldIndex` (the fields runs have, to explain an empty
search), :class:`StreamTables` (streams stored as columns: reads without
documents) and :class:`EventColumns` (events kept as columns beside the
documents), :class:`RunFacts` (annotations, computed columns, data summaries).
A source without them works everywhere, only slower or with fewer hints.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ..query import Query

if TYPE_CHECKING:
    from ..reading import Table
    from ..runtable.model import Annotation, Cell

#: Status of a run: its stop document's exit_status, ``running`` while it is
#: written, or ``incomplete`` when its writer went away without a stop document.
STATUSES = ("running", "success", "abort", "fail", "incomplete")


class Entry(NamedTuple):
    """One stored document and its position (0 = the start document) in its run."""

    pos: int
    name: str
    doc: dict[str, Any]


@dataclass(frozen=True)
class RunSummary:
    """What a source knows of a run without reading its events.

    ``seq`` orders runs by arrival in the source (for following new runs);
    ``time`` is the start document's time (for newest-first listings).
    """

    uid: str
    seq: int
    scan_id: int | None
    time: float
    start: dict[str, Any]
    stop: dict[str, Any] | None
    num_events: int
    num_documents: int
    status: str


@runtime_checkable
class Writer(Protocol):
    """A ``(name, doc)`` callable for ``RE.subscribe``: validates, then stores."""

    def __call__(self, name: str, doc: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """Finish: runs left without a stop document become ``incomplete``."""


@runtime_checkable
class Source(Protocol):
    """A run store. Connect in :meth:`start`; :meth:`close` is idempotent."""

    uri: str

    def start(self) -> None:
        """Open connections and create what is missing; safe to call twice."""

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def writer(self) -> Writer:
        """A new writer; one process may hold several."""

    def count(self, query: Query) -> int:
        """Number of runs matching ``query``, without loading them."""

    def search(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunSummary]:
        """Matching runs, newest (by start time, then seq) first.

        ``before`` is a ``(time, seq)`` cursor: only runs strictly older are
        returned, which pages through a catalog that grows meanwhile.
        """

    def get(self, uid: str) -> RunSummary:
        """The run with this full uid; raise :class:`~scandeck.exceptions.RunNotFound`."""

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        """Runs whose uid starts with ``prefix`` (at most ``limit``)."""

    def documents(
        self,
        uid: str,
        *,
        start: int = 0,
        names: Iterable[str] | None = None,
        descriptors: Iterable[str] | None = None,
    ) -> Iterator[Entry]:
        """Stored documents of a run from position ``start``, in order.

        ``names`` keeps documents of those names; ``descriptors`` keeps, of the
        per-stream documents (event, event_page, stream_datum), those of these
        descriptors and passes every other document.
        """

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        """The run's descriptor documents so far, in order."""

    def stream_counts(self, uid: str) -> dict[str, int]:
        """Events stored so far per descriptor uid."""

    def latest_seq(self) -> int:
        """The ``seq`` of the newest run to arrive (0 when empty)."""

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        """Runs that arrived after ``seq``, in arrival order."""

    def change_token(self) -> object:
        """An opaque marker of the store's state, for :meth:`wait`."""

    def wait(self, token: object, timeout: float) -> bool:
        """Block until the store changed since ``token`` or ``timeout`` seconds pass.

        Take the token *before* reading, so no change between the read and the
        wait is missed. Returns False on timeout; spurious wake-ups are allowed.
        """


SourceFactory = Callable[[str], Source]


# -- optional capabilities ------------------------------------------------------------------------


@runtime_checkable
class RawDocuments(Protocol):
    """A source that hands out a run's documents undecoded, for bulk readers (SQLite, Redis)."""

    def raw_documents(
        self, uid: str, *, names: Iterable[str], descriptors: Iterable[str] | None = None
    ) -> list[tuple[str, bytes]]:
        """``(name, msgpack bytes)`` of the run's documents called ``names``, in order
        (of those per descriptor, only ``descriptors``' when given)."""


@runtime_checkable
class WaitRun(Protocol):
    """A source that can block on one run's documents (Redis): followers prefer it to ``wait``."""

    def wait_run(self, uid: str, start: int, timeout: float) -> bool:
        """Block until run ``uid`` has a document at position ``start`` or later; False on timeout."""


@runtime_checkable
class OpenRuns(Protocol):
    """A source that lists its runs without a stop document from an index (SQLite).

    A live view (the panel's running runs) asks this instead of searching every run.
    """

    def open_runs(self, query: Query, *, limit: int = 200) -> list[RunSummary]:
        """Matching runs without a stop document (running or incomplete), newest first."""


@runtime_checkable
class FieldIndex(Protocol):
    """A source that knows which start-document fields its runs have (SQLite keeps a table).

    An empty search asks it, to say "no run has the field smaple (did you mean sample?)"
    (:func:`scandeck.sources.fields.empty_search_hint`).
    """

    def fields(self) -> set[str]:
        """Dotted names of the start-document fields of every stored run
        (:func:`scandeck.query.hints.start_fields`), nested ones included."""


@runtime_checkable
class FactNames(Protocol):
    """A source that lists the computed columns and data keys its runs have facts for.

    An empty search asks it, to say "no run has the field columns.peak_cn (did you mean
    columns.peak_cen?)".
    """

    def fact_names(self) -> set[str]:
        """``columns.<name>`` of every stored cell and ``data.<key>.min``/``.max`` of every summary."""

    def cell_names(self) -> set[str]:
        """The column name of every stored cell (computed columns and published values), without
        ``columns.``: one distinct query, for the table's column picker."""


@runtime_checkable
class LazyArray(Protocol):
    """One key of a stream, read by slice (``dask.array.from_array`` takes it)."""

    shape: tuple[int, ...]
    dtype: Any
    ndim: int

    def __getitem__(self, index: Any) -> Any: ...


@runtime_checkable
class EventColumns(Protocol):
    """A source that keeps its events a second time as columns (the embedded store).

    :class:`~scandeck.catalog.Stream` asks it first; ``None`` (a run kept only as
    documents, a stream of several descriptors) means: gather the documents.
    """

    def event_table(
        self,
        uid: str,
        descriptors: Collection[str],
        *,
        keys: Collection[str] | None = None,
        fill: bool | Collection[str] = True,
        rows: slice | None = None,
    ) -> Table | None:
        """The rows of the stream made of ``descriptors``, as :func:`scandeck.reading.collect` gives them.

        ``rows``: only these rows (in ``seq_num`` order), read without the others.
        """


@runtime_checkable
class StreamTables(Protocol):
    """A source whose streams are stored as columns (Tiled): reads take what is asked, not documents.

    :class:`~scandeck.catalog.Stream` asks it instead of gathering the stream's
    documents, so ``read(["det"])`` downloads one column.
    """

    def stream_table(
        self,
        uid: str,
        stream: str,
        *,
        keys: Collection[str] | None = None,
        fill: bool | Collection[str] = True,
    ) -> Table:
        """The stream's rows so far: ``time``, ``seq_num`` and the ``keys`` asked for (all when None).

        ``fill`` as in :func:`scandeck.reading.collect`: external keys not filled hold references.
        """

    def stream_array(self, uid: str, stream: str, key: str) -> LazyArray:
        """One key's values (rows first), read from the store only by the slices asked for."""


@runtime_checkable
class RunFacts(Protocol):
    """A source that keeps a run's facts beside its documents: annotations, computed cells,
    data summaries (see :mod:`scandeck.runtable`). Documents are never rewritten.

    Writes are atomic per call and change :meth:`change_token`, so ``wait`` wakes on them;
    ``facts_since`` tells which runs' facts changed (the panel pushes them, the column
    service recomputes).
    """

    def add_annotations(self, uid: str, notes: Sequence[Annotation]) -> None:
        """Append ``notes`` (already checked) to the run's history; RunNotFound for an unknown uid."""

    def annotations(self, uid: str) -> list[Annotation]:
        """The run's annotation history, oldest first."""

    def put_cells(self, uid: str, cells: Mapping[str, Cell]) -> None:
        """Store these computed cells of the run, replacing any earlier cell of the same column."""

    def delete_cells(self, name: str) -> int:
        """Forget every run's cell of column ``name`` (a column removed from the file); the count."""

    def cells(self, uids: Collection[str], names: Collection[str] | None = None) -> dict[str, dict[str, Cell]]:
        """Stored cells per run uid (only ``names`` when given); runs without any are left out."""

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        """Per data key ``{"min", "max"}`` over the run's streams so far (numbers only)."""

    def facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The facts document of each run (:func:`scandeck.runtable.model.facts_document`)."""

    def needing(self, name: str, code_hash: str, *, limit: int = 100) -> list[str]:
        """Uids of ended runs whose cell of ``name`` is missing or was computed by other code
        (or while the run was running), newest first: what a column service computes next."""

    def facts_since(self, mark: int) -> tuple[int, list[str]]:
        """``(new_mark, uids)``: runs whose facts changed after ``mark`` (0: from the beginning)."""
