"""The Filler: reads the arrays a run's external-data documents point to.

It remembers a run's resource, datum(_page), stream_resource, stream_datum and
descriptor documents and reads through the handler classes of :mod:`.registry`.
Stream data is read as the reference readers (bluesky-tiled-plugins'
consolidators) read it: the descriptor's shape is one event's, indices count events.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from event_model import DocumentRouter, unpack_datum_page

from ..exceptions import (
    DatumIndexError,
    DatumNotFound,
    ExternalFileMissing,
    FillError,
    ResourceNotFound,
)
from ..safe_text import printable
from .paths import resource_path
from .registry import HandlerClass, get_handler, get_stream_handler

if TYPE_CHECKING:
    from event_model.documents import Datum, DatumPage, EventDescriptor, Resource, StreamDatum, StreamResource

__all__ = ["Filler"]


class Filler(DocumentRouter):
    """Remembers a run's external-data documents and reads the arrays they point to.

    Feed it documents as ``filler(name, doc)``: resource, datum, datum_page,
    stream_resource and stream_datum are kept, everything passes through. Handler
    instances are cached per resource; :meth:`close` (or ``with``) closes the
    files they hold open.

    Parameters
    ----------
    root_map
        ``{old_root: new_root}`` for files that moved since they were written.
    handlers, stream_handlers
        Handler classes by spec / mimetype that take precedence over the registries.

    Examples
    --------
    >>> with Filler() as filler:  # doctest: +SKIP
    ...     for name, doc in documents:
    ...         filler(name, doc)
    ...     image = filler.fill_datum(event["data"]["img"])
    """

    def __init__(
        self,
        *,
        root_map: Mapping[str, str] | None = None,
        handlers: Mapping[str, HandlerClass] | None = None,
        stream_handlers: Mapping[str, HandlerClass] | None = None,
    ) -> None:
        super().__init__()
        self.root_map = dict(root_map or {})
        self._overrides = {**(handlers or {})}, {**(stream_handlers or {})}
        self.resources: dict[str, Resource] = {}
        self.datums: dict[str, Datum] = {}
        self.stream_resources: dict[str, StreamResource] = {}
        self.stream_datums: dict[str, StreamDatum] = {}
        self.descriptors: dict[str, EventDescriptor] = {}
        self._instances: dict[str, Any] = {}  # (stream_)resource uid -> handler instance
        self._lock = threading.Lock()

    # DocumentRouter hooks: remember the document and pass it through unchanged.
    def descriptor(self, doc: EventDescriptor) -> EventDescriptor:
        self.descriptors[doc["uid"]] = doc
        return doc

    def resource(self, doc: Resource) -> Resource:
        self.resources[doc["uid"]] = doc
        return doc

    def datum(self, doc: Datum) -> Datum:
        self.datums[doc["datum_id"]] = doc
        return doc

    def datum_page(self, doc: DatumPage) -> DatumPage:
        for datum in unpack_datum_page(doc):
            self.datums[datum["datum_id"]] = datum
        return doc

    def stream_resource(self, doc: StreamResource) -> StreamResource:
        self.stream_resources[doc["uid"]] = doc
        return doc

    def stream_datum(self, doc: StreamDatum) -> StreamDatum:
        self.stream_datums[doc["uid"]] = doc
        return doc

    def fill_datum(self, datum_id: str) -> np.ndarray:
        """The array that a datum id stands for.

        Examples
        --------
        >>> filler.fill_datum(event["data"]["img"]).shape  # doctest: +SKIP
        (64, 64)
        """
        datum = self.datums.get(datum_id)
        if datum is None:
            raise DatumNotFound(
                f"datum {datum_id!r} was never declared to this Filler; feed it the run's "
                "'datum' / 'datum_page' documents (filler(name, doc)) before filling"
            )
        resource = self.resources.get(datum["resource"])
        if resource is None:
            raise ResourceNotFound(
                f"datum {datum_id!r} belongs to resource {datum['resource']!r}, which this "
                "Filler has not seen; feed it the run's 'resource' document first"
            )
        handler = self._handler(resource, stream=False)
        return self._call(handler, (), datum["datum_kwargs"], resource, f"datum {datum_id!r}")

    def fill_stream_datum(self, doc: StreamDatum) -> np.ndarray:
        """The data of a stream_datum's events: shape ``(n_events, *event_shape)``.

        As the reference readers (bluesky-tiled-plugins' consolidators) read it:
        the descriptor's ``shape`` is the shape of one event, ``indices`` count
        events, and one event spans as many rows of the dataset as that shape
        holds (``collections_per_event=2`` of 240x320 frames: two frames per
        event, shape ``[2, 240, 320]``). A declared shape ``[1]`` is one scalar
        per event. The document need not have been fed, but its stream_resource
        and descriptor must have been. Anything that does not add up (a file
        whose rows do not divide into the declared shape, too few rows, indices
        that count other events than seq_nums) raises :class:`FillError` naming
        the resource, the file and both shapes; partial data is never returned.

        Examples
        --------
        >>> filler.fill_stream_datum(stream_datum_doc).shape  # doctest: +SKIP
        (5, 2, 240, 320)
        """
        sres = self._stream_resource_of(doc)
        handler = self._handler(sres, stream=True)
        i0, i1 = int(doc["indices"]["start"]), int(doc["indices"]["stop"])
        s0, s1 = int(doc["seq_nums"]["start"]), int(doc["seq_nums"]["stop"])
        what = f"stream_datum {doc['uid']!r} of stream_resource {sres['uid']!r}"
        if i1 - i0 != s1 - s0 or i1 < i0:
            raise DatumIndexError(
                f"{what} maps indices {i0}:{i1} onto seq_nums {s0}:{s1}: the writer's indices "
                "and seq_nums must count the same events"
            )
        try:
            file_shape = getattr(handler, "shape", None)
            file_shape = None if file_shape is None else tuple(int(d) for d in file_shape)
        except FileNotFoundError as exc:
            raise self._missing(exc, sres["uri"], sres) from exc
        except (OSError, TypeError, ValueError) as exc:  # locked, truncated, or a handler's odd shape
            raise FillError(
                f"{what}: cannot tell the shape of the data in {printable(sres['uri'])} "
                f"({type(exc).__name__}: {printable(str(exc))})"
            ) from exc
        shape = self._event_shape(doc, sres)
        per_event = _rows_per_event(shape, file_shape, what, sres)
        rows = self._call(handler, (i0 * per_event, i1 * per_event), {}, sres, what)
        n = i1 - i0
        if rows.size != n * math.prod(shape):
            raise DatumIndexError(
                f"{what} in {printable(sres['uri'])} gave data of shape {rows.shape} for {n} events "
                f"of declared shape {list(shape)}; the file and the documents disagree"
            )
        return rows.reshape(n, *shape)

    def _event_shape(self, doc: StreamDatum, sres: StreamResource) -> tuple[int, ...]:
        """The declared shape of one event of the stream_resource's data key."""
        desc = self.descriptors.get(doc["descriptor"])
        if desc is None:
            raise ResourceNotFound(
                f"stream_datum {doc['uid']!r} belongs to descriptor {doc['descriptor']!r}, which "
                "this Filler has not seen; feed it the run's 'descriptor' document first"
            )
        key = sres["data_key"]
        info = desc["data_keys"].get(key)
        if info is None:
            raise FillError(
                f"stream_resource {sres['uid']!r} fills data key {key!r}, which descriptor "
                f"{desc['uid']!r} does not declare (its keys: {sorted(desc['data_keys'])})"
            )
        declared = info.get("shape") or []
        shape = tuple(d for d in declared if isinstance(d, int) and d >= 0)
        if len(shape) != len(declared):  # a None (variable) or negative dimension
            raise FillError(
                f"data key {key!r} declares shape {declared} (stream_resource {sres['uid']!r}); "
                "scandeck reads stream data of a fixed shape only"
            )
        multiplier = (sres.get("parameters") or {}).get("multiplier")
        if multiplier is not None and (type(multiplier) is not int or multiplier < 1):
            raise FillError(
                f"stream_resource {sres['uid']!r} has parameters multiplier={multiplier!r}; "
                "it must be a whole number of frames per event, 1 or more"
            )
        if multiplier and (not shape or shape[0] != multiplier):  # older ophyd-async
            shape = (int(multiplier), *(shape[1:] if shape[:1] == (1,) else shape))
        return () if shape == (1,) else shape

    def stream_data_key(self, doc: StreamDatum) -> str:
        """The data key a stream_datum fills: its stream_resource's ``data_key``."""
        return str(self._stream_resource_of(doc)["data_key"])

    def close(self) -> None:
        """Close the files that cached handlers hold open (those with ``close()``)."""
        with self._lock:
            handlers, self._instances = list(self._instances.values()), {}
        for handler in handlers:
            close = getattr(handler, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Filler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stream_resource_of(self, doc: StreamDatum) -> StreamResource:
        sres = self.stream_resources.get(doc["stream_resource"])
        if sres is None:
            raise ResourceNotFound(
                f"stream_datum {doc['uid']!r} belongs to stream_resource "
                f"{doc['stream_resource']!r}, which this Filler has not seen; feed it the "
                "run's 'stream_resource' document first"
            )
        return sres

    def _handler(self, res: Mapping[str, Any], *, stream: bool) -> Any:
        uid = res["uid"]
        with self._lock:  # one instance (and one open file) per resource, across threads
            handler = self._instances.get(uid)
            if handler is not None:
                return handler
            if stream:
                key, target, kwargs = res["mimetype"], res["uri"], res.get("parameters") or {}
                cls = self._overrides[1].get(key) or get_stream_handler(key, resource_uid=uid)
            else:
                key, kwargs = res["spec"], res.get("resource_kwargs") or {}
                target = resource_path(res, self.root_map)
                cls = self._overrides[0].get(key) or get_handler(key, resource_uid=uid)
            try:
                handler = cls(target, **kwargs)
            except FileNotFoundError as exc:
                raise self._missing(exc, target, res) from exc
            except TypeError as exc:
                name = getattr(cls, "__qualname__", repr(cls))
                raise FillError(
                    f"handler {name} for {key!r} cannot be built from resource {uid!r} "
                    f"with {dict(kwargs)!r} ({exc}); register a handler that matches it"
                ) from exc
            self._instances[uid] = handler
            return handler

    def _call(
        self, handler: Any, args: Iterable[Any], kwargs: Mapping[str, Any], res: Mapping[str, Any], what: str
    ) -> np.ndarray:
        try:
            return np.asarray(handler(*args, **kwargs))
        except FillError:
            raise
        except FileNotFoundError as exc:
            raise self._missing(exc, "?", res) from exc
        except IndexError as exc:
            raise DatumIndexError(
                f"{what} of resource {res['uid']!r} is out of range: {printable(str(exc))}. The file may be "
                "truncated or still being written; for a live run, try again later"
            ) from exc

    @staticmethod
    def _missing(exc: OSError, path: str, res: Mapping[str, Any]) -> ExternalFileMissing:
        path = str(exc.filename or path)
        hint = "copy the run's files along with its documents"
        if "root" in res:  # a resource, not a stream_resource: a moved root can be mapped
            hint += f", or if they moved pass Filler(root_map={{{res['root']!r}: NEW_ROOT}})"
        return ExternalFileMissing(
            f"external data file {printable(path)} of resource {res['uid']!r} does not exist; {hint}",
            path,
            str(res["uid"]),
        )


def _rows_per_event(shape: tuple[int, ...], file_shape: Any, what: str, sres: Mapping[str, Any]) -> int:
    """Rows of the dataset that one event of ``shape`` spans (1 when the handler has no ``shape``)."""
    if file_shape is None:
        return 1
    row = tuple(int(d) for d in file_shape)[1:]
    if len(row) > len(shape) or (row and shape[len(shape) - len(row) :] != row):
        raise FillError(
            f"{what}: the dataset in {printable(sres['uri'])} has shape {tuple(file_shape)}, whose rows "
            f"{row} cannot make events of the declared shape {list(shape)}"
        )
    return math.prod(shape[: len(shape) - len(row)])
