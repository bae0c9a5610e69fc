"""Live plots of followed runs: HoloViews objects that update as rows arrive.

Each function follows one run (``run=``: a Run, uid, uid prefix or scan_id), or
with ``run=None`` the newest run and then each new run as it starts (the plot
is cleared when a new run begins), and returns a HoloViews object fed by a
``hv.streams.Buffer`` (:func:`line`, :func:`table`) or ``hv.streams.Pipe``
(:func:`image`, :func:`map`). Rows are gathered on a background thread and sent on the
kernel's event loop, between user requests, in batches: at most :data:`RATE`
updates per second however fast events come, and always a last one with the
rows that arrived before the run's stop document.

In JupyterLab, load the Bokeh backend once, then show the object as a cell's
last expression; it updates through HoloViews' own comms:

>>> import holoviews as hv                                       # doctest: +SKIP
>>> hv.extension("bokeh")                                        # doctest: +SKIP
>>> import scandeck.plot                                         # doctest: +SKIP
>>> scandeck.plot.line("motor", "det", width=600)                # doctest: +SKIP
>>> scandeck.plot.image("img", run=-1)                           # doctest: +SKIP
>>> scandeck.plot.table()                                        # doctest: +SKIP
>>> scandeck.plot.map("det4")                                    # doctest: +SKIP

:func:`stop` ends a plot's updates (all plots without an argument); they also
end at interpreter exit. ``feed(obj)`` gives a plot's :class:`Feed` (its
:class:`~scandeck.livestream.Live`, counts of rows and sends).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
from holoviews.core.util import disable_constant

from .catalog import Catalog
from .exceptions import NotAGrid
from .livestream import Live
from .offline import enable as _draw_offline

# Before any plot: BokehJS and Panel's JS come inline, not from a CDN (also if hv.extension ran already).
_draw_offline()

__all__ = ["RATE", "Feed", "feed", "image", "line", "map", "stop", "table"]

#: Updates per second, at most, of one plot.
RATE = 30

_feeds: list[Feed] = []
_feeds_lock = threading.Lock()
_ATTR = "_scandeck_feed"


class Feed:
    """What drives one live plot: a :class:`~scandeck.livestream.Live` page stream and its counts.

    ``sends`` counts the updates pushed to the plot's stream (Buffer/Pipe
    ``send`` and ``clear`` calls), ``pages`` the batches received, ``rows`` the
    rows in them, ``runs`` the runs shown.
    """

    def __init__(
        self, run: Any, stream: str, catalog: Catalog | None, *, fill: bool | tuple[str, ...] = False
    ) -> None:
        self.live = Live(run, catalog=catalog, interval=1 / RATE)
        self.stream_name = stream
        self.fill = fill
        self.uid: str | None = None
        self.sends = self.pages = self.rows = self.runs = 0
        self.image: dict[str, Any] | None = None  # image(): latest frame, running sum, frame count
        self._on_page: Callable[[Mapping[str, Any], bool], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Feed {self.stream_name!r}: {self.rows} rows in {self.pages} pages, "
            f"{self.sends} sends, {self.runs} runs, {self.live.failures} failures>"
        )

    def start(self, on_page: Callable[[Mapping[str, Any], bool], None]) -> None:
        """Call ``on_page(page, new_run)`` on the kernel loop for each batch of rows."""
        self._on_page = on_page
        with _feeds_lock:
            _feeds.append(self)
        self.live.stream(self.stream_name, pages=True, fill=self.fill).sink(self._page)
        if self.live.batch:  # papermill saves the output as the cell leaves it: show the whole run now
            self.live.flush()

    def _page(self, page: Mapping[str, Any]) -> None:
        new_run = page["uid"] != self.uid
        if new_run:
            self.uid = page["uid"]
            self.runs += 1
        self.pages += 1
        self.rows += len(page["seq_num"])
        assert self._on_page is not None
        self._on_page(page, new_run)

    def stop(self) -> None:
        self.live.stop()
        with _feeds_lock:
            if self in _feeds:
                _feeds.remove(self)


def feed(obj: Any) -> Feed:
    """The :class:`Feed` behind a plot returned by this module."""
    found = getattr(obj, _ATTR, None)
    if found is None:
        raise ValueError(f"{type(obj).__name__} is not a live plot made by scandeck.plot")
    return found


def stop(obj: Any = None) -> None:
    """Stop updating ``obj`` (a plot of this module), or every live plot."""
    if obj is not None:
        feed(obj).stop()
        return
    with _feeds_lock:
        every = list(_feeds)
    for item in every:
        item.stop()


# -- line ----------------------------------------------------------------------------------


def line(
    x: str,
    y: str,
    *,
    run: Any = None,
    stream: str = "primary",
    catalog: Catalog | None = None,
    length: int = 100_000,
    **opts: Any,
) -> hv.DynamicMap:
    """A live ``hv.Curve`` of ``y`` against ``x`` (data keys, ``seq_num`` or ``time``).

    ``length`` rows are kept (the newest); ``opts`` go to the Curve (``width=600``,
    ``color="red"``, ...).
    """
    columns = [x] if x == y else [x, y]
    buffer = hv.streams.Buffer(
        pd.DataFrame({c: np.array([], dtype=float) for c in columns}), length=length, index=False
    )
    plot = hv.DynamicMap(lambda data: hv.Curve(data, kdims=[x], vdims=[y]), streams=[buffer])
    if opts:
        plot = plot.opts(**opts)
    driver = Feed(run, stream, catalog)

    def on_page(page: Mapping[str, Any], new_run: bool) -> None:
        if new_run and len(buffer.data):
            _send(driver, buffer.clear)  # an empty update: the plot replaces its data, then appends
        if page["seq_num"] and all(c in page for c in columns):
            _send(driver, buffer.send, pd.DataFrame({c: _numbers(page[c]) for c in columns}))

    return _started(plot, driver, on_page)


# -- table ---------------------------------------------------------------------------------


def table(
    *,
    run: Any = None,
    stream: str = "primary",
    catalog: Catalog | None = None,
    columns: Sequence[str] | None = None,
    length: int = 1_000,
    **opts: Any,
) -> hv.DynamicMap:
    """A live ``hv.Table`` of the newest ``length`` rows, newest first.

    ``columns`` default to ``seq_num``, ``time`` and every scalar data key of
    the run (external scalars read from their files; not images); they follow
    each new run's keys.
    """
    fixed = list(columns) if columns is not None else None
    start = fixed or ["seq_num", "time"]
    buffer = hv.streams.Buffer(pd.DataFrame({c: [] for c in start}), length=length, index=False)
    # Newest first; a copy also keeps HoloViews 1.23's TablePlot off its Buffer-streaming
    # path, which fails (no _stream_count) on the second non-empty send.
    plot = hv.DynamicMap(lambda data: hv.Table(data.iloc[::-1]), streams=[buffer])
    if opts:
        plot = plot.opts(**opts)
    driver = Feed(run, stream, catalog)
    shown: list[str] = []

    def on_page(page: Mapping[str, Any], new_run: bool) -> None:
        if new_run or not shown:
            shown[:] = fixed or _scalar_columns(driver, page)
        cols = [c for c in shown if c in page]
        if cols != list(buffer.data.columns):
            with disable_constant(buffer):  # other columns: an empty table of them
                buffer.data = pd.DataFrame({c: [] for c in cols})
            _send(driver, buffer.clear)
        elif new_run and len(buffer.data):
            _send(driver, buffer.clear)
        if page["seq_num"]:
            _send(driver, buffer.send, pd.DataFrame({c: page[c] for c in cols}))

    return _started(plot, driver, on_page)


def _scalar_columns(driver: Feed, page: Mapping[str, Any]) -> list[str]:
    data_keys: dict[str, Any] = {}
    for desc in driver.live.source.descriptors(page["uid"]):
        if desc.get("name", "primary") == driver.stream_name:
            data_keys.update(desc["data_keys"])
    from .documents import is_scalar

    keys = [k for k, info in data_keys.items() if is_scalar(info)]  # external scalars are filled
    return ["seq_num", "time", *keys]


# -- image ---------------------------------------------------------------------------------


def image(
    key: str, *, run: Any = None, stream: str = "primary", catalog: Catalog | None = None, **opts: Any
) -> hv.Layout:
    """The latest frame of ``key`` and the running sum of the run's frames, side by side.

    External frames (``NPY_SEQ``, ``AD_HDF5``, ... resources) are read on the
    following thread through :class:`scandeck.handlers.Filler`. ``opts`` go to
    both Images (``cmap="viridis"``, ``width=300``, ...).
    """
    empty = np.zeros((1, 1))
    pipe = hv.streams.Pipe(data={"latest": empty, "sum": empty, "frames": 0})
    driver = Feed(run, stream, catalog, fill=(key,))
    state: dict[str, Any] = {"latest": empty, "sum": None, "frames": 0}

    def show(which: str) -> Callable[..., hv.Image]:
        def element(data: Mapping[str, Any]) -> hv.Image:
            frame = data[which]
            label = f"{key} latest" if which == "latest" else f"{key} sum of {data['frames']} frames"
            return hv.Image(frame, bounds=(0, 0, frame.shape[1], frame.shape[0]), label=label)

        return element

    latest, total = (hv.DynamicMap(show(which), streams=[pipe]) for which in ("latest", "sum"))
    if opts:
        latest, total = latest.opts(**opts), total.opts(**opts)

    def on_page(page: Mapping[str, Any], new_run: bool) -> None:
        if new_run:
            state.update(latest=empty, sum=None, frames=0)
        frames = [_frame(f) for f in page.get(key, ()) if f is not None]
        for frame in frames:  # one at a time: a batch of large frames is never stacked
            if state["sum"] is None or state["sum"].shape != frame.shape:  # first, or a new shape
                state.update(sum=np.zeros(frame.shape, dtype=np.float64), frames=0)
            state["sum"] += frame
            state["frames"] += 1
        if frames:
            state["latest"] = frames[-1]
        elif not new_run:
            return
        total = state["sum"].copy() if state["sum"] is not None else empty  # the sum grows in place
        _send(driver, pipe.send, {"latest": state["latest"], "sum": total, "frames": state["frames"]})

    driver.image = state
    return _started(latest + total, driver, on_page)


def _frame(value: Any) -> np.ndarray:
    """A 2-D view of one frame (a row of a 1-D detector, stacked planes of a 3-D one)."""
    frame = np.asarray(value)
    if frame.ndim == 0:
        return frame.reshape(1, 1)
    if frame.ndim == 1:
        return frame[np.newaxis]
    return frame.reshape(-1, frame.shape[-1]) if frame.ndim > 2 else frame


# -- map -----------------------------------------------------------------------------------


def map(  # noqa: A001 - scandeck.plot.map, the name users type; this module never calls the builtin
    z: str,
    *,
    x: str | None = None,
    y: str | None = None,
    run: Any = None,
    stream: str = "primary",
    catalog: Catalog | None = None,
    cmap: str = "viridis",
    **opts: Any,
) -> hv.DynamicMap:
    """A live map of ``z`` over two scanned motors, with a colour bar, filling as points arrive.

    A rectilinear grid scan (bluesky's ``grid_scan``) is an ``hv.QuadMesh`` on
    its setpoints, blank where no point was measured yet; any other run (a
    spiral, a list grid, no hints) shows its points as ``hv.Points`` coloured by
    ``z`` on the same colour scale: never an error. ``x`` and ``y`` default to the
    run's fast and slow motors (``hints.dimensions``). ``opts`` go to the plot
    (``width=500``, ``title="..."``).

    Examples
    --------
    >>> scandeck.plot.map("det4", width=500)                      # doctest: +SKIP
    """
    from .grid import dimensions, grid_of

    pipe = hv.streams.Pipe(data=_map_frame(z, x or "x", y or "y"))
    driver = Feed(run, stream, catalog)
    state: dict[str, Any] = {}

    def element(data: Mapping[str, Any]) -> hv.Overlay:
        kdims = [data["x"], data["y"]]
        mesh = hv.QuadMesh((data["xs"], data["ys"], data["zs"]), kdims=kdims, vdims=[z])
        points = hv.Points(data["points"], kdims=kdims, vdims=[z])
        if hv.Store.renderers:  # options need a plotting backend; none is loaded until one draws
            # One colour range for both: the mesh's colour bar (empty mesh or not) reads the points too.
            mesh, points = mesh.opts(clim=data["clim"]), points.opts(clim=data["clim"])
        return mesh * points

    plot = hv.DynamicMap(element, streams=[pipe]).opts(
        {
            "QuadMesh": {"colorbar": True, "cmap": cmap, "framewise": True},
            "Points": {"color": z, "cmap": cmap, "size": 6, "framewise": True},
        }
    )
    if opts:
        plot = plot.opts(**opts)

    def start_run(uid: str) -> None:
        start = driver.live.source.get(uid).start
        dims = [fields[0] for fields in dimensions(start, stream)]
        xname = x or (dims[1] if len(dims) > 1 else "x")
        yname = y or (dims[0] if dims else "y")
        try:
            grid = grid_of(start, stream)
        except NotAGrid:
            grid = None
        if grid is not None and set(grid.dims) != {xname, yname}:
            grid = None  # a grid of other motors, or of three: the points it measured
        state.clear()
        state.update(grid=grid, x=xname, y=yname, zs=None if grid is None else np.full(grid.shape, np.nan))
        state.update(px=[], py=[], pz=[])

    def on_page(page: Mapping[str, Any], new_run: bool) -> None:
        if new_run:
            start_run(page["uid"])
        values = _numbers(page.get(z) or [])
        if not isinstance(values, np.ndarray):  # not numbers (text): nothing to colour by
            values = np.array([])
        if len(values) and state["x"] in page and state["y"] in page:
            state["px"] += list(_numbers(page[state["x"]]))
            state["py"] += list(_numbers(page[state["y"]]))
            state["pz"] += list(values)
        if state["grid"] is not None and len(values):
            try:
                state["zs"][state["grid"].cells(page["seq_num"])] = values
            except NotAGrid:  # more events than grid points: show where they were measured
                state["grid"] = None
        if len(values) or new_run:
            _send(driver, pipe.send, _map_frame(z, state["x"], state["y"], state))

    return _started(plot, driver, on_page)


def _map_frame(z: str, x: str, y: str, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the map's Pipe carries: a mesh (empty for a scatter) and points (empty for a grid)."""
    frame: dict[str, Any] = {
        "x": x,
        "y": y,
        "xs": np.array([]),
        "ys": np.array([]),
        "zs": np.empty((0, 0)),
        "points": pd.DataFrame({x: [], y: [], z: []}),
        "clim": (0.0, 1.0),
    }
    if state is None:
        return frame
    grid = state["grid"]
    if grid is not None:
        shown = state["zs"] if grid.dims == (y, x) else state["zs"].T  # rows along y
        slow, fast = grid.coords()
        xs, ys = (fast, slow) if grid.dims == (y, x) else (slow, fast)
        if np.isfinite(shown).any():  # an all-NaN mesh has no colour range
            frame.update(xs=xs, ys=ys, zs=shown.copy())  # a copy: the grid fills in place
    else:
        frame["points"] = pd.DataFrame({x: state["px"], y: state["py"], z: state["pz"]})
    values = frame["zs"] if grid is not None else np.asarray(state["pz"], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        frame["clim"] = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    return frame


# -- shared --------------------------------------------------------------------------------


def _started(obj: Any, driver: Feed, on_page: Callable[[Mapping[str, Any], bool], None]) -> Any:
    setattr(obj, _ATTR, driver)
    driver.start(on_page)
    return obj


def _send(driver: Feed, fn: Callable[..., Any], *args: Any) -> None:
    driver.sends += 1
    with _comm_lock:  # see _serialize_panel_comms
        fn(*args)


#: Held while a plot of this module updates, and while Panel handles a message from the browser.
_comm_lock = threading.RLock()


def _serialize_panel_comms() -> None:
    """Make Panel handle browser messages only while no plot of this module updates.

    JupyterLab (4.4 and later, ``commsOverSubshells``) sends comm messages to a
    kernel subshell: with ipykernel 7 Panel's handler runs on the subshell's
    thread while our updates run on the kernel's main loop. The handler un-holds
    and re-holds the plot's Bokeh document; the model changes an update makes
    meanwhile are dispatched to nobody instead of being pushed, so that update
    never reaches the page. The page sends such messages while a plot fills, so
    this happened to a live map every few runs; when it hit the run's last
    update the plot stayed short of the last rows for good.
    """
    from panel.viewable import Renderable

    handler = getattr(Renderable, "_on_msg", None)
    if handler is None or getattr(handler, "_scandeck_serialized", False):
        return

    @functools.wraps(handler)
    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _comm_lock:
            return handler(self, *args, **kwargs)

    serialized._scandeck_serialized = True  # type: ignore[attr-defined]
    Renderable._on_msg = serialized  # type: ignore[method-assign]


_serialize_panel_comms()


def _numbers(values: list[Any]) -> Any:
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError):
        return values
