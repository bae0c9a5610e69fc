"""A plot update of scandeck.plot and a message from the browser never interleave.

JupyterLab sends comm messages to a kernel subshell, so with ipykernel 7 Panel
handles a message from the page on another thread than the one updating our
plots. Panel's handler un-holds the plot's Bokeh document: the changes an update
had made and not yet pushed went to nobody, and the page missed that update (a
live map stayed short of a run's last rows). Here a real Panel rendering of a
HoloViews plot receives a real PATCH-DOC message on another thread in the middle
of an update (between the model change and HoloViews' push).
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest

hv = pytest.importorskip("holoviews")
pn = pytest.importorskip("panel")
splot = pytest.importorskip("scandeck.plot")


def rendered(obj):
    """``obj`` rendered as in a notebook: its held Document, and the comm the page's messages arrive on."""
    from bokeh.document import Document
    from panel.io.state import state

    pane = pn.panel(obj)
    doc, comm = Document(), state._comm_manager.get_server_comm()
    pane._render_mimebundle(pane._render_model(doc, comm), doc, comm)
    (_, client_comm), *_ = pane._comms.values()
    return doc, client_comm


def patch_from_page(doc) -> dict:
    """What the page sends when the browser changes a plot's range (as a comm message's content)."""
    from bokeh.document.events import ModelChangedEvent
    from bokeh.models import Range1d
    from bokeh.protocol import Protocol

    x_range = next(iter(doc.select({"type": Range1d})))
    msg = Protocol().create("PATCH-DOC", [ModelChangedEvent(doc, x_range, "start", 0.5)])
    header, content = json.loads(msg.header_json), json.loads(msg.content_json)
    return {"header": header, "metadata": {}, "content": content, "_buffers": {}}


def test_a_message_from_the_page_waits_until_an_update_is_pushed():
    from bokeh.models import ColumnDataSource

    hv.extension("bokeh")
    pipe = hv.streams.Pipe(data=[])
    doc, client_comm = rendered(hv.DynamicMap(lambda data: hv.Curve(data), streams=[pipe]))
    assert doc.callbacks.hold_value is not None  # Panel holds a notebook's document: changes wait for a push
    source = next(iter(doc.select({"type": ColumnDataSource})))
    message = patch_from_page(doc)
    seen: dict = {}

    def update() -> None:
        source.data = {"x": np.arange(3.0), "y": np.arange(3.0)}  # what HoloViews changes, then pushes
        page = threading.Thread(target=client_comm._on_msg, args=(message,))  # as on a comm subshell
        page.start()
        page.join(0.5)
        seen.update(waiting=page.is_alive(), held=list(doc.callbacks._held_events), page=page)

    splot._send(SimpleNamespace(sends=0), update)  # how every plot of scandeck.plot updates
    seen["page"].join(10)
    assert seen["waiting"], "Panel handled the page's message in the middle of a plot update"
    assert any(getattr(e, "model", None) is source for e in seen["held"]), "the update's change was dropped"
    assert not seen["page"].is_alive()
    assert doc.callbacks.hold_value is not None
