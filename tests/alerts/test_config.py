"""The [alerts] and [cost] tables: defaults, overrides, and refusals that name the key."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from server.alert_rules import BUILT_IN, Thresholds
from server.overview import CostModel
from server.queries import Queries
from server.rules import AlertSettings, RulesEngine


def test_empty_tables_give_the_documented_defaults() -> None:
    settings = AlertSettings.from_section({})
    assert (settings.resolution_s, settings.instance_label, dict(settings.defaults)) == (15, "pod", dict(BUILT_IN))
    assert CostModel.from_section({}) == CostModel(0.01, 0.005, 15.0)


def test_the_documented_example_loads() -> None:
    example = tomllib.loads(
        """
        [alerts]
        resolution_s = 30
        [alerts.defaults.high_memory]
        warning = 85
        hold_seconds = 600
        [alerts.expressions]
        high_cpu = 'max by ($by) (rate(cpu_seconds_total{$all}[1m]))'
        [cost]
        instance_hour_usd = 0.0416
        memory_gib_hour_usd = 0.0046
        sample_interval_s = 30
        """
    )
    settings = AlertSettings.from_section(example["alerts"])
    assert settings.defaults["high_memory"] == Thresholds(85.0, 95.0, 70.0, 600)
    assert settings.defaults["high_cpu"] == BUILT_IN["high_cpu"]
    engine = RulesEngine(None, None, Queries(), settings)  # type: ignore[arg-type]
    assert 'max by (workspace_id, app_id) (rate(cpu_seconds_total{workspace_id!="", app_id!=""}[1m]))' in (
        engine._window_query("high_cpu", 300, with_max=True)
    )
    assert "[330s:30s]" in engine._window_query("high_memory", 300, with_max=False)
    assert CostModel.from_section(example["cost"]) == CostModel(0.0416, 0.0046, 30.0)
    assert CostModel.from_section({"queries": {"up_now": "count by ($by) (up{$ws})"}}).queries["up_now"] == (
        "count by ($by) (up{$ws})"
    )


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"resolution": 15}, "unknown keys ['resolution']"),
        ({"resolution_s": 0}, "resolution_s: must be an integer from 1 to 3600"),
        ({"resolution_s": 1.5}, "resolution_s"),
        ({"instance_label": "pod-name"}, "instance_label"),
        ({"defaults": {"high_disk": {}}}, "unknown alert types ['high_disk']"),
        ({"defaults": {"high_cpu": {"warning": 99}}}, "critical_threshold: must be at least warning_threshold"),
        ({"defaults": {"high_cpu": {"recovery": 80}}}, "warning_threshold: must be greater than recovery"),
        ({"defaults": {"high_cpu": {"hold_seconds": 1.5}}}, "hold_seconds: must be an integer"),
        ({"defaults": {"high_cpu": {"hold": 10}}}, "unknown keys ['hold']"),
        ({"expressions": {"high_cpu": ""}}, "non-empty PromQL"),
        ({"expressions": {"high_disk": "x"}}, "[alerts.expressions]"),
    ],
)
def test_bad_alerts_tables_stop_the_server_naming_the_key(section: dict[str, Any], says: str) -> None:
    with pytest.raises(SystemExit, match=re.escape(says)):
        AlertSettings.from_section(section)


def test_a_bad_placeholder_in_an_expression_stops_the_server() -> None:
    settings = AlertSettings.from_section({"expressions": {"high_memory": "max by ($group) (x)"}})
    with pytest.raises(SystemExit, match=r"\[alerts.expressions\] high_memory: bad placeholder"):
        RulesEngine(None, None, Queries(), settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"instance_usd": 1}, "unknown keys ['instance_usd']"),
        ({"instance_hour_usd": -1}, "instance_hour_usd: must be a finite number ≥ 0"),
        ({"memory_gib_hour_usd": "cheap"}, "memory_gib_hour_usd"),
        ({"sample_interval_s": 0}, "sample_interval_s: must be greater than 0"),
        ({"queries": {"cpu_now": "x"}}, "[cost.queries]: a table with keys among"),
        ({"queries": {"up_now": "sum by ($group) (up{$ws})"}}, "[cost.queries] up_now: bad placeholder"),
    ],
)
def test_bad_cost_tables_stop_the_server_naming_the_key(section: dict[str, Any], says: str) -> None:
    with pytest.raises(SystemExit, match=re.escape(says)):
        CostModel.from_section(section)
