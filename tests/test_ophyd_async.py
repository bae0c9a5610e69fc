"""Modern producers: ophyd-async's simulated detectors under a real RunEngine.

The blob detector writes HDF5 files and stream_resource/stream_datum documents
(the frames never travel in events). Every value scandeck reads is compared with
h5py reading the same file, and the shapes with what the reference reader
(bluesky-tiled-plugins' HDF5 consolidator) makes of the same documents: the
descriptor's shape is the shape of one event, ``indices`` count events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from scandeck.exceptions import DatumIndexError, FillError
from scandeck.external import uri_to_path
from scandeck.pipeline.table import LiveTable

HEIGHT, WIDTH = 240, 320


class Beamline:
    """A RunEngine, ophyd-async's pattern generator, stage, blob and point detectors."""

    def __init__(self, directory: Path, catalog: Any) -> None:
        from bluesky import RunEngine
        from ophyd_async import sim
        from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices

        self.RE = RunEngine({}, context_managers=[])
        self.documents: list[tuple[str, dict[str, Any]]] = []
        self.RE.subscribe(lambda name, doc: self.documents.append((name, doc)))
        self.RE.subscribe(catalog.writer())
        provider = StaticPathProvider(UUIDFilenameProvider(), directory)
        with init_devices():
            pattern = sim.PatternGenerator()
            stage = sim.SimStage(pattern)
            bdet = sim.SimBlobDetector(provider, pattern)
        self.stage, self.bdet = stage, bdet

    def _last_uid(self) -> str:
        return [doc for name, doc in self.documents if name == "start"][-1]["uid"]

    def run(self, plan: Any) -> str:
        self.RE(plan)
        return self._last_uid()

    def of(self, uid: str, name: str) -> list[dict[str, Any]]:
        """The documents called ``name`` of run ``uid``, as the RunEngine emitted them."""
        out, inside = [], False
        for doc_name, doc in self.documents:
            if doc_name == "start":
                inside = doc["uid"] == uid
            if inside and doc_name == name:
                out.append(doc)
        return out


def step_scan_into(catalog: Any, directory: Path, points: int) -> tuple[Beamline, str, np.ndarray]:
    """A blob-detector step scan over the stage's x into ``catalog``: (beamline, uid, sums in the file)."""
    import bluesky.plans as bp

    directory.mkdir(exist_ok=True)
    beamline = Beamline(directory, catalog)
    uid = beamline.run(bp.scan([beamline.bdet], beamline.stage.x, -1, 1, points))
    return beamline, uid, h5_truth(beamline, uid)[1]


@pytest.fixture
def beamline(tmp_path: Path, sqlite_cat: Any) -> Beamline:
    files = tmp_path / "files"
    files.mkdir()
    return Beamline(files, sqlite_cat)


def fly(beamline: Beamline, events: int, per_event: int) -> str:
    import bluesky.plan_stubs as bps
    from ophyd_async.core import TriggerInfo

    bdet = beamline.bdet

    def plan() -> Iterator[Any]:
        yield from bps.open_run()
        info = TriggerInfo(number_of_events=events, collections_per_event=per_event)
        yield from bps.prepare(bdet, info, wait=True)
        yield from bps.declare_stream(bdet, name="primary")
        yield from bps.kickoff(bdet, wait=True)
        yield from bps.collect_while_completing(flyers=[bdet], dets=[bdet], flush_period=0.1)
        yield from bps.close_run()

    return beamline.run(plan())


def h5_truth(beamline: Beamline, uid: str) -> tuple[np.ndarray, np.ndarray]:
    """All frames and sums the run's file holds, read with h5py."""
    (sres, *_) = beamline.of(uid, "stream_resource")
    with h5py.File(uri_to_path(sres["uri"]), "r") as f:
        return np.asarray(f["/entry/data/data"]), np.asarray(f["/entry/sum"])


@pytest.mark.parametrize("per_event", [1, 2])
def test_fly_scan_events_of_several_frames_read_as_h5py_reads_the_file(beamline, sqlite_cat, per_event):
    uid = fly(beamline, events=3, per_event=per_event)
    run = sqlite_cat[uid]
    (desc,) = beamline.of(uid, "descriptor")
    assert desc["data_keys"]["bdet"]["shape"] == [per_event, HEIGHT, WIDTH]
    frames, sums = h5_truth(beamline, uid)
    assert frames.shape == (3 * per_event, HEIGHT, WIDTH)  # the detector really wrote them all
    ds = run.primary.read()
    np.testing.assert_array_equal(ds["bdet"].values, frames.reshape(3, per_event, HEIGHT, WIDTH))
    expected_sums = sums if per_event == 1 else sums.reshape(3, per_event)
    np.testing.assert_array_equal(ds["bdet-sum"].values, expected_sums)
    assert ds["bdet-sum"].values.size == 3 * per_event
    # A fly stream has no event times: it is indexed by seq_num, never by NaN.
    assert ds["bdet"].dims[0] == "seq_num" and "time" not in ds.coords
    assert list(ds["seq_num"].values) == [1, 2, 3]
    assert run.num_events == 3 and len(run.primary) == 3


