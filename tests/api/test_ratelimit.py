"""The per-API-key token bucket: its arithmetic on a fake clock, and an over-limit call end to end."""

from __future__ import annotations

import pathlib

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.api.ratelimit import KeyRateLimiter
from server.config import ApiSettings, from_tables
from server.errors import ResourceExhausted
from testing.platform import new_tenant
from testing.procs import running_server

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(limiter: KeyRateLimiter, key: str) -> ResourceExhausted:
    with pytest.raises(ResourceExhausted) as caught:
        limiter.take(key)
    return caught.value


def test_a_key_gets_its_burst_then_the_rate_and_is_told_when_a_token_is_back() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(0.5, 3, clock=clock)  # a token every 2 s
    for _ in range(3):
        limiter.take("k1")
    error = refused(limiter, "k1")
    assert (error.reason, error.retry_after_s) == ("RATE_LIMITED", 2)
    limiter.take("k2")  # another key has its own bucket
    clock.now += 1.5
    assert refused(limiter, "k1").retry_after_s == 1  # 0.75 token: 0.5 s to go, rounded up
    clock.now += 0.5
    limiter.take("k1")  # one token back after 2 s
    assert refused(limiter, "k1").retry_after_s == 2
    clock.now += 100  # never more than the burst
    for _ in range(3):
        limiter.take("k1")
    refused(limiter, "k1")


def test_idle_buckets_are_dropped_and_the_number_of_keys_is_bounded() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(10, 20, clock=clock, max_keys=100)  # full again after 2 s idle
    for i in range(50):
        limiter.take(f"k{i}")
    assert len(limiter) == 50
    clock.now += 1.0
    limiter.take("k0")
    assert len(limiter) == 50
    clock.now += 1.5  # the other 49 are full again: dropped
    limiter.take("k_new")
    assert len(limiter) == 2
    for i in range(500):
        limiter.take(f"m{i}")
    assert len(limiter) == 100


def test_settings_zero_turns_it_off() -> None:
    assert KeyRateLimiter.of(ApiSettings()) is not None
    assert KeyRateLimiter.of(ApiSettings(rate_per_key=0)) is None
    assert KeyRateLimiter.of(ApiSettings(burst_per_key=0)) is None
    assert from_tables({"api": {"rate_per_key": 2.5, "burst_per_key": 4}})["api"] == ApiSettings(2.5, 4)


async def test_an_over_limit_call_is_resource_exhausted_with_retry_info(
    log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "monitoring.toml"
    config.write_text("[api]\nrate_per_key = 0.1\nburst_per_key = 3\n")
    env = {"MONITORING_CONFIG_FILE": str(config)}
    with running_server(log_dir, tmp_path / "monitoring.db", env) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant, other = await new_tenant(channel), await new_tenant(channel)
            request = pb.ListAlertsRequest(workspace_id=tenant.workspace_id)
            for _ in range(3):
                await tenant.monitoring.ListAlerts(request, metadata=tenant.auth)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await tenant.monitoring.GetWorkspaceOverview(
                    pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id), metadata=tenant.auth
                )
            # Another key is not affected.
            await other.monitoring.ListAlerts(
                pb.ListAlertsRequest(workspace_id=other.workspace_id), metadata=other.auth
            )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)
    assert status is not None
    retry, info = error_details_pb2.RetryInfo(), error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Is(retry.DESCRIPTOR):
            detail.Unpack(retry)
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
    assert info.reason == "RATE_LIMITED"
    assert 1 <= retry.retry_delay.seconds <= 10  # a token every 10 s
