"""The edge's log lines are logging's own, at a lower cost per record."""

from __future__ import annotations

import asyncio
import io
import logging

from edge import logs


def test_the_formatter_writes_what_loggings_formatter_writes_second_after_second() -> None:
    record = logging.LogRecord(
        "edge.access", logging.INFO, __file__, 1, '%s "%s %s" %d', ("::1", "GET", "/x", 200), None
    )
    reference, ours = logging.Formatter(logs.LOG_FORMAT), logs.Formatter()
    for step in (0.0, 0.25, 0.5, 0.9, 1.3, 3600.0, 86_400.7):
        record.created += step
        record.msecs = int((record.created - int(record.created)) * 1000) + 0.0
        assert ours.format(record) == reference.format(record)


def test_a_date_format_given_explicitly_is_still_honoured() -> None:
    record = logging.LogRecord("edge", logging.INFO, __file__, 1, "m", (), None)
    assert logs.Formatter().formatTime(record, "%Y") == logging.Formatter().formatTime(record, "%Y")


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _handler(stream: CountingStream) -> tuple[logging.Logger, logs.BatchingHandler]:
    handler = logs.BatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.Logger("edge.test", logging.INFO)
    logger.addHandler(handler)
    return logger, handler


async def test_lines_logged_on_the_loop_are_written_together_within_the_flush_interval() -> None:
    stream = CountingStream()
    logger, _ = _handler(stream)
    for n in range(3):
        logger.info("line %d", n)
    assert stream.getvalue() == ""
    await asyncio.sleep(logs.FLUSH_S * 3)
    assert stream.getvalue() == "INFO line 0\nINFO line 1\nINFO line 2\n" and stream.writes == 1


async def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = CountingStream()
    logger, _ = _handler(stream)
    logger.info("access")
    logger.warning("upstream failed")
    assert stream.getvalue() == "INFO access\nWARNING upstream failed\n"


def test_off_the_loop_every_line_is_written_at_once_and_flush_writes_what_waits() -> None:
    stream = CountingStream()
    logger, handler = _handler(stream)
    logger.info("from a thread")
    assert stream.getvalue() == "INFO from a thread\n"
    handler._pending.append("left over\n")
    handler.flush()
    assert stream.getvalue().endswith("left over\n")
