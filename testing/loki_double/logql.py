"""The part of LogQL the double understands: a stream selector, line filters and label filter expressions.

Strings follow Go rules (double-quoted with escapes, or raw backtick strings); regexes are RE2 (the syntax of
Go's regexp, which Loki uses); regex matchers are fully anchored, line-filter regexes are not. Parse errors
read like Loki's: ``parse error at line 1, col C: …``.
Unsupported syntax is a parse error too, so a query the double cannot evaluate never silently matches.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import re2

Labels = Mapping[str, str]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "|=", "|~", "=", "|", "{", "}", "(", ")", ",")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
EMPTY_MATCHER_ERROR = (
    "parse error : queries require at least one regexp or equality matcher that does not have an "
    'empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)


class ParseError(Exception):
    def __init__(self, col: int, reason: str):
        super().__init__(f"parse error at line 1, col {col}: {reason}")


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # IDENTIFIER, STRING, an operator, or $end
    text: str
    col: int  # 1-based


@dataclasses.dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _compile(self.value, 0).fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@dataclasses.dataclass(frozen=True)
class Query:
    selector: tuple[Matcher, ...]
    # Each stage sees (labels incl. structured metadata, line) and keeps or drops the entry.
    stages: tuple[Callable[[Labels, str], bool], ...]

    def selects(self, stream_labels: Labels) -> bool:
        return all(m.matches(stream_labels) for m in self.selector)

    def keeps(self, labels: Labels, line: str) -> bool:
        return all(stage(labels, line) for stage in self.stages)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            value, i = _go_string(text, i)
            out.append(_Token("STRING", value, i))
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise ParseError(i + 1, "literal not terminated")
            out.append(_Token("STRING", text[i + 1 : end], i + 1))
            i = end + 1
            continue
        ident = _IDENT.match(text, i)
        if ident:
            out.append(_Token("IDENTIFIER", ident.group(), i + 1))
            i = ident.end()
            continue
        op = next((op for op in _OPS if text.startswith(op, i)), None)
        if op is None:
            raise ParseError(i + 1, f"syntax error: unexpected {ch!r}")
        out.append(_Token(op, op, i + 1))
        i += len(op)
    out.append(_Token("$end", "", len(text) + 1))
    return out


def _go_string(text: str, start: int) -> tuple[str, int]:
    """Decodes a Go double-quoted string starting at ``start``; returns (value, index after it)."""
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(chars), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            chars.append(ch)
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _SIMPLE_ESCAPES:
            chars.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ParseError(i + 1, "invalid char escape")
            chars.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise ParseError(i + 1, "invalid char escape")
    raise ParseError(start + 1, "literal not terminated")


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.toks[self.pos]

    def take(self, *kinds: str) -> _Token:
        tok = self.peek()
        if tok.kind not in kinds:
            expecting = " or ".join(kinds)
            raise ParseError(tok.col, f"syntax error: unexpected {tok.kind}, expecting {expecting}")
        self.pos += 1
        return tok

    def query(self) -> Query:
        selector = self.selector()
        stages: list[Callable[[Labels, str], bool]] = []
        while self.peek().kind != "$end":
            stages.append(self.stage())
        if not any(m.op in ("=", "=~") and not m.matches({}) for m in selector):
            raise _EmptyMatchers()
        return Query(tuple(selector), tuple(stages))

    def selector(self) -> list[Matcher]:
        self.take("{")
        matchers = [self.matcher()]
        while self.peek().kind == ",":
            self.pos += 1
            matchers.append(self.matcher())
        tok = self.peek()
        if tok.kind != "}":
            raise ParseError(tok.col, f"syntax error: unexpected {tok.kind}, expecting }} or ,")
        self.pos += 1
        return matchers

    def matcher(self) -> Matcher:
        name = self.take("IDENTIFIER").text
        op = self.take("=", "!=", "=~", "!~").text
        value = self.take("STRING").text
        if op in ("=~", "!~"):
            _compile(value, self.toks[self.pos - 1].col)
        return Matcher(name, op, value)

    def stage(self) -> Callable[[Labels, str], bool]:
        tok = self.peek()
        if tok.kind in ("|=", "!=", "|~", "!~"):
            self.pos += 1
            needle = self.take("STRING")
            return _line_filter(tok.kind, needle.text, needle.col)
        if tok.kind != "|":
            raise ParseError(tok.col, f"syntax error: unexpected {tok.kind}")
        self.pos += 1
        return self.label_or()

    def label_or(self) -> Callable[[Labels, str], bool]:
        parts = [self.label_and()]
        while self.peek().kind == "IDENTIFIER" and self.peek().text == "or":
            self.pos += 1
            parts.append(self.label_and())
        return parts[0] if len(parts) == 1 else lambda labels, line: any(p(labels, line) for p in parts)

    def label_and(self) -> Callable[[Labels, str], bool]:
        parts = [self.label_primary()]
        while (self.peek().kind == "IDENTIFIER" and self.peek().text == "and") or self.peek().kind == ",":
            self.pos += 1
            parts.append(self.label_primary())
        return parts[0] if len(parts) == 1 else lambda labels, line: all(p(labels, line) for p in parts)

    def label_primary(self) -> Callable[[Labels, str], bool]:
        if self.peek().kind == "(":
            self.pos += 1
            inner = self.label_or()
            self.take(")")
            return inner
        matcher = self.matcher()
        return lambda labels, _line: matcher.matches(labels)


class _EmptyMatchers(Exception):
    def __str__(self) -> str:
        return EMPTY_MATCHER_ERROR


def _compile(pattern: str, col: int) -> Any:
    """An RE2 pattern, as Go's regexp (which Loki uses) reads it; the same pattern is compiled once."""
    if re.search(r"(?<!\\)(?:\\\\)*\\C", pattern):  # RE2 (C++) accepts \C, one byte; Go refuses it
        raise ParseError(col, "invalid regex: invalid escape sequence: `\\C`")
    try:
        return _compiled(pattern)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error
        raise ParseError(col, f"invalid regex: {reason}") from None


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, options=_RE2_OPTIONS)


def _line_filter(op: str, needle: str, col: int) -> Callable[[Labels, str], bool]:
    if op == "|=":
        return lambda _labels, line: needle in line
    if op == "!=":
        return lambda _labels, line: needle not in line
    pattern = _compile(needle, col)
    if op == "|~":
        return lambda _labels, line: pattern.search(line) is not None
    return lambda _labels, line: pattern.search(line) is None


def parse(text: str) -> Query:
    """Parses a log query; raises ValueError whose text is Loki's error body."""
    try:
        return _Parser(text).query()
    except (ParseError, _EmptyMatchers) as error:
        raise ValueError(str(error)) from None


def labels_string(labels: Labels) -> str:
    """Prometheus/Loki label-set string, sorted by name: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def go_quote(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
