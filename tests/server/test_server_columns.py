"""The server extension computes the default catalog's columns with no request, and stops doing so with it."""

from __future__ import annotations

import os
import threading

import pytest
from bluesky.plans import scan
from server_support import server_config, until

from scandeck.runtable.columns import columns_for

COLUMNS = """\
import scandeck


@scandeck.column("npts", title="Points")
def npts(run):
    return run.start.get("num_points")
"""


@pytest.fixture
def column_settings():
    return {}


@pytest.fixture
def jp_server_config(paths, column_settings):
    return server_config(paths, **column_settings)


@pytest.fixture
def app(jp_serverapp):
    return jp_serverapp.web_app.settings["scandeck"]


async def test_the_server_fills_cells_of_new_runs_and_stops_its_workers(app, store, paths, RE, hw):
    (paths["store"] / "columns.py").write_text(COLUMNS)
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 6))
    specs = columns_for(store)

    def cells():
        got = store.source.cells([uid]).get(uid, {})
        return set(got) == set(specs) and got

    got = await until(cells, timeout=120, what="the server to compute every column")
    assert got["npts"].value == 6 and got["events"].value == 6 and got["status"].value == "success"
    service = app.column_services.services[""]
    workers = service.pool.pids
    assert workers
    app.column_services.close()  # what the server's stop does
    assert not service.pool.pids
    assert not [t for t in threading.enumerate() if t.name.startswith("scandeck-columns")]
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("column_settings", [{"column_service": False}])
async def test_column_service_false_starts_none(app, store):
    await until(app.column_services.ready.is_set, what="the column services to start")
    assert app.column_services.services == {}
