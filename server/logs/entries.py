"""Log entries between Loki and the API, shared by ListAppLogs and the live stream: the canonical order of
entries from several streams, and an entry as the proto's ``LogEntry``.

The canonical order does not depend on Loki's internal tie order: timestamp, then the stream's label set,
then Loki's order within that stream. Paging and de-duplication both rely on it.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.convert import timestamp
from server.logs.logql import LabelScheme
from server.logs.loki import Entry
from server.logs.tokens import Signer

# The signer of page tokens and cursors, read from the store on first use (server/logs/tokens.py).
SignerSource = Callable[[], Awaitable[Signer]]

_BY_TIME_AND_STREAM = operator.itemgetter(2, 0)  # (ts, stream) of an Entry, built in C


def canonical(streams: Sequence[Sequence[Entry]], *, newest_first: bool = True) -> list[Entry]:
    """Flattens Loki's per-stream lists into the canonical order .

    Newest first: timestamp descending, then stream label set descending; oldest first: both ascending.
    The sort is stable (also with ``reverse``), so entries of one stream at one instant keep Loki's order.
    """
    flat = [entry for stream in streams for entry in stream]
    flat.sort(key=_BY_TIME_AND_STREAM, reverse=newest_first)
    return flat


def to_proto(entry: Entry, scheme: LabelScheme) -> pb.LogEntry:
    return pb.LogEntry(timestamp=timestamp(entry.ts), severity=scheme.severity(entry.labels), message=entry.line)
