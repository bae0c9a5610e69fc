"""A simulated instrument for ``scandeck demo --files DIR``: a diffractometer's vendor software.

It knows nothing of bluesky: it writes files into a directory, slowly, as such
software does. For each sample a subdirectory (``S03_LaB6``), and in it, per
exposure, a detector image (``XRD_LaB6_0002.tif``: 16-bit TIFF of Debye-Scherrer
rings, via tifffile) and its integrated pattern (``XRD_LaB6_0002.csv``: a
``two_theta_deg,intensity`` table under ``#`` comment lines). Each file is written
in several pieces with pauses between them (the file open all along, as a detector
writing out its frame), so a watcher that took a half-written file would show it.

:func:`run_instrument` writes until told to stop or until ``samples`` samples are
done; :class:`Instrument` tells how many files it finished, for the demo to wait
until the watcher has them all. :class:`InstrumentDemo` runs both in threads: the
instrument, and a :class:`~scandeck.files.watch.Watcher` ingesting its files into the
demo's catalog (one run per demo session).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SAMPLES", "Instrument", "InstrumentDemo", "run_instrument"]

#: (name, ring positions in degrees 2θ, lattice-ish relative intensities): what the demo measures.
SAMPLES: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = (
    ("LaB6", (21.4, 30.4, 37.4, 43.5, 48.9, 53.9), (1.0, 0.55, 0.35, 0.3, 0.2, 0.25)),
    ("Si", (28.4, 47.3, 56.1, 69.1), (1.0, 0.6, 0.35, 0.1)),
    ("CeO2", (28.6, 33.1, 47.5, 56.3, 59.1), (1.0, 0.3, 0.5, 0.4, 0.1)),
    ("Ni", (44.5, 51.8, 76.4), (1.0, 0.42, 0.21)),
    ("Al2O3", (25.6, 35.2, 37.8, 43.4, 52.6, 57.5), (0.6, 0.9, 0.4, 1.0, 0.45, 0.8)),
)
#: Exposures per sample.
FRAMES = 4
#: Image side (pixels) and pattern points: small, so the demo stays light.
SIDE = 192
POINTS = 600
#: Pieces each file is written in.
PIECES = 4


@dataclass
class Instrument:
    """The state of a running instrument: files finished so far (relative paths)."""

    directory: Path
    written: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def _next_sample_number(directory: Path) -> int:
    """One past the highest ``Snn_`` subdirectory: a second demo adds samples, never rewrites."""
    numbers = [0]
    for entry in directory.iterdir() if directory.is_dir() else ():
        head = entry.name.split("_", 1)[0]
        if entry.is_dir() and head[:1] == "S" and head[1:].isdigit():
            numbers.append(int(head[1:]))
    return max(numbers) + 1


def _pattern(rings: tuple[float, ...], weights: tuple[float, ...], rng: Any, np: Any) -> tuple[Any, Any]:
    two_theta = np.linspace(15.0, 80.0, POINTS)
    width = rng.uniform(0.12, 0.2)
    intensity = 40.0 + 8.0 * np.exp(-(two_theta - 15.0) / 25.0) * 10
    for pos, w in zip(rings, weights, strict=True):
        intensity += 1500.0 * w * np.exp(-0.5 * ((two_theta - pos) / width) ** 2)
    intensity = rng.poisson(np.clip(intensity, 0, None)).astype(float)
    return two_theta, intensity


def _image(rings: tuple[float, ...], weights: tuple[float, ...], rng: Any, np: Any) -> Any:
    """Rings on a flat detector: radius grows with 2θ (tan), centre a little off."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    cy, cx = SIDE * rng.uniform(0.45, 0.55), SIDE * rng.uniform(0.45, 0.55)
    r = np.hypot(y - cy, x - cx)
    scale = SIDE * 0.42 / np.tan(np.radians(60.0))
    img = 30.0 + 20.0 * np.exp(-r / (SIDE * 0.3))
    for pos, w in zip(rings, weights, strict=True):
        radius = scale * np.tan(np.radians(pos))
        img += 900.0 * w * np.exp(-0.5 * ((r - radius) / 1.3) ** 2)
    return rng.poisson(img).astype("uint16")


