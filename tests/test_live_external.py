"""External data in the live table and in reads of running runs: every order of documents.

Documents come from event-model's composers (the orders a RunEngine does not emit but
other producers do: stream data after its events, one stream key ahead of another).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from document_equivalence import rebuilds_documents
from event_model import compose_run

from scandeck.pipeline.table import LiveTable
from scandeck.reading import STREAM_DOCUMENTS, collect, columns


def _stream_run(tmp_path: Path, *, keys: dict[str, np.ndarray], declared: dict[str, list[int]]) -> Any:
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as f:
        for key, data in keys.items():
            f[f"/entry/{key}"] = data
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "x": {"dtype": "number", "shape": [], "source": "x"},
            **{
                k: {
                    "dtype": "array" if declared[k] not in ([], [1]) else "number",
                    "shape": declared[k],
                    "source": k,
                    "external": "STREAM:",
                }
                for k in keys
            },
        },
    )
    sres = {
        k: bundle.compose_stream_resource(
            mimetype="application/x-hdf5",
            uri=f"file://localhost{path}",
            data_key=k,
            parameters={"dataset": f"/entry/{k}"},
        )
        for k in keys
    }
    return bundle, desc, sres


def _datum(sres: Any, desc: Any, start: int, stop: int) -> dict[str, Any]:
    return sres.compose_stream_datum(
        indices={"start": start, "stop": stop},
        seq_nums={"start": start + 1, "stop": stop + 1},
        descriptor=desc.descriptor_doc,
    )


def test_stream_data_that_arrives_after_its_events_lands_on_them(tmp_path):
    frames = np.arange(4 * 2 * 3, dtype=float).reshape(4, 2, 3)
    bundle, desc, sres = _stream_run(tmp_path, keys={"cam": frames}, declared={"cam": [2, 3]})
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", sres["cam"].stream_resource_doc),
    ]
    docs += [
        ("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 0.0}, seq_num=i + 1)) for i in range(4)
    ]
    docs += [("stream_datum", _datum(sres["cam"], desc, 0, 4)), ("stop", bundle.compose_stop())]
    table = LiveTable("primary", fill=["cam"])
    for name, doc in docs:
        table.add(name, doc)
    table.close()
    df = table.frame()
    np.testing.assert_array_equal(np.stack(df["cam"].to_numpy()), frames)
    assert list(df["x"]) == [0.0, 1.0, 2.0, 3.0] and table.take_errors() == []


def test_a_running_fly_read_waits_for_every_stream_key(tmp_path):
    """One key ahead of the other: rows appear once both reached them, and never go away."""
    img = np.arange(4 * 2, dtype=float).reshape(4, 2)
    total = np.arange(4.0)
    bundle, desc, sres = _stream_run(
        tmp_path, keys={"img": img, "total": total}, declared={"img": [2], "total": []}
    )
    head = [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        *(("stream_resource", s.stream_resource_doc) for s in sres.values()),
    ]
    seen = []
    docs = head + [("stream_datum", _datum(sres["total"], desc, 0, 4))]
    for more in (
        [],
        [("stream_datum", _datum(sres["img"], desc, 0, 2))],
        [("stream_datum", _datum(sres["img"], desc, 2, 4))],
    ):
        docs += more
        uids = {desc.descriptor_doc["uid"]}
        table = collect(((i, n, d) for i, (n, d) in enumerate(docs) if n in STREAM_DOCUMENTS), uids)
        _, seq, cols = columns(table)
        seen.append(list(seq))
        if len(seq):
            np.testing.assert_array_equal(cols["total"], total[: len(seq)])
    assert seen == [[], [1, 2], [1, 2, 3, 4]]


def test_an_external_scalar_with_a_gap_is_nan_not_none(tmp_path):
    total = np.arange(3.0) + 10
    bundle, desc, sres = _stream_run(tmp_path, keys={"total": total}, declared={"total": [1]})
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", sres["total"].stream_resource_doc),
    ]
    docs += [
        ("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 0.0}, seq_num=i + 1)) for i in range(4)
    ]
    docs += [("stream_datum", _datum(sres["total"], desc, 0, 3))]  # the fourth never came
    uids = {desc.descriptor_doc["uid"]}
    _, _, cols = columns(collect(((i, n, d) for i, (n, d) in enumerate(docs)), uids))
    assert cols["total"].dtype == float
    np.testing.assert_array_equal(cols["total"], [10.0, 11.0, 12.0, np.nan])


@pytest.mark.parametrize("fill", ["cam", ["cam"]])
def test_fill_names_a_key_as_a_string_or_a_list(tmp_path, fill):
    frames = np.ones((2, 2, 3))
    bundle, desc, sres = _stream_run(tmp_path, keys={"cam": frames}, declared={"cam": [2, 3]})
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", sres["cam"].stream_resource_doc),
        ("stream_datum", _datum(sres["cam"], desc, 0, 2)),
        ("stop", bundle.compose_stop()),
    ]
    table = LiveTable("primary", fill=fill)
    for name, doc in docs:
        table.add(name, doc)
    table.close()
    assert "cam" in table.keys and len(table) == 2
    uids = {desc.descriptor_doc["uid"]}
    read = collect(((i, n, d) for i, (n, d) in enumerate(docs) if n in STREAM_DOCUMENTS), uids, fill=fill)
    _, _, cols = columns(read)
    np.testing.assert_array_equal(cols["cam"], frames)


def test_a_live_pipeline_keeps_no_frames_it_handed_on(sqlite_cat, RE, hw):
    """live().stream(fill=...) and plot.image read every frame but hold none after emitting it."""
    import bluesky.plans as bp
    from test_live import wait_for

    from scandeck.livestream import Live

    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.count([hw.img], num=6))
    with Live(sqlite_cat[uid], catalog=sqlite_cat) as live:
        pages = live.stream(pages=True, fill=True).sink_to_list()
        assert wait_for(lambda: sum(len(p["seq_num"]) for p in pages) == 6)
        (feed,) = live._feeds.values()
        table = feed.reader.follower.state.table
        assert len(table) == 6 and table.held == 0  # handed on and dropped: the table keeps no frames
    assert all(f is not None and f.shape == (10, 10) for p in pages for f in p["img"])


def test_events_count_once_per_stream_across_its_descriptors(cat, tmp_path):
    """A stream's seq_num counts across its descriptors (a configuration change mid-scan)."""
    total = np.arange(6.0)
    bundle, first, sres = _stream_run(tmp_path, keys={"total": total}, declared={"total": []})
    second = bundle.compose_descriptor(name="primary", data_keys=first.descriptor_doc["data_keys"])
    writer = cat.writer()
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", first.descriptor_doc),
        ("descriptor", second.descriptor_doc),
        ("stream_resource", sres["total"].stream_resource_doc),
        ("stream_datum", _datum(sres["total"], first, 0, 3)),
        ("stream_datum", _datum(sres["total"], second, 3, 6)),
        ("stop", bundle.compose_stop()),
    ]:
        writer(name, doc)
    run = cat[bundle.start_doc["uid"]]
    assert run.num_events == 6 and len(run.primary) == 6
    np.testing.assert_array_equal(run.primary.read()["total"].values, total)


