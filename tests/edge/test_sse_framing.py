"""SSE framing without I/O: fields, the options read from the descriptors, unsafe values."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge import sse


def test_a_log_entry_is_a_message_event_with_the_cursor_as_id() -> None:
    message = pb.StreamAppLogsResponse(
        entry=pb.LogEntry(
            timestamp=timestamp_pb2.Timestamp(seconds=1737383401), severity=pb.SEVERITY_INFO, message="hi"
        ),
        cursor="c1",
    )
    assert sse.encode(message) == (
        b'id: c1\ndata: {"timestamp":"2025-01-20T14:30:01Z","severity":"INFO","message":"hi"}\n\n'
    )


def test_a_gap_is_its_own_event_type() -> None:
    message = pb.StreamAppLogsResponse(gap=pb.StreamGap(dropped_entries=3, reason="slow_consumer"), cursor="c9")
    assert sse.encode(message) == b'id: c9\nevent: gap\ndata: {"droppedEntries":3,"reason":"slow_consumer"}\n\n'


def test_nothing_set_still_moves_the_cursor_without_dispatching() -> None:
    assert sse.encode(pb.StreamAppLogsResponse(cursor="c5")) == b"id: c5\n\n"
    assert sse.encode(pb.StreamAppLogsResponse()) == b""


def test_a_response_without_sse_options_is_sent_whole_as_a_message() -> None:
    assert sse.encode(pb.AppHealthSummary(healthy=1)) == (
        b'data: {"healthy":1,"degraded":0,"unhealthy":0,"unknown":0}\n\n'
    )


def test_values_that_would_break_the_framing_are_dropped() -> None:
    assert sse.frame(b"{}", event="a\nb", id="x\ry") == b"data: {}\n\n"
    assert sse.frame(b"{}", id="ok\0") == b"data: {}\n\n"
    assert sse.comment("two\nlines") == b": two lines\n\n"
    assert sse.retry(1500) == b"retry: 1500\n"