def _write_slowly(path: Path, data: bytes, pause: float, stop: threading.Event) -> None:
    """Write ``data`` in :data:`PIECES` pieces, flushed, with pauses, the file open all along.

    The pauses end early when ``stop`` is set: the file is always written whole.
    """
    step = max(1, -(-len(data) // PIECES))
    with open(path, "wb") as f:
        for at in range(0, len(data), step):
            f.write(data[at : at + step])
            f.flush()
            if at + step < len(data) and pause > 0:
                stop.wait(pause)
        os.fsync(f.fileno())


def _tiff_bytes(image: Any, sample: str, frame: int, exposure: float) -> bytes:
    import io

    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(
        out,
        image,
        description=f"simulated XRD frame; sample={sample}; frame={frame}; exposure_s={exposure:.2f}",
        software="scandeck demo instrument",
        metadata=None,
    )
    return out.getvalue()


def _csv_bytes(two_theta: Any, intensity: Any, sample: str, frame: int, exposure: float) -> bytes:
    lines = [
        "# simulated XRD pattern (scandeck demo instrument)",
        f"# sample: {sample}",
        f"# frame: {frame}",
        f"# exposure_s: {exposure:.2f}",
        "# wavelength_A: 1.5406",
        "two_theta_deg,intensity",
    ]
    lines += [f"{t:.4f},{i:.0f}" for t, i in zip(two_theta, intensity, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def run_instrument(
    instrument: Instrument,
    *,
    pace: float = 1.0,
    samples: int | None = None,
    seed: int | None = None,
    stop: threading.Event | None = None,
    say: Callable[[str], Any] | None = None,
) -> int:
    """Write samples' files into ``instrument.directory`` until ``stop`` is set or ``samples`` are done.

    Parameters
    ----------
    instrument
        Where to write; its ``written`` grows with each finished file (relative path).
    pace
        Seconds per file (spread over its pieces); 0: as fast as possible.
    samples
        How many samples (each :data:`FRAMES` exposures, an image and a pattern each); None: no end.
    seed
        Reproduce the same data.
    stop
        Set to stop after the file being written (which is finished).
    say
        Gets a line per finished sample.

    Returns
    -------
    int
        Files written.

    Examples
    --------
    >>> inst = Instrument(Path("/tmp/xrd"))                      # doctest: +SKIP
    >>> run_instrument(inst, pace=0, samples=1)                  # doctest: +SKIP
    8
    """
    import numpy as np

    stop = stop if stop is not None else threading.Event()
    directory = instrument.directory
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    number = _next_sample_number(directory)
    pause = max(pace, 0.0) / PIECES
    done_samples = 0
    try:
        while not stop.is_set() and (samples is None or done_samples < samples):
            name, rings, weights = pick.choice(SAMPLES)
            folder = directory / f"S{number:02d}_{name}"
            folder.mkdir(exist_ok=True)
            for frame in range(1, FRAMES + 1):
                if stop.is_set():
                    break  # the file being written was finished; no new one
                exposure = pick.choice((0.5, 1.0, 2.0))
                stem = f"XRD_{name}_{frame:04d}"
                image = _image(rings, weights, rng, np)
                two_theta, intensity = _pattern(rings, weights, rng, np)
                for suffix, data in (
                    (".tif", _tiff_bytes(image, name, frame, exposure)),
                    (".csv", _csv_bytes(two_theta, intensity, name, frame, exposure)),
                ):
                    if stop.is_set():
                        break
                    _write_slowly(folder / (stem + suffix), data, pause, stop)
                    instrument.written.append(f"{folder.name}/{stem}{suffix}")
            if say is not None:
                say(f"instrument: sample {folder.name} measured ({len(instrument.written)} files so far)")
            number += 1
            done_samples += 1
    finally:
        instrument.done.set()
    return len(instrument.written)


#: Seconds the demo waits, once the instrument is done, for the watcher to take its last files.
FINISH_TIMEOUT = 60.0


class InstrumentDemo:
    """The simulated instrument and a watcher ingesting its files into ``catalog``, in two threads.

    Parameters
    ----------
    catalog
        The demo's (writable) catalog; the watcher writes one run per session into it.
    directory
        Where the instrument writes (created); watched recursively.
    pace, samples, seed
        As :func:`run_instrument` takes them.
    say
        Gets progress lines of both.

    Examples
    --------
    >>> demo = InstrumentDemo(cat, Path("/tmp/xrd"), pace=0, samples=1)   # doctest: +SKIP
    >>> demo.start(); demo.finish()                                        # doctest: +SKIP
    """

    def __init__(
        self,
        catalog: Any,
        directory: Path,
        *,
        pace: float = 1.0,
        samples: int | None = None,
        seed: int | None = None,
        say: Callable[[str], Any] = print,
    ) -> None:
        from .watch import Watcher

        self.instrument = Instrument(Path(directory))
        self.instrument.directory.mkdir(parents=True, exist_ok=True)
        self.pace, self.samples, self.seed, self.say = pace, samples, seed, say
        self.stop_instrument = threading.Event()
        self.stop_watcher = threading.Event()
        self.watcher = Watcher(
            catalog,
            [self.instrument.directory],
            patterns=["*.tif", "*.csv"],
            recursive=True,
            metadata={
                "instrument": "simulated diffractometer (scandeck demo)",
                "operator": "demo",
                "purpose": "instrument files watched into the catalog",
            },
            settle=1.0,
            say=lambda line: say(f"watcher: {line}"),
        )
        self.error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the watcher, then the instrument."""
        self._threads = [
            threading.Thread(target=self._watch, name="scandeck-demo-watcher", daemon=True),
            threading.Thread(target=self._measure, name="scandeck-demo-instrument", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _watch(self) -> None:
        try:
            self.watcher.run(self.stop_watcher)
        except BaseException as err:  # noqa: BLE001 - told by finish()
            self.error = err

    def _measure(self) -> None:
        try:
            run_instrument(
                self.instrument,
                pace=self.pace,
                samples=self.samples,
                seed=self.seed,
                stop=self.stop_instrument,
                say=self.say,
            )
        except BaseException as err:  # noqa: BLE001 - told by finish()
            self.error = err
        finally:
            self.instrument.done.set()

    @property
    def taken(self) -> int:
        """Files the watcher has dealt with this session (ingested or reported unreadable)."""
        summary = self.watcher.summary
        return summary.files + len(summary.unreadable)

    def finish(self, *, now: bool = False, timeout: float = FINISH_TIMEOUT) -> Any:
        """Stop the instrument (at once when ``now``, else when its samples are done), let the
        watcher take what it wrote (not when ``now``: a restarted demo takes the rest), stop it.

        Returns the watcher's :class:`~scandeck.files.watch.WatchSummary`; raises what a thread raised.
        """
        if now or self.samples is None:
            self.stop_instrument.set()
        self.instrument.done.wait()
        if not now:
            deadline = time.monotonic() + timeout
            while self.taken < len(self.instrument.written) and time.monotonic() < deadline:
                if self.error is not None or not self._threads[0].is_alive():
                    break
                time.sleep(0.05)
            if self.taken < len(self.instrument.written):
                self.say(
                    f"watcher: {len(self.instrument.written) - self.taken} file(s) not taken in "
                    f"{timeout:g} s; a next demo takes them"
                )
        self.stop_watcher.set()
        for thread in self._threads:
            thread.join()
        if self.error is not None:
            raise self.error
        return self.watcher.summary
