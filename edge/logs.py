"""The edge's log output: one line format, and log records that cost what the format prints.

With the access log on (the default) every request makes one record, so the generic work of ``logging``
counted: after the gRPC call and the socket writes it was the largest cost left in a request (7–8 % of the
edge's CPU on GetAppHealth, bench/bench_gateway.py), and its write to stderr, one per line, cost as much
again (0.046 ms of 0.51 ms per GetAppHealth at 25 concurrent calls, access log on against off). Skipped,
with the output unchanged:

- what a record gathers and LOG_FORMAT never prints (caller's file and line, thread, process);
- ``time.strftime`` for every record: :class:`Formatter` formats each second once;
- one write per line: :class:`BatchingHandler` writes the lines of up to FLUSH_S seconds at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

# The longest an INFO line (an access line) waits before it is written; WARNING and above never wait.
FLUSH_S = 0.05

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Formatter(logging.Formatter):
    """``logging.Formatter`` whose default ``asctime`` (local time, then ``,msecs``) is built once a second."""

    def __init__(self, fmt: str = LOG_FORMAT):
        super().__init__(fmt)
        self._cached = (-1, "")  # one tuple, so that a thread never sees one second's text under another's

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._cached
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._cached = (second, text)
        return self.default_msec_format % (text, record.msecs)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on an event loop's thread, writes the lines of up to FLUSH_S seconds at once.

    A record of WARNING or above is written at once, after the lines before it; so is every record logged
    outside an event loop's thread, and whatever is left when logging shuts down (``logging.shutdown`` at
    exit flushes every handler). A crash of the process can lose the last FLUSH_S seconds of INFO lines.
    """

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream if stream is not None else sys.stderr)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # logging.Handler.handle holds self.lock around emit, and flush takes it: the list is never shared.
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        loop = _running_loop()
        if record.levelno >= logging.WARNING or loop is None:
            self.flush()
        elif len(self._pending) == 1:  # the first line waiting: one timer writes it and those after it
            loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                self.stream.write(text)
            super().flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not on an event loop's thread
        return None


def configure(level: str) -> None:
    """Log to stderr at ``level`` in LOG_FORMAT, as ``logging.basicConfig`` would, at a lower cost per record."""
    handler = BatchingHandler()
    handler.setFormatter(Formatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # The switches of the logging HOWTO's "Optimization" section, for fields LOG_FORMAT does not use.
    logging._srcfile = None  # findCaller's walk up the stack, for the caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
