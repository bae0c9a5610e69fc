"""Catalog, Run and Stream: the user-facing read API over any source.

Lookups follow databroker's conventions: ``cat[-1]`` is the newest run,
``cat[-3:]`` the three newest, ``cat[42]`` the newest run with scan_id 42,
``cat["a3f9c2"]`` the run whose uid starts with that. Iteration, slices and
searches give runs newest first (by start time).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from .databroker_habits import CATALOG_HABITS, RUN_HABITS, habit_hint, stream_metadata
from .exceptions import InvalidQuery, RunNotFound, ScandeckError, StreamNotFound
from .follow import follow_run, follow_runs
from .provenance.context import note
from .query import Key, Query, ScanID
from .query.foreign import as_query
from .safe_text import printable
from .sources.fields import empty_search_hint
from .sources.matching import keep_matching
from .sources.protocol import EventColumns, RunSummary, Source, StreamTables, Writer
from .uris import redact

if TYPE_CHECKING:
    from pathlib import Path

    import pandas
    import xarray

    from .runtable.model import Annotation, Cell

_PAGE = 500


class Catalog:
    """A searchable, live collection of runs in one source.

    Parameters
    ----------
    source
        Any :class:`~scandeck.sources.protocol.Source`; started here.
    query
        Restricts the catalog (what :meth:`search` builds on).

    Attributes
    ----------
    name
        The store's address (``source.uri``, without credentials), however the
        catalog was opened (the default store, a catalog-file name, a path, a URI):
        one store has one name in reprs, listings and provenance records.
    columns_file
        The columns file its catalog entry names (``columns:`` in the entry's metadata),
        else None (see :func:`scandeck.runtable.columns.columns_file`).

    Examples
    --------
    >>> cat = scandeck.open_catalog()                       # doctest: +SKIP
    >>> RE.subscribe(cat.writer())                           # doctest: +SKIP
    >>> cat.search('plan_name == "scan" and sample == "Ni"')[-1].primary.read()  # doctest: +SKIP
    """

    def __init__(self, source: Source, query: Query | None = None) -> None:
        source.start()
        self.source = source
        self.query = query if query is not None else Query.all()
        self.name = redact(source.uri)
        #: The columns file a catalog entry names (``columns:``); None: ``columns.py`` beside an
        #: embedded store, if there is one (:func:`scandeck.runtable.columns.columns_file`).
        self.columns_file: Path | None = None

    def __repr__(self) -> str:
        where = "" if self.query == Query.all() else f" where {self.query}"
        n = len(self)
        # Asked here directly: empty_hint would count the runs again, and is None for known fields.
        found = empty_search_hint(self.source, self.query) if n == 0 and where else None
        hint = f"; {found}" if found else ""
        return f"<Catalog {redact(self.name)!r}{where}: {n} runs{hint}>"

    @property
    def empty_hint(self) -> str | None:
        """Why this catalog holds no runs, when its query names a field that no stored run has.

        A search for a misspelt field is legal and matches nothing; this says so
        (``"no run has the field smaple (did you mean sample?)"``). ``None`` when the
        catalog has runs, its query names only known fields, or its source keeps no
        field index. The names in it are escaped (run-carried text).

        Examples
        --------
        >>> cat.search('smaple == "Cu"').empty_hint  # doctest: +SKIP
        'no run has the field smaple (did you mean sample?)'
        """
        if self.query == Query.all() or len(self):
            return None
        from .runtable.columns import columns_for

        try:
            declared = [f"columns.{name}" for name in columns_for(self)]
        except ScandeckError:
            declared = []  # a broken columns file: the hint names what runs have
        return empty_search_hint(self.source, self.query, declared)

    # -- writing ---------------------------------------------------------------------------

    def writer(self) -> Writer:
        """A ``(name, doc)`` callable storing documents: ``RE.subscribe(cat.writer())``."""
        return self.source.writer()

    # -- searching -------------------------------------------------------------------------

    def search(self, query: Query | str | dict[str, Any] | Any) -> Catalog:
        """The runs of this catalog that also match ``query``.

        ``query`` is a scandeck query object, a text, a MongoDB-style dict as
        databroker users write (``{"num_points": {"$gt": 5}}``,
        :mod:`scandeck.query.mongo`), or a Tiled query object
        (``tiled.queries.Key("sample") == "Ni"``, :mod:`scandeck.query.foreign`).

        Raises
        ------
        InvalidQuery
            (also ``scandeck.QueryError``) for anything else, or an unknown
            operator, naming what is wrong and the accepted forms.

        Examples
        --------
        >>> cat.search(Key("sample") == "Ni").search('num_points > 10')  # doctest: +SKIP
        >>> cat.search({"plan_name": {"$in": ["scan", "count"]}})         # doctest: +SKIP
        """
        query = as_query(query)
        combined = query if self.query == Query.all() else self.query & query
        found = Catalog(self.source, combined)
        found.columns_file = self.columns_file
        return found

    def __len__(self) -> int:
        return self.source.count(self.query)

    def __bool__(self) -> bool:
        return True

    def summaries(self, limit: int | None = None, offset: int = 0) -> list[RunSummary]:
        """Index rows of the newest matching runs, without reading documents."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and not (isinstance(value, int) and 0 <= value < 2**63):
                raise InvalidQuery(f"{name} must be a whole number from 0 to 2**63 - 1, not {value!r}")
        return self.source.search(self.query, limit=limit, offset=offset)

    def __iter__(self) -> Iterator[Run]:
        """Runs newest first; runs arriving meanwhile are not repeated."""
        before = None
        while True:
            page = self.source.search(self.query, limit=_PAGE, before=before)
            for summary in page:
                yield Run(self.source, summary)
            if len(page) < _PAGE:
                return
            before = (page[-1].time, page[-1].seq)

    def run_of(self, summary: RunSummary) -> Run:
        """The :class:`Run` of an index row this catalog's source gave (a search result), not read again."""
        return Run(self.source, summary)

    def keys(self) -> Iterator[str]:
        """The uids of the matching runs, newest first, read page by page (databroker's ``keys()``)."""
        return (run.uid for run in self)

    def values(self) -> Iterator[Run]:
        """The matching runs, newest first, read page by page (the same as iterating)."""
        return iter(self)

    def items(self) -> Iterator[tuple[str, Run]]:
        """``(uid, run)`` pairs, newest first, read page by page."""
        return ((run.uid, run) for run in self)

    def __call__(self, *args: object, **kwargs: object) -> Catalog:
        # databroker v1's db(sample="Ni"): say which call replaces it rather than "not callable"
        raise TypeError(
            "a scandeck Catalog is not called to search (databroker v1's db(sample='Ni')): "
            "use cat.search({'sample': 'Ni'}) or cat.search(Key('sample') == 'Ni')"
        )

    def __getattr__(self, name: str) -> Any:
        hint = None if name.startswith("_") else habit_hint("a scandeck Catalog", name, CATALOG_HABITS)
        raise AttributeError(hint or f"'Catalog' object has no attribute {name!r}")

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, str):
            return False
        try:
            summary = self.source.get(uid)
        except RunNotFound:
            return False
        return bool(self._keep([summary]))

    def _keep(self, summaries: list[RunSummary]) -> list[RunSummary]:
        """Those of ``summaries`` (from the source) this catalog's query matches, their facts
        read in one call when the store keeps facts (``tags contains "Ni"`` reads them)."""
        return keep_matching(self.source, self.query, summaries)

    @overload
    def __getitem__(self, key: int | str) -> Run: ...

    @overload
    def __getitem__(self, key: slice) -> list[Run]: ...

    def __getitem__(self, key: int | str | slice) -> Run | list[Run]:
        if isinstance(key, slice):
            return self._slice(key)
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise TypeError(f"look up runs by int, uid string or slice, not {type(key).__name__}")
        run = self._by_int(key) if isinstance(key, int) else self._by_uid(key)
        note(run.uid, scan_id=run.scan_id, catalog=self.name)
        return run

    def _by_int(self, key: int) -> Run:
        if key < 0:
            # (an offset past SQLite's 64 bits is past the end too, not an OverflowError)
            found = self.source.search(self.query, limit=1, offset=-key - 1) if key >= -(2**63) else []
            if not found:
                raise RunNotFound(f"cat[{key}]: {self.name} has only {len(self)} matching runs")
        else:
            found = self.source.search(self.query & ScanID(key), limit=1)
            if not found:
                raise RunNotFound(
                    f"no run with scan_id {key} in {self.name}; cat[-1] is the newest run, "
                    "and cat.search(...) finds runs by metadata"
                )
        return Run(self.source, found[0])

    def _by_uid(self, key: str) -> Run:
        from .exceptions import AmbiguousUID

        if not key:
            raise RunNotFound("an empty string is not a uid")
        try:
            summary = self.source.get(key)
            candidates = [summary]
        except RunNotFound:
            candidates = self.source.find_prefix(key, limit=50)
        candidates = self._keep(candidates)
        if not candidates:
            raise RunNotFound(f"no run with uid or uid prefix {key!r} in {self.name}")
        if len(candidates) > 1:
            raise AmbiguousUID(key, [s.uid for s in candidates])
        return Run(self.source, candidates[0])

    def _slice(self, key: slice) -> list[Run]:
        start, stop = key.start, key.stop
        ints = [v for v in (start, stop) if v is not None]
        if any(not isinstance(v, int) for v in ints):
            raise TypeError("slice runs with ints: cat[-5:] (newest five) or cat[10:20] (scan_ids)")
        if ints and all(v >= 0 for v in ints) and start is not None:
            query = Key("scan_id") >= start
            if stop is not None:
                query = query & (Key("scan_id") < stop)
            runs = list(self.search(query))
        elif all(v <= 0 for v in ints):
            first = 0 if stop is None else -stop  # offsets from the newest, newest = 0
            last = None if start is None else -start
            limit = None if last is None else max(last - first, 0)
            runs = [Run(self.source, s) for s in self.source.search(self.query, limit=limit, offset=first)]
        else:
            raise TypeError(
                f"cat[{'' if start is None else start}:{'' if stop is None else stop}] is ambiguous: "
                "negative bounds count back from the newest run (cat[-5:] is the newest five), "
                "a non-negative start gives scan_ids (cat[10:20] is scan_ids 10 to 19)"
            )
        runs = runs[:: key.step] if key.step else runs
        for run in runs:
            note(run.uid, scan_id=run.scan_id, catalog=self.name)
        return runs

    # -- live ------------------------------------------------------------------------------

    def follow(self, *, timeout: float | None = None, after: int | None = None) -> Iterator[Run]:
        """Runs matching this catalog as they start (blocking).

        Ends when no new run started for ``timeout`` seconds; ``None`` follows
        for ever. ``after`` is a source ``seq`` to resume from.
        """

        def keep(summary: RunSummary) -> bool:
            return bool(self._keep([summary]))

        for summary in follow_runs(self.source, after=after, timeout=timeout, keep=keep):
            yield Run(self.source, summary)

    def table(
        self, columns: Sequence[str] | str | None = None, *, limit: int | None = None, compute: bool = True
    ) -> pandas.DataFrame:
        """The runs as a table: one row per run (newest first), indexed by uid.

        ``columns`` are names as ``scandeck ls --columns`` takes them (see
        :mod:`scandeck.runtable.rows`): computed columns (``peak_cen``), ``tags``,
        ``comments``, start fields (``plan_name``, ``md.sample``), ``stop.<field>``,
        ``data.<key>.min|max``, ``uid``, ``scan_id``, ``time``, ``status``. By default:
        scan_id, time (local dates), plan_name, status, the computed columns, tags.
        ``compute``: cells missing for ended runs, or computed while they ran (no
        ``scandeck columns serve`` or Jupyter server computed them since), are computed
        on this first read, in worker processes, and stored; ``compute=False`` shows
        them as ``pending`` or ``running``.

        A stale cell (its column's code changed) keeps its value, a failed one is
        None: ``df.attrs["states"]`` is a DataFrame of the same shape holding each
        cell's state (``ok``, ``stale``, ``failed``, ``running``, ``pending``,
        ``missing``), ``df.attrs["errors"]`` the failed cells' messages, and
        ``df.attrs["units"]`` the computed columns' units.

        Raises
        ------
        InvalidQuery
            An unknown column, with the closest known name.
        FactsNotSupported
            Tags, comments or stored columns asked of a store that keeps none.

        Examples
        --------
        >>> df = cat.search('plan_name == "scan"').table(["peak_cen", "tags"])   # doctest: +SKIP
        >>> df[df.attrs["states"]["peak_cen"] == "stale"]                         # doctest: +SKIP
        """
        from .runtable.frame import catalog_table

        return catalog_table(self, columns, limit=limit, compute=compute)

    def close(self) -> None:
        """Release the source's connections."""
        self.source.close()


