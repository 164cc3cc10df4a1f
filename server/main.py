"""Wiring only: config → store → backend clients → capabilities → grpc.aio server (+ health, reflection).

``monitoring-server --help`` lists the settings. SIGTERM or SIGINT stop the server gracefully: health
turns NOT_SERVING, streams are ended by their capabilities, in-flight unary calls get
``shutdown_grace_s`` to finish, then the backend clients and the store are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dooor.monitoring.v1 import monitoring_pb2, monitoring_pb2_grpc, platform_pb2, platform_pb2_grpc
from server import config as config_module
from server import queries as queries_module
from server.auth import Authenticator
from server.config import Config
from server.cursor import signer_source
from server.evaluator import Evaluator, TickListener
from server.health import HealthRecorder, HealthRules, HealthService, UptimeHistory
from server.logql import LabelScheme
from server.logs import AppLogs
from server.loki import LokiClient
from server.metrics import MetricsService
from server.overview import CostModel, WorkspaceOverview
from server.platform import PlatformServicer
from server.prometheus import PrometheusClient
from server.rules import AlertSettings, RulesEngine
from server.servicer import Capabilities, MonitoringServicer
from server.store import Store, open_sqlite
from server.tail import TailHub, tail_settings

log = logging.getLogger("server")

SERVICE_NAMES = (
    monitoring_pb2.DESCRIPTOR.services_by_name["MonitoringService"].full_name,
    platform_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name,
)


class Runtime:
    """What the wiring started besides the servicers, stopped in two phases.

    ``drain()`` runs before the server drains its in-flight calls: it cancels the background loops and
    runs the ``enders`` (stream hubs end their streams cleanly, so the drain does not wait on them).
    ``close()`` runs after the drain: the ``closers`` release what in-flight calls were still using (the
    backend clients). Each runs once, newest first, whatever the number of calls.
    """

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.enders: list[Callable[[], Awaitable[None]]] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []

    def spawn(self, name: str, loop: Awaitable[None]) -> None:
        self.tasks.append(asyncio.create_task(loop, name=name))  # type: ignore[arg-type]

    async def drain(self) -> None:
        tasks, self.tasks = self.tasks, []
        enders, self.enders = self.enders, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for end in reversed(enders):
            await end()

    async def close(self) -> None:
        await self.drain()
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            await close()


def wire(config: Config, store: Store, runtime: Runtime, alert_settings: AlertSettings) -> Capabilities:
    """Builds the capabilities from the config. Each backend client is created once and shared."""
    prometheus = PrometheusClient(config.prometheus_url, config.backend_timeout_s)
    runtime.closers.append(prometheus.close)
    queries = queries_module.from_section(config_module.file_section(config, "prometheus"))
    health_rules = HealthRules.from_section(config_module.file_section(config, "health"))

    # Everything that reacts to an evaluator tick (health snapshots, alert rules, ...): add listeners here.
    tick_listeners: list[TickListener] = [
        HealthRecorder(store, health_rules, UptimeHistory(prometheus, queries, health_rules)),
        RulesEngine(store, prometheus, queries, alert_settings),
    ]
    evaluator = Evaluator(store, prometheus, queries, tick_listeners, interval_s=config.eval_interval_s)
    runtime.spawn("evaluator", evaluator.run())

    loki_section = config_module.file_section(config, "loki")
    loki = LokiClient(config.loki_url, timeout_s=config.backend_timeout_s, tenant=str(loki_section.get("tenant", "")))
    runtime.closers.append(loki.close)
    label_scheme = LabelScheme.from_section(loki_section)
    signer = signer_source(config.token_secret, store)
    app_logs = AppLogs(loki, label_scheme, signer)
    tail_hub = TailHub(loki, label_scheme, signer, tail_settings(loki_section))
    runtime.enders.append(tail_hub.close)  # open streams end before the server drains unary calls
    runtime.closers.append(app_logs.close)  # after the drain, before the Loki client closes

    # A snapshot older than three missed ticks means the evaluator is not running: reported as unknown.
    stale_after_s = max(3 * config.eval_interval_s, 60.0)
    return Capabilities(
        metrics=MetricsService(prometheus, queries),
        health=HealthService(store, stale_after_s=stale_after_s),
        logs=app_logs,
        tail=tail_hub,
        overview=WorkspaceOverview(
            store,
            prometheus,
            queries.workspace_label,
            queries.app_label,
            CostModel.from_section(config_module.file_section(config, "cost")),
            stale_after_s=stale_after_s,
        ),
    )


async def serve(config: Config, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    store = await open_sqlite(config.db)
    runtime = Runtime()
    server = grpc.aio.server()
    health = health_async.HealthServicer()
    try:
        authenticator = Authenticator(store, config.admin_token)
        # Read once: the rules engine applies these thresholds, PlatformService lists them as the defaults.
        alert_settings = AlertSettings.from_section(config_module.file_section(config, "alerts"))
        capabilities = wire(config, store, runtime, alert_settings)
        monitoring_pb2_grpc.add_MonitoringServiceServicer_to_server(
            MonitoringServicer(store, authenticator, capabilities), server
        )
        platform_pb2_grpc.add_PlatformServiceServicer_to_server(
            PlatformServicer(store, authenticator, alert_settings.defaults), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        port = server.add_insecure_port(config.grpc_addr)
        await server.start()
        # SERVING only now: the store is open and migrated, the servicers are registered.
        for name in ("", *SERVICE_NAMES):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("listening on %s (port %d), store %s", config.grpc_addr, port, config.db)
        await stop.wait()
        log.info("stopping: draining in-flight calls for up to %.1f s", config.shutdown_grace_s)
        await health.enter_graceful_shutdown()
        await runtime.drain()
        await server.stop(config.shutdown_grace_s)
    finally:
        await server.stop(None)
        await runtime.close()
        await store.close()
        log.info("stopped")


def cli(argv: Sequence[str] | None = None) -> None:
    config = config_module.load(argv)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    cli()