def test_fly_scan_counts_its_events_for_ls_and_progress(beamline, sqlite_cat):
    uid = fly(beamline, events=4, per_event=1)
    summary = sqlite_cat[uid].summary
    assert summary.num_events == 4
    assert sqlite_cat.source.stream_counts(uid) == {beamline.of(uid, "descriptor")[0]["uid"]: 4}


def test_fly_scan_unfilled_gives_references_not_none(beamline, sqlite_cat):
    uid = fly(beamline, events=2, per_event=2)
    ds = sqlite_cat[uid].primary.read(fill=False)
    datums = {d["stream_resource"]: d for d in beamline.of(uid, "stream_datum")}
    refs = list(ds["bdet"].values)
    assert all(isinstance(r, str) for r in refs) and None not in refs
    resource = refs[0].rsplit("/", 1)[0]
    assert resource in datums and refs == [f"{resource}/0", f"{resource}/1"]


def test_step_scan_with_an_ophyd_async_detector(beamline, sqlite_cat):
    import bluesky.plans as bp

    uid = beamline.run(bp.scan([beamline.bdet], beamline.stage.x, -1, 1, 3))
    run = sqlite_cat[uid]
    frames, sums = h5_truth(beamline, uid)
    ds = run.primary.read()
    # Declared [1, 240, 320]: one frame per event, as the reference reader shapes it.
    np.testing.assert_array_equal(ds["bdet"].values, frames.reshape(3, 1, HEIGHT, WIDTH))
    np.testing.assert_array_equal(ds["bdet-sum"].values, sums)  # shape [1]: a scalar per event
    assert np.isfinite(ds["time"].values).all()
    df = run.primary.to_pandas()
    np.testing.assert_array_equal(df["bdet-sum"].to_numpy(), sums)  # external scalars filled
    assert "bdet" not in df.columns  # arrays are read()'s
    np.testing.assert_allclose(df["stage-x"].to_numpy(), [-1, 0, 1])
    assert run.num_events == 3


def test_count_with_an_ophyd_async_detector(beamline, sqlite_cat):
    import bluesky.plans as bp

    uid = beamline.run(bp.count([beamline.bdet], 4))
    frames, sums = h5_truth(beamline, uid)
    ds = sqlite_cat[uid].primary.read()
    np.testing.assert_array_equal(ds["bdet"].values[:, 0], frames)
    np.testing.assert_array_equal(sqlite_cat[uid].primary.to_pandas()["bdet-sum"].to_numpy(), sums)


@pytest.mark.parametrize("per_event", [1, 2])
def test_values_agree_with_the_reference_reader(beamline, sqlite_cat, per_event):
    """bluesky-tiled-plugins' HDF5 consolidator and its Tiled adapter read the same documents."""
    from bluesky_tiled_plugins.writing import consolidators

    uid = fly(beamline, events=3, per_event=per_event)
    (desc,) = beamline.of(uid, "descriptor")
    ds = sqlite_cat[uid].primary.read()
    for sres in beamline.of(uid, "stream_resource"):
        consolidator = consolidators.HDF5Consolidator(sres, desc)
        for datum in beamline.of(uid, "stream_datum"):
            if datum["stream_resource"] == sres["uid"]:
                consolidator.consume_stream_datum(datum)
        reference = np.asarray(consolidator.init_adapter().read())
        ours = ds[sres["data_key"]].values
        assert ours.shape == reference.shape == tuple(consolidator.shape)
        np.testing.assert_array_equal(ours, reference)


def _rewrite(beamline: Beamline, path: Path, dataset: str, data: np.ndarray) -> None:
    """Change what the file holds behind the documents' back (the detector's writer closed first)."""
    beamline.bdet.pattern_generator.close_file()
    with h5py.File(path, "a") as f:
        del f[dataset]
        f[dataset] = data


def test_a_file_with_fewer_frames_than_declared_is_an_error_not_partial_data(beamline, sqlite_cat):
    uid = fly(beamline, events=3, per_event=2)
    frames, _ = h5_truth(beamline, uid)
    (sres, *_) = beamline.of(uid, "stream_resource")
    path = uri_to_path(sres["uri"])
    _rewrite(beamline, Path(path), "/entry/data/data", frames[:5])
    with pytest.raises(DatumIndexError) as info:
        sqlite_cat[uid].primary.read()
    text = str(info.value)
    assert sres["uid"] in text and path in text and "(5, 240, 320)" in text


def test_a_file_whose_frames_differ_from_the_declared_shape_is_named(beamline, sqlite_cat):
    uid = fly(beamline, events=2, per_event=1)
    (sres, *_) = beamline.of(uid, "stream_resource")
    path = uri_to_path(sres["uri"])
    _rewrite(beamline, Path(path), "/entry/data/data", np.zeros((2, HEIGHT, WIDTH + 1), dtype=np.uint8))
    with pytest.raises(FillError) as info:
        sqlite_cat[uid].primary.read()
    text = str(info.value)
    assert sres["uid"] in text and path in text
    assert f"(2, {HEIGHT}, {WIDTH + 1})" in text and f"[1, {HEIGHT}, {WIDTH}]" in text


