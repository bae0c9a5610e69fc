"""A Tiled run's documents and stream reads (sources/tiled/documents.py and tables.py), issue 13.

One real RunEngine writes the same runs into a scandeck SQLite store and, through
bluesky-tiled-plugins' TiledWriter, into two containers of a real ``tiled serve
config`` server (batch_size 1, and the default 10,000): an ophyd.sim scan with a
baseline stream, an old-style image detector (resource/datum, which TiledWriter
converts to an array over the files), a grid scan, and an ophyd-async HDF5
detector (stream_resource/stream_datum). Reads through Tiled are compared with
scandeck's read of the SQLite copy, with bluesky-tiled-plugins' own client, with
h5py on the file, and the rebuilt documents with the RunEngine's and with the
plugin's server-side exporter (``run.documents()``).

The server reads the detectors' files (``readable_storage``), so the client reads
external data without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from redis_server import RedisServer
from tiled_server import TiledDeployment

from scandeck.catalog import Catalog
from scandeck.documents import normalize
from scandeck.exceptions import StoreError, StreamNotFound, UnknownName
from scandeck.external import uri_to_path
from scandeck.reading import collect, to_pandas, to_xarray
from scandeck.sources import open_source
from scandeck.sources.tiled.documents import RunLog, canonical_documents, descriptors
from scandeck.sources.tiled.tables import stream_array, stream_lengths, stream_table

BATCHES = {"each": 1, "default": 10_000}


class ReadableDeployment(TiledDeployment):
    """The facility server, allowed to read the detectors' files (as a beamline's is)."""

    def __init__(self, directory: Path, redis_url: str, files: Path) -> None:
        super().__init__(directory, redis_url)
        self.files = files

    def start(self) -> ReadableDeployment:
        import gc
        import warnings

        super().start()
        # TiledDeployment.start leaves its log file object to the garbage collector: close it here,
        # where its ResourceWarning is expected, not in whichever test the collector runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        return self

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["trees"][0]["args"]["readable_storage"] = [str(self.files)]
        return config


class Written:
    """The runs, their RunEngine documents, the SQLite catalog and the Tiled containers."""

    def __init__(self, server: ReadableDeployment, catalog: Catalog) -> None:
        self.server = server
        self.catalog = catalog
        self.docs: list[tuple[str, dict[str, Any]]] = []
        self.uids: dict[str, str] = {}
        self.containers: dict[str, Any] = {}

    def emitted(self, uid: str) -> list[tuple[str, dict[str, Any]]]:
        out, inside = [], False
        for name, doc in self.docs:
            if name == "start":
                inside = doc["uid"] == uid
            if inside:
                out.append((name, doc))
        return out

    def node(self, kind: str, batch: str = "each") -> Any:
        return self.containers[batch][self.uids[kind]]


def container_client(server: Any, uri: str) -> Any:
    from tiled.client import from_uri

    name = uri.split("?")[0].rsplit("/", 1)[1]
    return from_uri(f"{server.base}/api/v1/metadata/{name}", api_key=server.api_key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[ReadableDeployment]:
    files = tmp_path_factory.mktemp("detector-files")
    srv = ReadableDeployment(tmp_path_factory.mktemp("tiled-readable"), redis_server.url, files).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def written(server: ReadableDeployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    import bluesky.plans as bp
    from bluesky import RunEngine, SupplementalData
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import hw
    from ophyd_async import sim
    from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices

    catalog = Catalog(open_source(tmp_path_factory.mktemp("sqlite") / "store"))
    out = Written(server, catalog)
    RE = RunEngine({}, context_managers=[])
    RE.subscribe(lambda name, doc: out.docs.append((name, normalize(doc))))
    RE.subscribe(catalog.writer())
    for batch, size in BATCHES.items():
        out.containers[batch] = container_client(server, server.new_catalog())
        RE.subscribe(TiledWriter(out.containers[batch], batch_size=size))
    h = hw(save_path=str(server.files))
    baseline = SupplementalData(baseline=[h.motor2])
    RE.preprocessors.append(baseline)
    (out.uids["scan"],) = RE(bp.scan([h.det, h.noisy_det], h.motor, -1, 1, 5), sample="Ni")
    (out.uids["img"],) = RE(bp.count([h.img, h.det], 3))
    (out.uids["grid"],) = RE(bp.grid_scan([h.det4], h.motor1, -1, 1, 3, h.motor2, -1, 1, 4, snake_axes=True))
    RE.preprocessors.remove(baseline)
    (out.uids["reconfigured"],) = RE(reconfigured(h.det))
    with init_devices():
        pattern = sim.PatternGenerator()
        stage = sim.SimStage(pattern)
        bdet = sim.SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), server.files), pattern)
    (out.uids["hdf5"],) = RE(bp.scan([bdet], stage.x, -1, 1, 3))
    (out.uids["fly"],) = RE(fly(bdet, events=3, per_event=2))
    yield out
    for client in out.containers.values():
        client.context.close()
    catalog.close()


def fly(detector: Any, events: int, per_event: int) -> Iterator[Any]:
    """A fly scan of an ophyd-async detector: stream_datum documents only, ``per_event`` frames per event."""
    import bluesky.plan_stubs as bps
    from ophyd_async.core import TriggerInfo

    yield from bps.open_run()
    yield from bps.prepare(
        detector, TriggerInfo(number_of_events=events, collections_per_event=per_event), wait=True
    )
    yield from bps.declare_stream(detector, name="primary")
    yield from bps.kickoff(detector, wait=True)
    yield from bps.collect_while_completing(flyers=[detector], dets=[detector], flush_period=0.1)
    yield from bps.close_run()


def reconfigured(detector: Any) -> Iterator[Any]:
    """Two readings, a configuration change (a second descriptor of the stream), three more."""
    import bluesky.plan_stubs as bps

    yield from bps.open_run()
    for _ in range(2):
        yield from bps.trigger_and_read([detector])
    yield from bps.configure(detector, {"sigma": 2})
    for _ in range(3):
        yield from bps.trigger_and_read([detector])
    yield from bps.close_run()


def same_dataset(ours: Any, theirs: Any, keys: Any = None) -> None:
    """Variables, seq_num and time equal (values exactly: both read the same stored numbers)."""
    keys = sorted(theirs.data_vars) if keys is None else keys
    assert sorted(ours.data_vars) == sorted(keys)
    for key in keys:
        assert ours[key].shape == theirs[key].shape, key
        np.testing.assert_array_equal(ours[key].values, theirs[key].values, err_msg=key)
    np.testing.assert_array_equal(ours["seq_num"].values, theirs["seq_num"].values)
    assert ("time" in ours.coords) == ("time" in theirs.coords)  # a fly stream has no event times
    if "time" in theirs.coords:
        np.testing.assert_array_equal(ours["time"].values, theirs["time"].values)


CASES = [
    ("scan", "primary"),
    ("scan", "baseline"),
    ("img", "primary"),
    ("grid", "primary"),
    ("hdf5", "primary"),
    ("fly", "primary"),
    ("reconfigured", "primary"),
]


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize(("kind", "stream"), CASES)
def test_stream_table_reads_as_scandeck_reads_the_same_run(written, kind, stream, batch):
    node = written.node(kind, batch)
    ours = to_xarray(stream_table(node, stream))
    theirs = written.catalog[written.uids[kind]][stream].read()
    same_dataset(ours, theirs)
    for key in theirs.data_vars:
        assert ours[key].dims == theirs[key].dims
        assert ours[key].dtype == theirs[key].dtype, key
    if "time" in theirs.coords:
        assert ours["time"].attrs == theirs["time"].attrs


@pytest.mark.parametrize(("kind", "stream"), [c for c in CASES if c[0] not in ("img", "fly")])
def test_stream_table_agrees_with_the_plugins_read(written, kind, stream):
    node = written.node(kind)
    ours = to_xarray(stream_table(node, stream))
    theirs = node[stream].read()
    for key in theirs.data_vars:
        np.testing.assert_array_equal(ours[key].values, theirs[key].values, err_msg=key)
    np.testing.assert_array_equal(ours["time"].values, theirs["time"].values)
    assert set(theirs.data_vars) == set(ours.data_vars)
    for key in theirs.data_vars:  # one key at a time, as the plugin's array client reads it
        one = to_xarray(stream_table(node, stream, keys=[key]))
        np.testing.assert_array_equal(one[key].values, node[stream][key].read(), err_msg=key)


def test_old_style_image_is_read_through_tiled_as_the_plugin_and_the_npy_files_have_it(written):
    # TiledWriter turns ophyd.sim's resource/datum into an array over the .npy files: the server reads them.
    node = written.node("img")
    ours = to_xarray(stream_table(node, "primary", keys=["img"]))
    np.testing.assert_array_equal(ours["img"].values, node["primary"]["img"].read())
    assert ours["img"].shape == (3, 10, 10)
    assert list(ours.data_vars) == ["img"]
    emitted = written.emitted(written.uids["img"])
    datum_ids = [d["data"]["img"] for n, d in emitted if n == "event" and "img" in d["data"]]
    resource = next(doc for name, doc in emitted if name == "resource")
    root = Path(resource["root"])
    on_disk = [np.load(root / f"{resource['resource_path']}_{int(d.rsplit('/', 1)[1])}.npy") for d in datum_ids]
    np.testing.assert_array_equal(ours["img"].values, np.stack(on_disk))


def test_fly_scan_of_two_frames_per_event_equals_h5py_on_the_file(written):
    ds = to_xarray(stream_table(written.node("fly"), "primary"))
    (sres, *_) = [d for n, d in written.emitted(written.uids["fly"]) if n == "stream_resource"]
    with h5py.File(uri_to_path(sres["uri"]), "r") as f:
        frames, sums = np.asarray(f["/entry/data/data"]), np.asarray(f["/entry/sum"])
    assert frames.shape[0] == 6  # the detector wrote them all
    np.testing.assert_array_equal(ds["bdet"].values, frames.reshape(3, 2, *frames.shape[1:]))
    np.testing.assert_array_equal(ds["bdet-sum"].values, sums.reshape(3, 2))
    assert ds["bdet"].dims[0] == "seq_num" and "time" not in ds.coords


def test_hdf5_detector_read_through_tiled_equals_h5py_on_the_file(written):
    node = written.node("hdf5")
    ds = to_xarray(stream_table(node, "primary"))
    sres = [d for n, d in written.emitted(written.uids["hdf5"]) if n == "stream_resource"]
    path = uri_to_path(next(d for d in sres if d["data_key"] == "bdet")["uri"])
    with h5py.File(path, "r") as f:
        frames, sums = np.asarray(f["/entry/data/data"]), np.asarray(f["/entry/sum"])
    assert ds["bdet"].shape == (3, 1, *frames.shape[1:])
    np.testing.assert_array_equal(ds["bdet"].values, frames.reshape(3, 1, *frames.shape[1:]))
    np.testing.assert_array_equal(ds["bdet-sum"].values, sums)


def test_only_the_keys_asked_are_read_and_unknown_keys_and_streams_are_named(written):
    node = written.node("scan")
    table = stream_table(node, "primary", keys=["det"])
    assert list(table.data) == ["det"] and len(table) == 5
    assert list(to_pandas(table).columns) == ["time", "det"]
    with pytest.raises(UnknownName, match=r"no key nope; its keys: det, motor, motor_setpoint, noisy_det"):
        stream_table(node, "primary", keys=["det", "nope"])
    with pytest.raises(StreamNotFound, match=r"no stream 'dark' in Tiled; its streams: baseline, primary"):
        stream_table(node, "dark")


def test_to_grid_over_tiled_equals_the_sqlite_grid(written):
    from scandeck.grid import grid_of, to_dataset

    node = written.node("grid", "default")
    spec = grid_of(node.metadata["start"], "primary")
    ours = to_dataset(spec, stream_table(node, "primary"), None)
    theirs = written.catalog[written.uids["grid"]].primary.to_grid()
    assert ours["det4"].dims == ("motor1", "motor2") == theirs["det4"].dims
    np.testing.assert_array_equal(ours["det4"].values, theirs["det4"].values)
    assert not np.isnan(ours["det4"].values).any()


def test_unfilled_external_keys_hold_the_references_the_rebuilt_documents_resolve(written):
    node = written.node("hdf5")
    table = stream_table(node, "primary", fill=False)
    docs = canonical_documents(node)
    sres = {d["data_key"]: d["uid"] for n, d in docs if n == "stream_resource"}
    assert table.data["bdet"] == [f"{sres['bdet']}/{i}" for i in range(3)]
    # scandeck's own reader of the rebuilt documents gives the same references, and,
    # filling through its handlers from the files, the same frames Tiled served.
    uids = {d["uid"] for d in descriptors(node) if d["name"] == "primary"}
    entries = [(i, n, d) for i, (n, d) in enumerate(docs)]
    refs = to_xarray(collect(entries, uids, fill=False))
    np.testing.assert_array_equal(refs["bdet"].values, to_xarray(table)["bdet"].values)
    same_dataset(to_xarray(collect(entries, uids, fill=True)), to_xarray(stream_table(node, "primary")))


@pytest.mark.parametrize("kind", ["hdf5", "img"])
def test_stream_array_reads_slices_and_feeds_dask(written, kind):
    import dask.array as da

    key = {"hdf5": "bdet", "img": "img"}[kind]
    node = written.node(kind)
    lazy = stream_array(node, "primary", key)
    whole = to_xarray(stream_table(node, "primary", keys=[key]))[key].values
    assert lazy.shape == whole.shape and lazy.ndim == whole.ndim and lazy.dtype == whole.dtype
    np.testing.assert_array_equal(lazy[1], whole[1])
    np.testing.assert_array_equal(lazy[-1], whole[-1])
    np.testing.assert_array_equal(lazy[0:2], whole[0:2])
    np.testing.assert_array_equal(lazy[1:3, ..., 2:5], whole[1:3, ..., 2:5])
    np.testing.assert_array_equal(lazy[::2], whole[::2])
    np.testing.assert_array_equal(lazy[::-1], whole[::-1])
    lazy_dask = da.from_array(lazy, chunks=(1, *whole.shape[1:]))
    np.testing.assert_array_equal(lazy_dask.compute(), whole)
    np.testing.assert_array_equal(lazy_dask[1:3].sum(axis=0).compute(), whole[1:3].sum(axis=0))
    scalar = stream_array(written.node("scan"), "primary", "det")
    np.testing.assert_array_equal(scalar[:], written.catalog[written.uids["scan"]].primary.read()["det"].values)


def test_a_stream_of_two_descriptors_gives_each_its_rows(written):
    node = written.node("reconfigured")
    first, second = descriptors(node)
    assert first["configuration"]["det"]["data"]["det_sigma"] == 1
    assert second["configuration"]["det"]["data"]["det_sigma"] == 2
    assert stream_lengths(node) == {first["uid"]: 2, second["uid"]: 3}
    owners = [(d["descriptor"], d["seq_num"]) for n, d in canonical_documents(node) if n == "event"]
    assert owners == [(first["uid"], 1), (first["uid"], 2), *[(second["uid"], s) for s in (3, 4, 5)]]


def test_stream_lengths_are_the_stores_counts_by_descriptor_uid(written):
    for kind in written.uids:
        uid = written.uids[kind]
        assert stream_lengths(written.node(kind)) == written.catalog.source.stream_counts(uid), kind


def test_descriptors_are_the_runs_own(written):
    for kind, uid in written.uids.items():
        emitted = [d for n, d in written.emitted(uid) if n == "descriptor"]
        ours = descriptors(written.node(kind))
        assert [d["uid"] for d in ours] == [d["uid"] for d in emitted], kind
        for mine, theirs in zip(ours, emitted, strict=True):
            for field in ("name", "time", "run_start", "hints", "object_keys"):
                assert mine[field] == theirs[field], (kind, field)
            assert kept(mine["data_keys"], theirs["data_keys"])
            assert mine["configuration"].keys() == theirs["configuration"].keys()
            for obj, conf in theirs["configuration"].items():
                assert mine["configuration"][obj]["data"] == conf["data"]
                assert mine["configuration"][obj]["timestamps"] == conf["timestamps"]
                assert kept(mine["configuration"][obj]["data_keys"], conf["data_keys"])


def kept(mine: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Every data key and field the RunEngine gave is there unchanged (TiledWriter adds dtype_numpy)."""
    assert mine.keys() == theirs.keys()
    return all({k: v for k, v in mine[key].items() if k in info} == info for key, info in theirs.items())


