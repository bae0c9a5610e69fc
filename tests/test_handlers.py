"""Filling external data: registries, built-in handlers, the Filler and its errors."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import event_model
import h5py
import numpy as np
import pytest

import scandeck.registry
from scandeck import handlers
from scandeck.exceptions import ScandeckError, UnknownHandler
from scandeck.handlers import (
    DatumIndexError,
    DatumNotFound,
    ExternalFileMissing,
    Filler,
    FillError,
    ResourceNotFound,
    get_handler,
    get_stream_handler,
    register_handler,
    resource_path,
    uri_to_path,
)


@pytest.fixture
def run() -> event_model.ComposeRunBundle:
    return event_model.compose_run(metadata={"plan_name": "test"})


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Undo whatever a test registers."""
    saved = handlers.HANDLERS.snapshot(), handlers.STREAM_HANDLERS.snapshot()
    yield
    handlers.HANDLERS.restore(saved[0])
    handlers.STREAM_HANDLERS.restore(saved[1])


def _resource(run: Any, spec: str, root: str, path: str, kwargs: dict[str, Any]) -> Any:
    return event_model.compose_resource(
        start=run.start_doc,
        spec=spec,
        root=root,
        resource_path=path,
        resource_kwargs=kwargs,
        path_semantics="posix",
    )


def _datums(resource: Any, kwargs: list[dict[str, Any]]) -> list[Any]:
    counter = itertools.count()
    return [event_model.compose_datum(resource=resource, counter=counter, datum_kwargs=kw) for kw in kwargs]


def _feed(filler: Filler, *docs: tuple[str, Any]) -> None:
    for name, doc in docs:
        assert filler(name, doc) == (name, doc)  # documents pass through unchanged


def _write_ad_hdf5(path: Path, frames: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry/data/data", data=frames)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Stop and close the RunEngine's loop (an unclosed loop warns when collected)."""
    loop.call_soon_threadsafe(loop.stop)
    deadline = time.monotonic() + 5
    while loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.001)
    loop.close()


# --- built-in handlers -------------------------------------------------------------------


def test_npy_seq_datum_and_datum_page(run: Any, tmp_path: Path) -> None:
    arrays = [np.arange(12.0).reshape(3, 4) * i for i in range(4)]
    for i, a in enumerate(arrays):
        np.save(tmp_path / f"stem_{i}.npy", a)
    res = _resource(run, "NPY_SEQ", str(tmp_path), "stem", {}).resource_doc
    counter = itertools.count()
    datums = [event_model.compose_datum(resource=res, counter=counter, datum_kwargs={"index": 0})]
    page = event_model.compose_datum_page(resource=res, counter=counter, datum_kwargs={"index": [1, 2, 3]})
    with Filler() as filler:
        _feed(filler, ("start", run.start_doc), ("resource", res), ("datum", datums[0]))
        _feed(filler, ("datum_page", page))
        ids = [datums[0]["datum_id"], *page["datum_id"]]
        for datum_id, expected in zip(ids, arrays, strict=True):
            np.testing.assert_array_equal(filler.fill_datum(datum_id), expected)


@pytest.mark.parametrize("root", ["", "/"])
def test_npy_seq_with_empty_or_slash_root(run: Any, tmp_path: Path, root: str) -> None:
    np.save(tmp_path / "img_0.npy", np.ones((2, 2)))
    rel = str(tmp_path / "img") if root == "" else str(tmp_path / "img").lstrip("/")
    res = _resource(run, "NPY_SEQ", root, rel, {}).resource_doc
    (datum,) = _datums(res, [{"index": 0}])
    filler = Filler()
    _feed(filler, ("resource", res), ("datum", datum))
    np.testing.assert_array_equal(filler.fill_datum(datum["datum_id"]), np.ones((2, 2)))


