"""HTML displays of catalogs, runs and streams, and the live progress bar of a run."""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from event_model import compose_run

import scandeck
from scandeck.catalog import Catalog, Stream
from scandeck.cli.format import run_rows
from scandeck.listing import local_time, local_time_offset
from scandeck.notebook.display import (
    STATUS_CLASSES,
    catalog_html,
    install_reprs,
    run_html,
    runs_table_html,
    status_badge,
    stream_html,
    uninstall_reprs,
)
from scandeck.notebook.progress import (
    EventRate,
    RunProgress,
    eta_seconds,
    format_duration,
    progress_label,
)

T0 = 1_700_000_000.0  # start times of the fixture's runs are T0 + 100 * scan_id

DATA_KEYS = {
    "det": {"source": "sim:det", "dtype": "number", "shape": [], "units": "counts"},
    "motor": {"source": "sim:motor", "dtype": "number", "shape": [], "units": "mm"},
    "img": {"source": "sim:img", "dtype": "array", "shape": [5, 7], "dtype_numpy": "<u2"},
}


def write_run(
    writer: Any,
    scan_id: int,
    *,
    events: int = 3,
    exit_status: str | None = "success",
    **md: Any,
) -> str:
    """A run started at T0 + 100 * scan_id with ``events`` primary events and a baseline stream.

    ``exit_status=None`` leaves it without a stop document.
    """
    t = T0 + 100 * scan_id
    bundle = compose_run(metadata={"scan_id": scan_id, "plan_name": "count", **md}, time=t)
    writer("start", bundle.start_doc)
    baseline = bundle.compose_descriptor(
        name="baseline",
        data_keys={"temp": {"source": "sim:temp", "dtype": "number", "shape": []}},
        time=t,
    )
    writer("descriptor", baseline.descriptor_doc)
    writer("event", baseline.compose_event(data={"temp": 290.0}, timestamps={"temp": t}, seq_num=1, time=t))
    primary = bundle.compose_descriptor(name="primary", data_keys=DATA_KEYS, time=t)
    writer("descriptor", primary.descriptor_doc)
    for i in range(events):
        data = {"det": float(i), "motor": i / 10, "img": [[0] * 7] * 5}
        writer(
            "event",
            primary.compose_event(
                data=data,
                timestamps={k: t + i for k in data},
                seq_num=i + 1,
                time=t + i,
            ),
        )
    if exit_status is not None:
        writer("stop", bundle.compose_stop(exit_status=exit_status, reason="", time=t + 10.0))
    return bundle.start_doc["uid"]


@pytest.fixture
def cat() -> Iterator[Catalog]:
    """Seven runs: one running (not the newest), one incomplete, the rest finished in every way."""
    catalog = scandeck.open_catalog(f"memory://display-{uuid.uuid4().hex}")
    writer = catalog.writer()
    write_run(writer, 1, sample="<script>alert('x')</script>", operator="O'Brien & Co")
    write_run(
        writer,
        2,
        plan_name="scan",
        num_points=10,
        events=4,
        exit_status=None,
        purpose="a long purpose that a table cell cannot show in full",
    )
    write_run(writer, 3, exit_status="abort", sample={"name": "Ni", "composition": "Ni"})
    write_run(writer, 4, exit_status="fail")
    dying = catalog.writer()
    write_run(dying, 5, exit_status=None)
    dying.close()  # the writer went away without a stop document: incomplete
    write_run(writer, 6, plan_name="scan", num_points=3, events=3)
    write_run(writer, 7, events=0)
    yield catalog
    catalog.close()


def row_scan_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr[^>]*><td class="sd-num">(\d+)</td>', html)]


def row_of(html: str, scan_id: int) -> str:
    match = re.search(rf'<tr[^>]*><td class="sd-num">{scan_id}</td>.*?</tr>', html)
    assert match, f"no row for scan {scan_id}"
    return match.group(0)


# -- run tables --------------------------------------------------------------------------------


def test_runs_table_running_first_then_newest(cat: Catalog) -> None:
    html = runs_table_html(cat.summaries())
    assert row_scan_ids(html) == [2, 7, 6, 5, 4, 3, 1]
    assert 'class="sd-row-running"' in row_of(html, 2)
    # The table reorders whatever it is given.
    assert row_scan_ids(runs_table_html(list(reversed(cat.summaries())))) == [2, 7, 6, 5, 4, 3, 1]


