"""Whatever a store accepts reads back; whatever it refuses is refused with InvalidDocument.

Two generators of hostile documents, both bounded by count, never by clock:

* a fuzz: documents of a real RunEngine (a scan with a baseline, an array detector,
  event pages made from its events) mutated at random with a fixed seed: values
  replaced by sets, bytes, huge integers, NaN, lone surrogates, deep nesting,
  non-str keys, numpy values, other shapes; keys added and removed;
* a property test (hypothesis): runs built with ``compose_run`` around generated
  metadata and event values.

Either way each write must be accepted or raise :class:`InvalidDocument` (nothing
else), the writer goes on, and every run reads back: ``documents()`` returns what
was accepted (byte for byte once normalized, NaN included), and ``read()`` and
``to_pandas()`` of its streams raise nothing but a scandeck error.
"""

from __future__ import annotations

import copy
import datetime
import math
import random
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from event_model import compose_run, pack_event_page
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scandeck.catalog import Catalog
from scandeck.documents import normalize, pack
from scandeck.exceptions import InvalidDocument, ScandeckError
from scandeck.sources import open_source

SEED = 20_261_206
#: Documents written per source; Redis answers over a socket, so fewer there.
TRIALS = {"sqlite": 4000, "memory": 4000, "redis": 800}


def _deep(levels: int, leaf: Any = 1, as_dict: bool = False) -> Any:
    for _ in range(levels):
        leaf = {"a": leaf} if as_dict else [leaf]
    return leaf


#: Fresh hostile (and some harmless) values; called each time, so nothing is shared.
VALUES: list[Callable[[], Any]] = [
    lambda: {"Ni", "powder"},
    lambda: frozenset({1}),
    lambda: set(),
    lambda: b"\x00raw",
    lambda: bytearray(b"x"),
    lambda: memoryview(b"x"),
    lambda: 1j,
    lambda: object(),
    lambda: datetime.datetime(2024, 1, 1),
    lambda: Path("/tmp"),
    lambda: math.nan,
    lambda: math.inf,
    lambda: -math.inf,
    lambda: -0.0,
    lambda: 1e308,
    lambda: 2**63 - 1,
    lambda: 2**63,
    lambda: 2**64 - 1,
    lambda: 2**64,
    lambda: -(2**63),
    lambda: -(2**63) - 1,
    lambda: 10**40,
    lambda: "\ud800",
    lambda: "ok\udfffok",
    lambda: {"k\udc80": 1},
    lambda: "ünïcödé ☃ \U0001f600",
    lambda: {(1, 2): "x"},
    lambda: {1: "x"},
    lambda: {None: 1},
    lambda: {1.5: 1},
    lambda: _deep(70),
    lambda: _deep(70, as_dict=True),
    lambda: _deep(63),
    lambda: _deep(400),
    lambda: None,
    lambda: True,
    lambda: False,
    lambda: 0,
    lambda: -1,
    lambda: 7,
    lambda: 1.5,
    lambda: "",
    lambda: "text",
    lambda: [],
    lambda: [1, 2, 3],
    lambda: [[1, 2], [3]],
    lambda: [[1, 2], [3, 4]],
    lambda: {},
    lambda: {"a": [1, {"b": None}]},
    lambda: (1, 2),
    lambda: ((1,), (2,)),
    lambda: np.float32(1.5),
    lambda: np.float16(2),
    lambda: np.int64(-5),
    lambda: np.uint64(2**64 - 1),
    lambda: np.bool_(True),
    lambda: np.str_("x"),
    lambda: np.str_("\ud800"),
    lambda: np.arange(3),
    lambda: np.zeros((2, 2)),
    lambda: np.zeros((10, 10)),
    lambda: np.array([1 + 1j]),
    lambda: np.array(["a", "b"]),
    lambda: np.array(["\udc80"]),
    lambda: np.array([b"a"]),
    lambda: np.array([None, {"a": 1}], dtype=object),
    lambda: np.array([{1, 2}], dtype=object),
    lambda: np.datetime64("2024-01-01"),
    lambda: np.timedelta64(1, "s"),
    lambda: np.longdouble(1),
    lambda: np.array(5.0),
    lambda: np.empty((0, 3)),
]
KEYS: list[Callable[[], Any]] = [
    lambda: "extra",
    lambda: "",
    lambda: "k\ud800",
    lambda: (1, 2),
    lambda: 1,
    lambda: None,
    lambda: np.str_("np"),
    lambda: "uid",
    lambda: "time",
]


