"""Instrument files in the catalog: watched directories, readers per format, transfer.

* :mod:`.layout`: how a file sits in a run (one event, one resource, datums);
* :mod:`.cache`: verified local copies of files from other machines, by sha256;
* :mod:`.providers`: open sources that hold files' bytes (the Redis bus, the archive);
* :mod:`.follow`: a watched run's files, complete and local, as they arrive.

``scandeck.files`` is this package *and* the function ``scandeck.files(run)``
(:func:`scandeck.files.follow.files`): importing a submodule makes ``scandeck.files``
the package, so the package is callable too, and means the same.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .follow import RunFiles


class _CallablePackage(types.ModuleType):
    def __call__(self, target: object = None, *, catalog: Any = None) -> RunFiles:
        from .follow import files

        return files(target, catalog=catalog)


sys.modules[__name__].__class__ = _CallablePackage
