"""What a log query keeps beyond its app: the line filters ``q`` and ``regex`` and the severity filters, checked
once, rendered as LogQL for Loki, and applied in the service to a live tail that every filter shares.

Both line filters become Loki ``|~`` line filters, whose patterns are Go regular expressions (RE2 syntax):
``q`` is ``(?i)`` followed by the text with every metacharacter escaped (Go's ``regexp.QuoteMeta``), so it
matches the text anywhere in the line without regard to case; ``regex`` is passed as given. Each pattern is
compiled with RE2 (google-re2, the library Go's regexp follows) before anything reaches Loki, so a pattern
Loki would refuse is an ``INVALID_ARGUMENT`` naming the field, never a backend error. A pattern is a quoted
LogQL string (:func:`server.logs.logql.quote`) placed after the stream selector: no value can close the
string, change the selector or reach another app's lines.

The live stream keeps one upstream tail per app whatever its subscribers ask for (Loki's tail slots are
scarce), so the same compiled patterns and severity rule filter entries here: a stream and a page of
ListAppLogs with the same filters keep exactly the same lines.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import re2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.errors import InvalidArgument
from server.logs.logql import LabelScheme, Severity, quote

_Filtered = pb.ListAppLogsRequest | pb.StreamAppLogsRequest

MAX_FILTER_BYTES = 1024
_META = frozenset("\\.+*?()|[]{}^$")  # what Go's regexp.QuoteMeta escapes
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a caller's bad pattern is their error, not a line in the server's log
_SEVERITY_NAMES = {pb.SEVERITY_DEBUG: "DEBUG", pb.SEVERITY_INFO: "INFO", pb.SEVERITY_WARNING: "WARNING"}
_SEVERITY_NAMES |= {pb.SEVERITY_ERROR: "ERROR", pb.SEVERITY_CRITICAL: "CRITICAL"}


def quote_meta(text: str) -> str:
    """``text`` as a regular expression that matches exactly it (Go's ``regexp.QuoteMeta``)."""
    return "".join("\\" + ch if ch in _META else ch for ch in text)


@dataclasses.dataclass(frozen=True)
class LogFilter:
    """A query's filters; build it with :func:`log_filter`, which checks them."""

    severity: Severity = pb.SEVERITY_UNSPECIFIED  # exactly this one
    min_severity: Severity = pb.SEVERITY_UNSPECIFIED  # this one or worse
    q: str = ""
    regex: str = ""
    _compiled: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The line filters' patterns, in the order they are applied."""
        found = []
        if self.q:
            found.append("(?i)" + quote_meta(self.q))
        if self.regex:
            found.append(self.regex)
        return tuple(found)

    def line_filters(self) -> str:
        """The LogQL line filters (`` |~ "…"`` each), or "" without any."""
        return "".join(f" |~ {quote(pattern)}" for pattern in self.patterns)

    def keeps_severity(self, severity: Severity) -> bool:
        if self.severity:
            return severity == self.severity
        return not self.min_severity or severity >= self.min_severity

    def keeps_line(self, line: str) -> bool:
        return all(pattern.search(line) is not None for pattern in self._compiled)

    def logql(self, scheme: LabelScheme, workspace_id: str, app_id: str) -> str:
        """The whole LogQL query: the app's streams, the line filters (cheapest first for Loki), the severity."""
        streams = scheme.streams(workspace_id, app_id)
        return streams + self.line_filters() + scheme.severity_filter(self.severity, self.min_severity)

    def extra_digest_parts(self) -> tuple[object, ...]:
        """What page tokens and cursors are bound to beyond the app and ``severity``: nothing when no other
        filter is set, so tokens issued before these filters existed stay valid."""
        if not (self.min_severity or self.q or self.regex):
            return ()
        return ("min_severity", self.min_severity, "q", self.q, "regex", self.regex)


def from_request(request: _Filtered) -> LogFilter:
    """The checked filters of a ListAppLogs or StreamAppLogs request."""
    return log_filter(
        severity=validation.optional_enum("severity", request.severity, pb.Severity.DESCRIPTOR),
        min_severity=validation.optional_enum("min_severity", request.min_severity, pb.Severity.DESCRIPTOR),
        q=request.q,
        regex=request.regex,
    )


def log_filter(
    *,
    severity: Severity = pb.SEVERITY_UNSPECIFIED,
    min_severity: Severity = pb.SEVERITY_UNSPECIFIED,
    q: str = "",
    regex: str = "",
) -> LogFilter:
    """Checks the filters of a request; raises :class:`InvalidArgument` naming the field."""
    if severity and min_severity and severity < min_severity:
        raise InvalidArgument(
            "severity",
            f"{_SEVERITY_NAMES[severity]} is below min_severity {_SEVERITY_NAMES[min_severity]}: no entry could match",
        )
    _check_length("q", q)
    _check_length("regex", regex)
    compiled = []
    if q:
        compiled.append(re2.compile("(?i)" + quote_meta(q), options=_OPTIONS))
    if regex:
        compiled.append(_compile_regex(regex))
    return LogFilter(severity, min_severity, q, regex, tuple(compiled))


def _check_length(field: str, value: str) -> None:
    size = len(value.encode())
    if size > MAX_FILTER_BYTES:
        raise InvalidArgument(field, f"may be at most {MAX_FILTER_BYTES} bytes, got {size}")


def _compile_regex(pattern: str) -> Any:
    if _any_byte_escape(pattern):
        # RE2 (C++) knows \C, one byte whatever the encoding; Go's regexp, which Loki uses, refuses it.
        raise InvalidArgument("regex", "\\C (any byte) is not supported by Go's regexp, which Loki uses")
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error
        raise InvalidArgument("regex", f"not a valid RE2 regular expression: {reason}") from None


def _any_byte_escape(pattern: str) -> bool:
    """Whether ``pattern`` holds the escape ``\\C`` (a backslash that is not itself escaped, then ``C``)."""
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            if pattern[i + 1] == "C":
                return True
            i += 2
        else:
            i += 1
    return False
