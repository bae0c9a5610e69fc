"""The handler registries: resource ``spec`` -> handler class, stream ``mimetype`` -> class.

By spec, ``cls(full_path, **resource_kwargs)`` then ``handler(**datum_kwargs)`` (the
databroker convention); by mimetype, ``cls(uri, **parameters)`` then
``handler(indices_start, indices_stop)``. Both are :class:`scandeck.registry.Registry`
instances: other packages add handlers through the entry-point groups
``scandeck.handlers`` / ``scandeck.stream_handlers`` (named by spec / mimetype).
The built-in ones (:mod:`.builtin`) are registered at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import UnknownHandler
from ..files.handler import FileHandler
from ..files.layout import SPEC as FILE_SPEC
from ..registry import Registry
from .builtin import AreaDetectorHDF5Handler, HDF5DatasetHandler, HDF5StreamHandler, NpySeqHandler

__all__ = [
    "HANDLERS",
    "STREAM_HANDLERS",
    "HandlerClass",
    "get_handler",
    "get_stream_handler",
    "register_handler",
    "register_stream_handler",
    "registered_handlers",
]

#: A handler class: built once per resource, then called once per datum.
HandlerClass = Callable[..., Callable[..., Any]]


def _callable(name: str, cls: HandlerClass) -> None:
    if not callable(cls):
        raise TypeError(f"the handler for {name!r} must be a class, not {cls!r}")


class _HandlerRegistry(Registry[HandlerClass]):
    """A handler registry whose misses say how to register one."""

    def __init__(self, what: str, group: str, register_fn: str) -> None:
        super().__init__(what, group, error=UnknownHandler, check=_callable)
        self.register_fn = register_fn

    def unknown(self, name: str, where: str) -> str:
        known = ", ".join(repr(k) for k in self.names()) or "none"
        return (
            f"no handler is registered for {self.what} {name!r}{where}; registered {self.what}s: "
            f'{known}. Register one with scandeck.handlers.{self.register_fn}("{name}", cls), or '
            f"install the package that provides it (entry-point group {self.group!r})"
        )


def _where(resource_uid: str | None) -> str:
    return f" (resource {resource_uid})" if resource_uid else ""


#: Handler classes by resource spec.
HANDLERS = _HandlerRegistry("spec", "scandeck.handlers", "register_handler")
#: Stream handler classes by stream-resource mimetype.
STREAM_HANDLERS = _HandlerRegistry("mimetype", "scandeck.stream_handlers", "register_stream_handler")


def register_handler(spec: str, handler_cls: HandlerClass, *, overwrite: bool = False) -> None:
    """Read resources of ``spec`` with ``handler_cls``.

    ``handler_cls(full_path, **resource_kwargs)`` returns a callable taking a
    datum's ``datum_kwargs`` and returning an array; its ``close()``, if any, is
    called by :meth:`Filler.close`. Registering another class for a taken spec
    needs ``overwrite=True``.

    Examples
    --------
    >>> class TextHandler:
    ...     def __init__(self, path, **kwargs): self.path = path
    ...     def __call__(self, line): ...
    >>> register_handler("MY_TEXT", TextHandler)
    >>> get_handler("MY_TEXT") is TextHandler
    True
    """
    HANDLERS.register(spec, handler_cls, overwrite=overwrite)


def get_handler(spec: str, *, resource_uid: str | None = None) -> HandlerClass:
    """The handler class for ``spec``, or :class:`~scandeck.exceptions.UnknownHandler`.

    Examples
    --------
    >>> get_handler("NPY_SEQ").__name__
    'NpySeqHandler'
    """
    return HANDLERS.get(spec, where=_where(resource_uid))


def register_stream_handler(mimetype: str, handler_cls: HandlerClass, *, overwrite: bool = False) -> None:
    """Read stream resources of ``mimetype`` with ``handler_cls``.

    ``handler_cls(uri, **parameters)`` returns a callable
    ``(indices_start, indices_stop) -> array`` of those rows.

    Examples
    --------
    >>> register_stream_handler("application/x-hdf5", HDF5StreamHandler)  # doctest: +SKIP
    """
    STREAM_HANDLERS.register(mimetype, handler_cls, overwrite=overwrite)


def get_stream_handler(mimetype: str, *, resource_uid: str | None = None) -> HandlerClass:
    """The stream handler class for ``mimetype``, or ``UnknownHandler``.

    Examples
    --------
    >>> get_stream_handler("application/x-hdf5").__name__
    'HDF5StreamHandler'
    """
    return STREAM_HANDLERS.get(mimetype, where=_where(resource_uid))


def registered_handlers() -> dict[str, list[str]]:
    """Specs and mimetypes with a handler (entry points not yet loaded are not listed).

    Examples
    --------
    >>> registered_handlers()["mimetypes"]
    ['application/x-hdf5']
    """
    return {"specs": HANDLERS.names(), "mimetypes": STREAM_HANDLERS.names()}


register_handler("NPY_SEQ", NpySeqHandler)
register_handler("AD_HDF5", AreaDetectorHDF5Handler)
register_handler("AD_HDF5_SWMR", AreaDetectorHDF5Handler)  # same layout, written in SWMR mode
register_handler("HDF5", HDF5DatasetHandler)
register_stream_handler("application/x-hdf5", HDF5StreamHandler)
register_handler(FILE_SPEC, FileHandler)  # watched instrument files; readers import tifffile, h5py on first read