def test_ad_hdf5_frames_per_point(run: Any, tmp_path: Path) -> None:
    frames = np.arange(6 * 4 * 5, dtype="uint16").reshape(6, 4, 5)
    _write_ad_hdf5(tmp_path / "cam.h5", frames)
    one = _resource(run, "AD_HDF5", str(tmp_path), "cam.h5", {"frame_per_point": 1}).resource_doc
    two = _resource(run, "AD_HDF5", str(tmp_path), "cam.h5", {"frame_per_point": 2}).resource_doc
    d1 = _datums(one, [{"point_number": i} for i in range(6)])
    d2 = _datums(two, [{"point_number": i} for i in range(3)])
    filler = Filler()
    _feed(filler, ("resource", one), ("resource", two), *(("datum", d) for d in d1 + d2))
    for i, d in enumerate(d1):
        got = filler.fill_datum(d["datum_id"])
        assert got.shape == (4, 5) and got.dtype == np.uint16  # one frame: squeezed
        np.testing.assert_array_equal(got, frames[i])
    for i, d in enumerate(d2):
        np.testing.assert_array_equal(filler.fill_datum(d["datum_id"]), frames[2 * i : 2 * i + 2])
    # An open file would refuse to be truncated: close() must have released it.
    with pytest.raises(OSError):
        h5py.File(tmp_path / "cam.h5", "w")
    filler.close()
    h5py.File(tmp_path / "cam.h5", "w").close()


def test_generic_hdf5(run: Any, tmp_path: Path) -> None:
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["/entry/I0"] = np.array([1.5, 2.5, 3.5])
        f["/entry/spectra"] = np.arange(12).reshape(3, 4)
    i0 = _resource(run, "HDF5", str(tmp_path), "data.h5", {"dataset": "/entry/I0"}).resource_doc
    sp = _resource(run, "HDF5", str(tmp_path), "data.h5", {"dataset": "/entry/spectra"})
    datums = _datums(i0, [{"index": 2}]) + _datums(sp.resource_doc, [{"index": 1}])
    with Filler() as filler:
        _feed(filler, ("resource", i0), ("resource", sp.resource_doc))
        _feed(filler, *(("datum", d) for d in datums))
        value = filler.fill_datum(datums[0]["datum_id"])
        assert isinstance(value, np.ndarray) and value.shape == () and value == 3.5
        np.testing.assert_array_equal(filler.fill_datum(datums[1]["datum_id"]), [4, 5, 6, 7])


def _stream_setup(run: Any, tmp_path: Path, uri_prefix: str, rows: np.ndarray) -> Any:
    with h5py.File(tmp_path / "stream.h5", "w") as f:
        f["/entry/det"] = rows
    descriptor = run.compose_descriptor(
        name="primary",
        data_keys={"det": {"source": "sim", "dtype": "array", "shape": [2, 2], "external": "STREAM:"}},
    ).descriptor_doc
    bundle = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="application/x-hdf5",
        data_key="det",
        uri=f"{uri_prefix}{tmp_path / 'stream.h5'}",
        parameters={"dataset": "/entry/det", "chunk_shape": [1, 2, 2]},
    )
    return descriptor, bundle


@pytest.mark.parametrize("prefix", ["file://localhost", "file://"])
def test_stream_resource_two_stream_datums(run: Any, tmp_path: Path, prefix: str) -> None:
    rows = np.arange(5 * 4, dtype=float).reshape(5, 2, 2)
    descriptor, bundle = _stream_setup(run, tmp_path, prefix, rows)
    # The bundle's composer, not the deprecated module-level compose_stream_datum.
    first = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 3}, seq_nums={"start": 1, "stop": 4}, descriptor=descriptor
    )
    second = bundle.compose_stream_datum(
        indices={"start": 3, "stop": 5}, seq_nums={"start": 4, "stop": 6}, descriptor=descriptor
    )
    with Filler() as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        _feed(filler, ("stream_datum", first), ("stream_datum", second))
        np.testing.assert_array_equal(filler.fill_stream_datum(first), rows[:3])
        np.testing.assert_array_equal(filler.fill_stream_datum(second), rows[3:])
        assert filler.stream_data_key(second) == "det"