class Run:
    """One run: its metadata, its streams, its documents, live or finished.

    Examples
    --------
    >>> run = cat[-1]                                   # doctest: +SKIP
    >>> run.metadata["start"]["plan_name"], run.status  # doctest: +SKIP
    ('scan', 'success')
    >>> run.primary.read()                              # doctest: +SKIP
    """

    def __init__(self, source: Source, summary: RunSummary) -> None:
        self.source = source
        self._summary = summary
        self._start: dict[str, Any] | None = None

    @property
    def uid(self) -> str:
        return self._summary.uid

    @property
    def scan_id(self) -> int | None:
        return self._summary.scan_id

    def refresh(self) -> RunSummary:
        """Re-read the run's index row (status, stop, counts) from the source."""
        self._summary = self.source.get(self.uid)
        return self._summary

    @property
    def summary(self) -> RunSummary:
        """The index row as last read; :meth:`refresh` for the current one."""
        return self._summary

    @property
    def start(self) -> dict[str, Any]:
        """The start document, exactly as stored."""
        if self._start is None:
            self._start = next(iter(self.source.documents(self.uid, names=["start"]))).doc
        return self._start

    @property
    def stop(self) -> dict[str, Any] | None:
        """The stop document, or None while the run has none."""
        if self._summary.stop is None:
            self.refresh()
        if self._summary.stop is None:
            return None
        return next(iter(self.source.documents(self.uid, names=["stop"]))).doc

    @property
    def metadata(self) -> dict[str, Any]:
        """``{"start": ..., "stop": ...}`` (stop is None while the run goes on)."""
        return {"start": self.start, "stop": self.stop}

    @property
    def status(self) -> str:
        """``running``, ``success``, ``abort``, ``fail`` or ``incomplete`` (writer died)."""
        return self.refresh().status

    @property
    def num_events(self) -> int:
        """Events stored so far in all streams."""
        return self.refresh().num_events

    def __repr__(self) -> str:
        s = self._summary
        plan = s.start.get("plan_name", "?")
        return printable(f"<Run scan_id={s.scan_id} uid={s.uid[:8]} plan={plan} status={s.status}>")

    # -- comments, tags, computed columns (scandeck.runtable) -------------------------------

    def annotate(self, comment: str | None = None, tags: Iterable[str] = ()) -> None:
        """Add a comment, tags, or both; each recorded with author, host and time.

        The author is ``$SCANDECK_AUTHOR``, else the login name. Nothing is ever
        rewritten: :attr:`annotations` keeps the whole history.

        Raises
        ------
        InvalidAnnotation
            Nothing given, or an empty, too long (tags 100, comments 10,000
            characters) or NUL-holding text; nothing was stored.
        FactsNotSupported
            The store keeps no annotations (it says which stores do).

        Examples
        --------
        >>> run.annotate(comment="bad beam after 12:40", tags=["Ni", "redo"])  # doctest: +SKIP
        >>> run.tags                                                           # doctest: +SKIP
        ['Ni', 'redo']
        """
        from .runtable.annotate import annotate

        annotate(self.source, self.uid, comment, tags)

    def untag(self, *tags: str) -> None:
        """Remove tags; a tag the run does not have is an error listing its tags."""
        from .runtable.annotate import untag

        untag(self.source, self.uid, tags)

    @property
    def annotations(self) -> list[Annotation]:
        """The run's whole annotation history (comments, tags added and removed), oldest first."""
        from .runtable.annotate import facts_of

        return facts_of(self.source).annotations(self.uid)

    @property
    def tags(self) -> list[str]:
        """The run's current tags, in the order they were (last) added."""
        from .runtable.model import current_tags

        return current_tags(self.annotations)

    @property
    def comments(self) -> list[Annotation]:
        """The run's comments (with ``text``, ``author``, ``host``, ``time``), oldest first."""
        return [n for n in self.annotations if n.kind == "comment"]

    @property
    def cells(self) -> dict[str, Cell]:
        """The run's stored computed cells by column name (value, code hash, status, error)."""
        from .runtable.annotate import facts_of

        return facts_of(self.source).cells([self.uid]).get(self.uid, {})

    # -- streams ---------------------------------------------------------------------------

    def _stream_descriptors(self) -> dict[str, list[dict[str, Any]]]:
        streams: dict[str, list[dict[str, Any]]] = {}
        for desc in self.source.descriptors(self.uid):
            streams.setdefault(desc.get("name", "primary"), []).append(desc)
        return streams

    def __iter__(self) -> Iterator[str]:
        """Stream names, in the order their first descriptors arrived."""
        return iter(list(self._stream_descriptors()))

    def __len__(self) -> int:
        return len(self._stream_descriptors())

    def __contains__(self, name: object) -> bool:
        return name in self._stream_descriptors()

    def __getitem__(self, name: str) -> Stream:
        streams = self._stream_descriptors()
        if name not in streams:
            raise StreamNotFound(
                printable(
                    f"run {self.uid[:8]} has no stream {name!r}; its streams: {', '.join(streams) or 'none yet'}"
                )
            )
        return Stream(self, name, streams[name])

    @property
    def descriptors(self) -> list[dict[str, Any]]:
        """The descriptor documents of all the run's streams, in the order stored."""
        return [d for descs in self._stream_descriptors().values() for d in descs]

    def __getattr__(self, name: str) -> Stream:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except StreamNotFound as err:
            hint = habit_hint("a scandeck Run", name, RUN_HABITS)
            if hint is None:
                raise AttributeError(str(err)) from None
            streams = ", ".join(self._stream_descriptors()) or "none yet"
            raise AttributeError(printable(f"{hint}; the run's streams: {streams}")) from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._stream_descriptors()))

    # -- documents -------------------------------------------------------------------------

    def documents(self, *, start: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
        """The run's stored documents in order, as ``(name, doc)`` pairs."""
        note(self.uid, scan_id=self.scan_id, catalog=self.source.uri)
        for entry in self.source.documents(self.uid, start=start):
            yield entry.name, entry.doc

    def follow(self, *, start: int = 0, timeout: float | None = None, positions: bool = False) -> Iterator[Any]:
        """Documents as they are stored, from position ``start`` (0 = start document).

        Blocks for new documents; ends after the stop document, when the writer
        died without one, or after ``timeout`` seconds without a new document.
        Yields ``(name, doc)``, or ``(pos, name, doc)`` with ``positions=True``
        (pass ``pos + 1`` as ``start`` to resume).
        """
        note(self.uid, scan_id=self.scan_id, catalog=self.source.uri)
        for entry in follow_run(self.source, self.uid, start=start, timeout=timeout):
            yield tuple(entry) if positions else (entry.name, entry.doc)


class Stream:
    """One event stream of a run (``primary``, ``baseline``, ...)."""

    def __init__(self, run: Run, name: str, descriptors: list[dict[str, Any]]) -> None:
        self.run = run
        self.name = name
        self.descriptors = descriptors

    def __repr__(self) -> str:
        return printable(f"<Stream {self.name!r} of run {self.run.uid[:8]}: {len(self)} events>")

    @property
    def data_keys(self) -> dict[str, dict[str, Any]]:
        """``{key: data_key}`` of the stream's descriptors (source, dtype, shape, units)."""
        keys: dict[str, dict[str, Any]] = {}
        for desc in self.descriptors:
            for key, info in desc["data_keys"].items():
                keys.setdefault(key, info)
        return keys

    def __len__(self) -> int:
        counts = self.run.source.stream_counts(self.run.uid)
        return sum(counts.get(d["uid"], 0) for d in self.descriptors)

    @property
    def metadata(self) -> dict[str, Any]:
        """``{"stream_name", "descriptors", "data_keys", "configuration", "hints", ...}``.

        The shape bluesky-tiled-plugins' streams give (databroker 2): the
        descriptor documents, and their data keys and configuration merged.
        """
        return stream_metadata(self.name, self.descriptors)

    def _refresh(self) -> set[str]:
        """The uids of the stream's descriptors, re-read: a live run may have added some since."""
        self.descriptors = self.run._stream_descriptors().get(self.name, self.descriptors)
        return {d["uid"] for d in self.descriptors}

    def _table(self, fill: bool | Collection[str], keys: Collection[str] | None = None) -> Any:
        return self._rows(fill, keys, None)[0]

    def _rows(self, fill: bool | Collection[str], keys: Collection[str] | None, rows: slice | None) -> Any:
        """``(table, sliced)``: the stream's rows, only ``rows`` of them when ``sliced``."""
        from .reading import STREAM_DOCUMENTS, collect

        uids = self._refresh()
        source = self.run.source
        if isinstance(source, StreamTables):  # columns in the store (Tiled): no documents
            return source.stream_table(self.run.uid, self.name, keys=keys, fill=fill), False
        if isinstance(source, EventColumns):  # columns beside the documents (the embedded store)
            table = source.event_table(self.run.uid, uids, keys=keys, fill=fill, rows=rows)
            if table is not None:
                return table, rows is not None
        entries = self.run.source.documents(self.run.uid, names=STREAM_DOCUMENTS, descriptors=uids)
        return collect(entries, uids, fill=fill, keys=keys), False

    def _known_keys(self, variables: str | Sequence[str] | None) -> list[str] | None:
        """``variables`` as a list of this stream's keys; an unknown one raises naming the keys."""
        if variables is None:
            return None
        wanted = [variables] if isinstance(variables, str) else list(variables)
        known = self.data_keys
        for key in wanted:
            if not isinstance(key, str) or key not in known:
                raise StreamNotFound(
                    printable(
                        f"stream {self.name!r} of run {self.run.uid[:8]} has no key {key!r}; "
                        f"its keys: {', '.join(known) or 'none yet'}"
                    )
                )
        return wanted

    def read(
        self, variables: str | Sequence[str] | None = None, *, fill: bool = True, rows: slice | None = None
    ) -> xarray.Dataset:
        """Events so far as an ``xarray.Dataset`` (time coordinate, N-D for images).

        ``variables`` (``read(["det"])``, databroker's ``read(variables=[...])``)
        picks keys: only those become variables, and only their external data is read.
        ``rows`` picks rows as ``read().isel(time=rows)`` would (``rows=slice(-100, None)``:
        the newest hundred); the embedded store reads only those rows' column blocks
        and external data.
        External data is read through the handler registry; ``fill=False`` keeps
        the references instead: datum ids, and ``"{stream_resource uid}/{index}"``
        for stream data. A stream without events (a fly scan's) is indexed by
        ``seq_num``: its rows have no time.

        Raises
        ------
        StreamNotFound
            (a ``KeyError``) for a key the stream does not have, naming its keys.
        """
        from .reading import to_xarray

        keys = self._known_keys(variables)
        if rows is not None and not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice, as in read(rows=slice(0, 100)), not {type(rows).__name__}")
        self._note()
        table, sliced = self._rows(fill, keys, rows)
        ds = to_xarray(table)
        return ds if rows is None or sliced else ds.isel({"time" if "time" in ds.dims else "seq_num": rows})

    def to_dask(self) -> xarray.Dataset:
        """Like :meth:`read`, with external arrays (images) as dask arrays read by chunk on ``compute()``.

        Scalars are read now; no external file is opened until a chunk is computed.

        Examples
        --------
        >>> ds = cat[-1].primary.to_dask()          # doctest: +SKIP
        >>> ds["img"][3].compute()                  # doctest: +SKIP
        """
        from .lazy import lazy_keys, to_dask
        from .reading import STREAM_DOCUMENTS, collect

        self._note()
        source = self.run.source
        uids = self._refresh()
        data_keys = self.data_keys
        columnar = isinstance(source, StreamTables)
        infos = {k: data_keys[k] for k in lazy_keys(data_keys, stored_as_arrays=columnar)}
        now = [k for k in data_keys if k not in infos]
        if isinstance(source, StreamTables):
            arrays = {k: source.stream_array(self.run.uid, self.name, k) for k in infos}
            return to_dask(source.stream_table(self.run.uid, self.name, keys=now), uids, infos, arrays=arrays)
        # One read of the documents: the rows now (the lazy keys unfilled: references, no file
        # is opened), and what a chunk fills its rows from.
        entries = list(source.documents(self.run.uid, names=STREAM_DOCUMENTS, descriptors=uids))
        return to_dask(collect(entries, uids, fill=now), uids, infos, entries=entries)

    def to_grid(self, fields: str | Sequence[str] | None = None, *, fill: bool = True) -> xarray.Dataset:
        """A grid scan's events on its grid: one dimension per scanned motor, NaN where unmeasured.

        For runs whose start document says ``hints.gridding == "rectilinear"``
        (bluesky's ``grid_scan``): coordinates are the setpoints from ``shape``
        and ``extents``, snaking is undone, and a running or interrupted scan
        gives a partial grid. ``fields`` picks data keys (all by default).

        Raises
        ------
        NotAGrid
            The run is not a rectilinear grid scan (a list or spiral scan, no
            hints); ``read()`` has its rows in the order measured.

        Examples
        --------
        >>> ds = cat[-1].primary.to_grid("det4")          # doctest: +SKIP
        >>> ds["det4"].dims                                # doctest: +SKIP
        ('motor1', 'motor2')
        """
        from .grid import grid_of, to_dataset

        spec = grid_of(self.run.start, self.name)
        wanted = [fields] if isinstance(fields, str) else None if fields is None else list(fields)
        self._note()
        return to_dataset(spec, self._table(wanted if fill and wanted is not None else fill), wanted)

    def _note(self) -> None:
        note(
            self.run.uid,
            scan_id=self.run.scan_id,
            catalog=self.run.source.uri,
            stream=self.name,
            fields=self.data_keys,
        )

    def to_pandas(self) -> pandas.DataFrame:
        """Scalar keys, external ones filled, as a ``pandas.DataFrame`` indexed by ``seq_num``.

        Array keys (images, spectra) are left out: ``read()`` has them.
        """
        from .documents import is_scalar
        from .reading import to_pandas

        self._note()
        scalars = [k for k, v in self.data_keys.items() if v.get("external") and is_scalar(v)]
        return to_pandas(self._table(fill=scalars))

    def documents(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The stream's descriptor and event documents, in order."""
        uids = {d["uid"] for d in self.descriptors}
        for entry in self.run.source.documents(
            self.run.uid, names=("descriptor", "event", "event_page"), descriptors=uids
        ):
            if entry.name != "descriptor" or entry.doc["uid"] in uids:
                yield entry.name, entry.doc


__all__ = ["Catalog", "Run", "Stream", "ScandeckError"]
