"""Search queries over stored runs, compiled both to SQL and to a Python predicate.

The package: :mod:`.tree` (the query objects and their combinations), :mod:`.fields`
(``Key`` comparisons), :mod:`.values` (JSON values and their ordering), :mod:`.times`
(dates and time ranges), :mod:`.sql` (SQL fragments), :mod:`.parser` (text queries).
``scandeck.queries`` is the same module under its older name.

A query is built from :class:`Key` comparisons, :class:`TimeRange`, :class:`ScanID`
and :class:`PartialUID`, combined with ``&``, ``|`` and ``~``, or parsed from text
with :func:`parse`. Every query can

* test a run's documents in Python: ``query.matches(start, stop)``;
* compile to an SQLite boolean expression over the store's ``runs`` table
  (columns ``uid``, ``scan_id``, ``time``, ``start`` and ``stop``, the last two
  holding the documents as JSON): ``sql, params = query.to_sql()``;
* print itself as text that :func:`parse` reads back: ``parse(str(query)) == query``.

Both compilations give the same answer for every run. The rules:

* A key is a path into the start document (``Key("md.sample")`` is
  ``start["md"]["sample"]``); a path beginning with ``stop.`` reads the stop
  document, which is missing while a run is still going. Paths beginning with
  ``columns.``, ``tags``, ``comments`` or ``data.`` read the run's *facts*
  (:mod:`scandeck.runtable`): computed column values, current tags (a list), the
  comments' text (one string) and per-key data ranges (``data.theta.min``). In
  SQL they read the JSON column ``facts`` (a run without one reads as the empty
  document, :func:`scandeck.runtable.model.empty_facts`); ``matches(start, stop,
  facts)`` takes the same document. Quote the first name (`` `tags` ``) for a start field of that name.
* A missing key matches no comparison, ``!=`` and ``not in`` included. ``~``
  (``not``) is plain logical negation, so ``~(Key("x") == 1)`` matches runs
  without ``x``.
* Values compare only with the same JSON type: numbers with numbers (``1 == 1.0``),
  strings with strings, booleans with booleans, ``None`` (JSON ``null``) with a
  present ``null``, lists element by element. A boolean is not a number, so
  ``Key("flag") == 1`` does not match ``true``. ``!=`` means "present and not
  equal", so ``Key("x") != 1`` matches ``x = "1"`` and ``x = null``.
* ``<``, ``<=``, ``>``, ``>=`` take a number or a string and are false for a field
  of any other type (strings compare by code point, case-sensitively).
* ``contains`` is true when a list field has an element equal to the value, or a
  string field has the value (a string) as a substring, case-sensitively;
  ``startswith`` is a case-sensitive prefix test on a string field;
  ``matches`` (:class:`Regex`) is :func:`re.search` on a string field; a quoted
  text alone (:class:`FullText`) finds runs with a string value anywhere in the
  start document containing it, ignoring case. SQLite runs both through the same
  Python functions (:func:`scandeck.query.sql.register_functions`).
* Keys ``uid``, ``scan_id`` and ``time`` use the table's columns, which must hold
  the start document's values (as event-model validation guarantees: a string,
  an integer and a number). Other keys use ``json_extract``/``json_type`` on the
  JSON text, which must be strict JSON (no ``NaN``).

Examples
--------
>>> q = (Key("sample") == "Ni") & ~Key("stop.exit_status").in_(["abort", "fail"])
>>> str(q)
'sample == "Ni" and not stop.exit_status in ["abort", "fail"]'
>>> q.matches({"uid": "a3f", "time": 0.0, "sample": "Ni"}, None)
True
"""

from __future__ import annotations

from .fields import Comparison, Key
from .parser import parse_query
from .text import FullText, Regex
from .times import DATE_FORMS as DATE_FORMS
from .times import TimeLike as TimeLike
from .tree import And, MatchAll, Not, Or, PartialUID, Query, ScanID, TimeRange
from .values import KEYWORDS as KEYWORDS
from .values import OPERATORS as OPERATORS
from .values import DocName as DocName
from .values import Value as Value
from .values import is_identifier as is_identifier

__all__ = [
    "And",
    "Comparison",
    "FullText",
    "Key",
    "MatchAll",
    "Not",
    "Or",
    "PartialUID",
    "Query",
    "Regex",
    "ScanID",
    "TimeRange",
    "parse",
]


def parse(text: str) -> Query:
    """Parse a text query; the inverse of ``str(query)``.

    Conditions are ``key op value`` with ``op`` one of ``== != < <= > >=``, or
    ``key in [..]``, ``key not in [..]``, ``key contains value``,
    ``key startswith "text"``, ``key matches "regex"`` (:class:`Regex`), or a
    quoted text alone (:class:`FullText`: in any string of the start document), joined with ``and``/``&&``/``&``,
    ``or``/``||``/``|``, ``not``/``!``/``~`` and parentheses (``not`` binds
    tightest, then ``and``, then ``or``). Keys are dotted names (``md.sample``,
    ``stop.exit_status``), with backquotes around a name that is not a plain
    identifier (``md.`weird key```). Values are ``"strings"``, ``'strings'``, numbers, ``true``,
    ``false``, ``null`` and ``[lists]``. ``*`` or an empty text matches every run.

    ``time`` compared with a date string (or a number, for ``<``, ``<=``, ``>``,
    ``>=``) becomes a :class:`TimeRange`. A date string stands for the whole span
    of its precision: ``time == "2026-11-21"`` is that whole local day,
    ``time <= "2026-11-21 10:30"`` includes the minute 10:30, ``time > "2026-11-21"``
    starts at the next midnight. ``scan_id == 5`` and ``scan_id in [1, 2]``
    become :class:`ScanID`, ``uid startswith "a3f"`` a :class:`PartialUID`.

    Raises
    ------
    QuerySyntaxError
        With the 0-based column of the offending token and what was expected.

    Examples
    --------
    >>> parse('sample == "Ni" and not stop.exit_status == "abort"')
    (Key('sample') == 'Ni') & ~(Key('stop.exit_status') == 'abort')
    >>> parse("scan_id in [3, 4] or uid startswith 'a3f'")
    ScanID(3, 4) | PartialUID('a3f')
    """
    return parse_query(text)
