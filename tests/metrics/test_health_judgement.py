"""The health judgement as a decision table: one sample in, one status and its reasons out (no I/O)."""

from __future__ import annotations

import pytest

from server.config import HealthSettings
from server.metrics.evaluator import AppSample
from server.metrics.health import judge
from server.states import HealthStatus
from server.store.records import App

APP = App("app_1", "ws_1", "api", "api-svc", 512.0, 1.0, 0)
RULES = HealthSettings()  # errors: degraded ≥ 5 %, unhealthy ≥ 50 %; latency: degraded ≥ 1000 ms, unhealthy ≥ 5000 ms
NO_UP = "no `up` sample in the last 5 minutes (not scraped yet, new deploy or data gap)"


def sample(
    up: int | None = 2, total: int | None = 2, errors: float | None = 0.0, latency: float | None = 50.0
) -> AppSample:
    return AppSample(APP, 10.0, 100.0, 5.0, errors, latency, up, total)


@pytest.mark.parametrize(
    ("case", "given", "status", "reasons"),
    [
        ("all fine", sample(), HealthStatus.HEALTHY, ()),
        ("no traffic: no error rate, no latency", sample(errors=None, latency=None), HealthStatus.HEALTHY, ()),
        ("never scraped", sample(up=None, total=None), HealthStatus.UNKNOWN, (NO_UP,)),
        ("up known, total not", sample(total=None), HealthStatus.UNKNOWN, (NO_UP,)),
        ("one of two down", sample(up=1), HealthStatus.DEGRADED, ("1 of 2 instances up",)),
        ("all down", sample(up=0), HealthStatus.UNHEALTHY, ("no instance up (0 of 2)",)),
        ("errors below degraded", sample(errors=4.99), HealthStatus.HEALTHY, ()),
        ("errors at degraded", sample(errors=5.0), HealthStatus.DEGRADED, ("error rate 5% ≥ 5%",)),
        ("errors between", sample(errors=49.9), HealthStatus.DEGRADED, ("error rate 49.9% ≥ 5%",)),
        ("errors at unhealthy", sample(errors=50.0), HealthStatus.UNHEALTHY, ("error rate 50% ≥ 50%",)),
        ("latency below degraded", sample(latency=999.9), HealthStatus.HEALTHY, ()),
        ("latency at degraded", sample(latency=1000.0), HealthStatus.DEGRADED, ("average latency 1000 ms ≥ 1000 ms",)),
        (
            "latency at unhealthy",
            sample(latency=5000.0),
            HealthStatus.UNHEALTHY,
            ("average latency 5000 ms ≥ 5000 ms",),
        ),
        (
            "worst level wins, every reason kept",
            sample(up=1, errors=60.0, latency=1200.0),
            HealthStatus.UNHEALTHY,
            ("1 of 2 instances up", "error rate 60% ≥ 50%", "average latency 1200 ms ≥ 1000 ms"),
        ),
        (
            "all down with errors",
            sample(up=0, errors=7.25),
            HealthStatus.UNHEALTHY,
            ("no instance up (0 of 2)", "error rate 7.2% ≥ 5%"),
        ),
    ],
)
def test_judge(case: str, given: AppSample, status: HealthStatus, reasons: tuple[str, ...]) -> None:
    assert judge(given, RULES) == (status, reasons), case


def test_thresholds_come_from_the_settings() -> None:
    strict = HealthSettings(degraded_error_rate_percent=0.5, degraded_latency_ms=100.0)
    assert judge(sample(errors=1.0), strict) == (HealthStatus.DEGRADED, ("error rate 1% ≥ 0.5%",))
    assert judge(sample(latency=150.0), strict) == (HealthStatus.DEGRADED, ("average latency 150 ms ≥ 100 ms",))
