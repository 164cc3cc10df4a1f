"""In-memory log storage with Loki's ingestion and query rules (the parts our server relies on).

- Streams are keyed by their label set; Loki 3 adds ``service_name`` and the structured metadata
  ``detected_level`` at ingestion, and the default encoding merges metadata into the returned labels.
- Timestamps are ints (nanoseconds) everywhere.
- Query ordering: forward = (ts, stream hash, insertion order); backward = (ts desc, stream hash, insertion
  order reversed); ``limit`` counts entries across all streams.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from testing.loki_double.logql import Query, labels_string

SERVICE_NAME_SOURCES = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)  # fmt: skip
LEVEL_SOURCES = ("level", "severity", "lvl", "loglevel", "LEVEL", "Level", "SeverityText")
_LEVEL_WORDS = {
    "trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "dbug": "debug",
    "info": "info", "inf": "info", "information": "info", "notice": "info",
    "warn": "warn", "warning": "warn", "wrn": "warn",
    "error": "error", "err": "error", "eror": "error",
    "critical": "critical", "crit": "critical", "fatal": "fatal", "panic": "critical",
}  # fmt: skip
_LOGFMT_LEVEL = re.compile(r"(?:^|\s)(?:level|lvl|severity)=\"?([A-Za-z]+)")
_KEYWORDS = (("critical", "critical"), ("fatal", "fatal"), ("error", "error"), ("warn", "warn"), ("debug", "debug"))


class PushError(ValueError):
    """A push body Loki would refuse; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Entry:
    ts: int
    line: str
    metadata: tuple[tuple[str, str], ...]
    seq: int  # global insertion order


@dataclasses.dataclass
class Stream:
    labels: dict[str, str]
    key: str
    hash: int
    entries: list[Entry] = dataclasses.field(default_factory=list)  # sorted by (ts, seq)
    _ts: list[int] = dataclasses.field(default_factory=list)

    def add(self, entry: Entry) -> bool:
        lo = bisect.bisect_left(self._ts, entry.ts)
        hi = bisect.bisect_right(self._ts, entry.ts)
        # Loki drops an entry identical (ts, line, metadata) to one already stored at that instant.
        if any(e.line == entry.line and e.metadata == entry.metadata for e in self.entries[lo:hi]):
            return False
        self.entries.insert(hi, entry)
        self._ts.insert(hi, entry.ts)
        return True

    def window(self, start: int, end: int) -> list[Entry]:
        return self.entries[bisect.bisect_left(self._ts, start) : bisect.bisect_left(self._ts, end)]


@dataclasses.dataclass(frozen=True)
class Result:
    """One entry as a query or tail returns it: labels with structured metadata merged in."""

    labels: dict[str, str]
    ts: int
    line: str


class LogStore:
    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self._seq = itertools.count()
        self.listeners: list[Callable[[Stream, list[Entry]], None]] = []

    # -- ingestion -------------------------------------------------------------------------------

    def push(self, body: object) -> None:
        streams = _push_streams(body)
        if not streams:
            raise PushError(422, "error at least one valid stream is required for ingestion")
        for labels, values in streams:
            stream = self._stream(labels)
            added = [e for e in (self._entry(stream, v) for v in values) if stream.add(e)]
            for listener in list(self.listeners):
                listener(stream, added)

    def _stream(self, labels: dict[str, str]) -> Stream:
        labels = dict(labels)
        if "service_name" not in labels:
            source = next((labels[k] for k in SERVICE_NAME_SOURCES if labels.get(k)), "unknown_service")
            labels["service_name"] = source
        key = labels_string(labels)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(labels, key, zlib.crc32(key.encode()))
        return stream

    def _entry(self, stream: Stream, value: tuple[int, str, dict[str, str]]) -> Entry:
        ts, line, metadata = value
        if "detected_level" not in metadata:
            metadata = {**metadata, "detected_level": detect_level(stream.labels, metadata, line)}
        return Entry(ts, line, tuple(metadata.items()), next(self._seq))

    # -- queries ---------------------------------------------------------------------------------

    def query(self, query: Query, start: int, end: int, limit: int, forward: bool) -> list[Result]:
        """The first ``limit`` matching entries of [start, end) in ``direction`` order."""
        per_stream: list[Iterator[tuple[tuple[int, int, int], Result]]] = []
        for stream in self.streams.values():
            if query.selects(stream.labels):
                per_stream.append(_ordered(stream, query, stream.window(start, end), forward))
        return [result for _, result in itertools.islice(heapq.merge(*per_stream), limit)]

    def label_names(self, start: int, end: int, query: Query | None) -> list[str]:
        names: set[str] = set()
        for stream in self._active(start, end, query):
            names.update(stream.labels)
        return sorted(names)

    def label_values(self, name: str, start: int, end: int, query: Query | None) -> list[str]:
        return sorted({s.labels[name] for s in self._active(start, end, query) if name in s.labels})

    def _active(self, start: int, end: int, query: Query | None) -> Iterable[Stream]:
        for stream in self.streams.values():
            if (query is None or query.selects(stream.labels)) and stream.window(start, end):
                yield stream


def _ordered(
    stream: Stream, query: Query, entries: list[Entry], forward: bool
) -> Iterator[tuple[tuple[int, int, int], Result]]:
    for entry in entries if forward else reversed(entries):
        labels = {**stream.labels, **dict(entry.metadata)}
        if query.keeps(labels, entry.line):
            key = (entry.ts, stream.hash, entry.seq) if forward else (-entry.ts, stream.hash, -entry.seq)
            yield key, Result(labels, entry.ts, entry.line)


def detect_level(labels: Mapping[str, str], metadata: Mapping[str, str], line: str) -> str:
    """Loki 3's ``detected_level``: a level label/metadata, then a JSON/logfmt field, then keywords."""
    for source in (metadata, labels):
        for name in LEVEL_SOURCES:
            if source.get(name):
                return _LEVEL_WORDS.get(source[name].lower(), "unknown")
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for name in LEVEL_SOURCES:
                if isinstance(doc.get(name), str):
                    return _LEVEL_WORDS.get(doc[name].lower(), "unknown")
    found = _LOGFMT_LEVEL.search(line)
    if found:
        return _LEVEL_WORDS.get(found.group(1).lower(), "unknown")
    lowered = line.lower()
    return next((level for word, level in _KEYWORDS if word in lowered), "unknown")


def _push_streams(body: object) -> list[tuple[dict[str, str], list[tuple[int, str, dict[str, str]]]]]:
    if not isinstance(body, dict) or not isinstance(body.get("streams"), list):
        raise PushError(400, "couldn't parse push request: streams must be a list")
    out = []
    for item in body["streams"]:
        labels = item.get("stream") if isinstance(item, dict) else None
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise PushError(400, "couldn't parse push request: stream labels must be an object of strings")
        if not isinstance(values, list):
            raise PushError(400, "couldn't parse push request: values must be a list")
        out.append((labels, [_value(v) for v in values]))
    return out


def _value(value: object) -> tuple[int, str, dict[str, str]]:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise PushError(400, "couldn't parse push request: a value must be [timestamp, line(, metadata)]")
    ts, line = value[0], value[1]
    if not isinstance(ts, str) or not ts.isdigit():
        raise PushError(400, f"couldn't parse push request: timestamp must be a string of nanoseconds, got {ts!r}")
    if not isinstance(line, str):
        raise PushError(400, "couldn't parse push request: ReadString: expects \" or n, but found {")
    metadata = value[2] if len(value) == 3 else {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise PushError(400, "couldn't parse push request: structured metadata must be an object of strings")
    return int(ts), line, metadata