def test_canonical_documents_validate_and_carry_the_runs_content(written):
    from event_model import DocumentNames, schema_validators

    for kind, uid in written.uids.items():
        docs = canonical_documents(written.node(kind))
        for name, doc in docs:
            schema_validators[DocumentNames[name]].validate(doc)
        emitted = written.emitted(uid)
        assert docs[0] == emitted[0] and docs[-1] == emitted[-1]  # start, stop exactly
        assert docs == canonical_documents(written.node(kind))  # deterministic, synthetic uids included
        assert docs == canonical_documents(written.node(kind, "default"))  # whatever the batch size
        # External keys are not in the rebuilt events: their data is in the stream_datum documents.
        assert events(docs) == events(emitted, drop=external_keys(emitted)), kind
        if by_name(emitted, "resource"):  # old-style: TiledWriter made one stream_datum row per datum
            assert sum(len(rows) for rows in covered(docs).values()) == len(by_name(emitted, "datum")), kind
        else:  # the frames of external keys: the same rows of the same files as the RunEngine's stream_datums
            assert covered(docs, by_key=True) == covered(emitted, by_key=True), kind


def external_keys(docs: list[tuple[str, dict[str, Any]]]) -> set[str]:
    return {k for n, d in docs if n == "descriptor" for k, v in d["data_keys"].items() if v.get("external")}


