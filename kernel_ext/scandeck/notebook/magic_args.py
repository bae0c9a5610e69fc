"""Values on a magic's line: how code writes them (:func:`quote_arg`) and how a magic reads them back.

IPython splits a magic's line with :func:`shlex.shlex` in non-POSIX mode
(``IPython.utils._process_common.arg_split``): a quote is a quote only at the start
of a word, there are no backslash escapes, and a quoted word keeps its quotes. So
:func:`shlex.quote` does not round-trip (``'it'"'"'s'`` comes back as three
words). :func:`quote_arg` writes what that splitter reads as one word, and
:func:`unquote_arg` takes the quotes off again. Neither imports IPython.

scandeck's magics never expand ``{...}`` or ``$name`` (``@no_var_expand``), so a
quoted value is data whatever it holds.
"""

from __future__ import annotations

from ..exceptions import UnsafeValue
from ..safe_text import UNSAFE

__all__ = ["quote_arg", "unquote_arg"]

_QUOTES = ("'", '"')


def quote_arg(value: str, what: str) -> str:
    """``value`` as one word of a magic's line; :class:`UnsafeValue` when it cannot be one.

    A plain word stays bare; a value with blanks, or starting with a quote or ``-``
    (an option, to argparse), goes between the quote it does not contain. A line
    break or another control character would end or disguise the line: refused,
    as is a value holding both quotes and a blank.

    Examples
    --------
    >>> quote_arg("primary", "stream name"), quote_arg("dark frames", "stream name")
    ('primary', '"dark frames"')
    >>> quote_arg("x{open('f','w')}", "uid")
    "x{open('f','w')}"
    """
    if UNSAFE.search(value):
        raise UnsafeValue(
            what,
            value,
            "it holds a line break or another control character, which would end the "
            "magic's line; write the cell by hand",
        )
    if value and not value.startswith(("-", *_QUOTES)) and not any(c.isspace() for c in value):
        return value
    for quote in _QUOTES[::-1]:
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise UnsafeValue(what, value, "it holds blanks and both kinds of quotes; write the cell by hand")


def unquote_arg(word: str | None) -> str | None:
    """A magic's argument without the quotes :func:`quote_arg` (or a user) put around it.

    Examples
    --------
    >>> unquote_arg('"dark frames"'), unquote_arg("'-1'"), unquote_arg("plain"), unquote_arg(None)
    ('dark frames', '-1', 'plain', None)
    """
    if word is not None and len(word) >= 2 and word[0] == word[-1] and word[0] in _QUOTES:
        return word[1:-1]
    return word