def _slots(value: Any, out: list[tuple[Any, Any]], depth: int = 0) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a document down to 80 levels, depth first."""
    if depth > 80:
        return out
    if isinstance(value, dict):
        for key in list(value):
            out.append((value, key))
            _slots(value[key], out, depth + 1)
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append((value, i))
            _slots(value[i], out, depth + 1)
    return out


def mutate(doc: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """A deep copy of ``doc`` with one to three random changes, and what they were."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        slots = _slots(doc, [])
        container, key = rng.choice(slots) if slots else (doc, None)
        op = rng.random()
        if key is None or op < 0.55:
            if key is None:
                key = rng.choice(list(doc))
                container = doc
            value = rng.choice(VALUES)()
            done.append(f"{key!r} = {_short(value)}")
            container[key] = value
        elif op < 0.7 and isinstance(container, dict):
            new = rng.choice(KEYS)()
            done.append(f"add {_short(new)}")
            container[new] = rng.choice(VALUES)()
        elif op < 0.85:
            done.append(f"delete {key!r}")
            del container[key]
        elif op < 0.93:
            done.append(f"wrap {key!r}")
            container[key] = [container[key]]
        else:
            value = container[key]
            if isinstance(value, list) and value:
                done.append(f"extend {key!r}")
                try:
                    value.append(copy.deepcopy(value[0]))
                except TypeError:  # a memoryview put there by an earlier change
                    value.append(value[0])
            else:
                done.append(f"{key!r} as str")
                container[key] = str(value)
    return doc, done


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# -- the documents of a real RunEngine ----------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> list[tuple[str, dict[str, Any]]]:
    """A baseline-wrapped scan of a scalar and an array detector, as the RunEngine emitted it."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from bluesky.preprocessors import baseline_wrapper
    from ophyd.sim import hw

    devices = hw(save_path=str(tmp_path_factory.mktemp("assets")))
    engine = RunEngine({}, context_managers=[])
    docs: list[tuple[str, dict[str, Any]]] = []
    engine.subscribe(lambda name, doc: docs.append((name, copy.deepcopy(doc))))
    plan = baseline_wrapper(
        bp.scan([devices.det, devices.direct_img_list], devices.motor, -1, 1, 4), [devices.motor1]
    )
    engine(plan, sample="Ni", tags=["powder"])
    return docs


def _renamed(docs: list[tuple[str, dict[str, Any]]], pages: bool) -> list[tuple[str, dict[str, Any]]]:
    """The run with fresh uids (so it can be written again), its events as pages if ``pages``."""
    new: dict[str, str] = {}

    def fresh(uid: str) -> str:
        return new.setdefault(uid, str(uuid.uuid4()))

    out = []
    events: dict[str, list[dict[str, Any]]] = {}
    for name, doc in docs:
        doc = dict(doc, uid=fresh(doc["uid"]))
        for key in ("run_start", "descriptor"):
            if key in doc:
                doc[key] = fresh(doc[key])
        if name == "event" and pages:
            events.setdefault(doc["descriptor"], []).append(doc)
            continue
        if name == "stop" and pages:
            for group in events.values():
                for first in range(0, len(group), 2):
                    out.append(("event_page", pack_event_page(*group[first : first + 2])))
        out.append((name, doc))
    return out


class Ledger:
    """What each run should read back: the accepted documents, normalized and packed."""

    def __init__(self) -> None:
        self.runs: dict[str, list[tuple[str, bytes]]] = {}
        self.descriptor_run: dict[str, str] = {}

    def accept(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            run = doc["uid"]
            self.runs[run] = []
        elif name in ("descriptor", "stop"):
            run = doc["run_start"]
        else:
            run = self.descriptor_run[doc["descriptor"]]
        if name == "descriptor":
            self.descriptor_run[doc["uid"]] = run
        self.runs[run].append((name, pack(normalize(doc))))


def write(writer: Any, ledger: Ledger, name: str, doc: dict[str, Any], what: str, failures: list[str]) -> bool:
    """Write one document; record a failure for anything but acceptance or InvalidDocument."""
    try:
        writer(name, doc)
    except InvalidDocument:
        return False
    except Exception as err:  # noqa: BLE001 - this is what the test looks for
        failures.append(f"{name} [{what}]: {type(err).__name__}: {_short(str(err))}")
        return False
    try:
        ledger.accept(name, doc)
    except Exception as err:  # noqa: BLE001
        failures.append(f"{name} [{what}] accepted, then normalize: {type(err).__name__}: {err}")
    return True


def check_reads(cat: Catalog, ledger: Ledger, failures: list[str]) -> None:
    """Every run reads back what was accepted; its streams read without a non-scandeck error."""
    for uid, expected in ledger.runs.items():
        run = cat[uid]
        try:
            got = [(name, pack(doc)) for name, doc in run.documents()]
        except Exception as err:  # noqa: BLE001 - a poison document
            failures.append(f"run {uid} documents(): {type(err).__name__}: {_short(str(err))}")
            continue
        if got != expected:
            failures.append(f"run {uid}: documents() differ from what was accepted")
        for stream in run:
            for how in ("read", "to_pandas"):
                try:
                    getattr(run[stream], how)()
                except ScandeckError:
                    pass
                except Exception as err:  # noqa: BLE001
                    failures.append(
                        f"run {uid} stream {stream!r} {how}(): {type(err).__name__}: {_short(str(err))}"
                    )


def fuzz(cat: Catalog, template: list[tuple[str, dict[str, Any]]], trials: int, seed: int) -> tuple[int, int]:
    """Write ``trials`` documents, mutated at random, run after run; return (accepted, refused)."""
    rng = random.Random(seed)
    ledger, failures = Ledger(), []
    writer = cat.writer()
    accepted = refused = written = 0
    while written < trials:
        docs = _renamed(template, pages=rng.random() < 0.4)
        stopped = False
        for name, doc in docs:
            chance = {"start": 0.25, "stop": 0.3}.get(name, 0.6)
            what = "unchanged"
            if rng.random() < chance:
                doc, changes = mutate(doc, rng)
                what = "; ".join(changes)
            ok = write(writer, ledger, name, doc, what, failures)
            accepted, refused, written = accepted + ok, refused + (not ok), written + 1
            stopped = stopped or (ok and name == "stop")
        if not stopped and docs[0][1]["uid"] in ledger.runs:
            write(writer, ledger, *docs[-1], "the unchanged stop", failures)  # close the run
    writer.close()
    check_reads(cat, ledger, failures)
    assert not failures, f"{len(failures)} failures, the first ones:\n" + "\n".join(failures[:15])
    return accepted, refused


def _catalog(source: str, request: pytest.FixtureRequest, tmp_path: Path) -> Catalog:
    if source == "sqlite":
        uri = str(tmp_path / "store")
    elif source == "memory":
        uri = f"memory://fuzz-{uuid.uuid4().hex}"
    else:
        server = request.getfixturevalue("redis_server")
        uri = f"{server.url}?prefix=fuzz-{uuid.uuid4().hex[:12]}&archive={tmp_path / 'archive'}"
    return Catalog(open_source(uri))


@pytest.mark.parametrize("source", sorted(TRIALS))
def test_mutated_real_documents_are_stored_faithfully_or_refused(real_run, source, request, tmp_path):
    cat = _catalog(source, request, tmp_path)
    try:
        accepted, refused = fuzz(cat, real_run, TRIALS[source], SEED)
    finally:
        cat.close()
    # The fuzz must exercise both outcomes, or it tests nothing.
    assert accepted > TRIALS[source] // 4 and refused > TRIALS[source] // 10


# -- the property: accepted implies readable ---------------------------------------------------

_texts = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=6)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    _texts,
    st.binary(max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.sampled_from([np.float32(1.5), np.int64(-3), np.uint64(2**64 - 1), np.bool_(False)]),
    st.builds(np.asarray, st.lists(st.floats(), max_size=3)),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.one_of(_texts, st.integers(), st.tuples(st.integers())), children, max_size=3),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=8,
)
_shapes = st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=3)), max_size=2)


@pytest.fixture(scope="module")
def property_catalogs(request) -> Iterator[dict[str, Catalog]]:
    with tempfile.TemporaryDirectory() as tmp:
        cats = {
            "sqlite": Catalog(open_source(str(Path(tmp) / "store"))),
            "memory": Catalog(open_source(f"memory://property-{uuid.uuid4().hex}")),
        }
        yield cats
        for cat in cats.values():
            cat.close()


@pytest.mark.parametrize("source", ["memory", "sqlite"])
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    metadata=st.dictionaries(_texts.filter(lambda k: k not in ("time", "uid")), _values, max_size=3),
    shape=_shapes,
    dtype=st.sampled_from(["number", "integer", "string", "array", "boolean"]),
    column=st.lists(_values, min_size=1, max_size=4),
    time=st.one_of(st.floats(), st.integers(min_value=-(2**64), max_value=2**64)),
    page=st.booleans(),
)
def test_accepted_implies_readable(property_catalogs, source, metadata, shape, dtype, column, time, page):
    cat = property_catalogs[source]
    bundle = compose_run(metadata={"plan_name": "count", **metadata}, time=time, validate=False)
    desc = bundle.compose_descriptor(
        name="primary",
        validate=False,
        data_keys={
            "x": {"dtype": dtype, "shape": shape, "source": "sim:x"},
            "n": {"dtype": "number", "shape": [], "source": "sim:n"},
        },
    )
    n = len(column)
    if page:
        events = [
            (
                "event_page",
                desc.compose_event_page(
                    data={"x": column, "n": [float(i) for i in range(n)]},
                    timestamps={"x": [1.0] * n, "n": [1.0] * n},
                    seq_num=list(range(1, n + 1)),
                    time=[1.0 + i for i in range(n)],
                    validate=False,
                ),
            )
        ]
    else:
        events = [
            (
                "event",
                desc.compose_event(
                    data={"x": value, "n": float(i)},
                    timestamps={"x": 1.0, "n": 1.0},
                    seq_num=i + 1,
                    validate=False,
                ),
            )
            for i, value in enumerate(column)
        ]
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        *events,
        ("stop", bundle.compose_stop()),
    ]
    ledger, failures = Ledger(), []
    writer = cat.writer()
    for name, doc in docs:
        write(writer, ledger, name, doc, "generated", failures)
    writer.close()
    check_reads(cat, ledger, failures)
    assert not failures, "\n".join(failures)
