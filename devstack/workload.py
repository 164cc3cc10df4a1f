"""A small demo workload: a few apps whose instances expose real Prometheus metrics and push real log
lines to Loki. One app misbehaves now and then (errors, latency, an instance down), so that health
degrades and alerts fire in the demo.

Series are exposed without `workspace_id`/`app_id`; Prometheus adds them from the scrape target's
labels, as the Dooor runtime's relabelling does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("devstack.workload")

# A misbehaving app is in a bad phase for BAD_S seconds of every CYCLE_S, the first one starting
# `bad_after_s` after the workload starts (DEVSTACK_BAD_AFTER_S; 0 makes it misbehave at once).
CYCLE_S = 480.0
BAD_S = 180.0


@dataclasses.dataclass(frozen=True)
class DemoApp:
    id: str
    name: str
    instances: int
    requests_per_s: float
    cpu_cores: float
    memory_mib: float
    latency_ms: float
    misbehaves: bool = False


DEMO_APPS = (
    DemoApp("app_demo_api", "my-api", 3, 40.0, 0.25, 300.0, 45.0),
    DemoApp("app_demo_worker", "worker-service", 2, 8.0, 0.6, 700.0, 120.0, misbehaves=True),
    DemoApp("app_demo_web", "web-frontend", 2, 25.0, 0.1, 180.0, 30.0),
)


@dataclasses.dataclass(frozen=True)
class Schedule:
    started: float
    bad_after_s: float

    def bad(self, app: DemoApp, now: float) -> bool:
        return app.misbehaves and now >= self.started + self.bad_after_s and self._in_bad(now)

    def _in_bad(self, now: float) -> bool:
        return (now - self.started - self.bad_after_s) % CYCLE_S < BAD_S


@dataclasses.dataclass
class _Instance:
    """Counters of one instance, advanced at each scrape by the rates of the current phase."""

    app: DemoApp
    index: int
    schedule: Schedule
    last: float
    cpu_seconds: float = 0.0
    ok: float = 0.0
    errors: float = 0.0
    latency_sum_s: float = 0.0

    def advance(self, now: float) -> None:
        dt, self.last = max(0.0, now - self.last), now
        bad = self.schedule.bad(self.app, now)
        wobble = 1 + 0.15 * math.sin(now / 97 + self.index)
        requests = self.app.requests_per_s * wobble * dt
        error_share = 0.25 if bad else 0.004
        latency_s = self.app.latency_ms * (4.0 if bad else wobble) / 1000
        self.cpu_seconds += self.app.cpu_cores * (1.6 if bad else wobble) * dt
        self.ok += requests * (1 - error_share)
        self.errors += requests * error_share
        self.latency_sum_s += requests * latency_s

    def memory_bytes(self, now: float) -> float:
        growth = 1.7 if self.schedule.bad(self.app, now) else 1 + 0.05 * math.sin(now / 300 + self.index)
        return self.app.memory_mib * growth * 1048576

    def exposition(self, now: float) -> str:
        pod = f'container="app",pod="{self.app.name}-{self.index}"'
        return (
            "# TYPE container_cpu_usage_seconds_total counter\n"
            f"container_cpu_usage_seconds_total{{{pod}}} {self.cpu_seconds:.6f}\n"
            "# TYPE container_memory_working_set_bytes gauge\n"
            f"container_memory_working_set_bytes{{{pod}}} {self.memory_bytes(now):.0f}\n"
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{status="200"}} {self.ok:.3f}\n'
            f'http_requests_total{{status="500"}} {self.errors:.3f}\n'
            "# TYPE http_request_duration_seconds summary\n"
            f"http_request_duration_seconds_sum {self.latency_sum_s:.6f}\n"
            f"http_request_duration_seconds_count {self.ok + self.errors:.3f}\n"
        )


class Workload:
    def __init__(self, apps: tuple[DemoApp, ...] = DEMO_APPS, *, bad_after_s: float = 120.0):
        now = time.time()
        self.apps = apps
        self.schedule = Schedule(now, bad_after_s)
        self._instances = {(a.id, i): _Instance(a, i, self.schedule, now) for a in apps for i in range(a.instances)}

    def targets(self) -> list[tuple[DemoApp, int, str]]:
        """(app, instance index, metrics path) for every instance: one scrape target each."""
        return [(x.app, x.index, f"/apps/{x.app.id}/instances/{x.index}/metrics") for x in self._instances.values()]

    async def _metrics(self, request: Request) -> Response:
        key = (request.path_params["app_id"], int(request.path_params["index"]))
        instance = self._instances.get(key)
        if instance is None:
            return PlainTextResponse("no such instance\n", status_code=404)
        now = time.time()
        # In its bad phase, the misbehaving app's last instance stops answering scrapes: `up` drops to 0.
        if self.schedule.bad(instance.app, now) and instance.index == instance.app.instances - 1:
            return PlainTextResponse("instance unavailable\n", status_code=503)
        instance.advance(now)
        return PlainTextResponse(instance.exposition(now), media_type="text/plain; version=0.0.4")

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/apps/{app_id}/instances/{index:int}/metrics", self._metrics)])

    async def push_logs(self, loki_url: str, workspace_id: str, stop: asyncio.Event) -> None:
        """Pushes a few log lines per app every second until ``stop`` is set."""
        rng = random.Random()
        async with httpx.AsyncClient(base_url=loki_url, timeout=5) as client:
            while not stop.is_set():
                streams = [self._lines(app, workspace_id, rng) for app in self.apps]
                try:
                    await client.post("/loki/api/v1/push", json={"streams": [s for group in streams for s in group]})
                except httpx.HTTPError as error:
                    log.warning("log push failed: %s", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    def _lines(self, app: DemoApp, workspace_id: str, rng: random.Random) -> list[dict[str, object]]:
        now_ns = time.time_ns()
        bad = self.schedule.bad(app, now_ns / 1e9)
        by_level: dict[str, list[list[str]]] = {}
        for n in range(rng.randint(1, 3)):
            level, line = _line(app, bad, rng)
            by_level.setdefault(level, []).append([str(now_ns + n), line])
        return [
            {"stream": {"workspace_id": workspace_id, "app_id": app.id, "level": level}, "values": values}
            for level, values in by_level.items()
        ]


def _line(app: DemoApp, bad: bool, rng: random.Random) -> tuple[str, str]:
    path = rng.choice(["/", "/api/orders", "/api/users/42", "/healthz", "/api/search?q=shoes"])
    ms = round(app.latency_ms * (4 if bad else rng.uniform(0.6, 1.4)))
    if bad and rng.random() < 0.4:
        return "error", f"Unhandled exception: Cannot read property 'id' of undefined (GET {path})"
    if rng.random() < 0.05:
        return "warn", f"Slow response: GET {path} took {ms * 3}ms"
    if rng.random() < 0.1:
        return "debug", f"cache hit ratio {rng.uniform(0.7, 0.99):.2f}"
    return "info", f"GET {path} 200 in {ms}ms"