def test_runs_table_escapes_metadata(cat: Catalog) -> None:
    html = runs_table_html(cat.summaries(), title="<b>beamtime</b> & co")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "O&#x27;Brien &amp; Co" in html
    assert "<b>beamtime</b>" not in html and "&lt;b&gt;beamtime&lt;/b&gt; &amp; co" in html
    # A value cut for its cell keeps its whole text, escaped, in a tooltip.
    row = row_of(html, 2)
    assert 'title="a long purpose that a table cell cannot show in full"' in row
    assert ">a long purpose that a tab...<" in row
    # A sample dict shows its name, the whole dict in the tooltip (quotes escaped).
    assert 'title="{&quot;name&quot;: &quot;Ni&quot;, &quot;composition&quot;: &quot;Ni&quot;}">Ni<' in html


def test_runs_table_badges(cat: Catalog) -> None:
    html = runs_table_html(cat.summaries())
    expected = {2: "running", 1: "success", 3: "abort", 4: "fail", 5: "incomplete"}
    for scan_id, status in expected.items():
        assert f'<span class="sd-badge {STATUS_CLASSES[status]}">' in row_of(html, scan_id), status
    assert '<span class="sd-dot"></span>running' in row_of(html, 2)
    assert "sd-dot" not in row_of(html, 1)
    assert status_badge("<odd>") == '<span class="sd-badge sd-unknown">&lt;odd&gt;</span>'
    # fail and incomplete share red; each status has its colour rule.
    assert ".sd-fail, .scandeck-html .sd-incomplete { color: var(--jp-error-color1" in html
    for cls, var in [("sd-running", "info"), ("sd-success", "success"), ("sd-abort", "warn")]:
        assert f".{cls} {{ color: var(--jp-{var}-color1, #" in html


def test_runs_table_columns_match_the_cli(cat: Catalog) -> None:
    summaries = cat.summaries()
    html = runs_table_html(summaries)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", html.split("</thead>")[0])
    assert header == run_rows(summaries)[0]
    assert header == ["scan_id", "uid", "plan", "sample", "operator", "purpose", "status", "events", "start time"]
    # Without any operator, sample or purpose, those columns go.
    plain = [s for s in summaries if s.scan_id in (4, 6)]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", runs_table_html(plain))
    assert header == ["scan_id", "uid", "plan", "status", "events", "start time"]


def test_runs_table_cells(cat: Catalog) -> None:
    html = runs_table_html(cat.summaries())
    running = cat.search("scan_id == 2").summaries()[0]
    row = row_of(html, 2)
    assert f'<code title="{running.uid}">{running.uid[:8]}</code>' in row
    assert '<td class="sd-num">5 / 10</td>' in row  # 4 primary + 1 baseline event of 10 points
    assert f'<td><span title="{local_time_offset(T0 + 200)}">{local_time(T0 + 200)}</span></td>' in row
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", local_time(T0 + 200))
    # A finished run shows its event count alone, even with num_points.
    assert '<td class="sd-num">4</td>' in row_of(html, 6)


def test_footer_only_when_truncated(cat: Catalog) -> None:
    summaries = cat.summaries()
    assert 'class="sd-footer"' not in runs_table_html(summaries)
    assert 'class="sd-footer"' not in runs_table_html(summaries, total=len(summaries))
    assert '<div class="sd-footer">3 of 7 runs</div>' in runs_table_html(summaries[:3], total=7)
    empty = runs_table_html([], total=0, title="nothing")
    assert '<div class="sd-empty">no runs</div>' in empty and "<table" not in empty


def test_catalog_html(cat: Catalog) -> None:
    html = catalog_html(cat, n=3)
    assert row_scan_ids(html) == [2, 7, 6]
    # A snapshot: the footer says when it was taken (a live listing replaces that note).
    assert re.search(r'<div class="sd-footer">3 of 7 runs · as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d</div>', html)
    assert f"Catalog {cat.name} · 7 runs" in html
    assert "of 7 runs" not in catalog_html(cat)  # 10 rows by default: all seven
    assert '<div class="sd-footer">updated live</div>' in catalog_html(cat, note="updated live")
    assert row_scan_ids(catalog_html(cat, n=None)) == [2, 7, 6, 5, 4, 3, 1]
    narrowed = catalog_html(cat.search("plan_name == 'scan'"))
    assert row_scan_ids(narrowed) == [2, 6]
    assert "where plan_name == &quot;scan&quot; · 2 runs" in narrowed


