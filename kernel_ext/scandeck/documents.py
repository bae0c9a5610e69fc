"""Event-model documents: encoding, schema validation and the order rules of a run.

The schemas are event-model's own (``event_model.schemas``); nothing here copies
them. Validation runs them through ``fastjsonschema`` when it is installed (about
50x faster than ``jsonschema`` for an event) and confirms every rejection with
event-model's own ``schema_validators`` so that the verdict is always theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgpack

from .exceptions import InvalidDocument
from .storable import check_shapes, check_storable, declared_shapes

if TYPE_CHECKING:  # event_model (and numpy with it) loads on the first write
    from event_model.documents import (
        Datum,
        DatumPage,
        Event,
        EventDescriptor,
        EventPage,
        Resource,
        RunStart,
        RunStop,
        StreamDatum,
        StreamResource,
    )

#: Document names a store accepts, in the vocabulary of ``RE.subscribe`` callbacks.
DOCUMENT_NAMES: tuple[str, ...] = (
    "start",
    "descriptor",
    "event",
    "event_page",
    "resource",
    "datum",
    "datum_page",
    "stream_resource",
    "stream_datum",
    "stop",
)

#: The most events one stream_datum may cover: readers make a row (or a reference) per
#: event, so a range of 2**62 would hang them; no detector writes 2**31 frames at once.
MAX_STREAM_DATUM_EVENTS = 2**31


def is_scalar(data_key: Mapping[str, Any]) -> bool:
    """One value per event: shape ``[]`` (or ``[1]``, which the reference readers squeeze)."""
    return list(data_key.get("shape") or []) in ([], [1])


#: Documents that belong to one descriptor (and so to one stream).
PER_DESCRIPTOR = frozenset({"event", "event_page", "stream_datum"})


def _to_builtin(obj: Any) -> Any:
    """msgpack ``default`` hook: numpy scalars and arrays become Python values."""
    item = getattr(obj, "item", None)
    if getattr(obj, "ndim", None) == 0 and item is not None:
        return item()
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a document")


def pack(doc: Mapping[str, Any]) -> bytes:
    """Encode a document for storage (msgpack; numpy values become lists/scalars).

    Examples
    --------
    >>> unpack(pack({"uid": "a", "time": 1.5}))
    {'uid': 'a', 'time': 1.5}
    """
    return msgpack.packb(doc, default=_to_builtin, use_bin_type=True)


def unpack(data: bytes) -> dict[str, Any]:
    """Decode a document stored by :func:`pack`."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def normalize(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document as it reads back from any store: numpy values as builtins."""
    return unpack(pack(doc))


def normalize_value(value: Any) -> Any:
    """One value as it reads back from a stored document (numpy arrays as nested lists, ...)."""
    return msgpack.unpackb(
        msgpack.packb(value, default=_to_builtin, use_bin_type=True), raw=False, strict_map_key=False
    )


@functools.cache
def _fast_validator(name: str) -> Callable[[Any], Any] | None:
    # event_model (and numpy with it) loads on the first write, not when a catalog opens.
    from event_model import DocumentNames, schemas

    try:
        import fastjsonschema
    except ImportError:
        return None
    # use_default=False: validation must never add keys to the caller's document.
    return fastjsonschema.compile(schemas[DocumentNames[name]], use_default=False)


def validate_schema(name: str, doc: Any) -> None:
    """Raise :class:`InvalidDocument` unless ``doc`` matches event-model's schema for ``name``."""
    if name not in DOCUMENT_NAMES:
        raise InvalidDocument(
            name, doc, f"{name!r} is not a document name; expected one of {', '.join(DOCUMENT_NAMES)}"
        )
    if not isinstance(doc, Mapping):
        raise InvalidDocument(name, doc, f"a document must be a dict, not {type(doc).__name__}")
    fast = _fast_validator(name)
    if fast is not None:
        try:
            fast(doc)
            return
        except Exception:  # noqa: BLE001 - confirmed (or overruled) by event-model below
            pass
    import jsonschema
    from event_model import DocumentNames, schema_validators

    try:
        schema_validators[DocumentNames[name]].validate(doc)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the document"
        raise InvalidDocument(
            name, doc, f"does not match the event-model schema at {where}: {err.message}"
        ) from err
    except (RecursionError, TypeError, ValueError, OverflowError) as err:
        # Hostile input (deep nesting, unhashable keys) breaks the validator itself.
        raise InvalidDocument(
            name,
            doc,
            f"cannot be checked against the event-model schema ({type(err).__name__}: "
            f"{err}); check_storable() says which value is to blame",
        ) from err


