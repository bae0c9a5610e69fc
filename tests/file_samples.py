"""Instrument files for the reader and handler tests, written by each format's own library.

:func:`sample_files` writes one small file per built-in reader; :class:`SpeReader`
is a reader a plug-in package would offer through the ``scandeck.file_readers``
entry-point group (the registry tests point an entry point at it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import tifffile

from scandeck.files.readers import FileLayout, array_key

HAS_FABIO = importlib.util.find_spec("fabio") is not None


def frames(n: int = 3, shape: tuple[int, int] = (24, 32), dtype: str = "<u2") -> np.ndarray:
    """A stack of ``n`` distinct frames (each pixel differs from its neighbours)."""
    return (np.arange(n * shape[0] * shape[1]) % 65_521).reshape(n, *shape).astype(dtype)


def write_tiff(path: Path, data: np.ndarray, **tags: object) -> Path:
    """A TIFF of ``data``: 2-D one page, 3-D one page per frame (MINISBLACK)."""
    tifffile.imwrite(path, data, photometric="minisblack", **tags)  # type: ignore[arg-type]
    return path


def write_edf(path: Path, stack: np.ndarray, header: dict[str, str] | None = None) -> Path:
    """An EDF file with one frame per ``stack`` entry (fabio)."""
    from fabio.edfimage import EdfImage

    image = EdfImage(data=stack[0], header=dict(header or {}))
    for frame in stack[1:]:
        image.append_frame(data=frame, header={"frame": "more"})
    image.write(str(path))
    return path


def write_cbf(path: Path, image: np.ndarray, header: dict[str, str] | None = None) -> Path:
    from fabio.cbfimage import CbfImage

    CbfImage(data=image, header=dict(header or {})).write(str(path))
    return path


def write_hdf5(path: Path) -> Path:
    """A NeXus-like HDF5 file: a detector stack, a 1-D counter, a scalar, text, attributes."""
    with h5py.File(path, "w") as f:
        f.attrs["creator"] = "file_samples"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_dataset("data/data", data=frames(2))
        data.attrs["units"] = "counts"
        entry.create_dataset("I0", data=np.linspace(0.5, 2.5, 5))
        entry.create_dataset("count_time", data=0.25)
    return path


def write_csv(path: Path) -> Path:
    path.write_text(
        "# wavelength: 1.5406\n2theta (deg),I,time\n10.0,5,1\n10.5,7.25,2\n11.0,,3\n", encoding="utf-8"
    )
    return path


def sample_files(tmp_path: Path) -> dict[str, Path]:
    """One readable file per built-in reader, by reader name."""
    out = {
        "tiff": write_tiff(tmp_path / "frame.tif", frames(1)[0], description="sample"),
        "hdf5": write_hdf5(tmp_path / "scan.h5"),
        "table": write_csv(tmp_path / "pattern.csv"),
        "bytes": tmp_path / "notes.bin",
    }
    np.save(tmp_path / "array.npy", np.arange(12.0).reshape(3, 4))
    out["npy"] = tmp_path / "array.npy"
    out["bytes"].write_bytes(b"\x00\x01 anything at all")
    if HAS_FABIO:
        out["image"] = write_edf(tmp_path / "det.edf", frames(1, dtype="<i4"), {"ExposureTime": "0.5"})
    return out


class SpeReader:
    """A reader a plug-in would ship: ``*.spe`` as one float32 row (enough for the registry tests)."""

    name = "spe"
    patterns = ("*.spe",)

    def describe(self, path: str) -> FileLayout:
        n = Path(path).stat().st_size // 4
        return FileLayout({"spectrum": array_key((n,), "<f4")}, {"plugin": True})

    def read(self, path: str, key: str) -> np.ndarray:
        return np.fromfile(path, dtype="<f4")
