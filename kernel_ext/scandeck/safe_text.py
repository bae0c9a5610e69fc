"""Text that is safe to show: run values never drive the terminal or reorder what is shown.

Metadata is whatever a RunEngine was given: ``purpose='\\x1b]0;pwned\\x07\\x1b[2J'``
printed raw retitles and clears a terminal, and a right-to-left override (U+202E)
makes ``txt.exe`` read as ``exe.txt``. :func:`printable` is the one place that
escapes such characters; every human-readable output (the command line's tables,
``show``, listings, error messages that embed run values, the cells of the notebook
and panel tables) passes run values through it.
"""

from __future__ import annotations

import re

__all__ = ["UNSAFE", "printable"]

#: C0 controls, DEL, C1 controls, the bidi marks, embeddings, overrides and isolates,
#: the line and paragraph separators, and lone surrogates (which cannot even be encoded
#: to print).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED.get(ch) or f"\\u{ord(ch):04x}"


def printable(text: str, *, keep: str = "") -> str:
    """``text`` with control, bidi-override and separator characters written as escapes.

    Escapes are ``\\n``, ``\\t``, ``\\r`` and ``\\uXXXX``, which are also JSON's, so
    the result of escaping JSON text is still the same JSON. Characters in ``keep``
    (e.g. ``"\\n"`` for a message of several lines) stay as they are.

    Examples
    --------
    >>> printable("\\x1b]0;pwned\\x07\\x1b[2J")
    '\\\\u001b]0;pwned\\\\u0007\\\\u001b[2J'
    >>> printable("report\\u202egnp.exe")
    'report\\\\u202egnp.exe'
    >>> printable("two\\nlines", keep="\\n")
    'two\\nlines'
    """
    if not isinstance(text, str):
        text = str(text)
    if not keep:
        return UNSAFE.sub(_escape, text)
    return UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