def test_stream_datum_several_rows_per_event(run: Any, tmp_path: Path) -> None:
    """As bluesky-tiled-plugins reads it: indices count events, the descriptor's shape is one event's."""
    rows = np.arange(6 * 4, dtype=float).reshape(6, 2, 2)
    with h5py.File(tmp_path / "stream.h5", "w") as f:
        f["/entry/det"] = rows
    descriptor = run.compose_descriptor(
        name="primary",
        data_keys={"det": {"source": "sim", "dtype": "array", "shape": [2, 2, 2], "external": "STREAM:"}},
    ).descriptor_doc
    bundle = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="application/x-hdf5",
        data_key="det",
        uri=f"file://localhost{tmp_path / 'stream.h5'}",
        parameters={"dataset": "/entry/det"},
    )
    doc = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 3}, seq_nums={"start": 1, "stop": 4}, descriptor=descriptor
    )
    second = bundle.compose_stream_datum(
        indices={"start": 1, "stop": 3}, seq_nums={"start": 2, "stop": 4}, descriptor=descriptor
    )
    odd = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 6}, seq_nums={"start": 1, "stop": 4}, descriptor=descriptor
    )
    too_far = bundle.compose_stream_datum(
        indices={"start": 3, "stop": 4}, seq_nums={"start": 4, "stop": 5}, descriptor=descriptor
    )
    with Filler() as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        np.testing.assert_array_equal(filler.fill_stream_datum(doc), rows.reshape(3, 2, 2, 2))
        np.testing.assert_array_equal(filler.fill_stream_datum(second), rows[2:].reshape(2, 2, 2, 2))
        with pytest.raises(DatumIndexError, match="indices 0:6 onto seq_nums 1:4"):
            filler.fill_stream_datum(odd)
        with pytest.raises(DatumIndexError, match=r"rows 6:8 .* which has 6 \(shape \(6, 2, 2\)\)"):
            filler.fill_stream_datum(too_far)


def test_stream_datum_whose_file_cannot_hold_the_declared_shape(run: Any, tmp_path: Path) -> None:
    with h5py.File(tmp_path / "stream.h5", "w") as f:
        f["/entry/det"] = np.zeros((4, 3, 5))
    descriptor = run.compose_descriptor(
        name="primary",
        data_keys={"det": {"source": "sim", "dtype": "array", "shape": [2, 3, 4], "external": "STREAM:"}},
    ).descriptor_doc
    bundle = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="application/x-hdf5",
        data_key="det",
        uri=f"file://localhost{tmp_path / 'stream.h5'}",
        parameters={"dataset": "/entry/det"},
    )
    doc = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2}, descriptor=descriptor
    )
    with Filler() as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        with pytest.raises(FillError) as info:
            filler.fill_stream_datum(doc)
    text = str(info.value)
    assert bundle.stream_resource_doc["uid"] in text and "stream.h5" in text
    assert "(4, 3, 5)" in text and "[2, 3, 4]" in text


def test_filled_from_a_real_run_engine(tmp_path: Path) -> None:
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import SynSignalWithRegistry

    shots = itertools.count()

    def image() -> np.ndarray:
        return np.full((5, 6), float(next(shots)))

    img = SynSignalWithRegistry(image, name="img", save_path=str(tmp_path))
    loop = asyncio.new_event_loop()
    RE = RunEngine({}, context_managers=[], loop=loop)
    docs: list[tuple[str, dict[str, Any]]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        RE(count([img], num=3))
    finally:
        _close_loop(loop)
    names = [name for name, _ in docs]
    assert names.count("resource") == 1 and names.count("datum") == 3
    with Filler() as filler:
        for name, doc in docs:
            filler(name, doc)
        events = [doc for name, doc in docs if name == "event"]
        values = [filler.fill_datum(e["data"]["img"]) for e in events]
    # SynSignal evaluates func once at construction, so the shots read are 1, 2, 3.
    for value, expected in zip(values, [1.0, 2.0, 3.0], strict=True):
        np.testing.assert_array_equal(value, np.full((5, 6), expected))


# --- registries --------------------------------------------------------------------------


def test_unknown_spec_message(run: Any, tmp_path: Path) -> None:
    res = _resource(run, "TIFF_XYZ", str(tmp_path), "x", {}).resource_doc
    (datum,) = _datums(res, [{"index": 0}])
    filler = Filler()
    _feed(filler, ("resource", res), ("datum", datum))
    with pytest.raises(UnknownHandler) as info:
        filler.fill_datum(datum["datum_id"])
    text = str(info.value)
    assert "'TIFF_XYZ'" in text and res["uid"] in text
    assert "'AD_HDF5'" in text and "'NPY_SEQ'" in text  # what is registered
    assert 'scandeck.handlers.register_handler("TIFF_XYZ", cls)' in text
    assert isinstance(info.value, KeyError) and isinstance(info.value, ScandeckError)


def test_unknown_mimetype_message(run: Any, tmp_path: Path) -> None:
    bundle = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="image/tiff",
        data_key="det",
        uri="file:///x.tif",
        parameters={},
    )
    doc = bundle.compose_stream_datum(indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2})
    filler = Filler()
    _feed(filler, ("stream_resource", bundle.stream_resource_doc))
    with pytest.raises(UnknownHandler) as info:
        filler.fill_stream_datum(doc)
    text = str(info.value)
    assert "'image/tiff'" in text and bundle.stream_resource_doc["uid"] in text
    assert "'application/x-hdf5'" in text
    assert 'scandeck.handlers.register_stream_handler("image/tiff", cls)' in text
    with pytest.raises(UnknownHandler, match="registered specs"):
        get_handler("NOPE")  # no resource uid to name


