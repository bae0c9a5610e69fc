"""Dictionary queries in MongoDB's syntax, as databroker v1/v2 users write them.

:func:`from_mongo` turns ``{"sample": "Ni", "num_points": {"$gt": 5}}`` into a
scandeck query with MongoDB's answer on every source. Keys are dotted paths into
the start document (``"md.sample"``); ``"stop.exit_status"`` reads the stop
document, as :class:`~scandeck.query.Key` does.

What MongoDB does and this keeps:

* a missing field matches ``{"x": None}`` (and ``$in`` with ``None``), ``$ne``,
  ``$nin``, ``$not`` and ``{"$exists": False}``, and nothing else;
* ``{"x": v}``, ``$eq``, ``$ne``, ``$in``, ``$nin`` and ``$all`` also look at the
  elements of a list field (``{"detectors": "det"}`` finds ``["det", "I0"]``);
* a number equals a number of the other kind (``5 == 5.0``), never a boolean or a
  string; ``$gt`` and friends compare numbers with numbers, strings with strings.

Where it differs (said in :data:`DIFFERENCES` and the README): ``$gt``/``$lt``
and ``$regex`` test a list field as a whole (MongoDB tests its elements), a list
value is compared with the whole field only, dotted keys do not index lists
(``"detectors.0"`` is refused) nor reach into lists of dicts.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidQuery
from ..safe_text import printable
from .fields import Key
from .text import with_flags
from .tree import Query, all_of, any_of, negate

#: Operators accepted on a field, and at the top of a query.
FIELD_OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all",
    "$exists", "$regex", "$options", "$not",
)  # fmt: skip
TOP_OPERATORS = ("$and", "$or", "$nor")
_ORDER = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
#: Keys whose values event-model makes scalar: no list-element test is added for them.
_SCALAR_KEYS = {("uid",), ("scan_id",), ("time",)}

DIFFERENCES = (
    "$gt, $gte, $lt, $lte and $regex test a list field as a whole, not its elements; "
    "a list value equals the whole field only; dotted keys do not index lists"
)

_FORMS = (
    'accepted forms: {"sample": "Ni"}, {"num_points": {"$gt": 5}}, '
    '{"plan_name": {"$in": ["scan", "count"]}}, {"$or": [{...}, {...}]}; '
    f"field operators {', '.join(FIELD_OPERATORS)}; top-level {', '.join(TOP_OPERATORS)}"
)


def from_mongo(spec: Mapping[str, Any]) -> Query:
    """The scandeck query for a MongoDB-style dictionary query.

    Parameters
    ----------
    spec
        ``{field: value}`` pairs (all must match), where a value is a JSON value,
        a compiled regular expression, or a dict of operators
        (``{"$gte": 3, "$lt": 9}``); and ``$and``/``$or``/``$nor`` with lists of
        such dicts. ``{}`` matches every run.

    Raises
    ------
    InvalidQuery
        Naming what is wrong (an unknown operator, a malformed value) and the
        accepted forms.

    Examples
    --------
    >>> from_mongo({"sample": "Ni", "num_points": {"$gt": 5}})
    ((Key('sample') == 'Ni') | Key('sample').contains('Ni')) & (Key('num_points') > 5)
    >>> str(from_mongo({"plan_name": {"$in": ["scan", "count"]}}))
    'plan_name in ["scan", "count"] or plan_name contains "scan" or plan_name contains "count"'
    """
    if not isinstance(spec, Mapping):
        raise InvalidQuery(f"a dictionary query is a dict, not {type(spec).__name__}; {_FORMS}")
    parts: list[Query] = []
    for key, cond in spec.items():
        if not isinstance(key, str):
            raise InvalidQuery(f"dictionary query keys are strings, not {type(key).__name__} {key!r}; {_FORMS}")
        if key.startswith("$"):
            parts.append(_top(key, cond))
        else:
            parts.append(_field(_key(key), cond))
    return all_of(*parts)


def _top(op: str, cond: Any) -> Query:
    if op not in TOP_OPERATORS:
        hint = " ($not goes inside a field: {'sample': {'$not': {'$eq': 'Ni'}}})" if op == "$not" else ""
        raise InvalidQuery(printable(f"unknown top-level operator {op!r}{hint}; {_FORMS}"))
    if not isinstance(cond, (list, tuple)) or not cond:
        raise InvalidQuery(printable(f"{op} takes a non-empty list of dictionary queries, not {cond!r}"))
    items = [from_mongo(c) for c in cond]
    if op == "$and":
        return all_of(*items)
    either = any_of(*items)
    return either if op == "$or" else negate(either)


def _key(name: str) -> Key:
    segments = name.split(".")
    if any(s.isdigit() for s in segments):
        raise InvalidQuery(
            printable(
                f"key {name!r} indexes a list by position, which scandeck queries do not do; "
                f"test the elements with {{'{segments[0]}': value}} (any element equal), "
                "or use Key((...)) with the names as a tuple for a dict key made of digits"
            )
        )
    doc, _, rest = name.partition(".")
    if doc == "start" and rest:  # as in Tiled's keys: the start document's field, even "start.tags"
        return Key(rest, doc="start")
    return Key(name)  # "stop.x", and columns.x, tags, comments, data.x.min (a run's facts), as in text


def _is_operators(cond: Any) -> bool:
    if not isinstance(cond, Mapping) or not cond:
        return False
    dollars = [isinstance(k, str) and k.startswith("$") for k in cond]
    if any(dollars) and not all(dollars):
        raise InvalidQuery(
            printable(f"{dict(cond)!r} mixes operators and field names; nest fields with dotted keys; {_FORMS}")
        )
    return all(dollars)


def _field(key: Key, cond: Any) -> Query:
    if _is_operators(cond):
        return _operators(key, cond)
    if isinstance(cond, Mapping):
        raise InvalidQuery(
            printable(
                f"cannot compare {'.'.join(key.path)} with a whole dict {dict(cond)!r}: "
                "compare its fields with dotted keys instead, e.g. {'md.sample': 'Ni'}"
            )
        )
    if isinstance(cond, re.Pattern):
        return key.regex(cond)
    return _eq(key, cond)


def _eq(key: Key, value: Any) -> Query:
    """MongoDB's equality: the field equals ``value``, or is a list with such an element."""
    if isinstance(value, re.Pattern):
        return key.regex(value)
    if isinstance(value, (list, tuple)):
        return key == list(value)
    return _in(key, [value])


