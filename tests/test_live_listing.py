"""``%scans`` and a shown catalog update in place while runs run, in a real kernel (issue 12).

A real RunEngine in another process writes a run to the store; the kernel is
driven through jupyter_client like JupyterLab (``allow_stdin=True``, cell ids
sent). A listing is a ``display_data`` with a display id; its updates are
``update_display_data`` messages with that id. Under papermill
(``allow_stdin=False``) the listing is a snapshot that says when it was taken.
"""

from __future__ import annotations

import re
from typing import Any

from kernel_harness import KernelSession
from test_kernel_bind import finish, produce

import scandeck


def running_run(store, kernel: KernelSession) -> Any:
    """Wait until the producer's run is in the store with an event; its index row."""
    cat = scandeck.open_catalog(store)
    found: list[Any] = []

    def started() -> bool:
        found[:] = [s for s in cat.summaries(limit=5) if s.status == "running" and s.num_events]
        return bool(found)

    assert kernel.wait_for(started, 60)
    cat.close()
    return found[0]


def shown(reply: dict[str, Any]) -> tuple[str, str]:
    """``(display id, html)`` of the one listing a request displayed."""
    (msg,) = [m for m in reply["outputs"] if m["msg_type"] == "display_data"]
    return msg["content"]["transient"]["display_id"], msg["content"]["data"]["text/html"]


def updates(kernel: KernelSession, display_id: str, after: int = 0) -> list[str]:
    """The HTML of every update of ``display_id`` among the messages from index ``after`` on."""
    with kernel._lock:
        messages = list(kernel.messages[after:])
    return [
        m["content"]["data"]["text/html"]
        for m in messages
        if m["msg_type"] == "update_display_data" and m["content"]["transient"]["display_id"] == display_id
    ]


def footer(html: str) -> str:
    return re.search(r'<div class="sd-footer">(.*?)</div>', html).group(1)


def test_scans_updates_in_place_until_no_run_shown_runs(kernel, store):
    proc = produce(store, "write", str(store), "30", "0.1")
    run = running_run(store, kernel)
    display_id, html = shown(kernel.execute("%scans -n 3", cell_id="scans-cell"))
    assert run.uid[:8] in html and "sd-badge sd-running" in html
    assert footer(html).startswith("live · updated ")
    # In place: the same display, re-read as the run goes on, until it shows the stop.
    assert kernel.wait_for(lambda: any("sd-badge sd-success" in h for h in updates(kernel, display_id)), 60)
    finish(proc)
    seen = updates(kernel, display_id)
    progress = [int(n) for h in seen for n in re.findall(r"(\d+) / 30", h)]
    assert progress == sorted(progress) and len(seen) >= 2, seen  # "N / 30" counted up while running
    final = seen[-1]
    assert "sd-badge sd-success" in final and "sd-badge sd-running" not in final and ">30<" in final
    assert re.fullmatch(r"as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", footer(final)), footer(final)

    # Nothing shown is live any more: a new run in the store does not touch this output.
    mark = len(kernel.messages)
    second = produce(store, "write", str(store), "10", "0.05")
    running_run(store, kernel)
    finish(second)
    kernel.execute("pass")  # a round trip through the kernel's loop after the second run ended
    assert updates(kernel, display_id, after=mark) == []


def test_a_shown_catalog_updates_in_place(kernel, store):
    proc = produce(store, "write", str(store), "20", "0.1")
    run = running_run(store, kernel)
    display_id, html = shown(kernel.execute("%catalog", cell_id="catalog-cell"))
    assert "Catalog " in html and run.uid[:8] in html and "sd-badge sd-running" in html
    assert kernel.wait_for(lambda: any("sd-badge sd-success" in h for h in updates(kernel, display_id)), 60)
    finish(proc)
    assert footer(updates(kernel, display_id)[-1]).startswith("as of ")
    # The magic still gives the Catalog itself to code that assigns it.
    reply = kernel.execute("cat = %catalog\nprint(type(cat).__name__, len(cat))")
    assert kernel.text_of(reply["msg_id"]) == "Catalog 1\n"


def test_running_the_cell_again_stops_its_earlier_listing(kernel, store):
    proc = produce(store, "write", str(store), "40", "0.1")
    running_run(store, kernel)
    first, _ = shown(kernel.execute("%scans", cell_id="again"))
    reply = kernel.execute("%scans", cell_id="again")
    second, _ = shown(reply)
    mark = len(kernel.messages)  # after the second run's idle: the first listing is stopped
    assert kernel.wait_for(lambda: any("sd-badge sd-success" in h for h in updates(kernel, second)), 60)
    finish(proc)
    assert updates(kernel, first, after=mark) == []


def test_under_papermill_a_listing_says_when_it_was_taken(kernel, store):
    proc = produce(store, "write", str(store), "20", "0.1")
    running_run(store, kernel)
    display_id, html = shown(kernel.execute("%scans", allow_stdin=False))
    assert "sd-badge sd-running" in html and footer(html).startswith("as of ")
    finish(proc)
    kernel.execute("pass")
    assert updates(kernel, display_id) == []
