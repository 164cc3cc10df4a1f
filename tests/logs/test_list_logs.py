"""ListAppLogs through a real server process against the Loki double (lines pushed over its real push API)."""

from __future__ import annotations

import base64
import collections
import json
import pathlib
import random
import time

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from server.config import TailSettings
from server.logs.logql import LabelScheme, quote
from server.logs.loki import LokiClient
from server.logs.tail import TailHub
from testing.loki import LokiDouble
from testing.platform import Tenant, new_tenant, ts
from testing.procs import running_server
from tests.logs.conftest import FIXTURES, loki_env

NS = 1_000_000_000


def app_labels(tenant: Tenant, app_id: str, **extra: str) -> dict[str, str]:
    return {"workspace_id": tenant.workspace_id, "app_id": app_id, **extra}


async def list_all(tenant: Tenant, app_id: str, *, limit: int, **fields: object) -> tuple[list[pb.LogEntry], int]:
    """Follows next_page_token to the end; returns the entries and the number of pages."""
    entries: list[pb.LogEntry] = []
    token, pages = "", 0
    while True:
        request = pb.ListAppLogsRequest(
            workspace_id=tenant.workspace_id, app_id=app_id, limit=limit, page_token=token, **fields
        )
        response = await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
        pages += 1
        entries.extend(response.logs)
        assert len(response.logs) <= limit
        if not response.HasField("next_page_token"):
            return entries, pages
        assert len(response.logs) == limit  # only the last page may be short
        token = response.next_page_token
        assert pages < 10_000


def ns_of(entry: pb.LogEntry) -> int:
    return entry.timestamp.seconds * NS + entry.timestamp.nanos


