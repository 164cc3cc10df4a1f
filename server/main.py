"""Wiring only: config → store → backend clients → capabilities → grpc.aio server (+ health, reflection).

``monitoring-server --help`` lists the settings. SIGTERM or SIGINT stop the server gracefully: health
turns NOT_SERVING, streams are ended by their capabilities, in-flight unary calls get
``shutdown_grace_s`` to finish, then the backend clients and the store are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence

import grpc
import uvloop
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dooor.monitoring.v1 import monitoring_pb2, monitoring_pb2_grpc, platform_pb2, platform_pb2_grpc
from server import config as config_module
from server.alerts.engine import RulesEngine
from server.api.auth import Authenticator
from server.api.monitoring import Capabilities, MonitoringServicer
from server.api.platform import PlatformServicer
from server.api.ratelimit import KeyRateLimiter
from server.api.serving import watch_store
from server.cluster.leader import Leadership, new_replica_id
from server.cluster.workers import Policy, Supervisor, worker_count
from server.config import Config, ConfigError, TlsFiles
from server.errors import ServiceError
from server.logs.listing import AppLogs
from server.logs.loki import LokiClient
from server.logs.tail import TailHub
from server.logs.tokens import signer_source
from server.metrics.app_metrics import MetricsService
from server.metrics.evaluator import Evaluator, TickListener
from server.metrics.health import HealthRecorder, HealthService, UptimeHistory
from server.metrics.history import HealthHistory
from server.metrics.overview import WorkspaceOverview
from server.metrics.prometheus import clients as prometheus_clients
from server.notify.sender import Notifier
from server.store import Store, open_store
from server.store.records import Fence

log = logging.getLogger("server")

# Clients that keep connections warm with keepalive pings (the edge pings every 30 s, also over idle
# streams) must not be taken for abusers: gRPC's default accepts a ping without data only every 5 minutes
# and sends GOAWAY "too_many_pings" after two early ones.
_SERVER_OPTIONS: grpc.aio.ChannelArgumentType = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)

MONITORING = monitoring_pb2.DESCRIPTOR.services_by_name["MonitoringService"].full_name
PLATFORM = platform_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name
SERVICE_NAMES = (MONITORING, PLATFORM)


@dataclasses.dataclass(frozen=True)
class _Listener:
    """One grpc.aio server on one address, with its own health service over the services it offers."""

    addr: str
    server: grpc.aio.Server
    health: health_async.HealthServicer
    services: tuple[str, ...]

    @property
    def health_names(self) -> tuple[str, ...]:
        return ("", *self.services)


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


async def _term(evaluation: Awaitable[None], notifier: Notifier) -> None:
    """One lease term's work: the evaluator and the sender; either failing (LeaseLost, say) ends both."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(evaluation, name="evaluator")
            group.create_task(notifier.run(), name="notifier")
    finally:
        await notifier.close()


def wire(config: Config, store: Store, runtime: Runtime, replica_id: str) -> tuple[Capabilities, Leadership]:
    """Builds the capabilities from the config. Each backend client is created once and shared.

    The evaluator and its listeners run only while this replica holds the evaluator lease; each term gets
    fresh listeners (their memory, uptime runs say, is re-read from the store) and the lease's fence.
    """
    # Two pools: the evaluator's work (ticks, alert rules, uptime history) never waits behind API calls.
    pools = prometheus_clients(
        config.prometheus_url, config.backend_timeout_s, range_cache=config.api.range_cache_entries
    )
    runtime.closers.append(pools.close)
    prometheus = pools.evaluator
    queries = config.queries

    def evaluate(fence: Fence) -> Awaitable[None]:
        # Everything that reacts to an evaluator tick (health snapshots, alert rules, ...): add listeners here.
        tick_listeners: list[TickListener] = [
            HealthRecorder(store, config.health, UptimeHistory(prometheus, queries, config.health)),
            RulesEngine(store, prometheus, queries, config.alerts),
        ]
        evaluator = Evaluator(
            store, prometheus, queries, tick_listeners, interval_s=config.eval_interval_s, fence=fence
        )
        # The outbox's sender runs beside the evaluator, under the same lease: one sender per database.
        return _term(evaluator.run(), Notifier(store, config.notify, fence))

    # One evaluation interval (at least 1 s): a leader that dies is replaced within 4/3 of an interval.
    leadership = Leadership(store, replica_id, evaluate, ttl_s=max(config.eval_interval_s, 1.0))
    runtime.spawn("leadership", leadership.run())
    runtime.enders.append(leadership.stop)  # hands the lease over before the drain

    loki = LokiClient(config.loki_url, timeout_s=config.backend_timeout_s, tenant=config.loki.tenant)
    runtime.closers.append(loki.close)
    signer = signer_source(config.token_secret, store)
    app_logs = AppLogs(loki, config.loki.labels, signer)
    tail_hub = TailHub(loki, config.loki.labels, signer, config.loki.tail)
    runtime.enders.append(tail_hub.close)  # open streams end before the server drains unary calls
    runtime.closers.append(app_logs.close)  # after the drain, before the Loki client closes

    capabilities = Capabilities(
        metrics=MetricsService(pools.api, queries, deploys=store),
        health=HealthService(store, stale_after_s=config.stale_after_s),
        logs=app_logs,
        tail=tail_hub,
        overview=WorkspaceOverview(store, pools.api, queries, config.cost, stale_after_s=config.stale_after_s),
        rate_limit=KeyRateLimiter.of(config.api),
        history=HealthHistory(store),
    )
    return capabilities, leadership


