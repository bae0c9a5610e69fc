"""Catalog.table computes the cells no service computed, on first read, in worker processes (issue 15)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from bluesky.plans import scan
from ophyd.sim import det, motor

import scandeck
from scandeck.catalog import Catalog
from scandeck.sources.protocol import RunFacts

COLUMNS = textwrap.dedent(
    """\
    import scandeck


    @scandeck.column("peak_cen", title="Peak centre", units="mm")
    def peak_cen(run):
        return scandeck.peaks(run).cen


    @scandeck.column("broken")
    def broken(run):
        raise ValueError("no beam")
    """
)


def test_a_first_read_computes_and_stores_what_is_missing(sqlite_cat: Catalog, RE) -> None:  # noqa: N803
    (Path(sqlite_cat.source.directory) / "columns.py").write_text(COLUMNS)
    RE.subscribe(sqlite_cat.writer())
    uids = [RE(scan([det], motor, -1 + shift, 1 + shift, 11))[0] for shift in (0.0, 0.5)]
    source = sqlite_cat.source
    assert isinstance(source, RunFacts) and source.cells(uids) == {}  # no service ran

    lazy = sqlite_cat.table(["peak_cen", "broken"], compute=False)
    assert set(lazy.attrs["states"]["peak_cen"]) == {"pending"}
    assert source.cells(uids) == {}  # compute=False computes nothing

    df = sqlite_cat.table(["peak_cen", "broken"])
    for uid in uids:
        expected = scandeck.peaks(sqlite_cat[uid]).cen
        assert df.loc[uid, "peak_cen"] == expected
        assert df.attrs["states"].loc[uid, "peak_cen"] == "ok"
        assert df.attrs["states"].loc[uid, "broken"] == "failed"
        assert "ValueError: no beam" in df.attrs["errors"].loc[uid, "broken"]
    stored = source.cells(uids, ["peak_cen"])
    assert {uid: stored[uid]["peak_cen"].value for uid in uids} == {uid: df.loc[uid, "peak_cen"] for uid in uids}
    assert set(sqlite_cat.search("columns.peak_cen > 0.25").keys()) == {uids[1]}


def test_a_read_only_store_shows_what_it_computed_and_stores_none(tmp_path: Path, RE) -> None:  # noqa: N803
    cat = scandeck.open_catalog(tmp_path / "store")
    (tmp_path / "store" / "columns.py").write_text(COLUMNS)
    RE.subscribe(cat.writer())
    (uid,) = RE(scan([det], motor, -1, 1, 11))
    read_only = scandeck.open_catalog(f"{tmp_path / 'store'}?mode=ro")
    try:
        df = read_only.table(["peak_cen", "broken"])
        assert df.loc[uid, "peak_cen"] == scandeck.peaks(cat[uid]).cen
        assert df.attrs["states"].loc[uid].tolist() == ["ok", "failed"]
        assert "ValueError: no beam" in df.attrs["errors"].loc[uid, "broken"]
    finally:
        read_only.close()
    source = cat.source
    assert isinstance(source, RunFacts) and source.cells([uid]) == {}  # nothing stored
    cat.close()


def test_a_cell_computed_while_its_run_ran_is_computed_again_once_it_ended(sqlite_cat: Catalog) -> None:
    from event_model import compose_run

    from scandeck.runtable.service import compute_now

    (Path(sqlite_cat.source.directory) / "columns.py").write_text(
        COLUMNS + '\n\n@scandeck.column("seen")\ndef seen(run):\n    return run.summary.num_events\n'
    )
    writer = sqlite_cat.writer()
    bundle = compose_run(metadata={"plan_name": "count"})
    uid = bundle.start_doc["uid"]
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
    )
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 0.0}))
    assert compute_now(sqlite_cat, [uid], ["seen"])[uid]["seen"].final is False  # while it runs
    writer("event", desc.compose_event(data={"x": 2.0}, timestamps={"x": 0.0}))
    writer("stop", bundle.compose_stop())
    writer.close()
    assert sqlite_cat.table(["seen"], compute=False).attrs["states"].loc[uid, "seen"] == "running"
    df = sqlite_cat.table(["seen"])
    assert (df.loc[uid, "seen"], df.attrs["states"].loc[uid, "seen"]) == (2, "ok")
    source = sqlite_cat.source
    assert isinstance(source, RunFacts) and source.cells([uid])[uid]["seen"].final
