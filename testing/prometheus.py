"""A real Prometheus for tests, benchmarks and a local devstack: backfilled data with known values.

    series = [Series("up", {"workspace_id": "ws_1", "app_id": "a"}, [(t, 1.0) for t in range(t0, t1, 60)])]
    with running_prometheus(tmp_path, series) as prometheus:
        ...  # prometheus.url answers the HTTP API over exactly those samples

How: the series are written as an OpenMetrics file (timestamps in SECONDS, ``# EOF`` last), turned into
TSDB blocks by ``promtool tsdb create-blocks-from openmetrics``, then Debian's ``/usr/bin/prometheus``
starts over that directory on 127.0.0.1 with a config that scrapes nothing, so the data stays exactly
what was written. Samples may lie in the future: a query at time t sees only samples ≤ t, so data written
up to "now + 2 h" stays live for two hours. ``push`` adds live samples through the remote-write receiver
(only newer than every backfilled sample: the head refuses anything older than the newest block).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pathlib
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence

import httpx

from server.backend_body import Transport
from testing.procs import Process, free_port

PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMTOOL_BIN = "/usr/bin/promtool"


@dataclasses.dataclass(frozen=True)
class Series:
    """One series: metric name, labels, and samples ``(Unix seconds, value)`` in time order."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def write_openmetrics(path: pathlib.Path, series: Iterable[Series]) -> int:
    """Writes ``series`` as OpenMetrics; returns the number of samples. Same-name series are kept together
    (a metric family must be contiguous) and each series' samples must already be in time order, since
    promtool silently drops out-of-order samples."""
    families: dict[str, list[Series]] = {}
    for one in series:
        families.setdefault(one.name, []).append(one)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            for one in members:
                times = [t for t, _ in one.samples]
                if times != sorted(times):
                    raise ValueError(f"samples of {name}{dict(one.labels)} are not in time order")
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in one.labels.items())
                prefix = f"{name}{{{labels}}}" if labels else name
                for t, v in one.samples:
                    # OpenMetrics timestamps are seconds: milliseconds here would land in the year 58000.
                    out.write(f"{prefix} {_number(v)} {t:.3f}\n")
                count += len(one.samples)
        out.write("# EOF\n")
    return count


def backfill(series: Iterable[Series], data_dir: pathlib.Path, work_dir: pathlib.Path) -> int:
    """Creates TSDB blocks for ``series`` in ``data_dir``; returns the number of samples written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "backfill.om"
    count = write_openmetrics(source, series)
    # Blocks of up to 31 days instead of 2 h: a month of data takes 0.5 s instead of 4 s to convert.
    subprocess.run(
        [
            PROMTOOL_BIN,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            "--max-block-duration=744h",
            str(source),
            str(data_dir),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    source.unlink()
    return count


def _get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class PrometheusProcess(Process):
    """``/usr/bin/prometheus`` on 127.0.0.1 over ``data_dir``; ready once ``/-/ready`` answers 200."""

    def __init__(
        self,
        log_dir: pathlib.Path,
        data_dir: pathlib.Path,
        *,
        port: int | None = None,
        remote_write: bool = False,
        name: str = "prometheus",
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        config = log_dir / f"{name}.yml"
        # No scrape targets and no rules: the TSDB holds only what the test wrote.
        config.write_text("global:\n  evaluation_interval: 15s\n")
        argv = [
            PROMETHEUS_BIN,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            # Retention counts back from the newest block: keep every backfilled month.
            "--storage.tsdb.retention.time=400d",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        if remote_write:
            argv.append("--web.enable-remote-write-receiver")
        super().__init__(name, argv, log_dir)
        self.wait_until(lambda: _get(self.url + "/-/ready")[0] == 200, timeout=60)


@contextlib.contextmanager
def running_prometheus(
    work_dir: pathlib.Path, series: Iterable[Series] = (), *, remote_write: bool = False, port: int | None = None
) -> Iterator[PrometheusProcess]:
    """Backfills ``series`` into ``work_dir/data`` (once; reused when it exists), starts Prometheus, stops it."""
    data_dir = work_dir / "data"
    if not data_dir.exists():
        backfill(series, data_dir, work_dir)
    prometheus = PrometheusProcess(work_dir, data_dir, port=port, remote_write=remote_write)
    try:
        yield prometheus
    finally:
        prometheus.stop()


# --- live samples through the remote-write receiver (protobuf + snappy, standard library only) -------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
    return _uvarint(number << 3 | 2) + _uvarint(len(payload)) + payload


def _write_request(series: Iterable[Series]) -> bytes:
    body = b""
    for one in series:
        labels = {"__name__": one.name, **one.labels}
        message = b"".join(_field(1, _field(1, k.encode()) + _field(2, labels[k].encode())) for k in sorted(labels))
        for t, v in one.samples:  # Sample{double value = 1; int64 timestamp_ms = 2}
            message += _field(2, b"\x09" + struct.pack("<d", v) + b"\x10" + _uvarint(round(t * 1000)))
        body += _field(1, message)
    return body


def _snappy_literal(data: bytes) -> bytes:
    """A valid snappy block holding ``data`` as one uncompressed literal."""
    n = len(data) - 1
    if n < 60:
        tag = bytes([n << 2])
    else:
        size = (n.bit_length() + 7) // 8
        tag = bytes([(59 + size) << 2]) + n.to_bytes(size, "little")
    return _uvarint(len(data)) + tag + data


def push(url: str, series: Iterable[Series]) -> None:
    """Sends samples (timestamps in seconds) to a Prometheus started with ``remote_write=True``."""
    request = urllib.request.Request(
        url + "/api/v1/write",
        data=_snappy_literal(_write_request(series)),
        method="POST",
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    status, body = _send(request)
    if status != 204:
        # 400 "out of bounds": older than the newest backfilled block's end (which may lie in the future).
        raise RuntimeError(f"remote write answered {status}: {body[:200]!r}")


def _send(request: urllib.request.Request) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(url: str, timeout: float = 30.0) -> None:
    """Waits for ``/-/ready`` of a Prometheus this process did not start (a devstack's, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _get(url + "/-/ready")[0] == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout} s")


class CountingTransport(Transport):
    """The service's own transport (server/backend_body.py), counting the HTTP requests sent through it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)