def test_html_is_scoped_and_themed(cat: Catalog) -> None:
    for html in (catalog_html(cat), run_html(cat[-1]), stream_html(cat[-1].primary)):
        assert html.startswith('<div class="scandeck-html"><style>') and html.endswith("</div>")
        style = html.split("<style>")[1].split("</style>")[0]
        for rule in re.findall(r"^([^{}\s@][^{}]*)\{", style, flags=re.M):
            assert all(sel.strip().startswith(".scandeck-html") for sel in rule.split(",")), rule
        # Every theme variable has a fallback for front ends without JupyterLab's.
        assert re.findall(r"var\(--jp-[\w-]+\)", style) == []
        assert "var(--jp-" in style


# -- one run -----------------------------------------------------------------------------------


def test_run_html_finished(cat: Catalog) -> None:
    run = cat[1]
    html = run_html(run)
    assert f"<code>{run.uid}</code>" in html
    assert '<div class="sd-title">scan 1 · count</div>' in html
    assert '<span class="sd-badge sd-success">success</span>' in html
    assert f">{local_time(T0 + 100)}</span></td>" in html
    assert "<th>duration</th><td>10 s <span" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "O&#x27;Brien &amp; Co" in html
    # Streams in arrival order, the first open, with event counts and data keys.
    assert html.index("<b>baseline</b>") < html.index("<b>primary</b>")
    assert '<details class="sd-stream" open><summary><b>baseline</b>' in html
    assert (
        '<details class="sd-stream"><summary><b>primary</b> <span class="sd-muted">· 3 events · 3 data keys'
    ) in html
    assert "· 1 event · 1 data key<" in html
    cells = "</td><td>".join
    assert f"<tr><td>{cells(['<code>det</code>', 'number', 'scalar', 'counts', 'sim:det'])}</td></tr>" in html
    assert f"<tr><td>{cells(['<code>img</code>', 'array (&lt;u2)', '5 x 7', '-', 'sim:img'])}</td></tr>" in html
    assert "<th>external</th>" not in html  # no key is external


def test_run_html_running_and_others(cat: Catalog) -> None:
    running = run_html(cat[2])
    assert '<span class="sd-badge sd-running"><span class="sd-dot"></span>running</span>' in running
    assert "<th>events</th><td>5 / 10</td>" in running
    assert re.search(r"<th>duration</th><td>[^<]+ so far</td>", running)
    incomplete = run_html(cat[5])
    assert '<span class="sd-badge sd-incomplete">incomplete</span>' in incomplete
    assert "<th>duration</th><td>-</td>" in incomplete
    assert '<span class="sd-badge sd-abort">abort</span>' in run_html(cat[3])


def test_run_html_without_streams() -> None:
    catalog = scandeck.open_catalog(f"memory://display-{uuid.uuid4().hex}")
    bundle = compose_run(metadata={"plan_name": "count"})
    writer = catalog.writer()
    writer("start", bundle.start_doc)
    html = run_html(catalog[-1])
    assert '<div class="sd-empty">no streams yet</div>' in html
    assert f'<div class="sd-title">run {bundle.start_doc["uid"][:8]} · count</div>' in html
    assert "<th>scan_id</th><td>-</td>" in html
    catalog.close()


def test_stream_html(cat: Catalog) -> None:
    run = cat[6]
    html = stream_html(run.primary)
    assert f'<div class="sd-title" title="run {run.uid}">stream primary of scan 6 · 3 events</div>' in html
    assert "<th>units</th>" in html and "<td>mm</td>" in html


# -- IPython -----------------------------------------------------------------------------------


def fake_shell() -> SimpleNamespace:
    """Just what install_reprs touches, so the test process gets no global IPython shell."""
    from IPython.core.formatters import DisplayFormatter

    return SimpleNamespace(display_formatter=DisplayFormatter())


def test_install_reprs_in_a_display_formatter(cat: Catalog) -> None:
    shell = fake_shell()
    run = cat[-1]
    assert "text/html" not in shell.display_formatter.format(run)[0]
    assert install_reprs(shell) is True
    assert install_reprs(shell) is True  # again: harmless
    for obj in (cat, run, run.primary):
        data, _ = shell.display_formatter.format(obj)
        assert data["text/plain"] == repr(obj)
        assert data["text/html"].startswith('<div class="scandeck-html">')
    assert "Catalog " in shell.display_formatter.format(cat)[0]["text/html"]
    assert uninstall_reprs(shell) is True
    assert "text/html" not in shell.display_formatter.format(run)[0]