async def serve(
    config: Config, *, stop: asyncio.Event | None = None, server_options: grpc.aio.ChannelArgumentType | None = None
) -> None:
    stop = stop or asyncio.Event()
    store = await open_store(config.db)
    runtime = Runtime()
    listeners: list[_Listener] = []
    try:
        authenticator = Authenticator(store, config.admin_token, key_cache_s=config.api.key_cache_s)
        capabilities, leadership = wire(config, store, runtime, new_replica_id())
        # Test sends go out from whichever process serves the call, not only the lease holder's sender.
        tester = Notifier(store, config.notify)
        runtime.closers.append(tester.close)
        monitoring = MonitoringServicer(store, authenticator, capabilities, notify=config.notify, tester=tester)
        platform = PlatformServicer(store, authenticator, config.alerts.defaults, leadership.view)
        options = (*_SERVER_OPTIONS, *(server_options or ()))
        if config.admin_addr:  # the tenants' port does not offer PlatformService at all
            listeners.append(_listener(config.grpc_addr, options, monitoring=monitoring))
            listeners.append(_listener(config.admin_addr, options, platform=platform))
        else:
            listeners.append(_listener(config.grpc_addr, options, monitoring=monitoring, platform=platform))
        ports = [_listen(listener.server, listener.addr, config.tls) for listener in listeners]
        for listener in listeners:
            await listener.server.start()
        # SERVING only now: the store is open and migrated, the servicers are registered.
        for listener in listeners:
            for name in listener.health_names:
                await listener.health.set(name, health_pb2.HealthCheckResponse.SERVING)
            runtime.spawn(f"store-health {listener.addr}", watch_store(store, listener.health, listener.health_names))
        for listener, port in zip(listeners, ports, strict=True):
            log.info(
                "replica %s listening on %s (port %d, %s) for %s",
                leadership.replica_id,
                listener.addr,
                port,
                _transport(config),
                ", ".join(name.rpartition(".")[2] for name in listener.services),
            )
        log.info("store %s", _without_password(config.db))
        await stop.wait()
        log.info("stopping: draining in-flight calls for up to %.1f s", config.shutdown_grace_s)
        for listener in listeners:
            await listener.health.enter_graceful_shutdown()
        await runtime.drain()
        await asyncio.gather(*(listener.server.stop(config.shutdown_grace_s) for listener in listeners))
    finally:
        for listener in listeners:
            await listener.server.stop(None)
        await runtime.close()
        await store.close()
        log.info("stopped")


def _listener(
    addr: str,
    options: grpc.aio.ChannelArgumentType,
    *,
    monitoring: MonitoringServicer | None = None,
    platform: PlatformServicer | None = None,
) -> _Listener:
    """A server offering the given services, health and reflection (over what it offers only)."""
    server = grpc.aio.server(options=options)
    health = health_async.HealthServicer()
    services: list[str] = []
    if monitoring is not None:
        monitoring_pb2_grpc.add_MonitoringServiceServicer_to_server(monitoring, server)
        services.append(MONITORING)
    if platform is not None:
        platform_pb2_grpc.add_PlatformServiceServicer_to_server(platform, server)
        services.append(PLATFORM)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection((*services, health_name, reflection.SERVICE_NAME), server)
    return _Listener(addr, server, health, tuple(services))


def _listen(server: grpc.aio.Server, addr: str, tls: TlsFiles | None) -> int:
    """Binds ``addr``: plaintext by default, TLS with the configured files (mutual with a client CA)."""
    if tls is None:
        return server.add_insecure_port(addr)
    credentials = grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )
    return server.add_secure_port(addr, credentials)


def _transport(config: Config) -> str:
    if config.tls is None:
        return "plaintext"
    return "TLS, client certificates required" if config.tls.client_ca is not None else "TLS"


def _without_password(db: str) -> str:
    """The store's location for a log line: a URL's password never reaches a log."""
    parts = urllib.parse.urlsplit(db)
    if parts.password is None:
        return db
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def cli(argv: Sequence[str] | None = None) -> None:
    try:
        config = config_module.load(argv)
    except ConfigError as error:
        print(f"monitoring-server: {error}", file=sys.stderr)
        sys.exit(2)  # as argparse does for a bad flag
    workers = worker_count(config.workers)
    # With several processes writing to one stream, each line says which one wrote it.
    pid = " [%(process)d]" if workers > 1 else ""
    logging.basicConfig(level=config.log_level.upper(), format=f"%(asctime)s %(levelname)s{pid} %(name)s: %(message)s")

    def run(server_options: grpc.aio.ChannelArgumentType | None = None) -> None:
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await serve(config, stop=stop, server_options=server_options)

        try:
            with contextlib.suppress(KeyboardInterrupt):
                # uvloop: its loop is C where asyncio's is Python; a grpc.aio unary call costs ~15 % less CPU.
                uvloop.run(main())
        except ServiceError as error:  # the store cannot be opened (PostgreSQL down, say): the cause, no trace
            log.error("cannot start: %s", error.message)
            sys.exit(1)

    if workers == 1:
        run()
        return
    # The parent only supervises: no gRPC object may exist in it before the workers are forked. Every worker
    # binds the same address; so_reuseport is already gRPC's default on Linux, set here to make it visible.
    reuse_port = (("grpc.so_reuseport", 1),)
    policy = Policy(grace_s=config.shutdown_grace_s)
    sys.exit(Supervisor(workers, lambda: run(reuse_port), policy).run())


if __name__ == "__main__":
    cli()
