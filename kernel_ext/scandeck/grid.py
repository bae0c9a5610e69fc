"""Mapping scans on their grid: which cell each event of a rectilinear scan measured.

A bluesky ``grid_scan`` says in its start document what it sweeps:
``hints.gridding == "rectilinear"``, ``shape`` and ``extents`` (one entry per
motor, slowest first), ``snaking`` (per motor: whether it reverses on every
other pass of the slower ones) and ``hints.dimensions`` (the data field of each
motor). Event ``seq_num`` ``n`` is the plan's ``n``-th point, so the cell of a
row follows from its sequence number alone, as in bluesky's own ``LiveGrid``;
the coordinates are the setpoints (``linspace`` over each extent), not the
readbacks, so a partial grid (a running or interrupted scan) has its final
coordinates and NaN where no point was measured yet.

Used by ``Stream.to_grid()``, ``scandeck.plot.map`` and the panel's preview.
numpy loads with the first grid computed, not with this module: the server
and the kernel extension import it to read start documents.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from .exceptions import NotAGrid, UnknownName
from .safe_text import printable
from .timestamps import TIME_ATTRS

if TYPE_CHECKING:
    import numpy as np
    import xarray

    from .reading import Table

__all__ = ["Grid", "dimensions", "grid_of", "to_dataset"]

#: The ``hints.gridding`` of a scan whose n-th event is the n-th point of an outer product.
RECTILINEAR = "rectilinear"
#: Points of the largest grid made (800 MB a float variable): a start document claiming
#: more (a typo, a hostile shape) gets ``read()`` advice, not an allocation that kills the kernel.
MAX_POINTS = 10**8

_USE_READ = "use read() (rows in the order measured, with the motor positions) instead"


def dimensions(start: Mapping[str, Any], stream: str = "primary") -> list[list[str]]:
    """The fields of each scanned dimension of ``stream`` (the start document's ``hints.dimensions``).

    One entry per dimension: a ``scan`` of two motors moving together is one
    dimension of two fields, a ``grid_scan`` of two motors two dimensions.

    Examples
    --------
    >>> dimensions({"hints": {"dimensions": [[["motor1"], "primary"], [["motor2"], "primary"]]}})
    [['motor1'], ['motor2']]
    >>> dimensions({"hints": {"dimensions": [[["motor1", "motor2"], "primary"]]}})
    [['motor1', 'motor2']]
    """
    hints = start.get("hints")
    out: list[list[str]] = []
    for entry in (hints.get("dimensions") if isinstance(hints, Mapping) else None) or []:
        try:
            fields, dim_stream = entry
        except (TypeError, ValueError):
            continue
        if dim_stream == stream and isinstance(fields, (list, tuple)):
            named = [f for f in fields if isinstance(f, str)]
            if named:
                out.append(named)
    return out


@dataclass(frozen=True)
class Grid:
    """The grid a rectilinear scan sweeps: one axis per motor, slowest first."""

    stream: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    extents: tuple[tuple[float, float], ...]
    snaking: tuple[bool, ...]

    @property
    def size(self) -> int:
        """Points in the whole grid."""
        return math.prod(self.shape)

    def coords(self) -> list[np.ndarray]:
        """The setpoints of each axis (``linspace`` over its extent, as ``grid_scan`` moves)."""
        import numpy as np

        return [np.linspace(lo, hi, num) for (lo, hi), num in zip(self.extents, self.shape, strict=True)]

    def cells(self, seq_num: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
        """The index along each axis of the points with these sequence numbers (1 = first point).

        Raises
        ------
        NotAGrid
            A sequence number beyond the grid: the stream has more rows than the
            plan's points (a ``per_step`` reading more than once per point).

        Examples
        --------
        >>> g = Grid("primary", ("y", "x"), (2, 3), ((0, 1), (0, 2)), (False, True))
        >>> [tuple(int(i) for i in axis) for axis in g.cells([1, 2, 3, 4, 5, 6])]
        [(0, 0, 0, 1, 1, 1), (0, 1, 2, 2, 1, 0)]
        """
        import numpy as np

        flat = np.asarray(seq_num, dtype=np.int64) - 1
        if flat.size and (flat.min() < 0 or flat.max() >= self.size):
            raise NotAGrid(
                f"the {self.stream} stream has sequence number {int(flat.max()) + 1}, beyond the "
                f"{'x'.join(map(str, self.shape))} grid's {self.size} points (more than one event per "
                f"point?); {_USE_READ}"
            )
        raw = np.unravel_index(flat, self.shape)
        out = list(raw)
        for axis in range(1, len(self.shape)):
            if self.snaking[axis]:
                # The axis runs backwards on every other pass, a pass being one step of the slower axes.
                passes = np.ravel_multi_index(raw[:axis], self.shape[:axis])
                out[axis] = np.where(passes % 2 == 1, self.shape[axis] - 1 - raw[axis], raw[axis])
        return tuple(out)

    def place(self, seq_num: Sequence[int] | np.ndarray, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """A float array of the grid's shape: ``values`` in their cells, NaN elsewhere.

        Examples
        --------
        >>> g = Grid("primary", ("y", "x"), (2, 2), ((0, 1), (0, 1)), (False, True))
        >>> g.place([1, 2, 3], [10.0, 20.0, 30.0]).tolist()
        [[10.0, 20.0], [nan, 30.0]]
        """
        import numpy as np

        out = np.full(self.shape, np.nan)
        vals = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        out[self.cells(seq_num)] = vals
        return out


def grid_of(start: Mapping[str, Any], stream: str = "primary") -> Grid:
    """The grid the run's start document describes for ``stream``.

    Raises
    ------
    NotAGrid
        Saying what the start document lacks and what to use instead.

    Examples
    --------
    >>> start = {"hints": {"gridding": "rectilinear",
    ...                    "dimensions": [[["motor1"], "primary"], [["motor2"], "primary"]]},
    ...          "shape": [3, 4], "extents": [[-1, 1], [0, 3]], "snaking": [False, True]}
    >>> grid_of(start).dims, grid_of(start).shape
    (('motor1', 'motor2'), (3, 4))
    """
    hints = start.get("hints")
    gridding = hints.get("gridding") if isinstance(hints, Mapping) else None
    if gridding != RECTILINEAR:
        why = (
            "its start document has no hints.gridding"
            if gridding is None
            else printable(f"its hints.gridding is {str(gridding)[:60]!r}, not {RECTILINEAR!r}")
        )
        raise NotAGrid(f"this run is not a rectilinear grid scan ({why}); {_USE_READ}")
    shape, extents = start.get("shape"), start.get("extents")
    if not _ints(shape) or not extents or not isinstance(extents, (list, tuple)) or len(extents) != len(shape):
        raise NotAGrid(
            "the start document says rectilinear gridding but has no valid 'shape' (positive integers) "
            f"and 'extents' (one [start, stop] per axis); {_USE_READ}"
        )
    if math.prod(shape) > MAX_POINTS:
        raise NotAGrid(
            f"the start document's grid has {math.prod(shape):.3g} points ({'x'.join(map(str, shape))[:80]}), "
            f"more than the {MAX_POINTS:.0e} scandeck puts on a grid; {_USE_READ}"
        )
    pairs: list[tuple[float, float]] = []
    for extent in extents:
        if not (isinstance(extent, (list, tuple)) and len(extent) == 2 and all(_number(v) for v in extent)):
            raise NotAGrid(
                printable(f"the start document's extent {str(extent)[:60]} is not [start, stop]; {_USE_READ}")
            )
        pairs.append((float(extent[0]), float(extent[1])))
    dims = [fields[0] for fields in dimensions(start, stream)]
    if not dims and stream == "primary":
        motors = start.get("motors")
        dims = [m for m in motors if isinstance(m, str)] if isinstance(motors, (list, tuple)) else []
    if len(dims) != len(shape) or len(set(dims)) != len(dims):
        raise NotAGrid(
            printable(
                f"the grid has {len(shape)} axes but the start document names {len(dims)} distinct "
                f"dimension fields for the {stream[:60]!r} stream ({', '.join(dims) or 'none'}); {_USE_READ}"
            )
        )
    snaking = start.get("snaking") or [False] * len(shape)
    if not isinstance(snaking, (list, tuple)) or len(snaking) != len(shape):
        raise NotAGrid(f"the start document's 'snaking' does not give one boolean per axis; {_USE_READ}")
    return Grid(stream, tuple(dims), tuple(int(n) for n in shape), tuple(pairs), tuple(bool(s) for s in snaking))


def _ints(value: Any) -> TypeGuard[Sequence[int]]:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_dataset(grid: Grid, table: Table, fields: Collection[str] | None = None) -> xarray.Dataset:
    """The stream's rows on the grid: one dimension per motor, NaN (None) where unmeasured.

    Each dimension's coordinate holds the setpoints; the measured motor positions
    are not repeated as variables (``read()`` has them). ``time`` and ``seq_num``
    are coordinates on the grid too (NaN where unmeasured), times in seconds.
    """
    import xarray as xr

    from .reading import columns

    if fields is not None:
        missing = [f for f in fields if f not in table.data_keys]
        if missing:
            raise UnknownName(
                printable(
                    f"the {grid.stream} stream has no field {', '.join(missing)[:200]}; "
                    f"its fields: {', '.join(table.data_keys)[:400]}"
                )
            )
    time, seq, cols = columns(table)
    cells = grid.cells(seq)
    variables = {}
    for key, arr in cols.items():
        if key in grid.dims or (fields is not None and key not in fields):
            continue
        info = table.data_keys[key]
        inner = list(info.get("dims") or [])[: arr.ndim - 1]
        inner += [f"{key}_dim_{i}" for i in range(len(inner) + 1, arr.ndim)]
        attrs = {k: info[k] for k in ("units", "source", "dtype", "shape", "precision") if k in info}
        variables[key] = xr.Variable((*grid.dims, *inner), _spread(cells, arr, grid.shape), attrs=attrs)
    coords: dict[str, Any] = {
        dim: xr.Variable(dim, values, attrs={"setpoints": "linspace over the start document's extents"})
        for dim, values in zip(grid.dims, grid.coords(), strict=True)
    }
    coords["seq_num"] = (grid.dims, _spread(cells, seq, grid.shape))
    if time is not None:
        # Seconds, as read() gives them (the same attrs say so).
        coords["time"] = xr.Variable(grid.dims, _spread(cells, time, grid.shape), attrs=dict(TIME_ATTRS))
    about: dict[str, Any] = {
        "gridding": RECTILINEAR,
        "shape": list(grid.shape),
        "extents": [list(e) for e in grid.extents],
        "snaking": [int(s) for s in grid.snaking],  # netCDF attributes hold no booleans
        "points_measured": int(seq.size),
        "points": grid.size,
    }
    return xr.Dataset(variables, coords=coords, attrs=about)


def _spread(cells: tuple[np.ndarray, ...], arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``arr``'s rows in their cells of a ``shape`` grid; the rest NaN (None for non-numbers)."""
    import numpy as np

    inner = arr.shape[1:]
    if arr.dtype.kind in "iufb":
        out = np.full((*shape, *inner), np.nan)
    elif arr.dtype.kind == "c":
        out = np.full((*shape, *inner), np.nan, dtype=complex)
    else:
        out = np.full((*shape, *inner), None, dtype=object)
    out[cells] = arr
    return out