def test_a_failing_html_view_leaves_the_plain_repr(caplog: pytest.LogCaptureFixture) -> None:
    shell = fake_shell()
    install_reprs(shell)
    broken = Stream(SimpleNamespace(uid="0" * 32, scan_id=1), "primary", [])  # no source
    with caplog.at_level(logging.WARNING, logger="scandeck.notebook.display"):
        assert shell.display_formatter.formatters["text/html"](broken) is None
    assert "no HTML view of this Stream (AttributeError" in caplog.text


def test_install_reprs_outside_ipython() -> None:
    assert install_reprs() is False  # no running shell in the test process
    assert uninstall_reprs() is False


SHELL_PROBE = """
import sys
from IPython.core.interactiveshell import InteractiveShell
from scandeck.notebook.display import install_reprs

shell = InteractiveShell.instance()
assert install_reprs(), "no shell found"
assert "scandeck.catalog" not in sys.modules, "registered by importing"
import scandeck
from event_model import compose_run

cat = scandeck.open_catalog("memory://probe")
bundle = compose_run(metadata={"scan_id": 42, "plan_name": "count", "sample": "<b>"})
cat.writer()("start", bundle.start_doc)
data, _ = shell.display_formatter.format(cat[-1])
assert data["text/plain"].startswith("<Run scan_id=42"), data
assert "scan 42 · count" in data["text/html"] and "&lt;b&gt;" in data["text/html"], data
assert "Catalog memory://probe" in shell.display_formatter.format(cat)[0]["text/html"]
print("ok")
"""


def test_install_reprs_in_an_interactive_shell(tmp_path: Any) -> None:
    # A subprocess: InteractiveShell.instance() would stay the process's get_ipython() for
    # every later test. IPYTHONDIR keeps its profile and history out of the home directory.
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    proc = subprocess.run(
        [sys.executable, "-c", SHELL_PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


# -- import budget -----------------------------------------------------------------------------

BUDGET_PROBE = """
import sys
import scandeck.notebook.display
from scandeck.notebook.progress import RunProgress

progress = RunProgress({"uid": "abc", "scan_id": 1, "plan_name": "count", "num_points": 5, "time": 0.0})
progress.update(2, "running", now=1.0)
progress.label
print(" ".join(m for m in sys.argv[1:] if m in sys.modules))
"""


def test_display_imports_stay_light() -> None:
    heavy = ["numpy", "pandas", "xarray", "ipywidgets", "holoviews", "bokeh", "redis"]
    proc = subprocess.run(
        [sys.executable, "-c", BUDGET_PROBE, *heavy], capture_output=True, text=True, check=True, timeout=120
    )
    assert proc.stdout.split() == []


# -- progress arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "now", "done", "total", "expected"),
    [
        (0.0, 10.0, 25, 100, 30.0),  # 2.5 events/s, 75 to go
        (0.0, 10.0, 0, 100, None),  # no events yet: no rate
        (0.0, 0.0, 5, 100, None),  # no time elapsed
        (10.0, 5.0, 5, 100, None),  # clock behind the start document
        (0.0, 10.0, 5, None, None),  # unknown total
        (0.0, 10.0, 5, 0, None),  # num_points 0 is no total
        (0.0, 10.0, 100, 100, 0.0),  # done
        (0.0, 10.0, 120, 100, 0.0),  # more events than points (a baseline stream, say)
        (None, 10.0, 5, 100, None),  # no start time
        (0.0, math.nan, 5, 100, None),
    ],
)
def test_eta_seconds(
    start: float | None, now: float, done: int, total: int | None, expected: float | None
) -> None:
    assert eta_seconds(start, now, done, total) == expected


def test_eta_seconds_with_a_rate() -> None:
    assert eta_seconds(0.0, 10.0, 50, 100, rate=10.0) == 5.0
    assert eta_seconds(None, 10.0, 50, 100, rate=10.0) == 5.0  # the rate is enough
    assert eta_seconds(0.0, 10.0, 50, 100, rate=0.0) is None
    assert eta_seconds(0.0, 10.0, 0, 100, rate=2.0) == 50.0


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.34, 9.96, 12.4, 59.6, 61, 3599, 3600, 7325)] == [
        "0.0 s",
        "0.3 s",
        "10 s",
        "12 s",
        "1 min 00 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "2 h 02 min",
    ]
    assert format_duration(0.2, decimals=False) == "1 s"  # an ETA rounds up
    assert format_duration(12.1, decimals=False) == "13 s"
    assert [format_duration(s) for s in (None, -1, math.inf, math.nan)] == ["-"] * 4