def test_register_overwrite_and_entry_points(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    class Mine:
        def __init__(self, path: str, **kwargs: Any) -> None: ...

        def __call__(self, index: int) -> None: ...

    register_handler("MINE", Mine)
    register_handler("MINE", Mine)  # the same class again is fine
    with pytest.raises(ScandeckError, match="overwrite=True"):
        register_handler("MINE", handlers.NpySeqHandler)
    register_handler("MINE", handlers.NpySeqHandler, overwrite=True)
    assert get_handler("MINE") is handlers.NpySeqHandler
    with pytest.raises(TypeError):
        register_handler("BAD", "not a class")  # type: ignore[arg-type]

    good = EntryPoint("EP_SPEC", "scandeck.handlers:HDF5DatasetHandler", "scandeck.handlers")
    broken = EntryPoint("EP_BROKEN", "no_such_module_xyz:Nope", "scandeck.handlers")
    hdf5 = EntryPoint("text/x-mine", "scandeck.handlers:HDF5StreamHandler", "scandeck.stream_handlers")
    eps = {"scandeck.handlers": [good, broken], "scandeck.stream_handlers": [hdf5]}
    monkeypatch.setattr(scandeck.registry, "entry_points", lambda group: eps.get(group, []))
    assert "EP_SPEC" not in handlers.registered_handlers()["specs"]  # loaded lazily ...
    assert get_handler("EP_SPEC") is handlers.HDF5DatasetHandler  # ... on the first miss
    assert "EP_SPEC" in handlers.registered_handlers()["specs"]
    assert get_stream_handler("text/x-mine") is handlers.HDF5StreamHandler
    with pytest.raises(ScandeckError, match="EP_BROKEN.*failed to load"):
        get_handler("EP_BROKEN")


def test_handler_instances_are_cached(clean_registry: None, run: Any, tmp_path: Path) -> None:
    built: list[str] = []

    class Counting:
        def __init__(self, path: str, scale: float) -> None:
            built.append(path)
            self.scale = scale

        def __call__(self, index: int) -> np.ndarray:
            return np.array([index * self.scale])

    res = _resource(run, "COUNTING", "/data", "f", {"scale": 2.0}).resource_doc
    datums = _datums(res, [{"index": i} for i in range(3)])
    filler = Filler(handlers={"COUNTING": Counting}, root_map={"/data": str(tmp_path)})
    _feed(filler, ("resource", res), *(("datum", d) for d in datums))
    assert [filler.fill_datum(d["datum_id"])[0] for d in datums] == [0.0, 2.0, 4.0]
    assert built == [f"{tmp_path}/f"]  # built once, with the root remapped


# --- errors ------------------------------------------------------------------------------


def test_unknown_datum_and_unseen_resources(run: Any, tmp_path: Path) -> None:
    res = _resource(run, "NPY_SEQ", str(tmp_path), "stem", {}).resource_doc
    (datum,) = _datums(res, [{"index": 0}])
    filler = Filler()
    with pytest.raises(DatumNotFound, match="'nope/0' was never declared.*'datum_page'"):
        filler.fill_datum("nope/0")
    filler("datum", datum)  # its resource was never fed
    with pytest.raises(ResourceNotFound, match=f"resource '{res['uid']}'.*'resource' document"):
        filler.fill_datum(datum["datum_id"])
    _, bundle = _stream_setup(run, tmp_path, "file://localhost", np.zeros((1, 2, 2)))
    doc = bundle.compose_stream_datum(indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2})
    with pytest.raises(ResourceNotFound, match="'stream_resource' document"):
        filler.fill_stream_datum(doc)


