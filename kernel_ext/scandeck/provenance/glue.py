"""``scandeck.glue(name, value)``: a notebook publishes a named result with its provenance record.

A value glued in a kernel is kept in the kernel's provenance context
(:mod:`scandeck.provenance.context`) and goes into the ``values`` of the record
made next: ``%provenance save``, ``scandeck run``, a rerun (the papermill engine
asks the kernel for it at the end of execution, with the inputs). A rerun's values
become columns of its target run in the run table (:mod:`scandeck.provenance.published`).

What can be glued is what every store and query can hold: JSON's scalars (``None``,
``True``/``False``, integers of 64 bits, finite floats, strings) and lists of them,
numpy scalars and 1-D arrays included. Stdlib only, as the context.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from ..exceptions import InvalidGlue, UnsupportedGlueType
from ..safe_text import printable

__all__ = ["MAX_BYTES", "MAX_ITEMS", "MAX_NAME", "check_name", "glue", "plain_value"]

#: Longest value name.
MAX_NAME = 64
#: Most items of a list value.
MAX_ITEMS = 1000
#: Largest value, as compact JSON (UTF-8 bytes).
MAX_BYTES = 64 * 1024
#: Words the query syntax reserves: a value name is written unquoted in ``columns.<record>.<name>``
#: (the query package's KEYWORDS, and ``matches``; a test keeps them in step).
RESERVED = frozenset({"and", "or", "not", "in", "contains", "startswith", "matches", "true", "false", "null"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_ALLOWED = "numbers, strings, booleans, None, or a list of those"


def check_name(name: object) -> str:
    """A value name as published, or :class:`InvalidGlue` saying what a name may be.

    A name is a Python identifier of at most 64 characters that the query syntax
    does not reserve (``and``, ``true``, ...): it is searched as ``columns.<record>.<name>``.

    Examples
    --------
    >>> check_name("cen")
    'cen'
    """
    if not isinstance(name, str):
        raise UnsupportedGlueType(f"a glued value's name is a string such as 'cen', not {type(name).__name__}")
    if not name.isidentifier() or len(name) > MAX_NAME or name.lower() in RESERVED:
        raise InvalidGlue(
            printable(
                f"cannot glue a value named {name[:80]!r}: a name is an identifier of at most {MAX_NAME} "
                "characters (letters, digits and _, not starting with a digit, not a query word such as "
                "'and' or 'true'), e.g. 'cen' or 'peak_width'"
            )
        )
    return name


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate: no store keeps it as text
            raise InvalidGlue(f"{where} is not valid Unicode text ({err.reason} at {err.start})") from None
        return value
    if isinstance(value, numbers.Integral):
        number = int(value)
        if not _INT_MIN <= number <= _INT_MAX:
            raise InvalidGlue(f"{where} is an integer of {number.bit_length()} bits: glue it as a float")
        return number
    if isinstance(value, numbers.Real):
        real = float(value)
        if not math.isfinite(real):
            raise InvalidGlue(f"{where} is {real!r}: only finite numbers can be glued (glue None for no value)")
        return real
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # a numpy scalar (numpy.bool_ is no number)
        return _scalar(item(), where)
    raise UnsupportedGlueType(f"{where} is of type {type(value).__name__}: glue takes {_ALLOWED}")


def plain_value(value: object) -> Any:
    """``value`` as the JSON value it is published as, or an error saying what can be glued.

    Raises
    ------
    UnsupportedGlueType
        A type glue does not take (a dict, an object, a list of lists); also a ``TypeError``.
    InvalidGlue
        NaN or infinity, an integer beyond 64 bits, more than 1000 items, more than 64 KiB
        of JSON, text that is not valid Unicode; also a ``ValueError``.

    Examples
    --------
    >>> plain_value((1, 2.5, "x", None))
    [1, 2.5, 'x', None]
    """
    ndim = getattr(value, "ndim", None)
    if isinstance(ndim, int) and ndim >= 1 and callable(getattr(value, "tolist", None)):
        if ndim > 1:
            raise UnsupportedGlueType(
                f"an array of {ndim} dimensions cannot be glued: glue {_ALLOWED} (a 1-D array is a list)"
            )
        value = value.tolist()  # type: ignore[attr-defined]  # a numpy array, checked above
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise InvalidGlue(f"a glued list holds at most {MAX_ITEMS} items, not {len(value)}: glue a summary")
        plain: Any = [_scalar(v, f"item {i} of the list") for i, v in enumerate(value)]
    elif isinstance(value, (set, frozenset, dict)) or hasattr(value, "keys"):
        raise UnsupportedGlueType(
            f"a {type(value).__name__} cannot be glued: glue {_ALLOWED} (one glue call per named value)"
        )
    else:
        plain = _scalar(value, "the value")
    size = len(json.dumps(plain, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_BYTES:
        raise InvalidGlue(f"the value is {size} bytes as JSON; at most {MAX_BYTES} can be glued: glue a summary")
    return plain


def glue(name: str, value: object) -> None:
    """Publish ``value`` as ``name`` with this notebook's provenance record (the last value of a name wins).

    See :func:`scandeck.glue`.
    """
    from .context import current

    current().glue(check_name(name), plain_value(value))
