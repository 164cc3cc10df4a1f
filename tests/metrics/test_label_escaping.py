"""Label values reaching PromQL are escaped: no id can widen a query to another app or workspace.

Ids are pattern-validated before they get here (so the API never sends these); escaping is the second
line of defence, proven directly on the query builder against the real Prometheus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.metrics.promql import quote as promql_string
from testing import metrics_data as data
from testing.platform import Tenant
from tests.metrics.conftest import Backfilled

pytestmark = pytest.mark.timeout(60)

HOSTILE = [
    'x"} or up{app_id=~".+',  # closes the matcher and selects everything (it is also a real label value here)
    '"} or vector(1) or up{app_id="',
    ".+",  # only dangerous with =~: must stay a literal
    "\\",  # a trailing backslash would escape the closing quote
    '\\"} or up{app_id!="',
    "a\nb",
    'app_full", workspace_id!="',  # tries to override the workspace matcher
]


@pytest.fixture
async def client(backfilled: Backfilled) -> AsyncIterator[PrometheusClient]:
    prometheus = PrometheusClient(backfilled.prometheus.url, 5.0)
    yield prometheus
    await prometheus.close()


def up_of(queries: Queries, workspace_id: str, app_id: str) -> str:
    return f"up{{{queries.app_matchers(workspace_id, app_id)}}}"


@pytest.mark.parametrize("app_id", data.ODD_IDS)
async def test_odd_label_values_round_trip_exactly(
    client: PrometheusClient, backfilled: Backfilled, app_id: str
) -> None:
    found = await client.query(up_of(Queries(), data.OTHER_WORKSPACE, app_id), at=backfilled.now)
    assert [(s.labels["workspace_id"], s.labels["app_id"]) for s in found] == [(data.OTHER_WORKSPACE, app_id)]


@pytest.mark.parametrize("app_id", HOSTILE)
async def test_hostile_ids_select_at_most_their_own_literal_series(
    client: PrometheusClient, backfilled: Backfilled, app_id: str
) -> None:
    for workspace_id in (data.WORKSPACE, data.OTHER_WORKSPACE):
        found = await client.query(up_of(Queries(), workspace_id, app_id), at=backfilled.now)
        assert {s.labels["app_id"] for s in found} <= {app_id}, (workspace_id, app_id)
    # The same id as a range query through the GetAppMetrics templates.
    promql = Queries().range_query("memory", data.WORKSPACE, app_id, 60)
    assert await client.query_range(promql, start=backfilled.now - 600, end=backfilled.now, step=60) == []


async def test_without_escaping_the_first_hostile_id_leaks_every_app(
    client: PrometheusClient, backfilled: Backfilled
) -> None:
    # What the escaping prevents (and proof the check above can fail): the raw value widens the query.
    raw = f'up{{workspace_id="{data.OTHER_WORKSPACE}", app_id="{HOSTILE[0]}"}}'
    leaked = {s.labels["app_id"] for s in await client.query(raw, at=backfilled.now)}
    assert {data.FULL, "app_healthy"} <= leaked


def test_promql_string_escapes_backslash_quote_and_newline() -> None:
    assert promql_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert promql_string("app-ü😀") == '"app-ü😀"'  # kept as is: \\u surrogate escapes are rejected


@pytest.mark.parametrize("app_id", ['x"} or up{app_id=~".+', "a b", "é", "a" * 65])
async def test_the_api_rejects_such_ids_before_any_query(metrics_tenant: Tenant, app_id: str) -> None:
    request = pb.GetAppMetricsRequest(workspace_id=metrics_tenant.workspace_id, app_id=app_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metrics_tenant.monitoring.GetAppMetrics(request, metadata=metrics_tenant.auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "app_id" in caught.value.details()
