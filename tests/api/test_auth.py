"""The auth matrix: no key, malformed key, unknown/revoked key, another workspace's key, a good key."""

from __future__ import annotations

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from server.api import auth
from testing.platform import ADMIN, Tenant, bearer, new_tenant

pytestmark = pytest.mark.timeout(60)


async def _alerts(tenant: Tenant, metadata: tuple[tuple[str, str], ...] | None, workspace_id: str | None = None):
    request = pb.ListAlertsRequest(workspace_id=workspace_id or tenant.workspace_id)
    return await tenant.monitoring.ListAlerts(request, metadata=metadata)


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        (("authorization", "dor_sk_no_scheme"),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        bearer("not-a-dooor-key"),
        bearer("dor_sk_" + "A" * 43),  # well formed, never issued
    ],
    ids=["missing", "no-scheme", "basic", "malformed", "unknown"],
)
async def test_bad_credentials_are_unauthenticated(tenant: Tenant, metadata) -> None:
    assert await _code(_alerts(tenant, metadata)) == grpc.StatusCode.UNAUTHENTICATED


async def test_good_key_reaches_the_service(tenant: Tenant) -> None:
    reply = await _alerts(tenant, tenant.auth)
    assert list(reply.alerts) == []


async def test_key_of_another_workspace_is_denied_whether_or_not_the_workspace_exists(
    tenant: Tenant, channel: grpc.aio.Channel
) -> None:
    other = await new_tenant(channel)
    assert await _code(_alerts(tenant, other.auth)) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(_alerts(tenant, tenant.auth, "ws_nowhere")) == grpc.StatusCode.PERMISSION_DENIED


async def test_app_of_another_workspace_looks_exactly_like_a_missing_app(
    tenant: Tenant, channel: grpc.aio.Channel
) -> None:
    other = await new_tenant(channel)
    foreign = await other.add_app()
    errors = []
    for app_id in (foreign.id, "app_never_registered"):
        request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        errors.append((caught.value.code(), caught.value.details().replace(app_id, "<id>")))
    assert errors[0] == errors[1]
    assert errors[0][0] == grpc.StatusCode.NOT_FOUND


async def test_an_app_id_another_workspace_owns_cannot_be_taken_over(tenant: Tenant, channel: grpc.aio.Channel) -> None:
    other = await new_tenant(channel)
    foreign = await other.add_app(memory_limit_mib=256)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.add_app(foreign.id, memory_limit_mib=4096)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already used by another workspace" in (caught.value.details() or "")
    apps = await other.platform.ListApps(ppb.ListAppsRequest(workspace_id=other.workspace_id), metadata=ADMIN)
    assert [(a.id, a.memory_limit_mib) for a in apps.apps] == [(foreign.id, 256)]


async def test_revoked_key_stops_working(tenant: Tenant) -> None:
    created = await tenant.platform.CreateApiKey(
        ppb.CreateApiKeyRequest(workspace_id=tenant.workspace_id, name="short-lived"), metadata=ADMIN
    )
    assert (await _alerts(tenant, bearer(created.secret))).alerts is not None
    await tenant.platform.RevokeApiKey(
        ppb.RevokeApiKeyRequest(workspace_id=tenant.workspace_id, key_id=created.api_key.id), metadata=ADMIN
    )
    assert await _code(_alerts(tenant, bearer(created.secret))) == grpc.StatusCode.UNAUTHENTICATED


async def test_platform_service_refuses_workspace_keys_and_no_token(tenant: Tenant) -> None:
    request = ppb.ListAppsRequest(workspace_id=tenant.workspace_id)
    assert await _code(tenant.platform.ListApps(request, metadata=tenant.auth)) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(tenant.platform.ListApps(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (await tenant.platform.ListApps(request, metadata=ADMIN)).apps is not None


async def test_keys_are_random_shown_once_and_listed_without_secret(tenant: Tenant) -> None:
    first = await tenant.platform.CreateApiKey(
        ppb.CreateApiKeyRequest(workspace_id=tenant.workspace_id), metadata=ADMIN
    )
    second = await tenant.platform.CreateApiKey(
        ppb.CreateApiKeyRequest(workspace_id=tenant.workspace_id), metadata=ADMIN
    )
    assert first.secret != second.secret
    assert first.secret.startswith("dor_sk_") and len(first.secret) == len("dor_sk_") + 43
    listed = await tenant.platform.ListApiKeys(ppb.ListApiKeysRequest(workspace_id=tenant.workspace_id), metadata=ADMIN)
    assert {k.id for k in listed.api_keys} >= {first.api_key.id, second.api_key.id}
    assert first.secret not in str(listed)
    assert first.api_key.prefix == first.secret[: len(first.api_key.prefix)]


def test_secret_hash_is_not_the_secret() -> None:
    secret = auth.new_secret()
    assert auth.hash_secret(secret) != secret.encode()
    assert len(auth.hash_secret(secret)) == 32
