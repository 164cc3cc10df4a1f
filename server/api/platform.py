"""PlatformService: the control plane registers workspaces, apps, deploys, builds and API keys.

Every call needs the admin token. Keys are returned in clear once, from CreateApiKey, and never logged.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping

import grpc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from dooor.monitoring.v1 import platform_pb2_grpc
from server import validation
from server.alerts.thresholds import BUILT_IN, Thresholds, check_thresholds
from server.api import auth, rpc
from server.api.auth import Authenticator
from server.cluster.leader import LeaseView
from server.convert import enum_from_json, enum_to_json, nanoseconds, now_ns, timestamp
from server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from server.states import AlertType, OperationKind, OperationStatus
from server.store import Store
from server.store.records import AlertRule, ApiKey, App, Operation, Workspace

_MAX_NAME = 200
_OPERATION_STATUS = pb.OperationStatus.DESCRIPTOR
_ALERT_TYPE = pb.AlertType.DESCRIPTOR
# ListAlertRules shows the defaults as rules with these ids; they cannot be changed through the API.
DEFAULT_PREFIX = "default:"


def _text(field: str, value: str, *, maximum: int = _MAX_NAME) -> str:
    if len(value) > maximum or any(ord(c) < 32 for c in value):
        raise InvalidArgument(field, f"must be at most {maximum} printable characters")
    return value


def _positive(field: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(field, f"must be a finite number greater than 0, got {value}")
    return value


def _alert_type(field: str, value: int) -> AlertType:
    """The AlertType of a proto number; INVALID_ARGUMENT listing the known types otherwise."""
    if value == 0 or _ALERT_TYPE.values_by_number.get(value) is None:
        raise InvalidArgument(field, f"unknown alert type {value}", allowed=list(AlertType))
    return AlertType(enum_to_json(_ALERT_TYPE, value))


def _thresholds(rule: ppb.AlertRule) -> Thresholds:
    return Thresholds(rule.warning_threshold, rule.critical_threshold, rule.recovery_threshold, rule.hold_seconds)


def rule_message(rule: AlertRule) -> ppb.AlertRule:
    return ppb.AlertRule(
        id=rule.id,
        workspace_id=rule.workspace_id,
        app_id=rule.app_id or "",
        type=enum_from_json(_ALERT_TYPE, rule.type),
        warning_threshold=rule.warning_threshold,
        critical_threshold=rule.critical_threshold,
        recovery_threshold=rule.recovery_threshold,
        hold_seconds=rule.hold_seconds,
    )


def default_messages(defaults: Mapping[AlertType, Thresholds]) -> list[ppb.AlertRule]:
    """The default rules as ListAlertRules shows them: id ``default:<type>``, no workspace, no app."""
    return [
        ppb.AlertRule(
            id=DEFAULT_PREFIX + alert_type,
            type=enum_from_json(_ALERT_TYPE, alert_type),
            warning_threshold=t.warning,
            critical_threshold=t.critical,
            recovery_threshold=t.recovery,
            hold_seconds=t.hold_seconds,
        )
        for alert_type, t in ((a, defaults[a]) for a in AlertType)
    ]


def workspace_message(w: Workspace) -> ppb.Workspace:
    return ppb.Workspace(id=w.id, name=w.name, create_time=timestamp(w.created_ns))


def app_message(a: App) -> ppb.App:
    return ppb.App(
        id=a.id,
        workspace_id=a.workspace_id,
        name=a.name,
        service_name=a.service_name,
        memory_limit_mib=a.memory_limit_mib,
        cpu_limit_cores=a.cpu_limit_cores,
        create_time=timestamp(a.created_ns),
    )


def key_message(k: ApiKey) -> ppb.ApiKey:
    return ppb.ApiKey(
        id=k.id,
        workspace_id=k.workspace_id,
        name=k.name,
        prefix=k.prefix,
        create_time=timestamp(k.created_ns),
        revoke_time=timestamp(k.revoked_ns),
    )


class PlatformServicer(platform_pb2_grpc.PlatformServiceServicer):
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        alert_defaults: Mapping[AlertType, Thresholds] = BUILT_IN,
        lease_view: Callable[[], Awaitable[LeaseView]] | None = None,
    ):
        self._store = store
        self._auth = authenticator
        self._alert_defaults = alert_defaults
        self._lease_view = lease_view

    async def _workspace(self, context: grpc.aio.ServicerContext, workspace_id: str) -> Workspace:
        self._auth.authorize_admin(context)
        validation.require_id("workspace_id", workspace_id)
        workspace = await self._store.get_workspace(workspace_id)
        if workspace is None:
            raise NotFound("workspace", workspace_id)
        return workspace

    async def _operation(
        self, context: grpc.aio.ServicerContext, kind: OperationKind, workspace_id: str, op: ppb.Deploy | ppb.Build
    ) -> Operation:
        await self._workspace(context, workspace_id)
        validation.require_id(f"{kind}.id", op.id)
        validation.require_id(f"{kind}.app_id", op.app_id)
        validation.require_enum(f"{kind}.status", op.status, _OPERATION_STATUS)
        if not op.HasField("start_time"):
            raise InvalidArgument(f"{kind}.start_time", "is required")
        if await self._store.get_app(workspace_id, op.app_id) is None:
            raise NotFound("app", op.app_id)
        started = nanoseconds(op.start_time)
        finished = nanoseconds(op.finish_time) if op.HasField("finish_time") else None
        if finished is not None and finished < started:
            raise InvalidArgument(f"{kind}.finish_time", "must not be before start_time")
        record = Operation(
            id=op.id,
            app_id=op.app_id,
            workspace_id=workspace_id,
            status=OperationStatus(enum_to_json(_OPERATION_STATUS, op.status)),
            started_ns=started,
            finished_ns=finished,
        )
        return await self._store.record_operation(kind, record)

    @staticmethod
    def _operation_fields(op: Operation) -> dict[str, object]:
        return {
            "id": op.id,
            "app_id": op.app_id,
            "status": enum_from_json(_OPERATION_STATUS, op.status),
            "start_time": timestamp(op.started_ns),
            "finish_time": timestamp(op.finished_ns),
        }

    @rpc.unary
    async def CreateWorkspace(
        self, request: ppb.CreateWorkspaceRequest, context: grpc.aio.ServicerContext
    ) -> ppb.Workspace:
        self._auth.authorize_admin(context)
        workspace_id = validation.require_id("workspace_id", request.workspace_id)
        name = _text("name", request.name) or workspace_id
        return workspace_message(await self._store.create_workspace(workspace_id, name, now_ns()))

    @rpc.unary
    async def UpsertApp(self, request: ppb.UpsertAppRequest, context: grpc.aio.ServicerContext) -> ppb.App:
        given = request.app
        await self._workspace(context, given.workspace_id)
        validation.require_id("app.id", given.id)
        if not given.name:
            raise InvalidArgument("app.name", "is required")
        existing = await self._store.get_app(given.workspace_id, given.id)
        app = App(
            id=given.id,
            workspace_id=given.workspace_id,
            name=_text("app.name", given.name),
            service_name=_text("app.service_name", given.service_name) or given.name,
            memory_limit_mib=_positive("app.memory_limit_mib", given.memory_limit_mib),
            cpu_limit_cores=_positive("app.cpu_limit_cores", given.cpu_limit_cores),
            created_ns=existing.created_ns if existing else now_ns(),
        )
        stored = await self._store.upsert_app(app)
        if stored is None:  # decided by the store, in one statement: no race between a check and the write
            raise FailedPrecondition(
                f"app id {given.id!r} is already used by another workspace", metadata={"app_id": given.id}
            )
        return app_message(stored)

    @rpc.unary
    async def ListApps(self, request: ppb.ListAppsRequest, context: grpc.aio.ServicerContext) -> ppb.ListAppsResponse:
        await self._workspace(context, request.workspace_id)
        apps = await self._store.list_apps(request.workspace_id)
        return ppb.ListAppsResponse(apps=[app_message(a) for a in apps])

    @rpc.unary
    async def DeleteApp(
        self, request: ppb.DeleteAppRequest, context: grpc.aio.ServicerContext
    ) -> ppb.DeleteAppResponse:
        await self._workspace(context, request.workspace_id)
        validation.require_id("app_id", request.app_id)
        if not await self._store.delete_app(request.workspace_id, request.app_id):
            raise NotFound("app", request.app_id)
        return ppb.DeleteAppResponse()

    @rpc.unary
    async def RecordDeploy(self, request: ppb.RecordDeployRequest, context: grpc.aio.ServicerContext) -> ppb.Deploy:
        op = await self._operation(context, OperationKind.DEPLOY, request.workspace_id, request.deploy)
        return ppb.Deploy(**self._operation_fields(op))

    @rpc.unary
    async def RecordBuild(self, request: ppb.RecordBuildRequest, context: grpc.aio.ServicerContext) -> ppb.Build:
        op = await self._operation(context, OperationKind.BUILD, request.workspace_id, request.build)
        return ppb.Build(**self._operation_fields(op))

    @rpc.unary
    async def CreateApiKey(
        self, request: ppb.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> ppb.CreateApiKeyResponse:
        await self._workspace(context, request.workspace_id)
        secret = auth.new_secret()
        key = ApiKey(
            id=auth.new_key_id(),
            workspace_id=request.workspace_id,
            name=_text("name", request.name, maximum=64),
            prefix=auth.display_prefix(secret),
            created_ns=now_ns(),
            revoked_ns=None,
        )
        await self._store.create_api_key(key, auth.hash_secret(secret))
        return ppb.CreateApiKeyResponse(api_key=key_message(key), secret=secret)

    @rpc.unary
    async def ListApiKeys(
        self, request: ppb.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> ppb.ListApiKeysResponse:
        await self._workspace(context, request.workspace_id)
        keys = await self._store.list_api_keys(request.workspace_id)
        return ppb.ListApiKeysResponse(api_keys=[key_message(k) for k in keys])

    @rpc.unary
    async def RevokeApiKey(self, request: ppb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext) -> ppb.ApiKey:
        await self._workspace(context, request.workspace_id)
        validation.require_id("key_id", request.key_id)
        key = await self._store.revoke_api_key(request.workspace_id, request.key_id, now_ns())
        if key is None:
            raise NotFound("api key", request.key_id)
        self._auth.forget_key(key.id)  # this process refuses it now; the others within [api] key_cache_s
        return key_message(key)

    async def _rule(self, context: grpc.aio.ServicerContext, workspace_id: str, field: str, rule_id: str) -> AlertRule:
        await self._workspace(context, workspace_id)
        if rule_id.startswith(DEFAULT_PREFIX):
            raise InvalidArgument(
                field,
                f"{rule_id!r} is a built-in rule and cannot be changed; create a workspace or app rule of"
                " the same type to override it",
            )
        validation.require_id(field, rule_id)
        rule = await self._store.get_alert_rule(workspace_id, rule_id)
        if rule is None:
            raise NotFound("alert rule", rule_id)
        return rule

    @rpc.unary
    async def CreateAlertRule(
        self, request: ppb.CreateAlertRuleRequest, context: grpc.aio.ServicerContext
    ) -> ppb.AlertRule:
        given = request.rule
        self._auth.authorize_admin(context)
        # Validate every field, then look things up (as everywhere: authenticate → validate → exist).
        if given.id:
            raise InvalidArgument("rule.id", "must be empty: the server assigns it")
        alert_type = _alert_type("rule.type", given.type)
        validation.optional_id("rule.app_id", given.app_id)
        thresholds = check_thresholds(_thresholds(given), "rule.")
        await self._workspace(context, given.workspace_id)
        if given.app_id and await self._store.get_app(given.workspace_id, given.app_id) is None:
            raise NotFound("app", given.app_id)
        now = now_ns()
        rule = AlertRule(
            id="rule_" + secrets.token_hex(8),
            workspace_id=given.workspace_id,
            app_id=given.app_id or None,
            type=alert_type,
            warning_threshold=thresholds.warning,
            critical_threshold=thresholds.critical,
            recovery_threshold=thresholds.recovery,
            hold_seconds=thresholds.hold_seconds,
            created_ns=now,
            updated_ns=now,
        )
        created = await self._store.create_alert_rule(rule)
        if created is None:
            scope = f"app {given.app_id!r}" if given.app_id else f"workspace {given.workspace_id!r}"
            raise AlreadyExists(
                f"{scope} already has a {alert_type} rule: update it instead",
                metadata={"type": alert_type, "app_id": given.app_id},
            )
        return rule_message(created)

    @rpc.unary
    async def ListAlertRules(
        self, request: ppb.ListAlertRulesRequest, context: grpc.aio.ServicerContext
    ) -> ppb.ListAlertRulesResponse:
        await self._workspace(context, request.workspace_id)
        rules = await self._store.list_alert_rules(request.workspace_id)
        return ppb.ListAlertRulesResponse(rules=[*default_messages(self._alert_defaults), *map(rule_message, rules)])

    @rpc.unary
    async def UpdateAlertRule(
        self, request: ppb.UpdateAlertRuleRequest, context: grpc.aio.ServicerContext
    ) -> ppb.AlertRule:
        given = request.rule
        rule = await self._rule(context, given.workspace_id, "rule.id", given.id)
        if given.type and _alert_type("rule.type", given.type) != rule.type:
            raise InvalidArgument("rule.type", f"cannot change (the rule is {rule.type}); create another rule")
        if given.app_id and given.app_id != (rule.app_id or ""):
            raise InvalidArgument("rule.app_id", "cannot change; create a rule for the other app")
        thresholds = check_thresholds(_thresholds(given), "rule.")
        updated = await self._store.update_alert_rule(
            dataclasses.replace(
                rule,
                warning_threshold=thresholds.warning,
                critical_threshold=thresholds.critical,
                recovery_threshold=thresholds.recovery,
                hold_seconds=thresholds.hold_seconds,
                updated_ns=now_ns(),
            )
        )
        if updated is None:  # deleted between the read and the write
            raise NotFound("alert rule", given.id)
        return rule_message(updated)

    @rpc.unary
    async def DeleteAlertRule(
        self, request: ppb.DeleteAlertRuleRequest, context: grpc.aio.ServicerContext
    ) -> ppb.DeleteAlertRuleResponse:
        await self._rule(context, request.workspace_id, "rule_id", request.rule_id)
        if not await self._store.delete_alert_rule(request.workspace_id, request.rule_id):
            raise NotFound("alert rule", request.rule_id)
        return ppb.DeleteAlertRuleResponse()

    @rpc.unary
    async def GetEvaluatorLease(
        self, request: ppb.GetEvaluatorLeaseRequest, context: grpc.aio.ServicerContext
    ) -> ppb.EvaluatorLease:
        self._auth.authorize_admin(context)
        if self._lease_view is None:
            raise Unimplemented("this server runs no evaluator lease")
        view = await self._lease_view()
        reply = ppb.EvaluatorLease(replica_id=view.replica_id, leading=view.leading)
        if view.lease is not None:
            reply.holder_id = view.lease.holder
            reply.epoch = view.lease.epoch
            reply.expire_time.CopyFrom(timestamp(view.lease.expires_ns))
        return reply
