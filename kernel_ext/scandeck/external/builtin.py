"""The handlers scandeck ships: ``NPY_SEQ``, ``AD_HDF5``, ``HDF5`` and ``application/x-hdf5``.

:mod:`scandeck.handlers` registers them (``AD_HDF5_SWMR`` too, the same layout
written in SWMR mode). The HDF5 ones need ``h5py`` (``pip install 'scandeck[hdf5]'``),
imported on first read.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..exceptions import FillError, require
from .paths import uri_to_path

__all__ = [
    "AreaDetectorHDF5Handler",
    "HDF5DatasetHandler",
    "HDF5StreamHandler",
    "NpySeqHandler",
]


def _import_h5py() -> Any:
    return require("h5py", "hdf5")


class _H5Rows:
    """Base of the HDF5 handlers: one dataset, opened on first use, kept open until close()."""

    def __init__(self, path: str, dataset: str) -> None:
        self.path, self.dataset = path, dataset
        self._file: Any = None

    def rows(self, start: int, stop: int, what: str) -> np.ndarray:
        start, stop = int(start), int(stop)
        if start < 0 or stop < start:
            raise IndexError(f"{what}: rows {start}:{stop} are not a valid range")
        ds = self._open()
        if stop > ds.shape[0]:  # the writer may have appended since we opened: look again
            self.close()
            ds = self._open()
        if stop > ds.shape[0]:
            raise IndexError(
                f"{what} needs rows {start}:{stop} of {self.dataset} in {self.path}, "
                f"which has {ds.shape[0]} (shape {tuple(ds.shape)})"
            )
        return np.asarray(ds[start:stop])

    def _open(self) -> Any:
        h5py = _import_h5py()
        if self._file is None:
            if not os.path.exists(self.path):
                raise FileNotFoundError(2, "No such file", self.path)
            self._file = h5py.File(self.path, "r")
        try:
            return self._file[self.dataset]
        except KeyError:
            raise FillError(
                f"{self.path} has no dataset {self.dataset!r}; the resource names the wrong "
                "dataset or the file was written by another program"
            ) from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class NpySeqHandler:
    """``NPY_SEQ``: ``{full_path}_{index}.npy``, one file per datum (``SynSignalWithRegistry``).

    Examples
    --------
    >>> NpySeqHandler("/data/a1b2c3")(index=0)  # reads /data/a1b2c3_0.npy  # doctest: +SKIP
    """

    def __init__(self, resource_path: str, **resource_kwargs: Any) -> None:
        self.path = resource_path

    def __call__(self, index: int) -> np.ndarray:
        return np.load(f"{self.path}_{int(index)}.npy", allow_pickle=False)


class AreaDetectorHDF5Handler(_H5Rows):
    """``AD_HDF5``: frames ``[pn*fpp, (pn+1)*fpp)`` of ``/entry/data/data``.

    ``fpp`` is resource_kwargs ``frame_per_point``, ``pn`` datum_kwargs
    ``point_number``; with one frame per point the frame itself is returned.

    Examples
    --------
    >>> AreaDetectorHDF5Handler("/data/cam.h5", frame_per_point=1)(point_number=3)  # doctest: +SKIP
    """

    def __init__(self, resource_path: str, frame_per_point: int = 1, **resource_kwargs: Any) -> None:
        super().__init__(resource_path, "/entry/data/data")
        self.frame_per_point = int(frame_per_point)

    def __call__(self, point_number: int) -> np.ndarray:
        fpp = self.frame_per_point
        start = int(point_number) * fpp
        frames = self.rows(start, start + fpp, f"point_number {point_number}")
        return frames[0] if fpp == 1 else frames


class HDF5DatasetHandler(_H5Rows):
    """``HDF5``: ``data[index]`` of the dataset named by resource_kwargs ``dataset``.

    Examples
    --------
    >>> HDF5DatasetHandler("/data/x.h5", dataset="/entry/I0")(index=4)  # doctest: +SKIP
    """

    def __init__(self, resource_path: str, dataset: str, **resource_kwargs: Any) -> None:
        super().__init__(resource_path, dataset)

    def __call__(self, index: int) -> np.ndarray:
        return self.rows(index, int(index) + 1, f"index {index}")[0]


class HDF5StreamHandler(_H5Rows):
    """``application/x-hdf5``: rows of parameters ``dataset``; other parameters ignored.

    Examples
    --------
    >>> HDF5StreamHandler("file://localhost/data/x.h5", dataset="/det")(0, 5)  # doctest: +SKIP
    """

    def __init__(self, uri: str, dataset: str, **parameters: Any) -> None:
        super().__init__(uri_to_path(uri), dataset)

    @property
    def shape(self) -> tuple[int, ...]:
        """The dataset's shape: the Filler maps an event onto ``rows`` by its trailing dims."""
        return tuple(self._open().shape)

    def __call__(self, indices_start: int, indices_stop: int) -> np.ndarray:
        return self.rows(indices_start, indices_stop, f"rows {indices_start}:{indices_stop}")