def test_missing_files_name_path_and_resource(run: Any, tmp_path: Path) -> None:
    npy = _resource(run, "NPY_SEQ", str(tmp_path), "gone", {}).resource_doc
    h5 = _resource(run, "AD_HDF5", str(tmp_path), "gone.h5", {"frame_per_point": 1}).resource_doc
    datums = _datums(npy, [{"index": 7}]) + _datums(h5, [{"point_number": 0}])
    filler = Filler()
    _feed(filler, ("resource", npy), ("resource", h5), *(("datum", d) for d in datums))
    for datum, res, path in zip(datums, [npy, h5], ["gone_7.npy", "gone.h5"], strict=True):
        with pytest.raises(ExternalFileMissing) as info:
            filler.fill_datum(datum["datum_id"])
        assert str(tmp_path / path) in str(info.value) and res["uid"] in str(info.value)
        assert "root_map" in str(info.value)
        assert info.value.path == str(tmp_path / path) and info.value.resource_uid == res["uid"]
        assert isinstance(info.value, FileNotFoundError)
    stream = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="application/x-hdf5",
        data_key="det",
        uri=f"file://localhost{tmp_path / 'gone_stream.h5'}",
        parameters={"dataset": "/d"},
    )
    _feed(filler, ("stream_resource", stream.stream_resource_doc))
    doc = stream.compose_stream_datum(indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2})
    with pytest.raises(ExternalFileMissing) as info:
        filler.fill_stream_datum(doc)
    assert str(tmp_path / "gone_stream.h5") in str(info.value)
    assert stream.stream_resource_doc["uid"] in str(info.value)


def test_indices_out_of_range(run: Any, tmp_path: Path) -> None:
    _write_ad_hdf5(tmp_path / "cam.h5", np.zeros((2, 3, 3)))
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["/x"] = np.arange(3)
    ad = _resource(run, "AD_HDF5", str(tmp_path), "cam.h5", {"frame_per_point": 1}).resource_doc
    gen = _resource(run, "HDF5", str(tmp_path), "data.h5", {"dataset": "/x"}).resource_doc
    datums = _datums(ad, [{"point_number": 2}]) + _datums(gen, [{"index": 3}])
    filler = Filler()
    _feed(filler, ("resource", ad), ("resource", gen), *(("datum", d) for d in datums))
    with pytest.raises(DatumIndexError, match=r"rows 2:3 .* which has 2"):
        filler.fill_datum(datums[0]["datum_id"])
    with pytest.raises(DatumIndexError, match=r"index 3 .*which has 3.*try again later"):
        filler.fill_datum(datums[1]["datum_id"])
    descriptor, bundle = _stream_setup(run, tmp_path, "file://localhost", np.zeros((2, 2, 2)))
    doc = bundle.compose_stream_datum(
        indices={"start": 1, "stop": 4}, seq_nums={"start": 2, "stop": 5}, descriptor=descriptor
    )
    _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
    with pytest.raises(DatumIndexError, match=r"rows 1:4 .*which has 2") as info:
        filler.fill_stream_datum(doc)
    assert isinstance(info.value, IndexError)
    filler.close()


def test_h5py_missing(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_ad_hdf5(tmp_path / "cam.h5", np.zeros((1, 2, 2)))
    res = _resource(run, "AD_HDF5", str(tmp_path), "cam.h5", {"frame_per_point": 1}).resource_doc
    (datum,) = _datums(res, [{"point_number": 0}])
    filler = Filler()
    _feed(filler, ("resource", res), ("datum", datum))
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ScandeckError, match=r"'h5py'.*pip install 'scandeck\[hdf5\]'"):
        filler.fill_datum(datum["datum_id"])


