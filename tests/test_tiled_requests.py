"""How many HTTP requests a Tiled catalog's listings make (issue 14: a first page cost 2 per run).

A run's summary counts its events from its stop document; when the stop counts none
(a run of start and stop documents only, or of stream data only) the streams are asked.
A run listed without children has no streams: its listing says so, and asking cost two
requests per run (a lookup and the stream listing), 41 for a page of 20. A real
RunEngine writes the same runs into a Tiled container and a SQLite store; the summaries
must agree, and the requests are counted on the Tiled client's own HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from event_model import compose_run
from ophyd.sim import det

import scandeck
from scandeck.query import Key


def _start_and_stop() -> Iterator[Any]:
    yield from bps.open_run()
    yield from bps.close_run()


@pytest.fixture
def cats(tiled_server: Any, tmp_path: Any) -> Iterator[tuple[scandeck.Catalog, scandeck.Catalog, list[str]]]:
    """(Tiled catalog, SQLite catalog) of the same runs, and the log of the Tiled client's requests."""
    tiled = scandeck.open_catalog(tiled_server.new_catalog())
    local = scandeck.open_catalog(str(tmp_path / "store"))
    RE = RunEngine({}, context_managers=[])  # noqa: N806 - bluesky's name
    for cat in (tiled, local):
        RE.subscribe(cat.writer())
    RE(bp.count([det], 3), sample="Ni")
    for _ in range(4):
        RE(_start_and_stop(), sample="Ni")
    RE(bp.count([det], 2), sample="Cu")
    RE(_start_and_stop(), sample="Cu")
    requests: list[str] = []

    def log(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    tiled.source.container.context.http_client.event_hooks["request"].append(log)
    yield tiled, local, requests
    tiled.close()
    local.close()


def _rows(summaries: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.uid, s.num_events, s.num_documents, s.status) for s in summaries]


def _counted(requests: list[str], read: Any) -> tuple[Any, int]:
    requests.clear()
    answer = read()
    return answer, len(requests)


def test_a_first_page_of_runs_without_streams_is_one_request(cats: Any) -> None:
    tiled, local, requests = cats
    query = Key("sample") == "Ni"
    page, n = _counted(requests, lambda: tiled.search(query).summaries(limit=20))
    assert _rows(page) == _rows(local.search(query).summaries(limit=20))
    assert n == 1, requests  # the search's page carries each run's metadata and its number of streams
    page, n = _counted(requests, lambda: tiled.summaries(limit=20))
    assert _rows(page) == _rows(local.summaries(limit=20)) and n == 1, requests


def test_the_newest_run_and_a_lookup_by_uid_are_one_request_each(cats: Any) -> None:
    tiled, local, requests = cats
    newest, n = _counted(requests, lambda: tiled[-1])
    assert (newest.uid, newest.num_events) == (local[-1].uid, local[-1].num_events)
    assert n == 1, requests
    again, n = _counted(requests, lambda: tiled[newest.uid])
    assert again.uid == newest.uid and again.num_events == newest.num_events and n == 1, requests


def test_runs_whose_stop_counts_nothing_but_have_streams_are_still_counted_from_them(cats: Any) -> None:
    # a running run (no stop yet) with an event: its listing shows a stream, which is asked
    tiled, local, requests = cats
    bundle = compose_run(metadata={"sample": "Zn"})
    keys = {"x": {"dtype": "number", "shape": [], "source": "s"}}
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    writers = [tiled.writer(), local.writer()]  # kept: a writer let go marks its open run incomplete
    for writer in writers:
        writer("start", bundle.start_doc)
        writer("descriptor", desc.descriptor_doc)
        writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 1.0}, seq_num=1))
    query = Key("sample") == "Zn"
    page, n = _counted(requests, lambda: tiled.search(query).summaries(limit=20))
    mine = [(s.uid, s.num_events, s.status) for s in local.search(query).summaries(limit=20)]
    assert [(s.uid, s.num_events, s.status) for s in page] == mine and mine[0][1:] == (1, "running")
    assert n > 1, requests  # the stream was asked, not assumed empty
