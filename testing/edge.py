"""The REST edge (``monitoring-edge``) as a real process on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import Iterator, Mapping

import httpx

from testing.procs import BIN, Process, free_port


class EdgeProcess(Process):
    """``monitoring-edge`` in front of ``upstream``; ready once ``/healthz`` answers."""

    def __init__(self, log_dir: pathlib.Path, upstream: str, env: Mapping[str, str] | None = None):
        self.addr = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.addr}"
        settings = {
            "MONITORING_EDGE_ADDR": self.addr,
            "MONITORING_UPSTREAM": upstream,
            "MONITORING_LOG_LEVEL": "DEBUG",
            **(env or {}),
        }
        super().__init__(
            f"monitoring-edge-{self.addr.rsplit(':', 1)[1]}", [str(BIN / "monitoring-edge")], log_dir, settings
        )
        self.wait_until(self._healthy)

    def _healthy(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200

    async def logged(self, text: str) -> str:
        """The log once it holds ``text`` (≤ 10 s): a request's access line is written after its response."""
        for _ in range(200):
            log = self.log()
            if text in log:
                break
            await asyncio.sleep(0.05)
        return log


@contextlib.contextmanager
def running_edge(log_dir: pathlib.Path, upstream: str, env: Mapping[str, str] | None = None) -> Iterator[EdgeProcess]:
    edge = EdgeProcess(log_dir, upstream, env)
    try:
        yield edge
    finally:
        edge.stop()
