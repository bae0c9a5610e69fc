"""One registry helper for every extension point: name -> object, entry points, clear misses.

Sources (URI scheme -> factory), external-data handlers (spec / mimetype -> class)
and rerun executors (name -> factory) are each a :class:`Registry`: built-ins are
registered at the bottom of their module, other packages add theirs through an
entry-point group, loaded on the first lookup that misses (importing scandeck never
imports a plug-in), and an unknown name raises one error that lists what is there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .exceptions import ScandeckError, UnknownName

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Objects by name, with an entry-point group consulted on a miss.

    Parameters
    ----------
    what
        What a name names, for messages: ``"rerun executor"``, ``"handler spec"``.
    group
        The entry-point group other packages register in (``"scandeck.sources"``).
    error
        The exception an unknown name raises (a :class:`ScandeckError` subclass).
    check
        Called as ``check(name, obj)`` before registering; raises ``TypeError`` for
        an object that cannot serve.

    Examples
    --------
    >>> colours = Registry("colour", "example.colours")
    >>> colours.register("red", "#f00")
    >>> colours.get("red")
    '#f00'
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    scandeck.exceptions.UnknownName: "no colour named 'blue'; available: red"
    """

    def __init__(
        self,
        what: str,
        group: str,
        *,
        error: type[ScandeckError] = UnknownName,
        check: Callable[[str, T], None] | None = None,
    ) -> None:
        self.what, self.group, self.error, self._check = what, group, error, check
        self._table: dict[str, T] = {}
        self._lock = threading.Lock()

    def register(self, name: str, obj: T, *, overwrite: bool = False) -> None:
        """Make ``name`` stand for ``obj``; another object for a taken name needs ``overwrite``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.what} name must be a non-empty string, not {name!r}")
        if self._check is not None:
            self._check(name, obj)
        with self._lock:
            old = self._table.get(name)
            if old is not None and old is not obj and not overwrite:
                raise ScandeckError(
                    f"a {self.what} named {name!r} is already registered ({_name(old)}); "
                    "pass overwrite=True to replace it"
                )
            self._table[name] = obj

    def find(self, name: str) -> T | None:
        """The object for ``name`` (loading its entry point on a miss), or None."""
        with self._lock:
            obj = self._table.get(name)
        return obj if obj is not None else self._from_entry_point(name)

    def get(self, name: str, *, where: str = "") -> T:
        """The object for ``name``; an unknown name raises :attr:`error` listing the names there are."""
        obj = self.find(name)
        if obj is None:
            raise self.error(self.unknown(name, where))
        return obj

    def unknown(self, name: str, where: str) -> str:
        """The message for a name nothing answers to (``where``: context, e.g. the resource)."""
        return f"no {self.what} named {name!r}{where}; available: {', '.join(self.available()) or 'none'}"

    def names(self) -> list[str]:
        """The names registered so far (entry points not yet loaded are not among them)."""
        with self._lock:
            return sorted(self._table)

    def available(self) -> list[str]:
        """Registered names and the names entry points offer, without loading them."""
        return sorted({*self.names(), *(ep.name for ep in entry_points(group=self.group))})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def snapshot(self) -> dict[str, T]:
        """A copy of the table (tests restore it with :meth:`restore`)."""
        with self._lock:
            return dict(self._table)

    def restore(self, table: dict[str, T]) -> None:
        with self._lock:
            self._table = dict(table)

    def _from_entry_point(self, name: str) -> T | None:
        for ep in entry_points(group=self.group):
            if ep.name != name:
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                raise ScandeckError(
                    f"entry point {ep.name!r} = {ep.value!r} of group {self.group!r} failed to load "
                    f"({type(exc).__name__}: {exc}); fix or uninstall the package that provides it"
                ) from exc
            self.register(name, obj)
            return obj
        return None


def _name(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)
