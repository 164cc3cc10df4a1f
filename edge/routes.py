"""``google.api.http`` rules → compiled path templates, and the router that matches requests against them.

Routes are read from the service descriptors at start-up; no route is written per endpoint. The full
template grammar of ``google/api/http.proto`` is supported::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

Matching runs on the raw (still percent-encoded) path, so a ``%2F`` inside a single segment never splits
it. A single-segment variable is fully percent-decoded; a multi-segment one keeps ``%2F`` encoded, as
the spec asks. Two routes of the same HTTP method that can match the same path are refused at start-up.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import urllib.parse
from collections.abc import Iterable, Iterator

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor

_METHODS = ("get", "put", "post", "delete", "patch")
_LITERAL = re.compile(r"[^/{}*:=]+")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class TemplateError(ValueError):
    """An ``google.api.http`` path is malformed, or two routes are ambiguous. Raised at start-up."""


@dataclasses.dataclass(frozen=True)
class Variable:
    field_path: tuple[str, ...]
    multi_segment: bool


@dataclasses.dataclass(frozen=True)
class Template:
    text: str
    # Each token is a literal segment, "*" (one segment) or "**" (any number of segments).
    tokens: tuple[str, ...]
    verb: str | None
    variables: tuple[Variable, ...]
    pattern: re.Pattern[str]

    def match(self, raw_path: str) -> dict[tuple[str, ...], str] | None:
        m = self.pattern.fullmatch(raw_path)
        if m is None:
            return None
        return {v.field_path: _decode(m.group(f"v{i}"), v.multi_segment) for i, v in enumerate(self.variables)}


def _decode(raw: str, multi_segment: bool) -> str:
    if not multi_segment:
        return urllib.parse.unquote(raw, errors="strict")
    # Keep %2F encoded so that a slash inside one segment stays distinguishable from a separator.
    return "%2F".join(urllib.parse.unquote(part, errors="strict") for part in re.split("%2[Ff]", raw))


class _Parser:
    """Recursive descent over one template string."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.tokens: list[str] = []
        self.regex: list[str] = []
        self.variables: list[Variable] = []

    def fail(self, why: str) -> TemplateError:
        return TemplateError(f"path template {self.text!r}: {why} at offset {self.pos}")

    def parse(self) -> Template:
        if not self.text.startswith("/"):
            raise self.fail("must start with '/'")
        self.pos = 1
        self.segments(self.regex, top=True)
        verb = None
        if self.peek(":"):
            self.pos += 1
            verb = self.literal()
        if self.pos != len(self.text):
            raise self.fail("unexpected character")
        if "**" in self.tokens[:-1]:
            raise self.fail("'**' must be the last segment")
        suffix = ":" + re.escape(verb) if verb else ""
        pattern = re.compile("/" + "/".join(self.regex) + suffix)
        return Template(self.text, tuple(self.tokens), verb, tuple(self.variables), pattern)

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def literal(self) -> str:
        m = _LITERAL.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected a literal")
        self.pos = m.end()
        return m.group()

    def segments(self, out: list[str], *, top: bool) -> None:
        while True:
            out.append(self.segment(top=top))
            if not self.peek("/"):
                return
            self.pos += 1

    def segment(self, *, top: bool) -> str:
        if self.peek("**"):
            self.pos += 2
            self.tokens.append("**")
            return r"[^/]+(?:/[^/]+)*"
        if self.peek("*"):
            self.pos += 1
            self.tokens.append("*")
            return r"[^/]+"
        if self.peek("{"):
            if not top:
                raise self.fail("variables cannot nest")
            return self.variable()
        lit = self.literal()
        self.tokens.append(lit)
        return re.escape(lit)

    def variable(self) -> str:
        self.pos += 1
        m = _FIELD_PATH.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected a field path")
        self.pos = m.end()
        inner: list[str] = []
        start = len(self.tokens)
        if self.peek("="):
            self.pos += 1
            self.segments(inner, top=False)
        else:
            inner.append(r"[^/]+")
            self.tokens.append("*")
        if not self.peek("}"):
            raise self.fail("expected '}'")
        self.pos += 1
        index = len(self.variables)
        multi = self.tokens[start:] != ["*"]
        self.variables.append(Variable(tuple(m.group().split(".")), multi))
        return f"(?P<v{index}>{'/'.join(inner)})"


def compile_template(text: str) -> Template:
    return _Parser(text).parse()


@dataclasses.dataclass(frozen=True)
class Route:
    http_method: str
    template: Template
    method: descriptor.MethodDescriptor
    body: str
    response_body: str

    @functools.cached_property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def _bindings(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings  # one level only, as the spec says


def _verb_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    if kind not in _METHODS:
        raise TemplateError(f"unsupported http rule pattern {kind!r}")
    return kind.upper(), getattr(rule, kind)


def routes_from(services: Iterable[descriptor.ServiceDescriptor]) -> list[Route]:
    """Every ``google.api.http`` binding of every method of ``services`` (methods without one are skipped)."""
    routes = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            for rule in _bindings(options.Extensions[annotations_pb2.http]):
                verb, path = _verb_and_path(rule)
                routes.append(Route(verb, compile_template(path), method, rule.body, rule.response_body))
    return routes


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether some path matches both token lists ("*" one segment, "**" one or more)."""
    if not a or not b:
        return not a and not b
    x, y = a[0], b[0]
    if x == "**" or y == "**":
        many, other = (a, b) if x == "**" else (b, a)
        # "**" takes one segment and either stops or keeps going.
        return _overlap(many[1:], other[1:]) or _overlap(many, other[1:]) if other else False
    if x == "*" or y == "*" or x == y:
        return _overlap(a[1:], b[1:])
    return False


def check_unambiguous(routes: list[Route]) -> None:
    for i, r in enumerate(routes):
        for s in routes[i + 1 :]:
            same = r.http_method == s.http_method and r.template.verb == s.template.verb
            if same and _overlap(r.template.tokens, s.template.tokens):
                raise TemplateError(
                    f"ambiguous routes: {r.http_method} {r.template.text} ({r.method.full_name}) and "
                    f"{s.http_method} {s.template.text} ({s.method.full_name}) can match the same path"
                )


@dataclasses.dataclass(frozen=True)
class Match:
    route: Route
    path_params: dict[tuple[str, ...], str]


class Router:
    def __init__(self, routes: list[Route]):
        check_unambiguous(routes)
        self.routes = routes
        # A request is tried only against the routes of its method that can have its number of segments (a
        # template without "**" has exactly one segment per token); the others matter only for a 405. The
        # order of the candidates does not matter: no two routes of one method can match the same path.
        self._candidates: dict[tuple[str, int | None], list[Route]] = {}
        for route in routes:
            key = (route.http_method, None if "**" in route.template.tokens else len(route.template.tokens))
            self._candidates.setdefault(key, []).append(route)

    def match(self, http_method: str, raw_path: str) -> Match | list[str] | None:
        """The matching route; else the sorted methods the path allows (405); else ``None`` (404)."""
        segments = raw_path.count("/")
        for key in ((http_method, segments), (http_method, None)):
            for route in self._candidates.get(key, ()):
                params = route.template.match(raw_path)
                if params is not None:
                    return Match(route, params)
        allowed = {r.http_method for r in self.routes if r.template.match(raw_path) is not None}
        return sorted(allowed) or None
