"""HDF5 files through h5py: each dataset a data key, attributes as ``info``.

Key names: a dataset's path with its ``/`` (and any other character that is not
an ASCII letter, digit or ``_``) written ``_``: ``/entry/data/data`` ->
``entry_data_data``, ``/0001/image`` -> ``dataset_0001_image``. Datasets are
taken in h5py's visiting order (by name, each object once however many links
lead to it), and a name already taken gets ``_2``, ``_3``... (see
:func:`~scandeck.files.reader_kit.data_key_names`), so files of the same
structure get the same keys. ``info["datasets"]`` maps each key back to its
dataset path.

``info``::

    {"attrs": {...},                                   # the file's (root group's) attributes
     "groups": {"/entry": {"NX_class": "NXentry"}},    # groups that have attributes
     "datasets": {"entry_data_data": {"path": "/entry/data/data", "attrs": {...}}},
     "skipped": {"/entry/log": "compound type with ..."}}  # datasets without a key, and why

Datasets of numbers, booleans and text (read as ``str`` arrays) get keys;
references, opaque, variable-length arrays, empty datasets and compound types
holding any of those are listed under ``skipped``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..exceptions import require
from .reader_kit import FileLayout, FileMemo, array_key, data_key_names, jsonable, unreadable

__all__ = ["Hdf5Reader"]


class Hdf5Reader:
    """HDF5 through h5py; see the module docstring for key names and ``info``."""

    name = "hdf5"
    patterns = ("*.h5", "*.hdf5", "*.nxs", "*.nx5", "*.he5")

    def __init__(self) -> None:
        self._layouts: FileMemo = FileMemo()

    def describe(self, path: str) -> FileLayout:
        layout, _paths = self._layouts.get(path, self._describe)
        return layout

    def read(self, path: str, key: str) -> np.ndarray:
        _layout, paths = self._layouts.get(path, self._describe)
        if key not in paths:
            raise unreadable(path, self.name, f"has no data key {key!r} (its keys: {sorted(paths)})")
        with self._open(path) as f:
            ds = f[paths[key]]
            h5py = require("h5py", "hdf5")
            if h5py.check_string_dtype(ds.dtype) is not None:
                # Text that is not in its encoding ("ASCII" with other bytes) is escaped, not refused.
                return np.asarray(ds.asstr(errors="backslashreplace")[()], dtype=str)
            return np.asarray(ds[()])

    def _open(self, path: str) -> Any:
        h5py = require("h5py", "hdf5")
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError) or not os.path.exists(path):
                raise
            raise unreadable(path, self.name, f"not a readable HDF5 file ({exc})") from exc

    def _describe(self, path: str) -> tuple[FileLayout, dict[str, str]]:
        h5py = require("h5py", "hdf5")
        found: list[tuple[str, Any]] = []
        groups: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        with self._open(path) as f:
            file_attrs = _attrs(f)

            def visit(name: str, obj: Any) -> None:
                where = "/" + name
                if isinstance(obj, h5py.Group):
                    attrs = _attrs(obj)
                    if attrs:
                        groups[where] = attrs
                elif isinstance(obj, h5py.Dataset):
                    why = _unkeyable(h5py, obj)
                    if why:
                        skipped[where] = why
                    else:
                        found.append((where, obj))

            try:
                f.visititems(visit)
            except (OSError, RuntimeError, KeyError) as exc:
                raise unreadable(path, self.name, f"a corrupt HDF5 file ({exc})") from exc
            keys = data_key_names([where for where, _ in found], prefix="dataset")
            data_keys: dict[str, dict[str, Any]] = {}
            datasets: dict[str, Any] = {}
            for key, (where, ds) in zip(keys, found, strict=True):
                dtype = str if h5py.check_string_dtype(ds.dtype) is not None else ds.dtype
                data_keys[key] = array_key(ds.shape, dtype)
                datasets[key] = {"path": where, "attrs": _attrs(ds)}
        info: dict[str, Any] = {"attrs": file_attrs, "groups": groups, "datasets": datasets}
        if skipped:
            info["skipped"] = skipped
        return FileLayout(data_keys, jsonable(info)), {key: d["path"] for key, d in datasets.items()}


def _attrs(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.attrs:
        try:
            out[str(name)] = jsonable(obj.attrs[name])
        except (OSError, TypeError, ValueError) as exc:  # a type h5py cannot turn into numpy
            out[str(name)] = f"<unreadable attribute: {exc}>"
    return out


def _unkeyable(h5py: Any, ds: Any) -> str | None:
    """Why a dataset gets no data key, or None."""
    if ds.shape is None:
        return "an empty dataset (no dataspace)"
    dt = ds.dtype
    if h5py.check_string_dtype(dt) is not None:
        return None
    if dt.kind in "biuf" or (dt.kind == "c" and dt.names is None):
        return None
    if dt.names and all(dt.fields[n][0].kind in "biufc" and not dt.fields[n][0].shape for n in dt.names):
        return None
    if h5py.check_ref_dtype(dt) is not None:
        return "object or region references"
    if h5py.check_vlen_dtype(dt) is not None:
        return "variable-length sequences"
    return f"type {dt} (opaque, nested or compound with other than numbers)"