@dataclass
class _RunState:
    uid: str
    descriptors: dict[str, str] = field(default_factory=dict)  # uid -> stream name
    data_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # descriptor uid -> keys
    shapes: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)  # ... -> declared
    resources: set[str] = field(default_factory=set)
    stream_resources: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Placed:
    """Where an accepted document goes: its run and, for per-stream documents, descriptor."""

    run_uid: str
    descriptor: str | None
    num_events: int


class RunOrder:
    """The order rules of runs, checked document by document.

    A writer keeps one of these: it knows which runs it started, their
    descriptors and resources, and rejects documents that refer to anything
    else, or that come after a run's stop document.

    Examples
    --------
    >>> from event_model import compose_run
    >>> order = RunOrder()
    >>> bundle = compose_run()
    >>> order.check("start", bundle.start_doc).run_uid == bundle.start_doc["uid"]
    True
    """

    def __init__(self) -> None:
        self._runs: dict[str, _RunState] = {}
        self._stopped: set[str] = set()
        self._descriptor_run: dict[str, str] = {}
        self._resource_run: dict[str, str] = {}
        self._stream_resource_run: dict[str, str] = {}
        # (run uid, stream name) -> [highest event seq_num, highest stream_datum seq_num]:
        # an event counts once, whether its data came in events, stream_datums or both,
        # and under however many descriptors (seq_num counts per stream, not per descriptor).
        self._seq_marks: dict[tuple[str, str], list[int]] = {}

    @property
    def open_runs(self) -> list[str]:
        """Uids of runs started and not yet stopped."""
        return list(self._runs)

    def open_runs_view(self) -> Iterable[str]:
        """A live view of the open runs' uids (for finalizers that must not hold ``self``)."""
        return self._runs.keys()

    def check(self, name: str, doc: Mapping[str, Any]) -> Placed:
        """Validate ``doc`` and return where it belongs; raise :class:`InvalidDocument`.

        Nothing is remembered for a rejected document, so the caller can go on.
        Every source calls this before it stores anything, so these checks are
        the same everywhere: the values (:func:`check_storable`, first, so that
        the schema validators only ever see JSON values), the schema, the order.
        """
        if name not in DOCUMENT_NAMES:
            validate_schema(name, doc)  # raises, saying which names there are
        flat = check_storable(name, doc)
        validate_schema(name, doc)
        try:
            if name == "event_page":
                return self._check_event_page(cast("EventPage", doc), flat)  # checked just above
            return getattr(self, f"_check_{name}")(doc)
        except InvalidDocument:
            raise
        except Exception as err:  # noqa: BLE001 - a document the checks above let through
            raise InvalidDocument(name, doc, f"cannot be placed in its run ({type(err).__name__}: {err})") from err

    def commit(self, name: str, doc: Mapping[str, Any], placed: Placed) -> None:
        """Remember an accepted document once it is stored."""
        if name == "start":
            self._runs[doc["uid"]] = _RunState(doc["uid"])
        elif name == "descriptor":
            run = self._runs[placed.run_uid]
            run.descriptors[doc["uid"]] = doc.get("name", "primary")
            run.data_keys[doc["uid"]] = doc["data_keys"]
            run.shapes[doc["uid"]] = declared_shapes(doc["data_keys"])
            self._descriptor_run[doc["uid"]] = placed.run_uid
        elif name == "resource":
            self._runs[placed.run_uid].resources.add(doc["uid"])
            self._resource_run[doc["uid"]] = placed.run_uid
        elif name == "stream_resource":
            self._runs[placed.run_uid].stream_resources.add(doc["uid"])
            self._stream_resource_run[doc["uid"]] = placed.run_uid
        elif name in ("event", "event_page", "stream_datum"):
            self._mark(name, doc)
        elif name == "stop":
            run = self._runs.pop(placed.run_uid)
            for stream in set(run.descriptors.values()):
                self._seq_marks.pop((run.uid, stream), None)
            self._stopped.add(run.uid)
            for table in (self._descriptor_run, self._resource_run, self._stream_resource_run):
                for key in [k for k, v in table.items() if v == run.uid]:
                    del table[key]

    def forget(self, run_uid: str) -> None:
        """Drop an open run (its writer is closing without a stop document)."""
        self._runs.pop(run_uid, None)

    # -- one rule set per document name (called once the document matches its schema) ----

    def _open_run(self, name: str, doc: Mapping[str, Any], run_uid: str | None) -> str:
        if run_uid is None:
            if len(self._runs) == 1:
                return next(iter(self._runs))
            raise InvalidDocument(
                name,
                doc,
                f"it names no run_start and this writer has {len(self._runs)} open runs, so its run is unknown",
            )
        if run_uid in self._stopped:
            raise InvalidDocument(name, doc, f"its run {run_uid!r} already has a stop document")
        if run_uid not in self._runs:
            raise InvalidDocument(
                name,
                doc,
                f"its run_start {run_uid!r} is not a run started through this writer; "
                "send the start document first",
            )
        return run_uid

    def _check_start(self, doc: RunStart) -> Placed:
        uid = doc["uid"]
        if uid in self._runs or uid in self._stopped:
            raise InvalidDocument("start", doc, "a run with this uid was already started")
        return Placed(uid, None, 0)

    def _check_descriptor(self, doc: EventDescriptor) -> Placed:
        run_uid = self._open_run("descriptor", doc, doc["run_start"])
        if doc["uid"] in self._descriptor_run:
            raise InvalidDocument("descriptor", doc, "a descriptor with this uid was already stored")
        return Placed(run_uid, doc["uid"], 0)

    def _descriptor_of(
        self, name: str, doc: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, tuple[Any, ...]]]:
        desc = doc["descriptor"]
        run_uid = self._descriptor_run.get(desc)
        if run_uid is None:
            rule = f"its descriptor {desc!r} is unknown; send the descriptor document first"
            raise InvalidDocument(name, doc, rule)
        run = self._runs[run_uid]
        return run_uid, run.data_keys[desc], run.shapes[desc]

    @staticmethod
    def _check_keys(name: str, doc: Mapping[str, Any], data_keys: Mapping[str, Any]) -> None:
        data = doc["data"]
        extra = data.keys() - data_keys.keys()
        if extra:
            rule = f"data keys {sorted(extra)} are not in its descriptor's data_keys"
            raise InvalidDocument(name, doc, rule)
        # Keys filled by stream_datum documents never appear in events.
        missing = [
            k
            for k, v in data_keys.items()
            if k not in data and not str(v.get("external", "")).startswith("STREAM:")
        ]
        if missing:
            raise InvalidDocument(name, doc, f"data keys {sorted(missing)} of its descriptor are missing")
        if doc["timestamps"].keys() != data.keys():
            raise InvalidDocument(name, doc, "its timestamps keys differ from its data keys")

    def _check_event(self, doc: Event) -> Placed:
        run_uid, data_keys, shapes = self._descriptor_of("event", doc)
        self._check_keys("event", doc, data_keys)
        check_shapes("event", doc, shapes)
        counted = doc["seq_num"] <= self._marks(doc["descriptor"])[1]
        return Placed(run_uid, doc["descriptor"], 0 if counted else 1)

    def _check_event_page(self, doc: EventPage, flat: frozenset[str] = frozenset()) -> Placed:
        run_uid, data_keys, shapes = self._descriptor_of("event_page", doc)
        self._check_keys("event_page", doc, data_keys)
        n = len(doc["seq_num"])
        columns: list[list[Any]] = [doc["time"], doc["uid"], *doc["data"].values(), *doc["timestamps"].values()]
        if any(len(col) != n for col in columns):
            raise InvalidDocument("event_page", doc, "its columns differ in length from seq_num")
        check_shapes("event_page", doc, shapes, flat)
        streamed = self._marks(doc["descriptor"])[1]
        new = n if not streamed else sum(1 for s in doc["seq_num"] if s > streamed)
        return Placed(run_uid, doc["descriptor"], new)

    def _check_resource(self, doc: Resource) -> Placed:
        run_uid = self._open_run("resource", doc, doc.get("run_start"))
        return Placed(run_uid, None, 0)

    def _datum_run(self, name: str, doc: Mapping[str, Any]) -> Placed:
        run_uid = self._resource_run.get(doc["resource"])
        if run_uid is None:
            rule = f"its resource {doc['resource']!r} is unknown; send the resource document first"
            raise InvalidDocument(name, doc, rule)
        return Placed(run_uid, None, 0)

    def _check_datum(self, doc: Datum) -> Placed:
        return self._datum_run("datum", doc)

    def _check_datum_page(self, doc: DatumPage) -> Placed:
        return self._datum_run("datum_page", doc)

    def _check_stream_resource(self, doc: StreamResource) -> Placed:
        run_uid = self._open_run("stream_resource", doc, doc.get("run_start"))
        return Placed(run_uid, None, 0)

    def _check_stream_datum(self, doc: StreamDatum) -> Placed:
        run_uid = self._stream_resource_run.get(doc["stream_resource"])
        if run_uid is None:
            rule = (
                f"its stream_resource {doc['stream_resource']!r} is unknown; "
                "send the stream_resource document first"
            )
            raise InvalidDocument("stream_datum", doc, rule)
        if self._descriptor_run.get(doc["descriptor"]) != run_uid:
            rule = f"its descriptor {doc['descriptor']!r} is not a descriptor of the same run"
            raise InvalidDocument("stream_datum", doc, rule)
        (i0, i1), (s0, s1) = ((doc[k]["start"], doc[k]["stop"]) for k in ("indices", "seq_nums"))
        if not (0 <= i0 <= i1 and 0 <= s0 <= s1 and i1 - i0 == s1 - s0 <= MAX_STREAM_DATUM_EVENTS):
            rule = (
                f"its indices {i0}:{i1} and seq_nums {s0}:{s1} must be ranges from 0 up that count "
                "the same events (one index per event, as the reference readers map them), "
                f"at most {MAX_STREAM_DATUM_EVENTS:,} of them"
            )
            raise InvalidDocument("stream_datum", doc, rule, field="indices")
        seen = max(self._marks(doc["descriptor"]))
        return Placed(run_uid, doc["descriptor"], max(0, doc["seq_nums"]["stop"] - 1 - seen))

    def _stream_of(self, descriptor: str) -> tuple[str, str]:
        run_uid = self._descriptor_run[descriptor]
        return run_uid, self._runs[run_uid].descriptors[descriptor]

    def _marks(self, descriptor: str) -> list[int]:
        return self._seq_marks.get(self._stream_of(descriptor)) or [0, 0]

    def _mark(self, name: str, doc: Mapping[str, Any]) -> None:
        marks = self._seq_marks.setdefault(self._stream_of(doc["descriptor"]), [0, 0])
        if name == "event":
            marks[0] = max(marks[0], doc["seq_num"])
        elif name == "event_page":
            marks[0] = max(marks[0], *doc["seq_num"]) if doc["seq_num"] else marks[0]
        else:
            marks[1] = max(marks[1], doc["seq_nums"]["stop"] - 1)

    def _check_stop(self, doc: RunStop) -> Placed:
        run_uid = self._open_run("stop", doc, doc["run_start"])
        return Placed(run_uid, None, 0)
