"""External data read back through the catalog: resources, datums, stream resources."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from event_model import compose_run

from scandeck.exceptions import UnknownHandler


@pytest.mark.not_on(
    "tiled",
    reason=(
        "the test's HDF5 file holds float32 under a descriptor without dtype_numpy: Tiled reads it "
        "as float64 and its server refuses (500)"
    ),
)
def test_stream_resource_hdf5_rows_join_their_events(cat, tmp_path):
    frames = np.arange(6 * 4 * 5, dtype=np.float32).reshape(6, 4, 5)
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as f:
        f["/entry/data"] = frames
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "cam": {"dtype": "array", "shape": [4, 5], "source": "cam", "external": "STREAM:"},
            "x": {"dtype": "number", "shape": [], "source": "x"},
        },
    )
    sres = bundle.compose_stream_resource(
        mimetype="application/x-hdf5",
        uri=f"file://localhost{path}",
        data_key="cam",
        parameters={"dataset": "/entry/data"},
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("stream_resource", sres.stream_resource_doc)
    for block in range(2):
        rows = range(block * 3, block * 3 + 3)
        for i in rows:
            writer("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 1.0}, seq_num=i + 1))
        writer(
            "stream_datum",
            sres.compose_stream_datum(
                indices={"start": rows.start, "stop": rows.stop},
                seq_nums={"start": rows.start + 1, "stop": rows.stop + 1},
                descriptor=desc.descriptor_doc,
            ),
        )
    writer("stop", bundle.compose_stop())
    ds = cat[-1].primary.read()
    np.testing.assert_array_equal(ds["cam"].values, frames)
    np.testing.assert_array_equal(ds["x"].values, np.arange(6.0))
    assert ds["cam"].dims == ("time", "cam_dim_1", "cam_dim_2")


@pytest.mark.not_on(
    "tiled",
    reason=(
        "Tiled's server reads external data: TiledWriter stores an unknown spec as bytes and the "
        "reader names the key (test_tiled_writer)"
    ),
)
def test_unknown_spec_is_named_in_the_error(cat):
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={"cam": {"dtype": "array", "shape": [2], "source": "c", "external": "FILESTORE:"}},
    )
    res = bundle.compose_resource(spec="MY_DETECTOR_SPEC", root="/", resource_path="nowhere", resource_kwargs={})
    datum = res.compose_datum(datum_kwargs={"index": 0})
    writer = cat.writer()
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("resource", res.resource_doc),
        ("datum", datum),
        ("event", desc.compose_event(data={"cam": datum["datum_id"]}, timestamps={"cam": 1.0}, seq_num=1)),
        ("stop", bundle.compose_stop()),
    ]:
        writer(name, doc)
    with pytest.raises(UnknownHandler, match="MY_DETECTOR_SPEC") as info:
        cat[-1].primary.read()
    assert "NPY_SEQ" in str(info.value)  # lists what is registered
    assert cat[-1].primary.read(fill=False)["cam"].values[0] == datum["datum_id"]
