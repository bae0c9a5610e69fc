"""The run table: column names resolved, rows with their states, ``Catalog.table``,
``scandeck tag|comment|annotations|ls --columns`` and ``%scans --columns``.

Runs come from a real RunEngine into an embedded store under tmp_path with a columns
file beside it; the CLI runs as a subprocess and the magic in a real kernel.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bluesky.plans as bp
import pandas as pd
import pytest
from event_model import compose_run
from test_cli import scandeck

import scandeck as sd
from scandeck.catalog import Catalog
from scandeck.exceptions import FactsNotSupported, InvalidQuery
from scandeck.runtable import frame
from scandeck.runtable.columns import columns_for
from scandeck.runtable.model import Cell
from scandeck.runtable.rows import resolve_columns, table_rows
from scandeck.sources.memory import MemorySource
from scandeck.sources.protocol import RunFacts, Source

COLUMNS = """
import scandeck


@scandeck.column("peak_cen", title="Peak centre", units="mm")
def peak_cen(run):
    return scandeck.peaks(run).cen
"""
HOSTILE = "\x1b]0;pwned\x07<b>x</b>"


def write_world(store: Path, RE: Any, hw: Any) -> dict[str, Any]:  # noqa: N803
    """Four finished scans (oldest first; samples on two), a running run, and cells in every state."""
    (store / "columns.py").parent.mkdir(parents=True, exist_ok=True)
    (store / "columns.py").write_text(COLUMNS)
    cat = sd.open_catalog(store)
    RE.subscribe(cat.writer())
    samples: list[dict[str, str]] = [{"sample": "S0"}, {"sample": "S1"}, {}, {}]
    done = [RE(bp.scan([hw.det], hw.motor, -1, 1 + i, 5), **md)[0] for i, md in enumerate(samples)]
    bundle = compose_run(metadata={"plan_name": "count"})
    writer = cat.writer()
    writer("start", bundle.start_doc)
    running = bundle.start_doc["uid"]
    spec = columns_for(cat)["peak_cen"]
    ok, stale, failed, pending = done
    cat.source.put_cells(ok, {"peak_cen": Cell(0.25, spec.code_hash)})
    cat.source.put_cells(stale, {"peak_cen": Cell(0.5, "edited-since")})
    cat.source.put_cells(failed, {"peak_cen": Cell(None, spec.code_hash, "error", "ValueError: no <peak>")})
    cat.source.put_cells(running, {"peak_cen": Cell(0.125, spec.code_hash, final=False)})
    cat[ok].annotate(comment="bad beam after 12:40", tags=["Ni", HOSTILE])
    cat[ok].annotate(comment="second")
    return {"cat": cat, "writer": writer, "ok": ok, "stale": stale, "failed": failed, "pending": pending,
            "running": running, "spec": spec}  # fmt: skip


@pytest.fixture
def world(tmp_path: Path, RE, hw) -> Iterator[dict[str, Any]]:  # noqa: N803
    w = write_world(tmp_path / "store", RE, hw)
    yield w
    w["writer"].close()
    w["cat"].close()


def test_column_names_resolve_in_every_form_and_unknown_ones_say_the_closest(world: dict[str, Any]) -> None:
    cat = world["cat"]
    refs = resolve_columns(
        cat, "peak_cen,columns.duration,tags,comments,uid,scan_id,time,status,plan_name,start.sample,"
        "stop.exit_status,data.motor.max"
    )  # fmt: skip
    assert [(r.name, r.kind) for r in refs] == [
        ("peak_cen", "computed"), ("duration", "computed"), ("tags", "tags"), ("comments", "comments"),
        ("uid", "run"), ("scan_id", "run"), ("time", "run"), ("status", "run"), ("plan_name", "start"),
        ("sample", "start"), ("stop.exit_status", "stop"), ("data.motor.max", "data"),
    ]  # fmt: skip
    assert refs[0].header == "peak_cen (mm)" and refs[0].title == "Peak centre"
    for bad, said in [
        ("smaple", "no column smaple (did you mean sample?)"),
        ("columns.peak_centre", "no column columns.peak_centre (did you mean columns.peak_cen?)"),
        ("pek_cen", "did you mean peak_cen?"),
        ("data.motor.mean", "data.<key>.min or data.<key>.max"),
        ("peak_cen,columns.peak_cen", "asked for twice"),
    ]:
        with pytest.raises(InvalidQuery, match=re.escape(said)):
            resolve_columns(cat, bad)


def test_rows_carry_each_cells_state(world: dict[str, Any]) -> None:
    cat = world["cat"]
    summaries = {s.uid: s for s in cat.summaries()}
    names = ["peak_cen", "duration", "sample", "stop.exit_status", "tags", "comments", "data.motor.max"]
    rows = {r.uid: r for r in table_rows(cat, list(summaries.values()), names)}
    states = {key: rows[world[key]].cells["peak_cen"] for key in ("ok", "stale", "failed", "pending", "running")}
    assert states["ok"].value == 0.25 and states["ok"].state == "ok"
    assert states["stale"].value == 0.5 and states["stale"].state == "stale"
    assert (states["failed"].value, states["failed"].state) == (None, "failed")
    assert states["failed"].error == "ValueError: no <peak>"
    assert (states["pending"].value, states["pending"].state) == (None, "pending")
    assert (states["running"].value, states["running"].state) == (0.125, "running")
    ok = rows[world["ok"]].cells
    s = summaries[world["ok"]]
    assert ok["duration"].value == pytest.approx(s.stop["time"] - s.start["time"]) and ok["duration"].state == "ok"
    assert ok["tags"].value == ["Ni", HOSTILE] and ok["comments"].value == "bad beam after 12:40\nsecond"
    assert ok["data.motor.max"].value == 1.0 and ok["stop.exit_status"].value == "success"
    assert ok["sample"].value == "S0"
    running = rows[world["running"]].cells
    assert running["stop.exit_status"].state == "pending" and running["duration"].value is None
    assert running["data.motor.max"].state == "missing"
    assert rows[world["pending"]].cells["sample"].state == "missing"


def test_one_cells_and_one_facts_read_per_page(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cat = world["cat"]
    calls: dict[str, list[int]] = {"cells": [], "facts": []}
    for name in calls:
        real = getattr(cat.source, name)

        def counted(uids: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            calls[_name].append(len(uids))
            return _real(uids, *args)

        monkeypatch.setattr(cat.source, name, counted)
    table_rows(cat, cat.summaries(), ["peak_cen", "tags", "data.det.max"])
    assert calls == {"cells": [5], "facts": [5]}
    monkeypatch.setattr(frame, "PAGE", 2)
    calls["cells"].clear()
    calls["facts"].clear()
    df = cat.table(["peak_cen", "tags"], compute=False)
    assert len(df) == 5 and calls == {"cells": [2, 2, 1], "facts": [2, 2, 1]}
    assert list(df.index) == [s.uid for s in cat.summaries()]  # newest first, each run once


def test_catalog_table_is_a_dataframe_with_states(world: dict[str, Any]) -> None:
    cat = world["cat"]
    df = cat.table()
    assert df.index.name == "uid" and list(df.index) == [s.uid for s in cat.summaries()]
    assert list(df.columns[:4]) == ["scan_id", "time", "plan_name", "status"]
    assert "peak_cen" in df.columns and "duration" in df.columns and df.columns[-1] == "tags"
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype)
    summary = cat[world["ok"]].summary
    assert df.loc[world["ok"], "time"].timestamp() == pytest.approx(summary.time, abs=1e-6)
    states, errors = df.attrs["states"], df.attrs["errors"]
    assert states.shape == df.shape and list(states.columns) == list(df.columns)
    assert states.loc[world["stale"], "peak_cen"] == "stale" and df.loc[world["stale"], "peak_cen"] == 0.5
    assert states.loc[world["failed"], "peak_cen"] == "failed" and pd.isna(df.loc[world["failed"], "peak_cen"])
    assert errors.loc[world["failed"], "peak_cen"] == "ValueError: no <peak>"
    assert df.attrs["units"]["peak_cen"] == "mm"
    assert df.loc[world["ok"], "tags"] == ["Ni", HOSTILE]
    assert df["peak_cen"].dtype == float
    picked = cat.search('tags contains "Ni"').table(["peak_cen"], limit=3)
    assert list(picked.index) == [world["ok"]] and picked.loc[world["ok"], "peak_cen"] == 0.25
    assert len(cat.table(["scan_id"], limit=2)) == 2
    with pytest.raises(InvalidQuery, match="did you mean sample"):
        cat.table(["smaple"])


class DocumentsOnly:
    """A source that keeps documents and nothing else, as a third-party transport might:
    the whole Source protocol (delegated to a memory store), no RunFacts."""

    def __init__(self) -> None:
        self._store = MemorySource()
        self.uri = "docs-only://lab"

    def start(self) -> None:
        self._store.start()

    def close(self) -> None:
        self._store.close()

    def writer(self) -> Any:
        return self._store.writer()

    def count(self, query: Any) -> int:
        return self._store.count(query)

    def search(self, query: Any, **kwargs: Any) -> Any:
        return self._store.search(query, **kwargs)

    def get(self, uid: str) -> Any:
        return self._store.get(uid)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> Any:
        return self._store.find_prefix(prefix, limit=limit)

    def documents(self, uid: str, **kwargs: Any) -> Any:
        return self._store.documents(uid, **kwargs)

    def descriptors(self, uid: str) -> Any:
        return self._store.descriptors(uid)

    def stream_counts(self, uid: str) -> Any:
        return self._store.stream_counts(uid)

    def latest_seq(self) -> int:
        return self._store.latest_seq()

    def runs_since(self, seq: int, *, limit: int | None = None) -> Any:
        return self._store.runs_since(seq, limit=limit)

    def change_token(self) -> object:
        return self._store.change_token()

    def wait(self, token: object, timeout: float) -> bool:
        return self._store.wait(token, timeout)


def test_a_store_without_facts_says_so(RE, hw) -> None:  # noqa: N803
    source = DocumentsOnly()
    assert isinstance(source, Source) and not isinstance(source, RunFacts)
    cat = Catalog(source)
    RE.subscribe(cat.writer())
    RE(bp.count([hw.det], num=2))
    run = cat[-1]
    for call in (lambda: run.annotate(tags=["Ni"]), lambda: run.tags, lambda: cat.table(["tags"])):
        with pytest.raises(FactsNotSupported, match=r"the store docs-only://lab cannot keep comments, tags"):
            call()
    df = cat.table()  # what the index row gives: no tags column, no stored cells
    assert "tags" not in df.columns and df.loc[run.uid, "events"] == 2 and df.loc[run.uid, "duration"] > 0


# -- the command line ------------------------------------------------------------------------


def test_cli_tag_comment_annotations(world: dict[str, Any], tmp_path: Path) -> None:
    store, data, uid = str(tmp_path / "store"), tmp_path / "data", world["pending"]
    env = {"SCANDECK_AUTHOR": "cli-user"}
    out = scandeck("tag", uid[:8], "Cu", "redo", "--catalog", store, data=data, env=env)
    assert out.returncode == 0, out.stderr
    assert "tags Cu, redo" in out.stdout
    out = scandeck("tag", uid[:8], "redo", "--remove", "--catalog", store, data=data)
    assert out.returncode == 0 and "tags Cu" in out.stdout
    out = scandeck("tag", uid[:8], "nope", "--remove", "--catalog", store, data=data)
    assert out.returncode == 2 and "has no tag 'nope'; its tags: 'Cu'" in out.stderr
    out = scandeck("comment", uid[:8], "beam", HOSTILE, "--catalog", store, data=data, env=env)
    assert out.returncode == 0, out.stderr
    out = scandeck("annotations", uid[:8], "--catalog", store, data=data)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\\u001b]0;pwned\\u0007<b>x</b>" in out.stdout
    assert re.search(r"cli-user@\S+\s+tag\s+Cu", out.stdout) and "current tags: Cu" in out.stdout
    assert [n.text for n in world["cat"][uid].annotations] == ["Cu", "redo", "redo", f"beam {HOSTILE}"]


def test_cli_ls_columns_marks_states_and_escapes(world: dict[str, Any], tmp_path: Path) -> None:
    store, data = str(tmp_path / "store"), tmp_path / "data"
    out = scandeck("ls", "--columns", "peak_cen,tags,sample", "--catalog", store, data=data)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:6] == ["scan_id", "uid", "plan", "peak_cen", "(mm)", "tags"]
    assert lines[0].count("sample") == 1
    table = lines[1:6]  # five runs, then the legend
    row = {world[k][:8]: line for k in ("ok", "stale", "failed", "pending", "running") for line in table
           if world[k][:8] in line}  # fmt: skip
    assert "0.25 " in row[world["ok"][:8]] and "Ni, \\u001b]0;pwned\\u0007<..." in row[world["ok"][:8]]
    assert "0.5*" in row[world["stale"][:8]] and " ! " in row[world["failed"][:8]]
    assert " ? " in row[world["pending"][:8]] and "0.125~" in row[world["running"][:8]]
    assert "\x1b" not in out.stdout
    legend = "\n".join(lines)
    for text in ("* stale", "! failed", "~ computed while the run was running", "? not computed yet"):
        assert text in legend
    assert f"! peak_cen of run {world['failed'][:8]}: ValueError: no <peak>" in legend
    out = scandeck("ls", "--columns", "peak_cen", "--json", "-n", "0", "--catalog", store, data=data)
    docs = {d["uid"]: d["columns"]["peak_cen"] for d in map(json.loads, out.stdout.splitlines())}
    assert docs[world["failed"]] == {"value": None, "state": "failed", "error": "ValueError: no <peak>"}
    assert docs[world["stale"]] == {"value": 0.5, "state": "stale", "error": None}
    out = scandeck("ls", "--columns", "pek_cen", "--catalog", store, data=data)
    assert out.returncode == 2 and "no column pek_cen (did you mean peak_cen?)" in out.stderr


# -- the notebook ------------------------------------------------------------------------------


def test_scans_columns_in_a_kernel(kernel: Any, store: Path, RE, hw) -> None:  # noqa: N803
    w = write_world(store, RE, hw)
    try:
        reply = kernel.execute("%scans --columns peak_cen,tags")
        (shown,) = [m for m in reply["outputs"] if m["msg_type"] == "display_data"]
        page = shown["content"]["data"]["text/html"]
        assert re.search(r"<th[^>]*>peak_cen \(mm\)</th>", page) and "<th>tags</th>" in page
        assert html.escape("Ni, \\u001b]0;pwned\\u0007<b>x</b>") in page and "<b>x</b>" not in page
        assert re.search(r'class="sd-stale" title="stale: [^"]*">0.5</span>', page)
        assert 'class="sd-failed" title="failed: ValueError: no &lt;peak&gt;"' in page
        assert re.search(r'class="sd-pending" title="computed while the run was running">0.125<', page)
        assert "italic: stale" in page and "failed (hover for the error)" in page
        with pytest.raises(AssertionError, match=r"did you mean peak_cen\?"):
            kernel.execute("%scans --columns pek_cen")
    finally:
        w["writer"].close()
        w["cat"].close()
