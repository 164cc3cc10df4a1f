"""The error rate of apps with no 5xx series: 0 %, not "no data", in metrics, health and alerts alike.

Client libraries create a label combination at its first increment, so an app that never failed (or whose
failing pods were replaced) has no ``status="5xx"`` series at all. A real Prometheus over backfilled data.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterable, Iterator

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.alerts.engine import RulesEngine
from server.config import AlertSettings
from server.metrics.app_metrics import MetricsService
from server.metrics.evaluator import Evaluator
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store import SqliteStore, open_sqlite
from server.store.records import Alert, AlertChanges, App
from testing.prometheus import PrometheusProcess, Series, running_prometheus

pytestmark = pytest.mark.timeout(60)

WORKSPACE = "ws_errors"
NEVER_FAILED = "app_never_failed"  # 10 req/s, every one a 200, since long before the window
RECOVERED = "app_recovered"  # failed for an hour, then redeployed: the 5xx series stopped 20 minutes ago
IDLE = "app_idle"  # running, no traffic: a ratio over zero requests has no value
NOW = 1_900_000_000  # on the 15 s sample grid and the 60 s step grid
START = NOW - 3 * 3600
TIMES = range(START, NOW + 601, 15)


def _labels(app: str, **extra: str) -> dict[str, str]:
    return {"workspace_id": WORKSPACE, "app_id": app, **extra}


def _counter(app: str, per_s: float, status: str, times: Iterable[int] = TIMES) -> Series:
    return Series("http_requests_total", _labels(app, status=status), [(t, per_s * (t - START)) for t in times])


def _dataset() -> list[Series]:
    switched = NOW - 20 * 60
    return [
        _counter(NEVER_FAILED, 10.0, "200"),
        _counter(RECOVERED, 10.0, "200"),
        _counter(RECOVERED, 5.0, "500", range(START, switched, 15)),
        _counter(IDLE, 0.0, "200"),
        *(Series("up", _labels(app, pod="p1"), [(t, 1.0) for t in TIMES]) for app in (NEVER_FAILED, RECOVERED, IDLE)),
    ]


def _app(app_id: str) -> App:
    return App(app_id, WORKSPACE, app_id, app_id, 512, 1, 1)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    with running_prometheus(tmp_path_factory.mktemp("error-rate"), _dataset()) as process:
        yield process


@pytest.fixture
async def client(prometheus: PrometheusProcess) -> AsyncIterator[PrometheusClient]:
    client = PrometheusClient(prometheus.url, 10.0)
    yield client
    await client.close()


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    store = await open_sqlite(str(tmp_path / "errors.db"))
    await store.create_workspace(WORKSPACE, "errors", 1)
    for app_id in (NEVER_FAILED, RECOVERED, IDLE):
        await store.upsert_app(_app(app_id))
    yield store
    await store.close()


async def test_metrics_show_zero_percent_at_every_point(client: PrometheusClient) -> None:
    metrics = MetricsService(client, Queries(), clock=lambda: NOW * 10**9)
    series = (await metrics.app_metrics(_app(NEVER_FAILED), pb.PERIOD_1H)).error_rate
    assert list(series.values) == [0.0] * 61
    assert (series.current, series.avg, series.max) == (0.0, 0.0, 0.0)
    idle = (await metrics.app_metrics(_app(IDLE), pb.PERIOD_1H)).error_rate
    assert list(idle.values) == [] and not idle.HasField("current")  # no requests: no ratio, not 0 %


async def test_health_samples_read_zero_percent(client: PrometheusClient, store: SqliteStore) -> None:
    tick = await Evaluator(store, client, Queries(), [], interval_s=30, clock=lambda: NOW * 10**9).sample()
    rates = {sample.app.id: sample.error_rate_percent for sample in tick.samples}
    assert rates == {NEVER_FAILED: 0.0, RECOVERED: 0.0, IDLE: None}


async def test_an_open_error_rate_alert_resolves_after_the_5xx_series_is_gone(
    client: PrometheusClient, store: SqliteStore
) -> None:
    fired_ns = (NOW - 3000) * 10**9
    message = "Error rate exceeded 10% threshold"
    alert = Alert("alr_old", WORKSPACE, RECOVERED, "high_error_rate", "critical", message, fired_ns, None, None)
    await store.apply_alert_changes(AlertChanges(fired_ns, fire=[alert]))
    engine = RulesEngine(store, client, Queries(), AlertSettings())
    evaluator = Evaluator(store, client, Queries(), [engine], interval_s=30, clock=lambda: NOW * 10**9)
    await evaluator.evaluate()
    resolved = await store.get_alert(WORKSPACE, "alr_old")
    assert resolved is not None and resolved.resolved_ns == NOW * 10**9 and resolved.resolved_by == "recovery"
