"""The text syntax of queries: a tokenizer and a recursive-descent parser.

Use :func:`scandeck.queries.parse`; this module holds its machinery. Grammar
(keywords are case-insensitive)::

    expr       := or
    or         := and (('or' | '||' | '|') and)*
    and        := not (('and' | '&&' | '&') not)*
    not        := ('not' | '!' | '~') not | primary
    primary    := '(' expr ')' | '*' | string | comparison
    comparison := key op value | key 'in' list | key 'not' 'in' list
                | key 'contains' value | key 'startswith' string
                | key 'matches' string
    op         := '==' | '!=' | '<' | '<=' | '>' | '>='
    key        := name ('.' name)*      name := identifier | `quoted name`
    value      := string | number | 'true' | 'false' | 'null' | list
    list       := '[' (value (',' value)*)? ']'

An identifier has letters, digits, ``_`` and ``-`` and starts with a letter or
``_``; other names, and names spelled like a keyword, go in backquotes (with
``\\``` and ``\\\\`` escapes). Strings take ``"`` or ``'`` and the JSON escapes.
A key beginning with ``stop`` reads the stop document; one beginning with
``columns``, ``tags``, ``comments`` or ``data`` reads the run's facts (quote the
first name to mean a start field: `` `tags` ``).
A string standing alone is a :class:`~scandeck.query.text.FullText` search;
``matches`` takes a regular expression (:class:`~scandeck.query.text.Regex`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidQuery, QuerySyntaxError
from .fields import make_comparison
from .text import FullText, Regex
from .tree import MatchAll, Query, all_of, any_of, negate
from .values import FACT_ROOTS, INT_MAX, INT_MIN, KEYWORDS, DocName, Value

__all__ = ["MAX_DEPTH", "parse_query"]

#: How deeply parentheses and ``not`` may nest in the text (each counts once): deeper
#: text is a syntax error, not a RecursionError. (The query it parses to has a limit
#: of its own, :data:`~scandeck.query.tree.MAX_DEPTH`.)
MAX_DEPTH = 100

_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", re.ASCII)
_ESCAPES = {
    '"': '"', "'": "'", "\\": "\\", "/": "/",
    "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
}  # fmt: skip
_OP_TYPOS = {"=": "==", "=>": ">=", "=<": "<=", "<>": "!=", "===": "=="}
_COMPARE = "(==, !=, <, <=, >, >=, in, not in, contains, startswith, matches)"


@dataclass(frozen=True)
class _Token:
    kind: str  # ident qkey string number op and or not ( ) [ ] , . * eof
    value: Any
    pos: int
    end: int
    text: str  # the source text of the token

    def word(self) -> str | None:
        """The lower-cased word of an identifier token (for keywords)."""
        return self.value.lower() if self.kind == "ident" else None

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of query"
        if self.kind == "string":
            return self.text
        return f"'{self.text}'"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.prev_end = 0
        self.depth = 0  # parentheses and 'not' open around the current token
        self.tok = self._lex()

    # ---------------------------------------------------------------- errors

    def error(self, pos: int, message: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.text, pos, message)

    # ----------------------------------------------------------------- lexer

    def advance(self) -> _Token:
        tok = self.tok
        self.prev_end = tok.end
        self.tok = self._lex()
        return tok

    def _make(self, kind: str, value: Any, start: int, end: int) -> _Token:
        self.i = end
        return _Token(kind, value, start, end, self.text[start:end])

    def _lex(self) -> _Token:
        text, i, n = self.text, self.i, len(self.text)
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return self._make("eof", None, n, n)
        c = text[i]
        for typo in ("===", "=>", "=<", "<>"):
            if text.startswith(typo, i):
                raise self.error(i, f"'{typo}' is not an operator: did you mean '{_OP_TYPOS[typo]}'?")
        two = text[i : i + 2]
        if two in ("==", "!=", "<=", ">="):
            return self._make("op", two, i, i + 2)
        if two in ("&&", "||"):
            return self._make("and" if c == "&" else "or", two, i, i + 2)
        if c in "<>":
            return self._make("op", c, i, i + 1)
        if c == "=":
            raise self.error(i, "'=' is not an operator: did you mean '=='?")
        if c in "&|!~":
            kind = {"&": "and", "|": "or"}.get(c, "not")
            return self._make(kind, c, i, i + 1)
        if c in "()[],.*":
            return self._make(c, c, i, i + 1)
        if c in "\"'":
            return self._string(i)
        if c == "`":
            return self._quoted_key(i)
        if c.isdigit() or (c == "-" and text[i + 1 : i + 2].isdigit()):
            return self._number(i)
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_-"):
                j += 1
            return self._make("ident", text[i:j], i, j)
        raise self.error(i, f"unexpected character {c!r}")

    def _number(self, i: int) -> _Token:
        text = self.text
        m = _NUMBER_RE.match(text, i)
        assert m is not None
        j = m.end()
        if j < len(text) and (text[j].isalnum() or text[j] in "_."):
            k = j
            while k < len(text) and (text[k].isalnum() or text[k] in "_.-+"):
                k += 1
            raise self.error(i, f"invalid number '{text[i:k]}'")
        raw = text[i:j]
        if m.group(1) is None and m.group(2) is None:
            # Range-checked before int(): SQLite holds 64 bits, int() refuses 4300 digits.
            digits = raw.lstrip("-").lstrip("0")
            if len(digits) > 19 or not INT_MIN <= int(raw) <= INT_MAX:
                shown = raw if len(raw) <= 40 else f"{raw[:20]}... ({len(digits)} digits)"
                raise self.error(
                    i,
                    f"the integer {shown} is out of range: queries compare integers from "
                    f"{INT_MIN} to {INT_MAX}; write a larger number with an exponent, e.g. 1e30",
                )
            return self._make("number", int(raw), i, j)
        value = float(raw)
        if not math.isfinite(value):
            raise self.error(i, f"number '{raw}' is too large")
        return self._make("number", value, i, j)

    def _string(self, i: int) -> _Token:
        text, quote, j = self.text, self.text[i], i + 1
        out: list[str] = []
        while True:
            if j >= len(text):
                raise self.error(i, f"unterminated string starting at column {i + 1}: close it with {quote}")
            ch = text[j]
            if ch == quote:
                return self._make("string", "".join(out), i, j + 1)
            if ch != "\\":
                out.append(ch)
                j += 1
                continue
            esc = text[j + 1 : j + 2]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                j += 2
            elif esc == "u":
                code, j = self._unicode_escape(j)
                out.append(code)
            elif not esc:
                raise self.error(i, f"unterminated string starting at column {i + 1}: close it with {quote}")
            else:
                raise self.error(j, f"unknown escape '\\{esc}' in string: write '\\\\' for a backslash")

    def _hex4(self, j: int) -> int | None:
        digits = self.text[j + 2 : j + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return int(digits, 16)
        return None

    def _unicode_escape(self, j: int) -> tuple[str, int]:
        code = self._hex4(j)
        if code is None:
            raise self.error(j, "invalid '\\u' escape: it needs 4 hex digits, e.g. '\\u00e9'")
        if 0xD800 <= code < 0xDC00 and self.text[j + 6 : j + 8] == "\\u":
            low = self._hex4(j + 6)
            if low is not None and 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), j + 12
        if 0xD800 <= code < 0xE000:
            raise self.error(j, "a '\\u' escape names half of a surrogate pair without the other")
        return chr(code), j + 6

    def _quoted_key(self, i: int) -> _Token:
        text, j = self.text, i + 1
        out: list[str] = []
        while True:
            if j >= len(text):
                raise self.error(i, f"unterminated quoted key starting at column {i + 1}: close it with `")
            ch = text[j]
            if ch == "`":
                break
            if ch == "\\":
                esc = text[j + 1 : j + 2]
                if esc == "u":  # a control character of the key, as str(query) writes it
                    code, j = self._unicode_escape(j)
                    out.append(code)
                    continue
                if esc not in ("`", "\\"):
                    raise self.error(
                        j,
                        "in a quoted key only '\\`', '\\\\' and '\\uXXXX' are escapes: "
                        "write '\\\\' for a backslash",
                    )
                out.append(esc)
                j += 2
                continue
            out.append(ch)
            j += 1
        if not out:
            raise self.error(i, "empty quoted key ``: put the key's name between the backquotes")
        return self._make("qkey", "".join(out), i, j + 1)

    # ---------------------------------------------------------------- parser

    def parse(self) -> Query:
        query = self.parse_or("")
        tok = self.tok
        if tok.kind == ")":
            raise self.error(tok.pos, "unexpected ')' with no matching '('")
        if tok.kind != "eof":
            raise self.error(
                tok.pos,
                f"unexpected {tok.describe()} after a complete condition: join conditions with 'and' or 'or'",
            )
        return query

    def _is(self, kind: str) -> bool:
        return self.tok.kind == kind or self.tok.word() == kind

    def parse_or(self, context: str) -> Query:
        return self._chain("or", self.parse_and, any_of, context)

    def parse_and(self, context: str) -> Query:
        return self._chain("and", self.parse_not, all_of, context)

    def _chain(
        self,
        word: str,
        parse_item: Callable[[str], Query],
        combine: Callable[..., Query],
        context: str,
    ) -> Query:
        """Items parsed by ``parse_item`` joined by ``word``, combined when there are several."""
        at = self.tok.pos
        items = [parse_item(context)]
        while self._is(word):
            tok = self.advance()
            items.append(parse_item(f" after '{tok.text}'"))
        return self._combine(at, combine, *items) if len(items) > 1 else items[0]

    def _combine(self, at: int, combine: Callable[..., Query], *items: Query) -> Query:
        """``combine(*items)``; a tree nested too deeply is a syntax error at ``at``."""
        try:
            return combine(*items)
        except InvalidQuery as exc:
            raise self.error(at, str(exc)) from None

    def _nest(self, tok: _Token) -> None:
        """Enter one level of parentheses or ``not`` (left by ``self.depth -= 1``)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                tok.pos,
                f"the query nests parentheses and 'not' more than {MAX_DEPTH} levels deep: "
                "write it flatter (a and b and c needs no parentheses; 'not not' cancels)",
            )

    def parse_not(self, context: str) -> Query:
        if self._is("not"):
            tok = self.advance()
            self._nest(tok)
            query = self._combine(tok.pos, negate, self.parse_not(f" after '{tok.text}'"))
            self.depth -= 1
            return query
        return self.parse_primary(context)

    def parse_primary(self, context: str) -> Query:
        tok = self.tok
        if tok.kind == "(":
            self.advance()
            self._nest(tok)
            query = self.parse_or(" after '('")
            if self.tok.kind != ")":
                if self.tok.kind in ("ident", "qkey", "string", "number"):
                    raise self.error(
                        self.tok.pos,
                        f"unexpected {self.tok.describe()} after a complete condition: "
                        "join conditions with 'and' or 'or'",
                    )
                raise self.error(
                    self.tok.pos,
                    f"expected ')' to close '(' opened at column {tok.pos + 1} but found {self.tok.describe()}",
                )
            self.advance()
            self.depth -= 1
            return query
        if tok.kind == "*":
            self.advance()
            return MatchAll()
        if tok.kind == "string":
            self.advance()
            if self.tok.kind == "op":  # "Ni" == sample: a value where the key goes
                raise self.error(
                    tok.pos,
                    f"expected a condition{context} but found {tok.describe()}: "
                    'a condition starts with a key, as in sample == "Ni"',
                )
            try:
                return FullText(tok.value)
            except InvalidQuery as exc:
                raise self.error(tok.pos, str(exc)) from None
        word = tok.word()
        if tok.kind == "qkey" or (tok.kind == "ident" and word not in KEYWORDS):
            return self.parse_comparison()
        found = tok.describe()
        if word in ("in", "contains", "startswith", "true", "false", "null"):
            found += f" (to use it as a key, quote it: `{tok.text}`)"
        elif tok.kind not in ("eof", ")") and word not in KEYWORDS:
            found += ': a condition starts with a key, as in sample == "Ni"'
        raise self.error(tok.pos, f"expected a condition{context} but found {found}")

    def parse_key(self) -> tuple[DocName, tuple[str, ...]]:
        first = self.advance()
        names = [first.value]
        while self.tok.kind == ".":
            dot = self.advance()
            tok = self.tok
            if tok.kind not in ("ident", "qkey"):
                hint = ""
                if tok.kind == "number":
                    hint = f": quote names that don't start with a letter or _, as in `{tok.text}`"
                raise self.error(
                    tok.pos,
                    f"expected a key name after '{self.text[first.pos : dot.end]}' "
                    f"but found {tok.describe()}{hint}",
                )
            names.append(self.advance().value)
        if first.kind == "ident" and first.value == "stop" and len(names) > 1:
            return "stop", tuple(names[1:])
        if first.kind == "ident" and first.value in FACT_ROOTS:
            return "facts", tuple(names)
        return "start", tuple(names)

    def parse_comparison(self) -> Query:
        key_start = self.tok.pos
        doc, path = self.parse_key()
        key_text = self.text[key_start : self.prev_end]
        tok = self.tok
        word = tok.word()
        if tok.kind == "op":
            self.advance()
            op = tok.value
            value, at = self.parse_value(f"after '{op}'")
        elif word == "in":
            self.advance()
            op = "in"
            value, at = self.parse_list_after(f"'{tok.text}'")
        elif word == "not":
            self.advance()
            if self.tok.word() != "in":
                raise self.error(
                    self.tok.pos,
                    f"expected 'in' after '{key_text} {tok.text}' "
                    f'(as in: sample not in ["Ni", "Cu"]) but found {self.tok.describe()}',
                )
            in_tok = self.advance()
            op = "not in"
            value, at = self.parse_list_after(f"'{tok.text} {in_tok.text}'")
        elif word == "matches":
            self.advance()
            pattern = self.tok
            if pattern.kind != "string":
                raise self.error(
                    pattern.pos,
                    f"'matches' needs a regular expression in quotes, as in {key_text} matches \"^Ni\", "
                    f"but found {pattern.describe()}",
                )
            self.advance()
            try:
                return Regex(doc, path, pattern.value)
            except InvalidQuery as exc:
                raise self.error(pattern.pos, str(exc)) from None
        elif word in ("contains", "startswith"):
            self.advance()
            op = word
            value, at = self.parse_value(f"after '{tok.text}'")
            if op == "contains" and isinstance(value, tuple):
                raise self.error(
                    at,
                    "'contains' takes one value, not a list: to require several, join "
                    f"conditions with 'and', as in {key_text} contains \"a\" and "
                    f'{key_text} contains "b"',
                )
            if op == "startswith" and not isinstance(value, str):
                raise self.error(
                    at,
                    f"'startswith' needs a string, as in uid startswith \"a3f\", "
                    f"but found {self.text[at : self.prev_end]}",
                )
        else:
            raise self.error(
                tok.pos,
                f"expected a comparison operator {_COMPARE} after '{key_text}' but found {tok.describe()}",
            )
        try:
            return make_comparison(doc, path, op, value)
        except InvalidQuery as exc:
            raise self.error(at, str(exc)) from None

    def parse_value(self, context: str) -> tuple[Value, int]:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.advance()
            return tok.value, tok.pos
        word = tok.word()
        if word in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[word], tok.pos
        if tok.kind == "[":
            return self.parse_list(), tok.pos
        found = tok.describe()
        if tok.kind in ("ident", "qkey") and word not in KEYWORDS:
            found += f': put text in quotes, as in "{tok.value}"'
        raise self.error(tok.pos, f"expected a value {context} but found {found}")

    def parse_list_after(self, keyword: str) -> tuple[Value, int]:
        tok = self.tok
        if tok.kind != "[":
            raise self.error(
                tok.pos,
                f'expected a list like ["Ni", "Cu"] after {keyword} but found {tok.describe()}',
            )
        return self.parse_list(), tok.pos

    def parse_list(self) -> tuple[Value, ...]:
        opening = self.advance()
        items: list[Value] = []
        if self.tok.kind == "]":
            self.advance()
            return ()
        context = "after '['"
        while True:
            items.append(self.parse_value(context)[0])
            tok = self.tok
            if tok.kind == "]":
                self.advance()
                return tuple(items)
            if tok.kind == ",":
                self.advance()
                context = "after ','"
                continue
            if tok.kind == "eof":
                message = f"expected ']' to close '[' opened at column {opening.pos + 1}"
            else:
                message = f"expected ',' or ']' after a list item (the list opened at column {opening.pos + 1})"
            raise self.error(tok.pos, f"{message} but found {tok.describe()}")


def parse_query(text: str) -> Query:
    """Parse ``text`` into a query; see :func:`scandeck.queries.parse`."""
    if not isinstance(text, str):
        raise TypeError(f"a query text is a str, not {type(text).__name__}")
    if not text.strip():
        return MatchAll()
    return _Parser(text).parse()
