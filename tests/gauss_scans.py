"""1-D scans of a Gaussian peak recorded by a real RunEngine, for the tests that rerun notebooks on them.

A module of its own (not conftest.py), so that test modules can import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def gauss_scans(cat: Any, centers: Sequence[float], points: Sequence[int], **md: Sequence[Any]) -> list[str]:
    """Record ``scan([det], motor, -1, 1, n)`` per centre into ``cat``: ophyd.sim's SynGauss ``det``
    peaking at the centre; ``md`` gives a start-document field per scan (``sample=["Ni", "Cu"]``)."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import SynAxis, SynGauss

    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())
    motor = SynAxis(name="motor")
    uids: list[str] = []
    for i, (center, num) in enumerate(zip(centers, points, strict=True)):
        det = SynGauss("det", motor, "motor", center=center, Imax=1, sigma=0.5)
        uids += RE(bp.scan([det], motor, -1, 1, num), **{key: values[i] for key, values in md.items()})
    return uids
