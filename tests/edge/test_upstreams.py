"""MONITORING_UPSTREAM's forms, and proof that the edge's channel health-checks its replicas on this grpcio.

The health-checking tests run two small gRPC servers inside the test's event loop (127.0.0.1) and call
them through the channel the edge builds (``edge.upstream.channel``), so a replica's health can be set
while its process and connection stay up: only client-side health checking can then move the calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

import envconfig
from edge import config, upstream

pytestmark = pytest.mark.timeout(30)

_WHO = "/test.Replica/Who"
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051"),
        ("monitoring:50051", "monitoring:50051"),
        ("[::1]:50051", "[::1]:50051"),
        ("127.0.0.1:50051,127.0.0.1:50052", "ipv4:127.0.0.1:50051,127.0.0.1:50052"),
        (" 10.0.0.1:50051 , 10.0.0.2:50051 ", "ipv4:10.0.0.1:50051,10.0.0.2:50051"),
        ("[::1]:50051,[fd00::2]:50051", "ipv6:[::1]:50051,[fd00::2]:50051"),
        ("dns:///monitoring.internal:50051", "dns:///monitoring.internal:50051"),
        ("ipv4:127.0.0.1:50051,127.0.0.1:50052", "ipv4:127.0.0.1:50051,127.0.0.1:50052"),
        ("unix:/run/monitoring.sock", "unix:/run/monitoring.sock"),
    ],
)
def test_each_accepted_form_becomes_one_grpc_target(value: str, target: str) -> None:
    loaded = config.load([], {"MONITORING_UPSTREAM": value})
    assert loaded.upstream_target == target
    assert config.load(["--upstream", value], {}).upstream_target == target


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("monitoring", "not host:port"),
        ("monitoring:http", "not host:port"),
        ("127.0.0.1:0", "port from 1 to 65535"),
        ("127.0.0.1:70000", "port from 1 to 65535"),
        ("127.0.0.1:50051,", "empty"),
        ("monitoring-a:50051,monitoring-b:50051", "dns:///"),
        ("127.0.0.1:50051,[::1]:50051", "cannot mix IPv4 and IPv6"),
        ("127.0.0.1:50051,127.0.0.1:50051", "listed twice"),
        ("::1:50051", "in brackets"),
        ("[not-ip]:50051", "not an IPv6 address"),
        ("dns:///", "nothing after its scheme"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(value: str, reason: str) -> None:
    with pytest.raises(envconfig.ConfigError) as refused:
        config.load([], {"MONITORING_UPSTREAM": value})
    message = str(refused.value)
    assert message.startswith("invalid value for upstream (MONITORING_UPSTREAM or --upstream): ")
    assert repr(value) in message and reason in message


def test_the_channel_asks_for_round_robin_and_health_checking_and_nothing_inhibits_it() -> None:
    options = dict(upstream.CHANNEL_OPTIONS)
    assert options["grpc.service_config"] == (
        '{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}'
    )
    assert "grpc.inhibit_health_checking" not in options


class _Health(health_async.HealthServicer):
    """grpc's health service, counting the open ``Watch`` streams: the client-side health checks."""

    watching = 0

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> None:
        self.watching += 1
        try:
            await super().Watch(request, context)
        finally:
            self.watching -= 1


class _Replica:
    """A gRPC server answering ``Who`` with its name, with the standard health service."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server = grpc.aio.server()
        self.health = _Health()
        self.addr = ""

    async def start(self) -> None:
        async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return self.name.encode()

        handler = grpc.method_handlers_generic_handler(
            "test.Replica", {"Who": grpc.unary_unary_rpc_method_handler(who)}
        )
        self.server.add_generic_rpc_handlers((handler,))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.addr = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        await self.server.start()


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[_Replica, _Replica]]:
    a, b = _Replica("A"), _Replica("B")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.server.stop(None)
        await b.server.stop(None)


async def _who(channel: grpc.aio.Channel, calls: int) -> str:
    who = channel.unary_unary(_WHO)
    return "".join([(await who(b"", timeout=2)).decode() for _ in range(calls)])


async def _until(channel: grpc.aio.Channel, done: Callable[[str], bool], timeout_s: float = 3.0) -> str:
    """Calls in batches of 10 until ``done(batch)`` holds; the last batch (fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        batch = await _who(channel, 10)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"still {batch!r} after {timeout_s} s"
        await asyncio.sleep(0.02)


async def test_a_not_serving_replica_leaves_the_rotation_while_its_connection_stays_up(
    replicas: tuple[_Replica, _Replica],
) -> None:
    a, b = replicas
    async with upstream.channel(upstream.target(f"{a.addr},{b.addr}")) as channel:
        await _until(channel, lambda batch: {"A", "B"} <= set(batch))
        assert sorted(await _who(channel, 20)) == sorted("AB" * 10)  # round_robin: strict alternation

        await b.health.set("", _NOT_SERVING)
        await _until(channel, lambda batch: batch == "A" * 10)
        assert await _who(channel, 20) == "A" * 20
        assert b.health.watching == 1  # the channel's Watch, still open on B: it is told, not disconnected

        await b.health.set("", _SERVING)  # back in rotation without reconnecting: it was only health
        await _until(channel, lambda batch: "B" in batch)
        assert sorted(await _who(channel, 20)) == sorted("AB" * 10)


async def test_control_with_health_checking_inhibited_the_not_serving_replica_keeps_receiving_calls(
    replicas: tuple[_Replica, _Replica],
) -> None:
    a, b = replicas
    options = (*upstream.CHANNEL_OPTIONS, ("grpc.inhibit_health_checking", 1))
    async with grpc.aio.insecure_channel(upstream.target(f"{a.addr},{b.addr}"), options=options) as channel:
        await _until(channel, lambda batch: {"A", "B"} <= set(batch))
        await b.health.set("", _NOT_SERVING)
        await asyncio.sleep(0.5)  # far longer than the health-checked channel needs to react (one batch)
        assert sorted(await _who(channel, 20)) == sorted("AB" * 10)
        assert b.health.watching == 0  # nobody watches: no health checking at all


async def test_with_every_replica_not_serving_calls_fail_fast_as_unavailable(
    replicas: tuple[_Replica, _Replica],
) -> None:
    a, b = replicas
    async with upstream.channel(upstream.target(f"{a.addr},{b.addr}")) as channel:
        await _until(channel, lambda batch: {"A", "B"} <= set(batch))
        await a.health.set("", _NOT_SERVING)
        await b.health.set("", _NOT_SERVING)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary(_WHO)(b"", timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # the edge answers 503, not a 5 s wait
        assert time.monotonic() - started < 1.0
