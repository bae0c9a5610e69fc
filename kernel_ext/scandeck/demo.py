"""A simulated beamline: a real bluesky RunEngine and ophyd.sim devices, for demos.

:func:`run_demo` runs a seeded-random mix of plans (count, scan, rel_scan,
grid_scan, two image detectors writing NPY_SEQ and AD_HDF5 files, an occasional
beam dump that aborts a run, rarely a motor fault that fails one) and sends every
document to a callback. It knows nothing of scandeck's store: subscribe a
writer, a live plot, or ``print``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .exceptions import missing_dependency

__all__ = ["SimulatedFault", "run_demo"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())  # deliberate aborts and faults are not stderr noise

SAMPLES = ("Ni", "Cu", "Fe", "LaB6", "Si", "CeO2")
OPERATORS = ("jdoe", "asmith", "mchen", "rpatel")
#: Every block of 8 runs holds each of these once, one more (or a fault) and a beam dump.
KINDS = ("count", "scan", "rel_scan", "grid_scan", "image_count", "hdf5_scan")
FAULTS = {
    "count": "diode: detector readout timed out",
    "scan": "motor: hit the high limit switch",
    "rel_scan": "motor: stalled, following error too large",
    "grid_scan": "motor1: hit the high limit switch",
    "image_count": "img: detector readout timed out",
    "hdf5_scan": "h5cam: HDF5 write failed, disk quota exceeded",
}
IMAGE_SHAPE = (64, 64)


class SimulatedFault(RuntimeError):
    """The hardware failure the demo injects now and then (the run ends 'fail')."""


def run_demo(
    callback: Callable[[str, dict[str, Any]], Any],
    *,
    asset_dir: str | os.PathLike[str],
    pace: float = 1.0,
    runs: int | None = None,
    seed: int | None = None,
    stop_event: threading.Event | None = None,
    progress: Callable[[str], Any] | None = print,
    last_scan_id: int = 0,
) -> int:
    """Run simulated scans, sending each document to ``callback(name, doc)``.

    Parameters
    ----------
    callback
        Gets every document of every run, in order.
    asset_dir
        Where the image detectors write their files (created if needed).
    pace
        Seconds per point; runs are about ``3 * pace`` apart. 0 runs flat out.
    runs
        Stop after this many runs; ``None`` runs until ``stop_event`` is set
        (or Ctrl-C, when called on the main thread).
    seed
        Makes the mix of plans, samples and data reproducible (uids still differ).
    stop_event
        Set it (from any thread) to stop: the run in flight is aborted within
        about one point, so it still gets its stop document.
    progress
        Gets one line per run started and finished; ``None`` for silence.
    last_scan_id
        The scan_id the beamline had reached (its store's newest): runs go on from
        the next one, as a RunEngine with persistent metadata does.

    Returns
    -------
    int
        The number of runs written (each has a start and a stop document).

    Examples
    --------
    >>> docs = []
    >>> run_demo(lambda name, doc: docs.append((name, doc)), asset_dir="/tmp/demo",
    ...          runs=3, pace=0, seed=1, progress=None)  # doctest: +SKIP
    3
    """
    try:
        import ophyd  # noqa: F401
        from bluesky.utils import RunEngineInterrupted
    except ImportError as exc:
        raise missing_dependency(exc.name or "bluesky", "demo") from exc
    if pace < 0:
        raise ValueError(f"pace must be >= 0 seconds per point, not {pace!r}")
    assets = Path(asset_dir)
    assets.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    beamline = _beamline(assets, np.random.default_rng(seed))
    stop = stop_event if stop_event is not None else threading.Event()
    control = _Control(stop, pace)
    tally = _Tally(progress)
    RE, loop = _run_engine(
        {
            "scan_id": last_scan_id,
            "beamline_id": "sim",
            "operator": rng.choice(OPERATORS),
            "proposal": str(rng.randint(300000, 319999)),
        }
    )
    RE.subscribe(callback)
    RE.subscribe(tally)  # after the callback: "finished" means the callback has the stop
    sample = rng.choice(SAMPLES)
    try:
        with _ctrl_c_sets(stop), _no_trace_warnings():
            for kind in _schedule(rng):
                if stop.is_set() or (runs is not None and tally.started >= runs):
                    break
                if rng.random() < 0.35:  # samples change every few runs, as at a real beamline
                    sample = rng.choice(SAMPLES)
                base = rng.choice(KINDS) if kind in ("beam_dump", "fault") else kind
                plan, n_points, purpose = _plan(base, beamline, rng)
                control.arm(
                    dump_at=rng.randint(1, n_points - 1) if kind == "beam_dump" else None,
                    fault_at=rng.randint(1, n_points - 1) if kind == "fault" else None,
                    fault=FAULTS[base],
                )
                try:
                    RE(control.wrap(plan), sample=sample, purpose=purpose)
                except RunEngineInterrupted:
                    if RE.state == "paused":  # our own pause: end the run as aborted
                        RE.abort(control.reason or "demo stopped")
                except SimulatedFault:
                    pass  # the run is closed with exit_status 'fail'; the beamline goes on
                if pace and not (runs is not None and tally.started >= runs):
                    stop.wait(3 * pace)
    finally:
        _close_loop(loop)
    return tally.started


# --- devices -----------------------------------------------------------------------------


def _beamline(asset_dir: Path, nprng: np.random.Generator) -> SimpleNamespace:
    """Fresh simulated devices (ophyd imported here, so importing this module stays light)."""
    from ophyd import Signal
    from ophyd.sim import (
        NullStatus,
        Syn2DGauss,
        SynAxis,
        SynGauss,
        SynSignal,
        SynSignalWithRegistry,
    )

    class NoConfiguration:
        # As Signals they would report their own reading (a datum id) as configuration.
        def read_configuration(self) -> dict[str, Any]:
            return {}

        def describe_configuration(self) -> dict[str, Any]:
            return {}

    class ImageSignal(NoConfiguration, SynSignalWithRegistry):
        """A 2-D image saved as one ``.npy`` per point (spec ``NPY_SEQ``)."""

        def describe(self) -> dict[str, Any]:
            desc = super().describe()
            for key in desc:  # the true shape even before the first trigger, and the dtype
                desc[key].update(dtype="array", shape=list(IMAGE_SHAPE), dtype_numpy="<f8")
            return desc

    class HDF5Camera(NoConfiguration, Signal):
        """An area detector writing uint16 frames to ``/entry/data/data`` (spec ``AD_HDF5``)."""

        def __init__(
            self, func: Callable[[], np.ndarray], *, name: str, save_path: str, frame_per_point: int = 1
        ) -> None:
            super().__init__(name=name, value="")  # the value is the last datum id
            self._func, self._save_path, self._fpp = func, save_path, frame_per_point
            self._assets: deque[tuple[str, dict[str, Any]]] = deque()
            self._file: Any = None
            self._resource_uid = ""
            self._points: Iterator[int] = itertools.count()

        def stage(self) -> list[Any]:
            import h5py

            filename = f"{self.name}_{uuid.uuid4().hex[:12]}.h5"
            self._file = h5py.File(os.path.join(self._save_path, filename), "w")
            self._file.create_dataset(
                "/entry/data/data",
                shape=(0, *IMAGE_SHAPE),
                dtype="<u2",
                maxshape=(None, *IMAGE_SHAPE),
                chunks=(1, *IMAGE_SHAPE),
            )
            self._resource_uid, self._points = str(uuid.uuid4()), itertools.count()
            self._assets.append(
                (
                    "resource",
                    {
                        "spec": "AD_HDF5",
                        "root": self._save_path,
                        "resource_path": filename,
                        "resource_kwargs": {"frame_per_point": self._fpp},
                        "path_semantics": "windows" if os.name == "nt" else "posix",
                        "uid": self._resource_uid,
                    },
                )
            )
            return [self]

        def trigger(self) -> Any:
            point = next(self._points)
            frames = np.stack([self._func() for _ in range(self._fpp)])
            data = self._file["/entry/data/data"]
            data.resize((point + 1) * self._fpp, axis=0)
            data[point * self._fpp :] = np.clip(frames, 0, 65535).astype("<u2")
            self._file.flush()  # readers of a live run see each frame as it lands
            datum_id = f"{self._resource_uid}/{point}"
            self._assets.append(
                (
                    "datum",
                    {
                        "resource": self._resource_uid,
                        "datum_id": datum_id,
                        "datum_kwargs": {"point_number": point},
                    },
                )
            )
            self.put(datum_id)
            return NullStatus()

        def describe(self) -> dict[str, Any]:
            shape = list(IMAGE_SHAPE) if self._fpp == 1 else [self._fpp, *IMAGE_SHAPE]
            return {
                self.name: {
                    "source": f"SIM:{self.name}",
                    "dtype": "array",
                    "shape": shape,
                    "dtype_numpy": "<u2",
                    "units": "counts",
                    "external": "FILESTORE:",
                }
            }

        def collect_asset_docs(self) -> Iterator[tuple[str, dict[str, Any]]]:
            while self._assets:
                yield self._assets.popleft()

        def unstage(self) -> list[Any]:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._assets.clear()
            return [self]

    motor, motor1, motor2 = (SynAxis(name=n) for n in ("motor", "motor1", "motor2"))
    yy, xx = np.mgrid[0 : IMAGE_SHAPE[0], 0 : IMAGE_SHAPE[1]].astype(float)
    shots = itertools.count()

    def blob() -> np.ndarray:  # a spot circling the beam centre, nudged by the motor
        phase = 0.5 * next(shots) + float(motor.position)
        cx, cy = 32 + 14 * math.cos(phase), 32 + 14 * math.sin(phase)
        spot = 1000.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 32.0) + 20.0
        return nprng.poisson(spot).astype(float)

    def rings() -> np.ndarray:  # Debye rings that breathe as the motor moves
        r = np.hypot(xx - 31.5, yy - 31.5) * (1 + 0.03 * float(motor.position))
        lam = 40.0 + sum(400.0 * np.exp(-((r - r0) ** 2) / 3.0) for r0 in (9.0, 16.0, 23.0))
        return nprng.poisson(lam)

    def noisy(mean: float, sd: float) -> Callable[[], float]:
        return lambda: round(float(mean + sd * nprng.standard_normal()), 4)

    return SimpleNamespace(
        motor=motor,
        motor1=motor1,
        motor2=motor2,
        det=SynGauss(
            "det",
            motor,
            "motor",
            center=0.0,
            Imax=10000.0,
            sigma=0.5,
            noise="uniform",
            noise_multiplier=40.0,
            random_state=nprng,
        ),
        det4=Syn2DGauss(
            "det4",
            motor1,
            "motor1",
            motor2,
            "motor2",
            center=(0.0, 0.0),
            Imax=1.0,
            sigma=0.8,
            noise="uniform",
            noise_multiplier=0.02,
            random_state=nprng,
        ),
        I0=SynSignal(noisy(1.0e5, 800.0), name="I0"),
        diode=SynSignal(noisy(2.4e3, 40.0), name="diode"),
        temperature=SynSignal(noisy(295.0, 0.05), name="temperature"),
        img=ImageSignal(blob, name="img", save_path=str(asset_dir)),
        h5cam=HDF5Camera(rings, name="h5cam", save_path=str(asset_dir)),
    )


# --- plans -------------------------------------------------------------------------------


def _schedule(rng: random.Random) -> Iterator[str]:
    """Kinds of run, in shuffled blocks of 8: so every kind shows up within 8 runs."""
    while True:
        extra = "fault" if rng.random() < 0.3 else rng.choice(KINDS)
        block = [*KINDS, extra, "beam_dump"]
        rng.shuffle(block)
        yield from block


def _plan(kind: str, bl: SimpleNamespace, rng: random.Random) -> tuple[Any, int, str]:
    """(plan, number of points, purpose) for one kind of run."""
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp

    if kind == "count":
        n = rng.randint(5, 10)
        return bp.count([bl.I0, bl.diode, bl.temperature], num=n), n, "beam stability check"
    if kind == "scan":
        bl.det.center.put(round(rng.uniform(-1.5, 1.5), 3))
        bl.det.sigma.put(round(rng.uniform(0.3, 0.8), 3))
        n = rng.choice((15, 21, 31))
        return bp.scan([bl.det, bl.I0], bl.motor, -3, 3, n), n, "peak search"
    if kind == "rel_scan":
        near_peak = float(bl.det.center.get()) + rng.uniform(-0.3, 0.3)

        def align() -> Any:  # go to where the peak should be, then scan around it
            yield from bps.mv(bl.motor, round(near_peak, 3))
            return (yield from bp.rel_scan([bl.det], bl.motor, -1, 1, 11))

        return align(), 11, "alignment"
    if kind == "grid_scan":
        bl.det4.center.put((round(rng.uniform(-1, 1), 3), round(rng.uniform(-1, 1), 3)))
        ny, nx = rng.choice(((5, 5), (5, 7), (7, 7)))
        plan = bp.grid_scan([bl.det4], bl.motor1, -2, 2, ny, bl.motor2, -2, 2, nx, snake_axes=True)
        return plan, nx * ny, "sample mapping"
    if kind == "image_count":
        n = rng.randint(3, 6)
        return bp.count([bl.img, bl.I0], num=n), n, "imaging"
    n = rng.choice((5, 7, 9))  # hdf5_scan
    return bp.scan([bl.h5cam, bl.I0], bl.motor, -1, 1, n), n, "powder diffraction"


class _Control:
    """Wraps each plan: paces points, injects beam dumps and faults, watches for a stop."""

    def __init__(self, stop: threading.Event, pace: float) -> None:
        self.stop, self.pace = stop, pace
        self.arm(dump_at=None, fault_at=None, fault="")

    def arm(self, *, dump_at: int | None, fault_at: int | None, fault: str) -> None:
        self.dump_at, self.fault_at, self.fault = dump_at, fault_at, fault
        self.points, self.reason = 0, ""

    def wrap(self, plan: Any) -> Any:
        from bluesky.preprocessors import plan_mutator
        from bluesky.utils import Msg

        def after_point() -> Any:
            import bluesky.plan_stubs as bps

            self.points += 1
            if self.points == self.fault_at:
                raise SimulatedFault(self.fault)
            if self.points == self.dump_at:
                self.reason = "simulated beam dump"
            left = self.pace
            while left > 0 and not self.reason and not self.stop.is_set():
                yield from bps.sleep(min(0.05, left))  # short naps: a stop is seen promptly
                left -= 0.05
            if self.stop.is_set() and not self.reason:
                self.reason = "demo stopped"
            if self.reason:
                # Pause; run_demo then aborts, so the run closes with exit_status 'abort'.
                yield Msg("pause", defer=False)

        def give_reason(msg: Any) -> Any:
            return (yield msg._replace(kwargs={**msg.kwargs, "reason": self.reason}))

        def mutate(msg: Any) -> tuple[Any, Any]:
            if msg.command == "save":
                return None, after_point()
            # bluesky's run wrapper closes an aborted run without a reason: supply ours.
            if msg.command == "close_run" and self.reason and not msg.kwargs.get("reason"):
                return give_reason(msg), None
            return None, None

        return plan_mutator(plan, mutate)


# --- plumbing ----------------------------------------------------------------------------


class _Tally:
    """Counts runs and reports each start and stop to ``progress``."""

    def __init__(self, progress: Callable[[str], Any] | None) -> None:
        self.progress, self.started = progress, 0
        self._starts: dict[str, dict[str, Any]] = {}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.started += 1
            self._starts[doc["uid"]] = doc
            self._say(doc, "started")
        elif name == "stop":
            start = self._starts.pop(doc["run_start"], {"uid": doc["run_start"]})
            reason = f" ({doc['reason']})" if doc.get("reason") else ""
            self._say(start, f"finished: {doc.get('exit_status')}{reason}")

    def _say(self, start: dict[str, Any], what: str) -> None:
        if self.progress is not None:
            self.progress(
                f"scan_id {start.get('scan_id', '?'):>4}  {start.get('plan_name', '?'):<9}  "
                f"{start['uid'][:8]}  sample={start.get('sample', '?'):<5}  {what}"
            )


def _run_engine(md: dict[str, Any]) -> tuple[Any, asyncio.AbstractEventLoop]:
    from bluesky import RunEngine
    from bluesky.log import ComposableLogAdapter
    from bluesky.run_engine import get_bluesky_event_loop, set_bluesky_event_loop
    from bluesky.utils import DuringTask

    previous = get_bluesky_event_loop()
    loop = asyncio.new_event_loop()
    # No context managers: no SIGINT handler, so it runs off the main thread. A plain
    # DuringTask: never drive a Qt / notebook matplotlib loop from here.
    RE = RunEngine(md, loop=loop, context_managers=[], during_task=DuringTask())
    set_bluesky_event_loop(previous)  # leave the user's own RunEngine's loop in place
    RE.log = ComposableLogAdapter(_log, {"RE": RE})  # "Run aborted" tracebacks: ours
    return RE, loop


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon_threadsafe(loop.stop)
    deadline = time.monotonic() + 5
    while loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.001)
    if not loop.is_running():
        loop.close()


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """On the main thread, the first Ctrl-C sets ``stop``; a second one interrupts.

    Only over Python's default handler: a caller's own SIGINT handler is left in charge.
    """
    restore = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or (restore is not signal.default_int_handler):
        yield
        return

    def first_ctrl_c(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, restore)

    signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, restore)


@contextlib.contextmanager
def _no_trace_warnings() -> Iterator[None]:
    """Mute one bogus bluesky warning, for as long as the demo runs."""

    def drop(record: logging.LogRecord) -> bool:
        # RE.abort() discards its tracing spans, then warns that there are none to close.
        return record.getMessage() != "No open traces left to close!"

    bluesky_logger = logging.getLogger("bluesky")
    bluesky_logger.addFilter(drop)
    try:
        yield
    finally:
        bluesky_logger.removeFilter(drop)