@pytest.mark.parametrize("fill", [(), ("bdet",)])
def test_live_table_rows_of_a_fly_scan(beamline, sqlite_cat, fill):
    """What %%bind's df and live() rows are built from: external scalars always filled,
    arrays only when asked, never a reference posing as a value."""
    uid = fly(beamline, events=3, per_event=1)
    frames, sums = h5_truth(beamline, uid)
    table = LiveTable("primary", fill=fill)
    seen = []
    for name, doc in sqlite_cat[uid].documents():
        table.add(name, doc)
        seen.append(len(table))
    table.close()
    assert seen[-1] == 3 and table.errors == []
    df = table.frame()
    np.testing.assert_array_equal(df["bdet-sum"].to_numpy(), sums)
    assert list(df.index) == [1, 2, 3] and "time" not in df.columns  # no NaN times
    assert "time" not in table.row() and "time" not in table.columns()
    if fill:
        np.testing.assert_array_equal(np.stack(df["bdet"].to_numpy()), frames.reshape(3, 1, HEIGHT, WIDTH))
    else:
        assert "bdet" not in df.columns


def test_live_table_of_a_step_scan_puts_stream_data_on_its_events(beamline, sqlite_cat):
    import bluesky.plans as bp

    uid = beamline.run(bp.scan([beamline.bdet], beamline.stage.x, 0, 1, 4))
    _, sums = h5_truth(beamline, uid)
    table = LiveTable("primary")
    for name, doc in sqlite_cat[uid].documents():
        table.add(name, doc)
    table.close()
    df = table.frame()
    assert len(df) == 4 and df["time"].notna().all()  # local dates, none missing
    np.testing.assert_array_equal(df["bdet-sum"].to_numpy(), sums)


def test_live_pipeline_follows_a_fly_scan(beamline, sqlite_cat):
    from test_live import wait_for

    from scandeck.livestream import Live

    uid = fly(beamline, events=3, per_event=2)
    frames, _ = h5_truth(beamline, uid)
    with Live(sqlite_cat[uid], catalog=sqlite_cat) as live:
        pages = live.stream(pages=True, fill=["bdet"]).sink_to_list()
        assert wait_for(lambda: sum(len(p["seq_num"]) for p in pages) == 3)
    got = np.stack([f for p in pages for f in p["bdet"]])
    np.testing.assert_array_equal(got, frames.reshape(3, 2, HEIGHT, WIDTH))
    assert live.failures == 0


@pytest.mark.parametrize("fmt", ["jsonl", "msgpack"])
def test_fly_scan_round_trips_through_document_files(beamline, sqlite_cat, tmp_path, fmt):
    """Exported to suitcase-style files and ingested elsewhere, the run reads the same."""
    from scandeck.catalog import Catalog
    from scandeck.docfiles import read_documents, write_documents
    from scandeck.documents import normalize
    from scandeck.sources import open_source

    uid = fly(beamline, events=3, per_event=2)
    docs = list(sqlite_cat[uid].documents())
    (path,) = write_documents(docs, tmp_path / "export", format=fmt)
    back = list(read_documents(path))
    assert [(n, normalize(d)) for n, d in back] == [(n, normalize(d)) for n, d in docs]
    other = Catalog(open_source(tmp_path / "elsewhere"))
    writer = other.writer()
    for name, doc in back:
        writer(name, doc)
    a, b = sqlite_cat[uid].primary.read(), other[uid].primary.read()
    np.testing.assert_array_equal(a["bdet"].values, b["bdet"].values)
    assert other[uid].num_events == 3
    other.close()


def test_a_running_fly_scan_is_followed_while_its_file_is_written(beamline, sqlite_cat):
    """The detector writes its HDF5 file in SWMR mode; the follower reads it as it grows."""
    from test_live import wait_for

    from scandeck.livestream import Live

    with Live(None, catalog=sqlite_cat) as live:  # the newest run and each new one
        pages = live.stream(pages=True, fill=True).sink_to_list()
        uid = fly(beamline, events=20, per_event=1)
        assert wait_for(lambda: sum(len(p["seq_num"]) for p in pages) == 20)
    frames, sums = h5_truth(beamline, uid)
    assert [s for p in pages for s in p["seq_num"]] == list(range(1, 21))
    np.testing.assert_array_equal([v for p in pages for v in p["bdet-sum"]], sums)
    np.testing.assert_array_equal(np.stack([f for p in pages for f in p["bdet"]])[:, 0], frames)
    assert live.failures == 0


def test_fly_scan_reads_and_counts_the_same_on_every_source(cat, tmp_path):
    files = tmp_path / "fly-files"
    files.mkdir()
    beamline = Beamline(files, cat)
    uid = fly(beamline, events=3, per_event=2)
    frames, _ = h5_truth(beamline, uid)
    run = cat[uid]
    np.testing.assert_array_equal(run.primary.read()["bdet"].values, frames.reshape(3, 2, HEIGHT, WIDTH))
    assert run.num_events == 3 and len(run.primary) == 3