def _in(key: Key, values: list[Any]) -> Query:
    """MongoDB's ``$in``: :func:`_eq` to any of ``values``, as few leaves as that takes."""
    scalars = [v for v in values if v is not None and not isinstance(v, (list, tuple, re.Pattern))]
    parts: list[Query] = [key.in_(scalars) if len(scalars) != 1 else key == scalars[0]] if scalars else []
    if not (key.doc == "start" and key.path in _SCALAR_KEYS):
        parts += [key.contains(v) for v in scalars]
    if any(v is None for v in values):  # null, missing, or a list holding null
        parts += [negate(key != None), key.contains(None)]  # noqa: E711
    parts += [key == list(v) for v in values if isinstance(v, (list, tuple))]
    parts += [key.regex(v) for v in values if isinstance(v, re.Pattern)]
    return any_of(*parts) if parts else key.in_([])


def _values(op: str, cond: Any) -> list[Any]:
    if isinstance(cond, (str, bytes, Mapping)) or not isinstance(cond, (list, tuple, set, frozenset)):
        raise InvalidQuery(printable(f"{op} takes a list of values, e.g. {{'{op}': ['Ni', 'Cu']}}, not {cond!r}"))
    return list(cond)


def _operators(key: Key, ops: Mapping[str, Any]) -> Query:
    unknown = [op for op in ops if op not in FIELD_OPERATORS]
    if unknown:
        raise InvalidQuery(printable(f"unknown operator {unknown[0]!r} on {'.'.join(key.path)}; {_FORMS}"))
    if "$options" in ops and "$regex" not in ops:
        raise InvalidQuery("$options goes with $regex: {'sample': {'$regex': '^ni', '$options': 'i'}}")
    parts: list[Query] = []
    for op, value in ops.items():
        if op == "$options":
            continue
        if op == "$eq":
            parts.append(_eq(key, value))
        elif op == "$ne":
            parts.append(negate(_eq(key, value)))
        elif op in _ORDER:
            parts.append(_ORDER[op](key, value))
        elif op in ("$in", "$nin", "$all"):
            values = _values(op, value)
            if op == "$all":
                if not values:
                    raise InvalidQuery("$all needs at least one value (MongoDB matches nothing with [])")
                parts.append(all_of(*(_eq(key, v) for v in values)))
            else:
                found = _in(key, values)
                parts.append(found if op == "$in" else negate(found))
        elif op == "$exists":
            if not isinstance(value, (bool, int)):
                raise InvalidQuery(printable(f"$exists takes true or false, not {value!r}"))
            parts.append(key.exists() if value else negate(key.exists()))
        elif op == "$regex":
            if not isinstance(value, (str, re.Pattern)):
                raise InvalidQuery(printable(f"$regex takes a string or a compiled pattern, not {value!r}"))
            parts.append(key.regex(with_flags(value, ops.get("$options", ""))))
        else:  # $not: an operator dict or a pattern, negated (a missing field matches)
            if isinstance(value, re.Pattern):
                parts.append(negate(key.regex(value)))
            elif _is_operators(value):
                parts.append(negate(_operators(key, value)))
            else:
                raise InvalidQuery(
                    printable(f"$not takes operators or a pattern, e.g. {{'$not': {{'$gt': 5}}}}, not {value!r}")
                )
    return all_of(*parts)
