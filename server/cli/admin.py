"""``monitoring-admin``: a command line over PlatformService for operators and the local demo.

The server address and admin token come from ``--addr``/``--token`` or the environment: the admin listener
``MONITORING_ADMIN_ADDR`` when it is set, else ``MONITORING_GRPC_ADDR``, and ``MONITORING_ADMIN_TOKEN``. Over TLS,
``--tls-ca`` names the CA that signed the server's certificate, and ``--tls-cert``/``--tls-key`` a client
certificate for mutual TLS (or ``MONITORING_ADMIN_TLS_CA``, ``_CERT``, ``_KEY``). ``create-key`` prints the key's
secret once, on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pathlib
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import json_format, message, timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from dooor.monitoring.v1 import platform_pb2_grpc
from server import convert

_STATUSES = {convert.enum_to_json(pb.OperationStatus.DESCRIPTOR, n): n for n in pb.OperationStatus.values() if n}


def _time(text: str) -> timestamp_pb2.Timestamp:
    value = dt.datetime.now(dt.UTC) if text == "now" else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. 2025-01-20T14:00:00Z")
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitoring-admin", description=__doc__.split("\n\n")[0])
    env = os.environ.get
    addr = env("MONITORING_ADMIN_ADDR") or env("MONITORING_GRPC_ADDR") or "127.0.0.1:50051"
    p.add_argument("--addr", default=addr, help="host:port of the server's admin listener (or its only one)")
    p.add_argument("--token", default=env("MONITORING_ADMIN_TOKEN", ""), help="admin token")
    p.add_argument("--tls-ca", default=env("MONITORING_ADMIN_TLS_CA", ""), help="PEM file: use TLS, trust this CA")
    p.add_argument("--tls-cert", default=env("MONITORING_ADMIN_TLS_CERT", ""), help="PEM client certificate (mTLS)")
    p.add_argument("--tls-key", default=env("MONITORING_ADMIN_TLS_KEY", ""), help="PEM client key (mTLS)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("evaluator-lease", help="which replica runs the evaluator, as the answering replica sees it")

    s = sub.add_parser("create-workspace", help="create a workspace (idempotent)")
    s.add_argument("workspace_id")
    s.add_argument("--name", default="")

    s = sub.add_parser("create-key", help="create an API key; prints the secret once")
    s.add_argument("workspace_id")
    s.add_argument("--name", default="")

    s = sub.add_parser("list-keys", help="list a workspace's API keys (no secrets)")
    s.add_argument("workspace_id")

    s = sub.add_parser("revoke-key", help="revoke an API key")
    s.add_argument("workspace_id")
    s.add_argument("key_id")

    s = sub.add_parser("upsert-app", help="register or update an app")
    s.add_argument("workspace_id")
    s.add_argument("app_id")
    s.add_argument("--name", required=True)
    s.add_argument("--service-name", default="")
    s.add_argument("--memory-mib", type=float, default=512.0, help="memory limit per instance (MiB)")
    s.add_argument("--cpu-cores", type=float, default=1.0, help="CPU limit per instance (cores)")

    for kind in ("deploy", "build"):
        s = sub.add_parser(f"record-{kind}", help=f"record a {kind} or update its status")
        s.add_argument("workspace_id")
        s.add_argument("app_id")
        s.add_argument(f"{kind}_id")
        s.add_argument("--status", choices=sorted(_STATUSES), required=True)
        s.add_argument("--started", type=_time, default="now", help="RFC 3339 time or 'now'")
        s.add_argument("--finished", type=_time, help="RFC 3339 time or 'now'")
    return p


def _channel(ns: argparse.Namespace) -> grpc.aio.Channel:
    """Plaintext unless a TLS file is given; a client certificate needs its key."""
    if not (ns.tls_ca or ns.tls_cert or ns.tls_key):
        return grpc.aio.insecure_channel(ns.addr)
    if bool(ns.tls_cert) != bool(ns.tls_key):
        raise SystemExit("monitoring-admin: --tls-cert and --tls-key go together")
    try:
        ca, cert, key = (
            pathlib.Path(path).read_bytes() if path else None for path in (ns.tls_ca, ns.tls_cert, ns.tls_key)
        )
    except OSError as error:
        raise SystemExit(f"monitoring-admin: cannot read {error.filename}: {error.strerror}") from None
    # Without --tls-ca the system's trusted roots verify the server.
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(ns.addr, credentials)


async def _call(ns: argparse.Namespace) -> message.Message:
    async with _channel(ns) as channel:
        stub = platform_pb2_grpc.PlatformServiceStub(channel)
        metadata = (("authorization", f"Bearer {ns.token}"),)
        match ns.command:
            case "evaluator-lease":
                return await stub.GetEvaluatorLease(ppb.GetEvaluatorLeaseRequest(), metadata=metadata)
            case "create-workspace":
                request = ppb.CreateWorkspaceRequest(workspace_id=ns.workspace_id, name=ns.name)
                return await stub.CreateWorkspace(request, metadata=metadata)
            case "create-key":
                request = ppb.CreateApiKeyRequest(workspace_id=ns.workspace_id, name=ns.name)
                return await stub.CreateApiKey(request, metadata=metadata)
            case "list-keys":
                return await stub.ListApiKeys(ppb.ListApiKeysRequest(workspace_id=ns.workspace_id), metadata=metadata)
            case "revoke-key":
                request = ppb.RevokeApiKeyRequest(workspace_id=ns.workspace_id, key_id=ns.key_id)
                return await stub.RevokeApiKey(request, metadata=metadata)
            case "upsert-app":
                app = ppb.App(
                    id=ns.app_id,
                    workspace_id=ns.workspace_id,
                    name=ns.name,
                    service_name=ns.service_name,
                    memory_limit_mib=ns.memory_mib,
                    cpu_limit_cores=ns.cpu_cores,
                )
                return await stub.UpsertApp(ppb.UpsertAppRequest(app=app), metadata=metadata)
            case "record-deploy" | "record-build":
                kind = ns.command.removeprefix("record-")
                fields = {
                    "id": getattr(ns, f"{kind}_id"),
                    "app_id": ns.app_id,
                    "status": _STATUSES[ns.status],
                    "start_time": _time(ns.started) if isinstance(ns.started, str) else ns.started,
                    "finish_time": ns.finished,
                }
                if kind == "deploy":
                    request = ppb.RecordDeployRequest(workspace_id=ns.workspace_id, deploy=ppb.Deploy(**fields))
                    return await stub.RecordDeploy(request, metadata=metadata)
                request = ppb.RecordBuildRequest(workspace_id=ns.workspace_id, build=ppb.Build(**fields))
                return await stub.RecordBuild(request, metadata=metadata)
    raise AssertionError(ns.command)


def cli(argv: Sequence[str] | None = None) -> None:
    ns = _parser().parse_args(argv)
    try:
        reply = asyncio.run(_call(ns))
    except grpc.aio.AioRpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        raise SystemExit(1) from None
    if isinstance(reply, ppb.CreateApiKeyResponse):
        # The secret goes to stdout alone so scripts can capture it; the record goes to stderr.
        print(json_format.MessageToJson(reply.api_key, indent=None), file=sys.stderr)
        print(reply.secret)
    else:
        print(json_format.MessageToJson(reply, indent=None))


if __name__ == "__main__":
    cli()
