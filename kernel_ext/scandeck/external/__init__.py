"""External data: arrays that documents reference in files, read through handlers.

* :mod:`.registry`: which handler class reads a resource ``spec`` or stream ``mimetype``
  (``register_handler``, ``register_stream_handler``, entry points);
* :mod:`.builtin`: the handlers scandeck ships (``NPY_SEQ``, ``AD_HDF5``, ``HDF5``,
  ``application/x-hdf5``);
* :mod:`.filler`: :class:`Filler`, which reads a run's external values through them;
* :mod:`.paths`: where a resource's file is.

``scandeck.handlers`` is this package under its first name.
"""

from __future__ import annotations

from ..exceptions import (
    DatumIndexError,
    DatumNotFound,
    ExternalFileMissing,
    FillError,
    ResourceNotFound,
    UnknownHandler,
)
from .builtin import AreaDetectorHDF5Handler, HDF5DatasetHandler, HDF5StreamHandler, NpySeqHandler
from .filler import Filler
from .paths import resource_path, uri_to_path
from .registry import (
    HANDLERS,
    STREAM_HANDLERS,
    HandlerClass,
    get_handler,
    get_stream_handler,
    register_handler,
    register_stream_handler,
    registered_handlers,
)

__all__ = [
    "HANDLERS",
    "STREAM_HANDLERS",
    "AreaDetectorHDF5Handler",
    "DatumIndexError",
    "DatumNotFound",
    "ExternalFileMissing",
    "FillError",
    "Filler",
    "HDF5DatasetHandler",
    "HDF5StreamHandler",
    "HandlerClass",
    "NpySeqHandler",
    "ResourceNotFound",
    "UnknownHandler",
    "get_handler",
    "get_stream_handler",
    "register_handler",
    "register_stream_handler",
    "registered_handlers",
    "resource_path",
    "uri_to_path",
]