async def assert_invalid(call: object, field: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert error.value.details().startswith(f"{field}:"), error.value.details()
    return error.value.details() or ""


@pytest.mark.timeout(90)
async def test_paging_returns_every_line_once_in_order_despite_heavy_collisions(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = await logs_tenant.add_app()
    rng = random.Random(5)
    base = time.time_ns() - 20 * 60 * NS
    # 12,000 lines in 6 streams over only 40 distinct nanoseconds: ~300 lines share each instant,
    # spread over every stream, so nearly every page boundary falls inside a tie group.
    instants = sorted(base + rng.randrange(0, 10**6) for _ in range(40))
    streams = [app_labels(logs_tenant, app.id, level=lvl, pod=f"p{i}") for i, lvl in enumerate("abcdef")]
    expected: dict[str, int] = {}
    for s, labels in enumerate(streams):
        values = []
        for i in range(2000):
            stamp = instants[rng.randrange(len(instants))]
            line = f"s{s} line {i}"
            values.append([stamp, line])
            expected[line] = stamp
        loki.push([{"stream": labels, "values": values}])
    window = {"start_time": ts(base - NS), "end_time": ts(base + NS)}

    for limit in (137, 1000):
        entries, pages = await list_all(logs_tenant, app.id, limit=limit, **window)
        lines = [e.message for e in entries]
        counts = collections.Counter(lines)
        assert [line for line, n in counts.items() if n > 1] == []  # nothing twice
        assert set(lines) == set(expected)  # nothing skipped
        stamps = [ns_of(e) for e in entries]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        assert all(expected[e.message] == ns_of(e) for e in entries)  # exact nanoseconds
        assert pages == -(-len(expected) // limit)


@pytest.mark.timeout(60)
async def test_one_line_pages_through_one_crowded_nanosecond(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    stamp = time.time_ns() - 60 * NS
    # The same text in several streams at the same instant: identity includes the stream, not just the line.
    loki.push(
        [{"stream": app_labels(logs_tenant, app.id, pod=f"p{i}"), "values": [[stamp, "same text"]]} for i in range(7)]
    )
    loki.push([{"stream": app_labels(logs_tenant, app.id, pod="p0"), "values": [[stamp, f"x{i}"] for i in range(50)]}])
    entries, pages = await list_all(logs_tenant, app.id, limit=1)
    assert pages == 57
    assert collections.Counter(e.message for e in entries) == collections.Counter(
        ["same text"] * 7 + [f"x{i}" for i in range(50)]
    )


async def test_severity_comes_from_level_then_detected_level_and_filters_exactly(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = await logs_tenant.add_app()
    now = time.time_ns() - NS
    by_level = {
        "debug": "DEBUG", "TRACE": "DEBUG", "info": "INFO", "notice": "INFO", "whatever": "INFO",
        "warn": "WARNING", "Warning": "WARNING", "error": "ERROR", "ERR": "ERROR",
        "fatal": "CRITICAL", "critical": "CRITICAL", "panic": "CRITICAL",
    }  # fmt: skip
    expected: dict[str, str] = {}
    for i, (level, severity) in enumerate(by_level.items()):
        line = f"level label {level}"
        loki.push([{"stream": app_labels(logs_tenant, app.id, level=level), "values": [[now + i, line]]}])
        expected[line] = severity
    # No level label: Loki's detected_level (from the JSON line here) decides; no level at all → INFO.
    fallback = {'{"level":"error","msg":"json"}': "ERROR", "level=warn msg=logfmt": "WARNING", "plain text": "INFO"}
    for i, (line, severity) in enumerate(fallback.items()):
        loki.push([{"stream": app_labels(logs_tenant, app.id), "values": [[now + 100 + i, line]]}])
        expected[line] = severity

    entries, _ = await list_all(logs_tenant, app.id, limit=1000)
    names = pb.Severity.Name
    assert {e.message: names(e.severity).removeprefix("SEVERITY_") for e in entries} == expected
    for severity in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        value = pb.Severity.Value(f"SEVERITY_{severity}")
        only, _ = await list_all(logs_tenant, app.id, limit=1000, severity=value)
        assert sorted(e.message for e in only) == sorted(m for m, s in expected.items() if s == severity), severity


async def test_time_window_start_inclusive_end_exclusive_default_last_hour(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = await logs_tenant.add_app()
    now = time.time_ns()
    t = now - 10 * 60 * NS
    loki.push(
        [
            {
                "stream": app_labels(logs_tenant, app.id),
                "values": [
                    [now - 2 * 3600 * NS, "two hours ago"],
                    [t - 1, "before"],
                    [t, "at start"],
                    [t + 5, "at end"],
                ],
            }
        ]
    )
    window, _ = await list_all(logs_tenant, app.id, limit=10, start_time=ts(t), end_time=ts(t + 5))
    assert [e.message for e in window] == ["at start"]
    recent, _ = await list_all(logs_tenant, app.id, limit=10)  # default: the last hour before now
    assert [e.message for e in recent] == ["at end", "at start", "before"]
    # The timestamp keeps every nanosecond.
    assert (window[0].timestamp.seconds, window[0].timestamp.nanos) == divmod(t, NS)


async def test_bad_parameters_name_the_field(logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    ws, call = logs_tenant.workspace_id, logs_tenant.monitoring.ListAppLogs

    def request(**fields: object) -> pb.ListAppLogsRequest:
        return pb.ListAppLogsRequest(**{"workspace_id": ws, "app_id": app.id, **fields})  # type: ignore[arg-type]

    auth = logs_tenant.auth
    assert "1000" in await assert_invalid(call(request(limit=1001), metadata=auth), "limit")
    await assert_invalid(call(request(limit=-1), metadata=auth), "limit")
    assert "DEBUG" in await assert_invalid(call(request(severity=9), metadata=auth), "severity")
    now = time.time_ns()
    await assert_invalid(call(request(start_time=ts(now), end_time=ts(now - NS)), metadata=auth), "end_time")
    await assert_invalid(
        call(request(start_time=ts(now - 800 * 3600 * NS), end_time=ts(now)), metadata=auth), "start_time"
    )
    far = pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id)
    far.end_time.FromJsonString("9999-12-31T23:59:59Z")
    assert "2262" in await assert_invalid(call(far, metadata=auth), "end_time")
    await assert_invalid(call(request(page_token="not a token!"), metadata=auth), "page_token")
    await assert_invalid(call(request(page_token="UHJldGVuZA"), metadata=auth), "page_token")
    await assert_invalid(call(request(app_id='bad id"}'), metadata=auth), "app_id")


async def test_tampered_and_replayed_tokens_are_refused(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    other = await logs_tenant.add_app()
    now = time.time_ns() - NS
    for app_id in (app.id, other.id):
        loki.push(
            [
                {
                    "stream": app_labels(logs_tenant, app_id, level="error"),
                    "values": [[now - i, f"l{i}"] for i in range(5)],
                }
            ]
        )
    ws, call, auth = logs_tenant.workspace_id, logs_tenant.monitoring.ListAppLogs, logs_tenant.auth
    first = await call(pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id, limit=2), metadata=auth)
    token = first.next_page_token
    assert token and all(c.isalnum() or c in "-_" for c in token)  # URL-safe
    # The same token with the same filters works (and the page size may change between pages).
    again = await call(pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id, limit=3, page_token=token), metadata=auth)
    assert [e.message for e in again.logs] == ["l2", "l3", "l4"]

    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for index in (5, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        tampered = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
        request = pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id, limit=2, page_token=tampered)
        assert "tampered" in await assert_invalid(call(request, metadata=auth), "page_token")
    replays = [
        pb.ListAppLogsRequest(workspace_id=ws, app_id=other.id, limit=2, page_token=token),
        pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id, limit=2, page_token=token, severity=pb.SEVERITY_ERROR),
        pb.ListAppLogsRequest(workspace_id=ws, app_id=app.id, limit=2, page_token=token, start_time=ts(now - NS)),
    ]
    for request in replays:
        assert "other parameters" in await assert_invalid(call(request, metadata=auth), "page_token")


async def test_loki_unreachable_is_unavailable(tenant: Tenant) -> None:
    # The session `server` fixture points MONITORING_LOKI_URL at a closed port.
    app = await tenant.add_app()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await tenant.monitoring.ListAppLogs(
            pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app.id), metadata=tenant.auth
        )
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Loki unavailable: connection refused (request id " in (error.value.details() or "")


@pytest.mark.timeout(60)
async def test_loki_errors_and_slowness_map_to_unavailable_and_deadline(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = loki_env(loki.url, MONITORING_BACKEND_TIMEOUT="0.5")
    with running_server(log_dir, tmp_path / "monitoring.db", env) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            request = pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app.id)
            try:
                loki.fault(status=500, body="rpc error: code = Unavailable desc = ingester down", count=1)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
                assert error.value.code() == grpc.StatusCode.UNAVAILABLE
                message = error.value.details() or ""
                assert "Loki unavailable: it answered HTTP 500 (internal server error)" in message
                assert "ingester down" not in message  # Loki's own text goes to the server log only

                loki.fault(status=429, body="Ingestion rate limit exceeded", count=1)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
                assert error.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "Loki unavailable: it answered HTTP 429 (too many requests)" in (error.value.details() or "")

                loki.fault(delay_s=1.5, count=1)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
                assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "Loki did not answer within 0.5 s" in (error.value.details() or "")
            finally:
                loki.clear_faults()
            # And it recovers by itself.
            response = await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
            assert list(response.logs) == []


@pytest.mark.timeout(60)
async def test_without_a_configured_secret_tokens_survive_a_restart(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    db = tmp_path / "monitoring.db"
    env = {"MONITORING_LOKI_URL": loki.url}  # no MONITORING_TOKEN_SECRET: generated once, kept in the store
    with running_server(log_dir, db, env) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            now = time.time_ns() - NS
            loki.push([{"stream": app_labels(tenant, app.id), "values": [[now - i, f"r{i}"] for i in range(4)]}])
            first = await tenant.monitoring.ListAppLogs(
                pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app.id, limit=2), metadata=tenant.auth
            )
    with running_server(log_dir, db, env) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            stub = monitoring_pb2_grpc.MonitoringServiceStub(channel)
            request = pb.ListAppLogsRequest(
                workspace_id=tenant.workspace_id, app_id=app.id, limit=2, page_token=first.next_page_token
            )
            second = await stub.ListAppLogs(request, metadata=tenant.auth)
    assert [e.message for e in first.logs] + [e.message for e in second.logs] == ["r0", "r1", "r2", "r3"]


def _scenarios(direction: str) -> list[dict]:
    data = json.loads((FIXTURES / "pagination_scenarios.logcli_test.json").read_text())
    return [s for s in data["scenarios"] if s["direction"] == direction]


@pytest.mark.parametrize("scenario", _scenarios("backward"), ids=lambda s: s["name"])
async def test_logcli_backward_scenarios_through_list_app_logs(
    loki: LokiDouble, logs_tenant: Tenant, scenario: dict
) -> None:
    app = await logs_tenant.add_app()
    for stored in scenario["stored_streams"]:
        loki.push([{"stream": app_labels(logs_tenant, app.id, **stored["stream"]), "values": stored["values"]}])
    window = {"start_time": ts(int(scenario["start_ns"])), "end_time": ts(int(scenario["end_ns"]))}
    entries, _ = await list_all(logs_tenant, app.id, limit=scenario["batch_size"], **window)
    total = scenario["total_limit"] or len(entries)
    assert [e.message for e in entries][:total] == scenario["expected_lines_in_output_order"]


@pytest.mark.parametrize("scenario", _scenarios("forward"), ids=lambda s: s["name"])
async def test_logcli_forward_scenarios_through_the_stream_backfill(loki: LokiDouble, scenario: dict) -> None:
    # Forward paging is what the stream uses to back-fill and replay; drive it directly against the double.
    labels = {"workspace_id": "scenario", "app_id": f"fwd{time.time_ns()}"}
    for stored in scenario["stored_streams"]:
        loki.push([{"stream": {**labels, **stored["stream"]}, "values": stored["values"]}])
    client = LokiClient(loki.url, timeout_s=5)
    scheme = LabelScheme()

    async def no_signer() -> object:
        raise AssertionError("not needed")

    hub = TailHub(client, scheme, no_signer, TailSettings(fill_batch=scenario["batch_size"]))  # type: ignore[arg-type]
    try:
        lines: list[str] = []
        query = scheme.selector(labels["workspace_id"], labels["app_id"])
        async for batch in hub.forward(query, int(scenario["start_ns"]), end=int(scenario["end_ns"])):
            lines.extend(e.line for e in batch)
        assert lines[: scenario["total_limit"]] == scenario["expected_lines_in_output_order"]
    finally:
        await client.close()


async def test_label_values_are_escaped_go_style(loki: LokiDouble) -> None:
    """No input can change the shape of the query: odd label values round-trip through the double's parser."""
    odd = 'we"ird \\ back\nslash\t ünïcødé 🚀'
    assert quote(odd) == '"we\\"ird \\\\ back\\nslash\\t ünïcødé 🚀"'
    loki.push([{"stream": {"workspace_id": odd, "app_id": "escaping"}, "values": [[time.time_ns() - NS, "found"]]}])
    client = LokiClient(loki.url, timeout_s=5)
    try:
        now = time.time_ns()
        streams = await client.query_range(
            LabelScheme().selector(odd, "escaping"), start_ns=now - 60 * NS, end_ns=now, limit=10, forward=False
        )
        assert [e.line for s in streams for e in s] == ["found"]
    finally:
        await client.close()
