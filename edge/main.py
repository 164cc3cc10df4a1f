"""Wiring only: config → one shared grpc.aio channel (``edge/upstream.py``) → the ASGI app → uvicorn.

``monitoring-edge --help`` lists the settings. SIGTERM or SIGINT stop uvicorn, which gives open
connections (SSE streams included) ``shutdown_grace_s`` to finish; then the channel is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

import grpc
import uvicorn
from google.protobuf import descriptor
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

import envconfig
from dooor.monitoring.v1 import monitoring_pb2, platform_pb2
from edge import config as config_module
from edge import logs, upstream
from edge.app import Edge
from edge.config import Config
from edge.protocol import GatheringHttpToolsProtocol

log = logging.getLogger("edge")

# The proto files whose annotated services the edge exposes; a method without google.api.http is skipped.
PROTO_FILES = (monitoring_pb2.DESCRIPTOR, platform_pb2.DESCRIPTOR)


class _Server(uvicorn.Server):
    """uvicorn, except that a graceful stop on SIGTERM/SIGINT exits 0 and runs our cleanup.

    uvicorn re-raises the captured signal after shutting down, which kills the process before the
    channel is closed; the monitoring-server exits 0 after a graceful stop, and so does the edge.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


def services() -> list[descriptor.ServiceDescriptor]:
    return [s for f in PROTO_FILES for s in f.services_by_name.values()]


def build_app(config: Config, channel: grpc.aio.Channel) -> ASGIApp:
    app = Edge(config, channel, services())
    if not config.cors_origins:
        return app
    methods = sorted({route.http_method for route in app.routes})
    return CORSMiddleware(
        app,
        allow_origins=list(config.cors_origins),
        allow_methods=methods,
        allow_headers=["authorization", "content-type", "grpc-timeout", "last-event-id"],
        # With "*" and credentials Starlette echoes any Origin and allows cookies, so every site could read
        # the API with a visitor's access_token cookie. "*" means any origin without credentials: the
        # Authorization header and ?access_token= still work, the cookie only for listed origins.
        allow_credentials="*" not in config.cors_origins,
        max_age=600,
    )


async def serve(config: Config) -> None:
    channel = upstream.channel(config.upstream_target, config.max_receive_bytes, config.upstream_tls_files)
    try:
        app = build_app(config, channel)
        server = _Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                http=GatheringHttpToolsProtocol,  # httptools, one write per response (edge/protocol.py)
                lifespan="on",
                access_log=False,  # ours strips secrets from URLs; uvicorn's would log access_token
                log_config=None,
                server_header=False,
                timeout_graceful_shutdown=int(max(1, config.shutdown_grace_s)),
                ssl_certfile=config.tls_cert or None,
                ssl_keyfile=config.tls_key or None,
            )
        )
        log.info(
            "edge on %s://%s → gRPC %s (%s, round_robin, health-checked)",
            "https" if config.tls_cert else "http",
            config.addr,
            config.upstream_target,
            "TLS" if config.upstream_tls_files else "plaintext",
        )
        await server.serve()
    finally:
        await channel.close()
        log.info("stopped")


def cli(argv: Sequence[str] | None = None) -> None:
    try:
        config = config_module.load(argv)
    except envconfig.ConfigError as error:
        print(f"monitoring-edge: {error}", file=sys.stderr)
        sys.exit(2)  # as argparse does for a bad flag
    logs.configure(config.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; fall back to asyncio's loop
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(config))


if __name__ == "__main__":
    cli()
