"""Text tables (CSV, TSV, XY, DAT): each column a 1-D float array.

How a file is read:

* lines end at ``\n``, ``\r\n`` or ``\r`` only (a Latin-1 ``\x85``, a form feed are text);
* lines starting with ``#`` (after blanks) are comments, kept in
  ``info["comments"]`` without the ``#``; a ``#`` later in a line (not within
  ``"quotes"``) starts a comment to its end, as for ``numpy.loadtxt``; blank lines are skipped;
* the delimiter is sniffed from the first ten other lines: a tab if each has one,
  else a comma, else a semicolon, else runs of whitespace; quoted fields
  (``"I (a.u.)"``) are read as CSV reads them;
* the first line is a header when any of its fields is not a number; with no
  header, a comment line right above the first row (no blank line between)
  with as many fields as it, none a number, names the columns (``# 2theta
  intensity``, as many XY files have); else the columns are ``col0``,
  ``col1``...; names become data keys as
  :func:`~scandeck.files.reader_kit.data_key_names` makes them
  (``info["columns"]`` maps each key to the name as written);
* every row must have as many fields as the first; an empty field is NaN; a
  number is what ``numpy.loadtxt`` takes (``1_0`` and non-ASCII digits are not).
  A row with more or fewer, a field that is not a number, or NUL bytes (a
  binary file) raise :class:`~scandeck.exceptions.UnreadableFile` naming the line.

Text is UTF-8 (a byte-order mark is skipped), else Latin-1.
"""

from __future__ import annotations

import csv
import re
from typing import Any

import numpy as np

from .reader_kit import FileLayout, FileMemo, array_key, data_key_names, unreadable

__all__ = ["TableReader"]

_SNIFF_LINES = 10
#: Line ends as numpy.loadtxt knows them (str.splitlines also breaks at \x85, \x0c, \u2028...).
_LINE_END = re.compile(r"\r\n|\r|\n")
_DELIMITERS = (("\t", "tab"), (",", "comma"), (";", "semicolon"))


class _Table:
    def __init__(self, layout: FileLayout, columns: dict[str, np.ndarray]) -> None:
        self.layout, self.columns = layout, columns


class TableReader:
    """CSV/TSV/XY/DAT columns; see the module docstring for how a file is read."""

    name = "table"
    patterns = ("*.csv", "*.tsv", "*.xy", "*.xye", "*.dat")

    def __init__(self) -> None:
        self._tables: FileMemo = FileMemo()

    def describe(self, path: str) -> FileLayout:
        return self._tables.get(path, self._parse).layout

    def read(self, path: str, key: str) -> np.ndarray:
        table = self._tables.get(path, self._parse)
        if key not in table.columns:
            raise unreadable(path, self.name, f"has no column {key!r} (its keys: {list(table.columns)})")
        return table.columns[key].copy()  # the memo keeps its own

    def _parse(self, path: str) -> _Table:
        with open(path, "rb") as f:
            raw = f.read()
        if b"\x00" in raw:
            raise unreadable(path, self.name, "holds NUL bytes: a binary file, not a text table")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        comments: list[tuple[int, str]] = []
        lines: list[tuple[int, str]] = []  # (line number from 1, text) of the rows
        for number, line in enumerate(_LINE_END.split(text), start=1):
            stripped = line.strip()
            if stripped.startswith("#"):
                comments.append((number, stripped[1:].strip()))
                continue
            line = _uncommented(line)
            if line.strip():
                lines.append((number, line))
        delimiter, delimiter_name = _sniff([line for _, line in lines[:_SNIFF_LINES]])
        rows = [(number, _split(line, delimiter)) for number, line in lines]

        names: list[str] | None = None
        header_line: int | None = None
        if rows and not all(_is_number(field) for field in rows[0][1]):
            header_line, names = rows[0][0], rows[0][1]
            rows = rows[1:]
        elif rows and any(number == rows[0][0] - 1 for number, _ in comments):
            number, comment = next(c for c in comments if c[0] == rows[0][0] - 1)  # the line right above
            fields = _split(comment, delimiter)
            if len(fields) == len(rows[0][1]) and not any(_is_number(field) for field in fields):
                header_line, names = number, fields
        width = len(names) if names is not None else (len(rows[0][1]) if rows else 0)
        first = header_line if header_line is not None else (rows[0][0] if rows else 0)
        values = np.empty((len(rows), width), dtype=np.float64)
        for i, (number, fields) in enumerate(rows):
            if len(fields) != width:
                raise unreadable(
                    path,
                    self.name,
                    f"line {number} has {len(fields)} fields where line {first} has {width}: "
                    "every row of a table must have as many",
                )
            for j, field in enumerate(fields):
                value = _number(field)
                if value is None:
                    raise unreadable(
                        path, self.name, f"line {number}, field {j + 1}: {field[:40]!r} is not a number"
                    )
                values[i, j] = value
        written = [n or f"col{j}" for j, n in enumerate(names)] if names is not None else None
        keys = data_key_names(written if written is not None else [f"col{j}" for j in range(width)], prefix="col")
        columns = {key: np.ascontiguousarray(values[:, j]) for j, key in enumerate(keys)}
        info: dict[str, Any] = {
            "delimiter": delimiter_name,
            "columns": dict(zip(keys, written or keys, strict=True)),
            "header_line": header_line,
            "comments": [comment for _, comment in comments],
        }
        data_keys = {key: array_key((len(rows),), np.float64) for key in keys}
        return _Table(FileLayout(data_keys, info), columns)


def _sniff(sample: list[str]) -> tuple[str | None, str]:
    for delimiter, name in _DELIMITERS:
        if sample and all(delimiter in line for line in sample):
            return delimiter, name
    return None, "whitespace"


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    fields = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    return [field.strip() for field in fields]


def _uncommented(line: str) -> str:
    """``line`` up to a ``#`` that is not within double quotes."""
    if "#" not in line:
        return line
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:i]
    return line


def _number(field: str) -> float | None:
    """The number ``field`` is (NaN when empty), or None."""
    if not field:
        return np.nan  # an empty field is a missing number
    if not field.isascii() or "_" in field:  # float() takes 1_0 and other scripts' digits; loadtxt does not
        return None
    try:
        return float(field)
    except ValueError:
        return None


def _is_number(field: str) -> bool:
    return _number(field) is not None
