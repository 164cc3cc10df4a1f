"""PlatformService alert-rule RPCs: defaults, overrides per workspace and app, validation, errors."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.platform import ADMIN, Tenant, new_tenant
from testing.status import detail

pytestmark = pytest.mark.timeout(30)

BUILT_IN = {
    pb.ALERT_TYPE_HIGH_CPU: (80.0, 95.0, 70.0, 300),
    pb.ALERT_TYPE_HIGH_MEMORY: (80.0, 95.0, 70.0, 300),
    pb.ALERT_TYPE_HIGH_ERROR_RATE: (5.0, 10.0, 2.0, 300),
    pb.ALERT_TYPE_HIGH_LATENCY: (1000.0, 2000.0, 700.0, 300),
}


def make(tenant: Tenant, alert_type: int = pb.ALERT_TYPE_HIGH_CPU, app_id: str = "", **fields: object) -> ppb.AlertRule:
    values: dict[str, object] = {
        "warning_threshold": 60.0,
        "critical_threshold": 90.0,
        "recovery_threshold": 40.0,
        "hold_seconds": 120,
        **fields,
    }
    return ppb.AlertRule(workspace_id=tenant.workspace_id, app_id=app_id, type=alert_type, **values)  # type: ignore[arg-type]


async def create(tenant: Tenant, rule: ppb.AlertRule) -> ppb.AlertRule:
    return await tenant.platform.CreateAlertRule(ppb.CreateAlertRuleRequest(rule=rule), metadata=ADMIN)


async def listed(tenant: Tenant) -> list[ppb.AlertRule]:
    request = ppb.ListAlertRulesRequest(workspace_id=tenant.workspace_id)
    return list((await tenant.platform.ListAlertRules(request, metadata=ADMIN)).rules)


def violation(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    violated = detail(error, error_details_pb2.BadRequest).field_violations[0]
    return violated.field, violated.description


async def test_built_in_defaults_are_listed_first_with_default_ids(tenant: Tenant) -> None:
    rules = await listed(tenant)
    assert [r.id for r in rules] == [
        "default:high_cpu",
        "default:high_memory",
        "default:high_error_rate",
        "default:high_latency",
    ]
    for r in rules:
        assert (r.workspace_id, r.app_id) == ("", "")
        assert (r.warning_threshold, r.critical_threshold, r.recovery_threshold, r.hold_seconds) == BUILT_IN[r.type]


async def test_create_update_delete_workspace_and_app_rules(tenant: Tenant) -> None:
    await tenant.add_app("app_rules_1")
    app_rule = await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_MEMORY, "app_rules_1"))
    workspace_rule = await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_MEMORY))
    assert workspace_rule.id.startswith("rule_") and workspace_rule.id != app_rule.id
    assert (app_rule.workspace_id, app_rule.app_id, app_rule.type) == (
        tenant.workspace_id,
        "app_rules_1",
        pb.ALERT_TYPE_HIGH_MEMORY,
    )
    # Defaults, then workspace rules, then app rules.
    assert [r.id for r in (await listed(tenant))[4:]] == [workspace_rule.id, app_rule.id]

    changed = ppb.AlertRule(
        id=app_rule.id,
        workspace_id=tenant.workspace_id,
        warning_threshold=85,
        critical_threshold=85,
        recovery_threshold=0,
        hold_seconds=0,
    )
    updated = await tenant.platform.UpdateAlertRule(ppb.UpdateAlertRuleRequest(rule=changed), metadata=ADMIN)
    assert (updated.app_id, updated.type) == ("app_rules_1", pb.ALERT_TYPE_HIGH_MEMORY)  # kept
    assert (updated.warning_threshold, updated.critical_threshold, updated.recovery_threshold) == (85, 85, 0)
    assert updated.hold_seconds == 0
    assert updated in await listed(tenant)

    request = ppb.DeleteAlertRuleRequest(workspace_id=tenant.workspace_id, rule_id=app_rule.id)
    await tenant.platform.DeleteAlertRule(request, metadata=ADMIN)
    assert [r.id for r in (await listed(tenant))[4:]] == [workspace_rule.id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.platform.DeleteAlertRule(request, metadata=ADMIN)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_one_rule_per_scope_and_type(tenant: Tenant) -> None:
    await tenant.add_app("app_rules_2")
    await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_LATENCY, warning_threshold=500, critical_threshold=900,
                              recovery_threshold=300))  # fmt: skip
    await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_LATENCY, "app_rules_2"))  # another scope: fine
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_LATENCY))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "high_latency" in (caught.value.details() or "")


async def test_deleting_an_app_deletes_its_rules(tenant: Tenant) -> None:
    await tenant.add_app("app_rules_3")
    rule = await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_CPU, "app_rules_3"))
    await tenant.platform.DeleteApp(
        ppb.DeleteAppRequest(workspace_id=tenant.workspace_id, app_id="app_rules_3"), metadata=ADMIN
    )
    assert rule.id not in [r.id for r in await listed(tenant)]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"id": "rule_mine"}, "rule.id", "must be empty"),
        ({"type": 0}, "rule.type", "high_cpu, high_memory, high_error_rate, high_latency"),
        ({"type": 99}, "rule.type", "unknown alert type 99"),
        ({"warning_threshold": math.nan}, "rule.warning_threshold", "finite"),
        ({"critical_threshold": math.inf}, "rule.critical_threshold", "finite"),
        ({"recovery_threshold": -math.inf}, "rule.recovery_threshold", "finite"),
        ({"recovery_threshold": -1.0}, "rule.recovery_threshold", "at least 0"),
        ({"critical_threshold": 59.0}, "rule.critical_threshold", "at least warning_threshold (60)"),
        ({"recovery_threshold": 60.0}, "rule.warning_threshold", "greater than recovery_threshold (60)"),
        ({"hold_seconds": -1}, "rule.hold_seconds", "between 0 and 86400"),
        ({"hold_seconds": 86401}, "rule.hold_seconds", "between 0 and 86400"),
        ({"app_id": "bad app"}, "rule.app_id", "not a valid id"),
        ({"workspace_id": ""}, "workspace_id", "required"),
    ],
)
async def test_invalid_rules_name_the_field_and_what_is_allowed(
    tenant: Tenant, fields: dict[str, object], field: str, says: str
) -> None:
    rule = make(tenant)
    for key, value in fields.items():
        setattr(rule, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(tenant, rule)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got_field, description = violation(caught.value)
    assert got_field == field
    assert says in description


async def test_update_refuses_other_types_apps_and_built_in_rules(tenant: Tenant) -> None:
    await tenant.add_app("app_rules_4")
    rule = await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_ERROR_RATE, "app_rules_4"))
    attempts = [
        (ppb.AlertRule(id=rule.id, type=pb.ALERT_TYPE_HIGH_CPU), "rule.type"),
        (ppb.AlertRule(id=rule.id, app_id="app_other"), "rule.app_id"),
        (ppb.AlertRule(id="default:high_cpu"), "rule.id"),
        (
            ppb.AlertRule(id=rule.id, warning_threshold=1, critical_threshold=2, recovery_threshold=3),
            "rule.warning_threshold",
        ),
        (ppb.AlertRule(id=""), "rule.id"),
    ]
    for change, field in attempts:
        change.workspace_id = tenant.workspace_id
        if not change.critical_threshold:
            change.MergeFrom(ppb.AlertRule(warning_threshold=5, critical_threshold=6, recovery_threshold=1))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tenant.platform.UpdateAlertRule(ppb.UpdateAlertRuleRequest(rule=change), metadata=ADMIN)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violation(caught.value)[0] == field
    request = ppb.DeleteAlertRuleRequest(workspace_id=tenant.workspace_id, rule_id="default:high_memory")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.platform.DeleteAlertRule(request, metadata=ADMIN)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "built-in" in (caught.value.details() or "")


async def test_other_workspaces_rules_and_apps_are_not_found(tenant: Tenant, channel: grpc.aio.Channel) -> None:
    other = await new_tenant(channel)
    await other.add_app("app_rules_theirs")
    theirs = await create(other, make(other, pb.ALERT_TYPE_HIGH_CPU))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(tenant, make(tenant, pb.ALERT_TYPE_HIGH_CPU, "app_rules_theirs"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    change = make(tenant, id=theirs.id)
    change.ClearField("type")
    for call, request in (
        (tenant.platform.UpdateAlertRule, ppb.UpdateAlertRuleRequest(rule=change)),
        (
            tenant.platform.DeleteAlertRule,
            ppb.DeleteAlertRuleRequest(workspace_id=tenant.workspace_id, rule_id=theirs.id),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=ADMIN)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert theirs in await listed(other)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.platform.ListAlertRules(ppb.ListAlertRulesRequest(workspace_id="ws_nowhere"), metadata=ADMIN)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_rule_rpcs_need_the_admin_token(tenant: Tenant) -> None:
    for metadata in ((), tenant.auth):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tenant.platform.CreateAlertRule(ppb.CreateAlertRuleRequest(rule=make(tenant)), metadata=metadata)
        assert caught.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    assert len(await listed(tenant)) == 4