def test_progress_label() -> None:
    label = progress_label(scan_id=42, plan_name="count", done=37, total=100, eta=11.6)
    assert label == "scan 42 · count · 37/100 events · ETA 12 s"
    assert progress_label(scan_id=42, plan_name="count", done=37, total=100) == "scan 42 · count · 37/100 events"
    assert (
        progress_label(scan_id=None, uid="0123456789", plan_name=None, done=0, total=None)
        == "run 01234567 · 0 events"
    )
    assert (
        progress_label(scan_id=3, plan_name="scan", done=7, total=10, status="abort", eta=5.0)
        == "scan 3 · scan · 7/10 events · abort"
    )


def test_event_rate_smooths() -> None:
    rate = EventRate(start_time=0.0, tau=10.0)
    assert rate.observe(0, now=0.5) is None  # nothing yet
    assert rate.observe(10, now=10.0) == pytest.approx(1.0)  # seeded: 10 events in 10 s
    assert rate.observe(20, now=20.0) == pytest.approx(1.0)  # steady
    # A burst moves it part of the way, not all of it.
    burst = rate.observe(30, now=21.0)
    assert 1.0 < burst < 10.0
    # A long quiet spell brings it down.
    assert rate.observe(30, now=60.0) < 0.1
    assert rate.observe(30, now=60.0) == rate.rate  # no time passed: unchanged


# -- RunProgress -------------------------------------------------------------------------------

START = {"uid": "a3f9c2d1-0000", "scan_id": 42, "plan_name": "count", "num_points": 100, "time": 1000.0}


def test_run_progress_known_length() -> None:
    progress = RunProgress(START)
    progress.update(25, "running", now=1010.0)
    assert progress.label == "scan 42 · count · 25/100 events · ETA 30 s"
    box = progress.widget
    assert progress.widget is box  # made once
    bar, label = box.children
    assert (bar.value, bar.max, bar.bar_style, label.value) == (25, 100, "", progress.label)
    progress.update(50, "running", now=1020.0)
    assert (bar.value, bar.max) == (50, 100)
    assert label.value.startswith("scan 42 · count · 50/100 events · ETA ")
    progress.update(100, "success", now=1040.0)
    assert (bar.value, bar.bar_style) == (100, "success")
    assert label.value == "scan 42 · count · 100/100 events · success"
    assert progress.eta is None


def test_run_progress_more_events_than_points() -> None:
    progress = RunProgress({**START, "num_points": 3})
    progress.update(5, "running", now=1001.0)  # baseline events count too
    bar = progress.widget.children[0]
    assert (bar.value, bar.max) == (3, 3)
    assert progress.label == "scan 42 · count · 5/3 events · ETA 0 s"


def test_run_progress_unknown_length() -> None:
    progress = RunProgress({"uid": "b" * 32, "plan_name": "count", "time": 1000.0})
    bar, label = progress.widget.children
    assert (bar.value, bar.max, bar.bar_style) == (1, 1, "info")  # full, indeterminate
    assert label.value == f"run {'b' * 8} · count · 0 events"
    progress.update(7, "running", now=1005.0)
    assert label.value == f"run {'b' * 8} · count · 7 events"  # no ETA without a length
    progress.update(9, "abort", now=1006.0)
    assert (bar.value, bar.max, bar.bar_style) == (1, 1, "warning")
    assert label.value.endswith("9 events · abort")


@pytest.mark.parametrize(
    ("status", "style"),
    [("success", "success"), ("abort", "warning"), ("fail", "danger"), ("incomplete", "danger")],
)
def test_run_progress_final_styles(status: str, style: str) -> None:
    progress = RunProgress(START)
    progress.update(40, status, now=1050.0)
    assert progress.widget.children[0].bar_style == style
    assert progress.widget.children[1].value.endswith(f"40/100 events · {status}")


def test_run_progress_from_a_running_run(cat: Catalog) -> None:
    progress = RunProgress.from_run(cat[2])
    assert (progress.total, progress.num_events, progress.status) == (10, 5, "running")
    assert progress.widget.children[0].value == 5
    assert progress.label.startswith("scan 2 · scan · 5/10 events")
    bundle = progress._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_run_progress_lowers_its_max_without_clipping() -> None:
    progress = RunProgress(START)
    progress.update(80, "running", now=1010.0)
    bar = progress.widget.children[0]
    progress.total = 90  # a plan may correct its length; the bar follows on the next update
    progress.update(85, "running", now=1011.0)
    assert (bar.value, bar.max) == (85, 90)


@pytest.mark.parametrize("module", ["scandeck.listing", "scandeck.notebook.progress"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