@pytest.mark.parametrize(
    "indices,seq_nums",
    [
        ((0, 2**62), (1, 2**62 + 1)),  # consistent but absurd: readers would make 2**62 rows
        ((0, 5), (1, 6)),  # consistent: accepted, and reading says the file is short
        ((0, 3), (1, 3)),  # three events of data for two seq_nums
        ((2, 1), (3, 2)),  # backwards
        ((-1, 1), (1, 3)),  # before the file's start
    ],
)
def test_stream_datum_ranges_must_count_the_same_events(cat, tmp_path, indices, seq_nums):
    from scandeck.exceptions import InvalidDocument

    bundle, desc, sres = _stream_run(tmp_path, keys={"total": np.arange(3.0)}, declared={"total": []})
    writer = cat.writer()
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", sres["total"].stream_resource_doc),
    ]:
        writer(name, doc)
    doc = sres["total"].compose_stream_datum(
        indices={"start": indices[0], "stop": indices[1]},
        seq_nums={"start": seq_nums[0], "stop": seq_nums[1]},
        descriptor=desc.descriptor_doc,
    )
    if indices == (0, 5):
        writer("stream_datum", doc)  # accepted; reading it is an error naming the file, not a hang
        from scandeck.exceptions import DatumIndexError, StoreError

        # Tiled's server reads the file: it says the file holds fewer rows than the structure advertises.
        tiled = rebuilds_documents(cat)
        error, words = (StoreError, "advertises shape") if tiled else (DatumIndexError, "frames.h5")
        with pytest.raises(error, match=words):
            cat[bundle.start_doc["uid"]].primary.read()
    else:
        with pytest.raises(InvalidDocument, match="must be ranges from 0 up") as info:
            writer("stream_datum", doc)
        assert info.value.field == "indices"
    writer("stop", bundle.compose_stop())
    assert cat[bundle.start_doc["uid"]].status == "success"
