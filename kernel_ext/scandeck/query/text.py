"""Text searches: :class:`Regex` (a field matching a regular expression) and :class:`FullText`.

Both run Python's :mod:`re` and :meth:`str.casefold` in both compilations: SQLite
has no REGEXP, so :func:`scandeck.query.sql.register_functions` gives the store's
connections the same Python functions ``matches()`` uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidQuery
from .sql import Frag, full_text_sql, regex_sql
from .tree import Query
from .values import DocName, check_path, py_key, read_field, text_key, text_value

#: Inline flags a pattern may carry, by the letter MongoDB's ``$options`` and Python share.
FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def with_flags(pattern: str | re.Pattern[str], options: str = "") -> str:
    """``pattern`` with ``options`` (letters of ``imsx``) as a leading inline group, e.g. ``(?i)ni``.

    A compiled pattern's own flags count too; flags Python has and MongoDB lacks
    (ASCII, LOCALE, DEBUG) raise :class:`InvalidQuery`.

    Examples
    --------
    >>> with_flags("^ni", "i")
    '(?i)^ni'
    >>> with_flags(re.compile("cu", re.I | re.S))
    '(?is)cu'
    """
    letters = set()
    if isinstance(pattern, re.Pattern):
        if not isinstance(pattern.pattern, str):
            raise InvalidQuery("a regular expression for a query is text, not bytes")
        extra = pattern.flags & ~(re.UNICODE | sum(FLAG_LETTERS.values()))
        if extra:
            raise InvalidQuery(
                f"regular expression flags {re.RegexFlag(extra)!r} are not supported: use i, m, s or x"
            )
        letters = {k for k, f in FLAG_LETTERS.items() if pattern.flags & f}
        pattern = pattern.pattern
    if not isinstance(options, str) or set(options) - set(FLAG_LETTERS):
        raise InvalidQuery(f"regular expression options are letters of 'imsx', not {options!r}")
    letters |= set(options)
    return f"(?{''.join(sorted(letters))}){pattern}" if letters else pattern


@dataclass(frozen=True, init=False)
class Regex(Query):
    """Runs whose field is a string in which ``pattern`` is found (:func:`re.search`).

    Case-sensitive unless the pattern says otherwise (``(?i)``). A missing field,
    or one that is not a string (a list of strings included), does not match.
    Build it with ``Key("sample").regex("^N")``; the text form is
    ``sample matches "^N"``.

    Raises
    ------
    InvalidQuery
        For a pattern :mod:`re` cannot compile.

    Examples
    --------
    >>> q = Key("sample").regex("(?i)^ni")
    >>> q.matches({"uid": "a", "time": 0.0, "sample": "nickel"}), str(q)
    (True, 'sample matches "(?i)^ni"')
    """

    doc: DocName
    path: tuple[str, ...]
    pattern: str

    def __init__(self, doc: DocName, path: tuple[str, ...], pattern: str | re.Pattern[str]) -> None:
        path = tuple(path)
        check_path(doc, path, ".".join(map(str, path)))
        if not isinstance(pattern, (str, re.Pattern)):
            raise InvalidQuery(f"a regular expression is a string, not {type(pattern).__name__} {pattern!r}")
        text = with_flags(pattern)
        try:
            re.compile(text)
        except re.error as err:
            raise InvalidQuery(f"invalid regular expression {text!r}: {err}") from None
        object.__setattr__(self, "doc", doc)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "pattern", text)

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        node = read_field(self.doc, self.path, start, stop, facts)
        return isinstance(node, str) and re.search(self.pattern, node) is not None

    def _sql(self) -> Frag:
        return regex_sql(self.doc, self.path, self.pattern)

    def __str__(self) -> str:
        return f"{text_key(self.doc, self.path)} matches {text_value(self.pattern)}"

    def __repr__(self) -> str:
        return f"{py_key(self.doc, self.path)}.regex({self.pattern!r})"


def _strings(node: Any) -> Iterator[str]:
    """Every string value (not key) in a JSON document, nested ones included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _strings(value)


@dataclass(frozen=True, init=False)
class FullText(Query):
    """Runs with a string anywhere in the start document containing ``text``, ignoring case.

    A substring test (``"ni"`` finds ``"Nickel"``), on values only, not key names,
    nested dicts and lists included. The text form is the quoted text alone:
    ``"Ni" and plan_name == "scan"``.

    Tiled's own ``FullText`` (on a Tiled server) matches whole words of the start
    and stop documents; this one, on every source, is the substring test above.

    Examples
    --------
    >>> FullText("nick").matches({"uid": "a", "time": 0.0, "md": {"sample": ["Nickel"]}})
    True
    >>> str(FullText("Ni") & (Key("plan_name") == "scan"))
    '"Ni" and plan_name == "scan"'
    """

    text: str

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise InvalidQuery(f"a full-text search needs a non-empty string, not {text!r}")
        if "\0" in text:
            raise InvalidQuery("a full-text search cannot contain a NUL character")
        object.__setattr__(self, "text", text)

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        needle = self.text.casefold()
        return any(needle in s.casefold() for s in _strings(start))

    def _sql(self) -> Frag:
        return full_text_sql(self.text.casefold())

    def __str__(self) -> str:
        return text_value(self.text)

    def __repr__(self) -> str:
        return f"FullText({self.text!r})"