def test_resource_the_handler_cannot_use(run: Any, tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["/x"] = np.arange(3)
    no_kw = _resource(run, "HDF5", str(tmp_path), "d.h5", {}).resource_doc
    wrong = _resource(run, "HDF5", str(tmp_path), "d.h5", {"dataset": "/y"}).resource_doc
    datums = _datums(no_kw, [{"index": 0}]) + _datums(wrong, [{"index": 0}])
    with Filler() as filler:
        _feed(filler, ("resource", no_kw), ("resource", wrong), *(("datum", d) for d in datums))
        with pytest.raises(FillError, match="HDF5DatasetHandler .*cannot be built.*'dataset'"):
            filler.fill_datum(datums[0]["datum_id"])
        with pytest.raises(FillError, match="has no dataset '/y'"):
            filler.fill_datum(datums[1]["datum_id"])


def test_paths_and_uris() -> None:
    win = {"root": "C:\\data", "resource_path": "run1\\a", "path_semantics": "windows"}
    assert resource_path(win) == "C:\\data\\run1\\a"
    assert resource_path(win, {"C:\\data": "D:\\copy"}) == "D:\\copy\\run1\\a"
    posix = {"root": "/", "resource_path": "tmp/a", "path_semantics": "posix"}
    assert resource_path(posix) == "/tmp/a"
    assert uri_to_path("file://localhost/a/b%20c.h5") == "/a/b c.h5"
    assert uri_to_path("/plain/path.h5") == "/plain/path.h5"
    with pytest.raises(FillError, match="only file:// URIs"):
        uri_to_path("s3://bucket/x.h5")
    with pytest.raises(FillError, match="on host 'beamline-ioc'"):
        uri_to_path("file://beamline-ioc/data/x.h5")


@pytest.mark.parametrize("multiplier", ["x", [2], 2.5, 0])
def test_a_bad_multiplier_is_a_fill_error(run: Any, tmp_path: Path, multiplier: Any) -> None:
    descriptor, bundle = _stream_setup(run, tmp_path, "file://localhost", np.zeros((4, 2, 2)))
    bundle.stream_resource_doc["parameters"]["multiplier"] = multiplier
    doc = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2}, descriptor=descriptor
    )
    with Filler() as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        with pytest.raises(FillError, match="multiplier"):
            filler.fill_stream_datum(doc)


def test_a_stream_handler_whose_shape_is_unusable_is_a_fill_error(run: Any, tmp_path: Path) -> None:
    class Odd:
        def __init__(self, uri: str, **parameters: Any) -> None:
            pass

        def shape(self) -> tuple[int, ...]:  # a method, not the property the Filler reads
            return (4, 2, 2)

        def __call__(self, start: int, stop: int) -> np.ndarray:
            return np.zeros((stop - start, 2, 2))

    descriptor, bundle = _stream_setup(run, tmp_path, "file://localhost", np.zeros((4, 2, 2)))
    doc = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2}, descriptor=descriptor
    )
    with Filler(stream_handlers={"application/x-hdf5": Odd}) as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        with pytest.raises(FillError, match="cannot tell the shape"):
            filler.fill_stream_datum(doc)


def test_a_files_path_with_control_characters_is_escaped_in_errors(run: Any, tmp_path: Path) -> None:
    bundle = event_model.compose_stream_resource(
        start=run.start_doc,
        mimetype="application/x-hdf5",
        data_key="det",
        uri=f"file://localhost{tmp_path}/\x1b]0;pwned\x07.h5",
        parameters={"dataset": "/d"},
    )
    descriptor = run.compose_descriptor(
        name="primary",
        data_keys={"det": {"source": "s", "dtype": "array", "shape": [2], "external": "STREAM:"}},
    ).descriptor_doc
    doc = bundle.compose_stream_datum(
        indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2}, descriptor=descriptor
    )
    with Filler() as filler:
        _feed(filler, ("descriptor", descriptor), ("stream_resource", bundle.stream_resource_doc))
        with pytest.raises(ExternalFileMissing) as info:
            filler.fill_stream_datum(doc)
    assert "\x1b" not in str(info.value) and "\\u001b]0;pwned\\u0007.h5" in str(info.value)
