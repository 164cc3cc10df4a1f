"""Revocation across processes: two real servers on one SQLite file (two replicas, or two workers), each with its
own API key cache. The server that revokes a key refuses it on its next call; the other one refuses every call
that starts more than [api] key_cache_s after RevokeApiKey returned (docs/configuration.md, ``[api]``).
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from server.config import ApiSettings
from testing.platform import ADMIN, new_tenant
from testing.procs import running_server

pytestmark = pytest.mark.timeout(90)

BOUND_S = ApiSettings().key_cache_s  # the servers run with the default
# How long the second server is watched past the bound: calls keep starting after it, all of them must be refused.
WATCH_PAST_BOUND_S = 1.0


@pytest.fixture
async def two_servers(
    log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> AsyncIterator[tuple[grpc.aio.Channel, grpc.aio.Channel]]:
    db = tmp_path / "monitoring.db"
    with running_server(log_dir, db) as first, running_server(log_dir, db) as second:
        async with grpc.aio.insecure_channel(first.addr) as a, grpc.aio.insecure_channel(second.addr) as b:
            yield a, b


async def _accepted(stub: monitoring_pb2_grpc.MonitoringServiceStub, workspace_id: str, secret: str) -> bool:
    try:
        await stub.ListAlerts(
            pb.ListAlertsRequest(workspace_id=workspace_id), metadata=(("authorization", f"Bearer {secret}"),)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise
        return False
    return True


async def test_a_revoked_key_is_refused_by_every_process_within_key_cache_s(
    two_servers: tuple[grpc.aio.Channel, grpc.aio.Channel],
) -> None:
    a, b = two_servers
    tenant = await new_tenant(a)
    on_a, on_b = monitoring_pb2_grpc.MonitoringServiceStub(a), monitoring_pb2_grpc.MonitoringServiceStub(b)
    # Both processes have looked the key up (and cached it) before it is revoked.
    assert await _accepted(on_a, tenant.workspace_id, tenant.key)
    assert await _accepted(on_b, tenant.workspace_id, tenant.key)

    key_id = (
        (await tenant.platform.ListApiKeys(ppb.ListApiKeysRequest(workspace_id=tenant.workspace_id), metadata=ADMIN))
        .api_keys[0]
        .id
    )
    await tenant.platform.RevokeApiKey(
        ppb.RevokeApiKeyRequest(workspace_id=tenant.workspace_id, key_id=key_id), metadata=ADMIN
    )
    revoked = time.monotonic()
    assert not await _accepted(on_a, tenant.workspace_id, tenant.key)  # the revoking process: its next call

    # The other process: calls back to back. Any call that starts after the bound must be refused (its check
    # runs later still); the ones before it may be accepted from the cache.
    late_calls = []
    while (started := time.monotonic()) < revoked + BOUND_S + WATCH_PAST_BOUND_S:
        accepted = await _accepted(on_b, tenant.workspace_id, tenant.key)
        if started > revoked + BOUND_S:
            late_calls.append(accepted)
        await asyncio.sleep(0.02)
    assert late_calls and not any(late_calls)
