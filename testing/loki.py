"""The Loki double as a real process on a free loopback port, and a small client for pushing and faults."""

from __future__ import annotations

import contextlib
import pathlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from testing.procs import Process, free_port


class LokiDouble(Process):
    """``python -m testing.loki_double`` on 127.0.0.1; ready once ``/ready`` answers 200."""

    def __init__(self, log_dir: pathlib.Path, *, extra_args: Sequence[str] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "testing.loki_double", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += extra_args
        super().__init__(f"loki-double-{self.port}", argv, log_dir)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.wait_until(lambda: self.http.get("/ready").status_code == 200)

    def stop(self, *args: Any, **kwargs: Any) -> int:
        self.http.close()
        return super().stop(*args, **kwargs)

    # -- data --------------------------------------------------------------------------------------

    def push(self, streams: Sequence[Mapping[str, Any]]) -> httpx.Response:
        """POSTs ``{"streams": …}`` to the real push endpoint; values' timestamps may be ints."""
        body = {
            "streams": [
                {"stream": dict(s["stream"]), "values": [[str(v[0]), *v[1:]] for v in s["values"]]} for s in streams
            ]
        }
        response = self.http.post("/loki/api/v1/push", json=body)
        assert response.status_code == 204, response.text
        return response

    # -- fault controls ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self.http.get("/_double/stats").json()  # type: ignore[no-any-return]

    def drop_tails(self, reason: str = "all ingesters closed the connection", code: int = 1011) -> int:
        return int(self.http.post("/_double/tails/drop", json={"reason": reason, "code": code}).json()["dropped"])

    def stall_tails(self, stalled: bool = True) -> None:
        self.http.post("/_double/tails/stall", json={"stalled": stalled})

    def drop_next(self, count: int) -> None:
        self.http.post("/_double/tails/drop_next", json={"count": count})

    def fault(self, endpoint: str = "query_range", **fault: Any) -> None:
        self.http.post("/_double/faults", json={"endpoint": endpoint, **fault})

    def clear_faults(self) -> None:
        self.http.delete("/_double/faults")


@contextlib.contextmanager
def running_loki(log_dir: pathlib.Path, *, extra_args: Sequence[str] = ()) -> Iterator[LokiDouble]:
    double = LokiDouble(log_dir, extra_args=extra_args)
    try:
        yield double
    finally:
        double.stop()
