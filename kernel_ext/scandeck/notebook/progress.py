"""A live progress bar for one run: ``scan 42 · count · 37/100 events · ETA 12 s``.

The arithmetic (event rate, ETA, label text) is plain functions and a small
rate estimator, testable without a front end; :class:`RunProgress` puts it in
an ipywidgets bar, which it creates only when first shown, so importing this
module (or :mod:`scandeck.notebook.display`, which borrows
:func:`format_duration`) never imports ipywidgets.

Examples
--------
>>> eta_seconds(start_time=0.0, now=10.0, done=25, total=100)
30.0
>>> progress_label(scan_id=42, plan_name="count", done=37, total=100, eta=12.2)
'scan 42 · count · 37/100 events · ETA 13 s'
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..listing import num_points

if TYPE_CHECKING:
    from ..catalog import Run
    from ..sources.protocol import RunSummary

__all__ = [
    "BAR_STYLES",
    "EventRate",
    "RunProgress",
    "eta_seconds",
    "format_duration",
    "progress_label",
]

#: ipywidgets ``bar_style`` of a finished run, by status.
BAR_STYLES = {"success": "success", "abort": "warning", "fail": "danger", "incomplete": "danger"}
#: Time constant (seconds) of :class:`EventRate`'s smoothing: how fast the ETA follows a change of pace.
RATE_TAU = 10.0


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def format_duration(seconds: float | None, *, decimals: bool = True) -> str:
    """A duration as ``4.2 s``, ``12 s``, ``3 min 05 s`` or ``1 h 02 min``; ``-`` when unknown.

    ``decimals=False`` rounds short durations up to whole seconds (for an ETA).

    Examples
    --------
    >>> format_duration(4.25), format_duration(4.25, decimals=False), format_duration(185)
    ('4.2 s', '5 s', '3 min 05 s')
    >>> format_duration(3725), format_duration(None)
    ('1 h 02 min', '-')
    """
    s = _number(seconds)
    if s is None or s < 0:
        return "-"
    if decimals and round(s, 1) < 10:
        return f"{s:.1f} s"
    whole = math.ceil(s) if not decimals else round(s)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def eta_seconds(
    start_time: float | None, now: float, done: int, total: int | None, *, rate: float | None = None
) -> float | None:
    """Seconds until ``total`` events, at ``rate`` events/s or else the average since ``start_time``.

    ``None`` when it cannot be told: no total, no events yet, no time elapsed
    (or a clock behind the start document's). ``0.0`` once ``done`` reaches
    ``total`` (a run may store more events than it planned points).

    Examples
    --------
    >>> eta_seconds(0.0, 10.0, 0, 100), eta_seconds(0.0, 10.0, 120, 100), eta_seconds(0.0, 10.0, 5, None)
    (None, 0.0, None)
    >>> eta_seconds(0.0, 10.0, 50, 100, rate=10.0)
    5.0
    """
    total_n = _number(total)
    done_n = _number(done)
    if total_n is None or total_n <= 0 or done_n is None or done_n < 0:
        return None
    if done_n >= total_n:
        return 0.0
    if rate is None:
        start, now_n = _number(start_time), _number(now)
        if start is None or now_n is None or done_n <= 0:
            return None
        elapsed = now_n - start
        if elapsed <= 0:
            return None
        rate = done_n / elapsed
    rate_n = _number(rate)
    if rate_n is None or rate_n <= 0:
        return None
    return (total_n - done_n) / rate_n


def progress_label(
    *,
    scan_id: int | None,
    plan_name: str | None,
    done: int,
    total: int | None,
    status: str = "running",
    eta: float | None = None,
    uid: str = "",
) -> str:
    """The text beside the bar: ``scan 42 · count · 37/100 events · ETA 12 s``.

    A finished run shows its status where a running one shows its ETA.

    Examples
    --------
    >>> progress_label(scan_id=None, uid="a3f9c2d1e0", plan_name="count", done=1, total=None)
    'run a3f9c2d1 · count · 1 event'
    >>> progress_label(scan_id=7, plan_name="scan", done=10, total=10, status="success")
    'scan 7 · scan · 10/10 events · success'
    """
    if scan_id is not None:
        parts = [f"scan {scan_id}"]
    else:
        parts = [f"run {uid[:8]}" if uid else "run"]
    if plan_name:
        parts.append(str(plan_name))
    if total:
        parts.append(f"{done}/{total} events")
    else:
        parts.append(f"{done} event{'' if done == 1 else 's'}")
    if status != "running":
        parts.append(status)
    elif eta is not None:
        parts.append(f"ETA {format_duration(eta, decimals=False)}")
    return " · ".join(parts)


class EventRate:
    """Events per second of a live run, smoothed so an ETA does not jitter.

    Seeded with the average since the start document's time, then an
    exponential average of the rate between observations, weighted by the time
    between them (time constant ``tau`` seconds): a change of pace shows within
    about ``tau`` seconds, a single slow point barely moves it.

    Examples
    --------
    >>> r = EventRate(start_time=0.0)
    >>> r.observe(10, now=10.0)
    1.0
    """

    def __init__(self, start_time: float | None, *, tau: float = RATE_TAU) -> None:
        self.start_time = _number(start_time)
        self.tau = tau
        self.rate: float | None = None
        self._last: tuple[float, int] | None = None

    def observe(self, done: int, now: float) -> float | None:
        """Note ``done`` events at time ``now``; return the smoothed rate (None while unknown)."""
        now_n = _number(now)
        if now_n is None:
            return self.rate
        if self._last is None or done < self._last[1]:
            self._last = (now_n, done)
            if self.start_time is not None and done > 0 and now_n > self.start_time:
                self.rate = done / (now_n - self.start_time)
            return self.rate
        last_now, last_done = self._last
        dt = now_n - last_now
        if dt <= 0:
            return self.rate
        self._last = (now_n, done)
        instant = (done - last_done) / dt
        if self.rate is None:
            # The first events: their average since the start document, if it is known.
            if self.start_time is not None and now_n > self.start_time:
                instant = done / (now_n - self.start_time)
            self.rate = instant if instant > 0 else None
        else:
            self.rate += (1 - math.exp(-dt / self.tau)) * (instant - self.rate)
        return self.rate


class RunProgress:
    """A progress bar and label for one run, updated as its events arrive.

    Parameters
    ----------
    start
        The run's start document: ``uid``, ``scan_id``, ``plan_name``, ``time``
        and ``num_points`` (the bar's length; without it the bar shows the
        event count over an indeterminate, full-width bar).

    Examples
    --------
    >>> progress = RunProgress.from_run(cat[-1])          # doctest: +SKIP
    >>> display(progress)                                  # doctest: +SKIP
    >>> progress.update(run.num_events, run.status)        # doctest: +SKIP
    """

    def __init__(self, start: Mapping[str, Any]) -> None:
        self.uid = str(start.get("uid", ""))
        scan_id = start.get("scan_id")
        self.scan_id = scan_id if isinstance(scan_id, int) and not isinstance(scan_id, bool) else None
        plan = start.get("plan_name")
        self.plan_name = str(plan) if plan is not None else None
        self.total = num_points(start)
        self.start_time = _number(start.get("time"))
        self.num_events = 0
        self.status = "running"
        self.eta: float | None = None
        self._rate = EventRate(self.start_time)
        self._bar: Any = None
        self._text: Any = None
        self._box: Any = None

    @classmethod
    def from_summary(cls, summary: RunSummary) -> RunProgress:
        """A bar for a run's index row, already showing its events and status."""
        progress = cls(summary.start)
        progress.update(summary.num_events, summary.status)
        return progress

    @classmethod
    def from_run(cls, run: Run) -> RunProgress:
        """A bar for a :class:`~scandeck.catalog.Run` as it is now."""
        return cls.from_summary(run.refresh())

    def __repr__(self) -> str:
        return f"<RunProgress {self.label}>"

    # -- state -----------------------------------------------------------------------------

    def update(self, num_events: int, status: str = "running", now: float | None = None) -> None:
        """Show ``num_events`` events stored so far and the run's ``status`` at time ``now``."""
        now = time.time() if now is None else now
        self.num_events = int(num_events)
        self.status = status
        rate = self._rate.observe(self.num_events, now)
        if status == "running":
            self.eta = eta_seconds(self.start_time, now, self.num_events, self.total, rate=rate)
        else:
            self.eta = None
        if self._box is not None:
            self._sync()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def label(self) -> str:
        """The text beside the bar (see :func:`progress_label`)."""
        return progress_label(
            scan_id=self.scan_id,
            plan_name=self.plan_name,
            done=self.num_events,
            total=self.total,
            status=self.status,
            eta=self.eta,
            uid=self.uid,
        )

    @property
    def bar_style(self) -> str:
        """``success``/``warning``/``danger`` once finished; ``info`` for an unknown length."""
        if self.finished:
            return BAR_STYLES.get(self.status, "")
        return "" if self.total else "info"

    @property
    def bar_range(self) -> tuple[int, int]:
        """``(value, max)`` of the bar: events of num_points, or a full bar when that is unknown."""
        if self.total:
            return min(self.num_events, self.total), self.total
        return 1, 1

    # -- widget ----------------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """The ipywidgets container (an ``HBox`` of the bar and its label), made on first use."""
        if self._box is None:
            import ipywidgets

            value, maximum = self.bar_range
            self._bar = ipywidgets.IntProgress(
                value=value,
                min=0,
                max=maximum,
                bar_style=self.bar_style,
                layout=ipywidgets.Layout(width="16em"),
            )
            self._text = ipywidgets.Label(self.label)
            self._box = ipywidgets.HBox([self._bar, self._text])
            self._sync()
        return self._box

    def _sync(self) -> None:
        value, maximum = self.bar_range
        with self._bar.hold_sync():
            # max first: lowering it under the old value would clip the value.
            if maximum >= self._bar.max:
                self._bar.max = maximum
                self._bar.value = value
            else:
                self._bar.value = value
                self._bar.max = maximum
            self._bar.bar_style = self.bar_style
        self._text.value = self.label

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
