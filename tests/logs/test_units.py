"""Pure functions of the logs path: LogQL quoting and selectors, severity words, tokens, Loki time params."""

from __future__ import annotations

import time

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.logs.logql import LabelScheme, quote, severity_of
from server.logs.loki import MAX_QUERY_LENGTH_NS, Entry, loki_time
from server.logs.tail import TailHub
from server.logs.tokens import BadToken, PagePosition, Signer, StreamPosition, advance, entry_digest, query_digest
from testing.loki_double import logql as double_logql


@pytest.mark.parametrize(
    "value",
    ["plain", 'quo"te', "back\\slash", "new\nline\ttab\rcr", "bell\x07 del\x7f", "ünïcødé 🚀", '\\"}, x=~".*"'],
)
def test_quote_round_trips_through_a_go_string_parser(value: str) -> None:
    quoted = quote(value)
    assert "\n" not in quoted and "\\u" not in quoted
    parsed = double_logql.parse("{a=" + quoted + "}")
    assert parsed.selector[0].value == value


def test_selector_with_severity_is_valid_logql_and_matches_like_the_mapping() -> None:
    scheme = LabelScheme()
    for severity in (pb.SEVERITY_DEBUG, pb.SEVERITY_INFO, pb.SEVERITY_WARNING, pb.SEVERITY_ERROR, pb.SEVERITY_CRITICAL):
        query = double_logql.parse(scheme.selector("ws", "app", severity))
        for labels in ({"level": "ERROR"}, {"level": "warning"}, {"detected_level": "fatal"}, {"level": "odd"}, {}):
            stream = {"workspace_id": "ws", "app_id": "app", **labels}
            assert query.keeps(stream, "line") == (scheme.severity(stream) == severity), (severity, labels)


def test_severity_words() -> None:
    assert severity_of("WARN") == pb.SEVERITY_WARNING
    assert severity_of("fatal") == pb.SEVERITY_CRITICAL
    assert severity_of("unknown") == pb.SEVERITY_INFO
    assert severity_of("") == pb.SEVERITY_INFO
    assert LabelScheme().severity({"level": "", "detected_level": "error"}) == pb.SEVERITY_ERROR


def test_loki_time_never_sends_an_integer_loki_reads_as_seconds() -> None:
    assert loki_time(1_700_000_000_000_000_001) == "1700000000000000001"
    assert loki_time(10**10) == "10000000000"
    assert loki_time(1_000_000_000) == "1970-01-01T00:00:01.000000000Z"  # 10 digits would mean seconds
    assert loki_time(5) == "1970-01-01T00:00:00.000000005Z"


def test_page_tokens_round_trip_and_refuse_tampering_and_other_queries() -> None:
    signer = Signer(b"k" * 32)
    digest = query_digest("logs", "ws", "app", 0, None, None)
    position = PagePosition(1, 2**62, 2**61 + 7, 123)
    token = signer.page_token(digest, position)
    assert signer.open_page_token(digest, token) == position
    with pytest.raises(BadToken, match="other parameters"):
        signer.open_page_token(query_digest("logs", "ws", "app", 4, None, None), token)
    with pytest.raises(BadToken, match="tampered"):
        Signer(b"x" * 32).open_page_token(digest, token)
    with pytest.raises(BadToken):
        signer.open_cursor(digest, token)  # a page token is not a cursor


def test_cursor_positions_track_ties_and_ignore_late_entries() -> None:
    start = StreamPosition(100, ())
    a, b, late = ("{s}", 200, "a"), ("{t}", 200, "b"), ("{s}", 150, "late")
    position = advance(start, [a, b, late])
    assert position.ts == 200 and position.digests == (entry_digest(a), entry_digest(b))
    signer = Signer(b"k" * 32)
    digest = query_digest("stream", "ws", "app", 0)
    assert signer.open_cursor(digest, signer.cursor(digest, position)) == position


class _RecordingLoki:
    """A Loki client that answers nothing and remembers each query_range window."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, int]] = []

    async def query_range(
        self, query: str, *, start_ns: int, end_ns: int, limit: int, forward: bool
    ) -> list[list[Entry]]:
        self.windows.append((start_ns, end_ns))
        return []


async def test_replaying_a_month_old_cursor_stays_inside_lokis_query_length() -> None:
    loki = _RecordingLoki()
    hub = TailHub(loki, LabelScheme(), None)  # type: ignore[arg-type]
    signer = Signer(b"k" * 32)
    digest = query_digest("stream", "ws", "app", 0)
    month_old = StreamPosition(time.time_ns() - 40 * 86400 * 10**9, ())
    assert [m async for m in hub._replay('{app_id="app"}', month_old, signer, digest)] == []
    assert loki.windows and all(end - start <= MAX_QUERY_LENGTH_NS for start, end in loki.windows)