def events(docs: list[tuple[str, dict[str, Any]]], drop: set[str] = frozenset()) -> list[tuple[Any, ...]]:
    """What events carry, uids aside, in (descriptor, seq_num) order."""
    out = [
        (
            d["descriptor"],
            d["seq_num"],
            d["time"],
            {k: v for k, v in d["data"].items() if k not in drop},
            {k: v for k, v in d["timestamps"].items() if k not in drop},
        )
        for n, d in docs
        if n == "event"
    ]
    return sorted(out, key=lambda e: (e[0], e[1]))


def test_documents_agree_with_the_plugins_server_side_exporter(written):
    for kind in written.uids:
        node = written.node(kind)
        ours = canonical_documents(node)
        theirs = [(name, normalize(doc)) for name, doc in node.documents()]
        assert ours[0] == theirs[0] and ours[-1] == theirs[-1], kind  # start, stop
        assert by_name(ours, "descriptor") == by_name(theirs, "descriptor"), kind
        # Same synthetic event uids as the exporter's, so whole events compare.
        assert sorted(by_name(ours, "event"), key=order) == sorted(by_name(theirs, "event"), key=order), kind
        same = ("uid", "data_key", "mimetype", "uri", "run_start")
        mine_sres, their_sres = (
            [{k: d[k] for k in same} for d in by_name(docs, "stream_resource")] for docs in (ours, theirs)
        )
        assert sorted(mine_sres, key=str) == sorted(their_sres, key=str), kind
        # One stream_datum per event row here, one per key there: the same rows of the same resources.
        assert covered(ours) == covered(theirs), kind


def by_name(docs: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [d for n, d in docs if n == name]


def order(event: dict[str, Any]) -> tuple[str, int]:
    return event["descriptor"], event["seq_num"]


def covered(docs: list[tuple[str, dict[str, Any]]], by_key: bool = False) -> dict[tuple[str, str], Any]:
    """``{(stream_resource, descriptor): [(index, seq_num), ...]}`` the stream_datum documents cover
    (by the resource's data key and file rather than its uid with ``by_key``)."""
    resources = {d["uid"]: (d["data_key"], d["uri"]) for d in by_name(docs, "stream_resource")}
    out: dict[tuple[Any, str], list[tuple[int, int]]] = {}
    for d in by_name(docs, "stream_datum"):
        i0, s0 = d["indices"]["start"], d["seq_nums"]["start"]
        resource = resources[d["stream_resource"]] if by_key else d["stream_resource"]
        rows = out.setdefault((resource, d["descriptor"]), [])
        rows += [(i0 + j, s0 + j) for j in range(d["indices"]["stop"] - i0)]
    return {k: sorted(v) for k, v in out.items()}


def test_a_run_log_followed_event_by_event_only_grows_and_ends_as_the_canonical_documents(written, server):
    import bluesky.plans as bp
    from bluesky import RunEngine, SupplementalData
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import hw

    container = container_client(server, server.new_catalog())
    h = hw(save_path=str(server.files))
    RE = RunEngine({}, context_managers=[])
    RE.preprocessors.append(SupplementalData(baseline=[h.motor2]))
    RE.subscribe(TiledWriter(container, batch_size=1))
    snapshots: list[list[tuple[str, dict[str, Any]]]] = []
    logs: list[RunLog] = []

    def follow(name: str, doc: dict[str, Any]) -> None:  # after the writer: what it wrote is in Tiled
        if name == "start":
            logs.append(RunLog(container[doc["uid"]]))
        logs[-1].update()
        snapshots.append(list(logs[-1].entries))

    RE.subscribe(follow)
    try:
        (uid,) = RE(bp.count([h.img, h.det], 4))
        for before, after in zip(snapshots, snapshots[1:], strict=False):
            assert after[: len(before)] == before  # positions never change
        log = logs[-1]
        assert log.stopped and log.entries[-1][0] == "stop"
        final = canonical_documents(container[uid])
        assert sorted(map(repr, log.entries)) == sorted(map(repr, final))
        assert log.num_events == 4 + 2  # primary and baseline
        # The baseline's closing reading came after the primary rows: appended, not inserted.
        names = [(n, d.get("descriptor")) for n, d in log.entries]
        assert names.index(("event", by_name(final, "descriptor")[0]["uid"])) < len(names) - 2
        assert log.update() == len(log.entries)  # nothing new after the stop
    finally:
        container.context.close()


def replay(written: Written, server: ReadableDeployment, docs: list[tuple[str, dict[str, Any]]]) -> Any:
    """Write ``docs`` by hand into a fresh container through TiledWriter; return the container client."""
    from bluesky_tiled_plugins import TiledWriter

    container = container_client(server, server.new_catalog())
    writer = TiledWriter(container, batch_size=1)
    for name, doc in docs:
        writer(name, doc)
    return container


def test_rows_written_apart_are_cut_to_complete_events_while_running_and_refused_once_stopped(written, server):
    uid = written.uids["hdf5"]
    docs = written.emitted(uid)
    last_event = max(i for i, (n, _) in enumerate(docs) if n == "event")
    # The third frame's stream_datum is in, its event not yet: arrays have 3 rows, the table 2.
    running = replay(written, server, docs[:last_event])
    stopped = replay(written, server, [*docs[:last_event], docs[-1]])
    try:
        node = running[uid]
        assert stream_array(node, "primary", "bdet").shape[0] == 3
        table = stream_table(node, "primary")
        assert table.seq_num == [1, 2] and len(table.data["bdet"]) == 2 and len(table.data["stage-x"]) == 2
        full = to_xarray(stream_table(written.node("hdf5"), "primary"))
        np.testing.assert_array_equal(to_xarray(table)["bdet"].values, full["bdet"].values[:2])
        assert [len(table.data[k]) for k in ("bdet", "bdet-sum")] == [2, 2]
        log = RunLog(node)
        log.update()
        assert [n for n, _ in log.entries].count("event") == 2 and not log.stopped
        with pytest.raises(
            StoreError, match=r"stopped run holds parts of different lengths.*internal: 2.*bdet: 3"
        ):
            stream_table(stopped[uid], "primary")
        assert stream_array(stopped[uid], "primary", "bdet").shape[0] == 3  # each part alone still reads
    finally:
        running.context.close()
        stopped.context.close()


def arrow(frame: Any) -> Any:
    """Rows as TiledWriter appends them: an Arrow table (no pandas index column)."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_a_row_repeated_by_a_retried_append_is_read_once_and_differing_repeats_are_refused(written, server):
    # TiledWriter retries an append the server may already have taken ("rows may be duplicated").
    uid = written.uids["scan"]
    container = replay(written, server, written.emitted(uid))
    try:
        table = container[uid]["primary"].base["internal"]
        rows = table.read().sort_values("seq_num")
        table.append_partition(0, arrow(rows.iloc[[1]]))  # the same row again, as a retry leaves it
        node = container[uid]
        same_dataset(
            to_xarray(stream_table(node, "primary")), to_xarray(stream_table(written.node("scan"), "primary"))
        )
        assert canonical_documents(node) == canonical_documents(written.node("scan"))
        assert stream_lengths(node) == stream_lengths(written.node("scan"))
        changed = rows.iloc[[2]].reset_index(drop=True)
        changed["det"] = changed["det"] + 1.0
        table.append_partition(0, arrow(changed))
        with pytest.raises(StoreError, match=r"holds 2 different rows of seq_num 3"):
            stream_table(node, "primary", keys=["det"])
    finally:
        container.context.close()


def test_a_row_arriving_behind_the_followed_ones_is_refused_not_skipped(written, server):
    uid = written.uids["scan"]
    docs = written.emitted(uid)
    third = next(i for i, (n, d) in enumerate(docs) if n == "event" and d["seq_num"] == 3 and "det" in d["data"])
    container = replay(written, server, [d for i, d in enumerate(docs[:-1]) if i != third])  # running, no row 3
    try:
        log = RunLog(container[uid])
        log.update()
        assert [d["seq_num"] for n, d in log.entries if n == "event" and "det" in d["data"]] == [1, 2, 4, 5]
        frame = written.node("scan")["primary"].base["internal"].read()
        container[uid]["primary"].base["internal"].append_partition(0, arrow(frame[frame["seq_num"] == 3]))
        with pytest.raises(StoreError, match=r"gained a row of seq_num 5 or lower after the log had followed"):
            log.update()
    finally:
        container.context.close()
