"""server/config.py: every TOML table, its defaults, and refusals that name the file, the table and the key."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from server import config
from server.alerts.thresholds import BUILT_IN, Thresholds
from server.config import (
    AlertSettings,
    ApiSettings,
    ConfigError,
    CostSettings,
    HealthSettings,
    LokiSettings,
    NotifySettings,
)
from server.metrics.promql import (
    ALERT_TEMPLATES,
    COST_TEMPLATES,
    GROUPED_TEMPLATES,
    HISTORY_TEMPLATES,
    RANGE_TEMPLATES,
    Queries,
    check_placeholders,
)
from server.states import AlertType

EXAMPLE = """
[prometheus]
app_label = "service"
[prometheus.range]
memory = 'sum(container_memory_working_set_bytes{$app, container="POD"}) / 1048576'
[health]
degraded_error_rate_percent = 0.5
[alerts]
resolution_s = 30
instance_label = "instance"
[alerts.defaults.high_memory]
warning = 85
hold_seconds = 600
[alerts.expressions]
high_cpu = 'max by ($by) (rate(cpu_seconds_total{$all}[1m]))'
[cost]
instance_hour_usd = 0.0416
memory_gib_hour_usd = 0.0046
sample_interval_s = 30
[cost.queries]
up_now = 'count by ($by) (up{$ws})'
[loki]
tenant = "team-a"
app_label = "service"
stream_buffer = 10
tail_linger_s = 2
"""


def test_no_tables_give_the_documented_defaults() -> None:
    settings = config.from_tables({})
    assert settings == {
        "queries": Queries(),
        "health": HealthSettings(),
        "alerts": AlertSettings(),
        "cost": CostSettings(),
        "loki": LokiSettings(),
        "api": ApiSettings(),
        "notify": NotifySettings(),
    }
    assert (AlertSettings().resolution_s, dict(AlertSettings().defaults)) == (15, dict(BUILT_IN))
    assert CostSettings() == CostSettings(0.01, 0.005, 15.0)
    assert dict(Queries().range_templates) == RANGE_TEMPLATES
    assert dict(Queries().grouped_templates) == GROUPED_TEMPLATES
    assert dict(Queries().history_templates) == HISTORY_TEMPLATES


@pytest.mark.parametrize(
    ("family", "templates"),
    [
        ("range", RANGE_TEMPLATES),
        ("grouped", GROUPED_TEMPLATES),
        ("history", HISTORY_TEMPLATES),
        ("alert", ALERT_TEMPLATES),
        ("cost", COST_TEMPLATES),
    ],
)
def test_every_built_in_template_uses_only_its_familys_placeholders(family: str, templates: dict[str, str]) -> None:
    assert {name: check_placeholders(family, t) for name, t in templates.items()} == dict.fromkeys(templates)


def test_the_documented_example_loads() -> None:
    settings = config.from_tables(tomllib.loads(EXAMPLE))
    queries: Queries = settings["queries"]
    assert queries.app_label == "service" and queries.instance_label == "instance"
    assert 'container="POD"' in queries.range_query("memory", "ws", "app", 60)
    assert settings["health"].degraded_error_rate_percent == 0.5
    alerts: AlertSettings = settings["alerts"]
    assert alerts.resolution_s == 30
    assert alerts.defaults[AlertType.HIGH_MEMORY] == Thresholds(85.0, 95.0, 70.0, 600)
    assert alerts.defaults[AlertType.HIGH_CPU] == BUILT_IN[AlertType.HIGH_CPU]
    window = queries.alert_window_query(AlertType.HIGH_CPU, 300, alerts.resolution_s, with_max=True)
    assert 'max by (workspace_id, service) (rate(cpu_seconds_total{workspace_id!="", service!=""}[1m]))' in window
    assert "[330s:30s]" in window and "offset 330s" in window
    memory = queries.alert_window_query(AlertType.HIGH_MEMORY, 300, alerts.resolution_s, with_max=False)
    assert "sum by (workspace_id, service, instance)" in memory and '"stat", "max"' not in memory
    assert settings["cost"] == CostSettings(0.0416, 0.0046, 30.0)
    assert (
        queries.cost_query("up_now", "ws_1", 60)
        == 'count by (workspace_id, service) (up{workspace_id="ws_1", service!=""})'
    )
    loki: LokiSettings = settings["loki"]
    assert (loki.tenant, loki.labels.app_label, loki.tail.buffer, loki.tail.linger_s) == ("team-a", "service", 10, 2.0)


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        ({"promethus": {}}, "top level: unknown keys ['promethus']"),
        ({"prometheus": {"labels": {}}}, "[prometheus]: unknown keys ['labels']"),
        ({"prometheus": {"app_label": "app-id"}}, "[prometheus] app_label: 'app-id' is not a label name"),
        ({"prometheus": {"range": {"disk": "up"}}}, "[prometheus.range]: unknown keys ['disk']"),
        ({"prometheus": {"range": {"cpu": ""}}}, "[prometheus.range] cpu: must be a non-empty PromQL string"),
        ({"prometheus": {"range": {"cpu": "up{$nope}"}}}, "[prometheus.range] cpu: bad placeholder $nope"),
        ({"prometheus": {"grouped": {"cpu": "sum(up{$app})"}}}, "[prometheus.grouped] cpu: bad placeholder $app"),
        ({"prometheus": {"history": {"first_up": "min_over_time(up{$app}[$lookback])"}}}, "first_up: bad placeholder"),
        ({"prometheus": {"range": "up"}}, "[prometheus] range: must be a table"),
        ({"health": {"degraded_latency": 5}}, "[health]: unknown keys ['degraded_latency']"),
        ({"health": {"degraded_latency_ms": -1}}, "[health] degraded_latency_ms: must be a positive number"),
        ({"health": {"degraded_error_rate_percent": 60}}, "degraded_error_rate_percent exceeds unhealthy_error"),
        ({"health": {"uptime_resolution_s": 0.5}}, "uptime_resolution_s: must be a whole number of seconds, got 0.5"),
        ({"alerts": {"resolution": 15}}, "[alerts]: unknown keys ['resolution']"),
        ({"alerts": {"resolution_s": 0}}, "[alerts] resolution_s: must be an integer from 1 to 3600, got 0"),
        ({"alerts": {"resolution_s": 1.5}}, "[alerts] resolution_s: must be an integer"),
        ({"alerts": {"instance_label": "pod-name"}}, "[alerts] instance_label: 'pod-name' is not a label name"),
        ({"alerts": {"defaults": {"high_disk": {}}}}, "[alerts.defaults]: unknown keys ['high_disk']"),
        ({"alerts": {"defaults": {"high_cpu": {"warning": 99}}}}, "critical_threshold: must be at least warning"),
        ({"alerts": {"defaults": {"high_cpu": {"recovery": 80}}}}, "warning_threshold: must be greater than recovery"),
        ({"alerts": {"defaults": {"high_cpu": {"hold_seconds": 1.5}}}}, "hold_seconds: must be an integer"),
        ({"alerts": {"defaults": {"high_cpu": {"hold": 10}}}}, "[alerts.defaults.high_cpu]: unknown keys ['hold']"),
        ({"alerts": {"expressions": {"high_cpu": ""}}}, "[alerts.expressions] high_cpu: must be a non-empty PromQL"),
        ({"alerts": {"expressions": {"high_disk": "x"}}}, "[alerts.expressions]: unknown keys ['high_disk']"),
        ({"alerts": {"expressions": {"high_memory": "max by ($group) (x)"}}}, "high_memory: bad placeholder $group"),
        ({"cost": {"instance_usd": 1}}, "[cost]: unknown keys ['instance_usd']"),
        ({"cost": {"instance_hour_usd": -1}}, "[cost] instance_hour_usd: must be a number ≥ 0"),
        ({"cost": {"memory_gib_hour_usd": "cheap"}}, "[cost] memory_gib_hour_usd: must be a finite number"),
        ({"cost": {"sample_interval_s": 0}}, "[cost] sample_interval_s: must be greater than 0"),
        ({"cost": {"queries": {"cpu_now": "x"}}}, "[cost.queries]: unknown keys ['cpu_now']"),
        ({"cost": {"queries": {"up_now": "sum by ($group) (up{$ws})"}}}, "[cost.queries] up_now: bad placeholder"),
        ({"loki": {"app_lable": "service"}}, "[loki]: unknown keys ['app_lable']"),
        ({"loki": {"app_label": 'app"} or {x="'}}, "[loki] app_label:"),
        ({"loki": {"tail_delay_for": 6}}, "[loki] tail_delay_for: must be an integer from 0 to 5 (Loki's limit)"),
        ({"loki": {"stream_buffer": "big"}}, "[loki] stream_buffer: must be an integer"),
        ({"loki": {"tail_watchdog_s": 0.1}}, "[loki] tail_watchdog_s: must be a number ≥ 0.5"),
        ({"loki": {"tenant": ["a"]}}, "[loki] tenant: must be a string"),
        ({"loki": {"tail_delay_for": 2.5}}, "[loki] tail_delay_for: must be an integer from 0 to 5"),
        ({"api": {"key_cache_s": -1}}, "[api] key_cache_s: must be a number ≥ 0"),
        ({"api": {"key_cache_s": 61}}, "[api] key_cache_s: must be at most 60 seconds, got 61"),
        ({"api": {"key_cache_s": "1s"}}, "[api] key_cache_s: must be a finite number"),
    ],
)
def test_bad_tables_are_refused_naming_the_file_table_and_key(tables: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=r"^config file /etc/m\.toml: .*" + re.escape(says)):
        config.from_tables(tables, source="config file /etc/m.toml")


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        (
            {"prometheus": {"range": {"cpu": "sum(rate(container_cpu_usage_seconds_total[5m]))"}}},
            "[prometheus.range] cpu: must select by $app: without it the query reads every tenant's series",
        ),
        (  # allowed in a range template, but $all alone is every app's series
            {"prometheus": {"range": {"instance_count": "sum(up{$all})"}}},
            "[prometheus.range] instance_count: must select by $app:",
        ),
        (  # `$$app` is a literal dollar sign, not the placeholder
            {"prometheus": {"range": {"memory": 'sum(x{app_id="$$app"})'}}},
            "[prometheus.range] memory: must select by $app:",
        ),
        (
            {"prometheus": {"grouped": {"latency": "avg by ($by) (latency_ms)"}}},
            "[prometheus.grouped] latency: must select by $all:",
        ),
        (
            {"prometheus": {"history": {"first_up": "min_over_time(timestamp(up)[$lookback:$resolution])"}}},
            "[prometheus.history] first_up: must select by $all:",
        ),
        (
            {"alerts": {"expressions": {"high_cpu": "max by ($by, $instance) (cpu_cores)"}}},
            "[alerts.expressions] high_cpu: must select by $all:",
        ),
        (
            {"cost": {"queries": {"up_now": "sum by ($by) (up)"}}},
            "[cost.queries] up_now: must select by $ws: without it the query reads every workspace's series",
        ),
    ],
)
def test_an_override_without_its_familys_matcher_is_refused(tables: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=r"^config file /etc/m\.toml: " + re.escape(says)):
        config.from_tables(tables, source="config file /etc/m.toml")


def test_the_key_cache_is_one_second_by_default_and_zero_turns_it_off() -> None:
    assert ApiSettings().key_cache_s == 1.0
    assert config.from_tables({"api": {"key_cache_s": 0}})["api"].key_cache_s == 0.0
    assert config.from_tables({"api": {"key_cache_s": 60}})["api"].key_cache_s == 60.0


def test_whole_floats_count_as_integers_and_a_numeric_tenant_as_its_digits() -> None:
    settings = config.from_tables({"loki": {"stream_buffer": 100.0, "tenant": 42}, "alerts": {"resolution_s": 30.0}})
    assert (settings["loki"].tail.buffer, settings["loki"].tenant, settings["alerts"].resolution_s) == (100, "42", 30)


def test_the_file_is_read_and_a_broken_one_is_named(tmp_path: Any) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[alerts]\nresolution_s = 60\n")
    assert config.load([], {"MONITORING_CONFIG_FILE": str(good)}).alerts.resolution_s == 60
    broken = tmp_path / "broken.toml"
    broken.write_text("[alerts\n")
    with pytest.raises(ConfigError, match=f"cannot read config file {re.escape(str(broken))}"):
        config.load([], {"MONITORING_CONFIG_FILE": str(broken)})
    with pytest.raises(ConfigError, match=r"config file .*missing\.toml"):
        config.load(["--config-file", str(tmp_path / "missing.toml")], {})


def test_environment_values_are_checked_and_named() -> None:
    with pytest.raises(ConfigError, match=r"MONITORING_TOKEN_SECRET or --token-secret\): must be at least 16 bytes"):
        config.load([], {"MONITORING_TOKEN_SECRET": "short"})
    with pytest.raises(ConfigError, match=r"MONITORING_EVAL_INTERVAL or --eval-interval\): 'often'"):
        config.load([], {"MONITORING_EVAL_INTERVAL": "often"})
    assert config.load([], {"MONITORING_EVAL_INTERVAL": "10"}).stale_after_s == 60.0


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("MONITORING_EVAL_INTERVAL", "0.05", "eval_interval_s (MONITORING_EVAL_INTERVAL or --eval-interval): must be"),
        ("MONITORING_EVAL_INTERVAL", "3601", "eval_interval_s (MONITORING_EVAL_INTERVAL or --eval-interval): must be"),
        ("MONITORING_EVAL_INTERVAL", "nan", "eval_interval_s (MONITORING_EVAL_INTERVAL or --eval-interval): must be"),
        ("MONITORING_BACKEND_TIMEOUT", "0", "backend_timeout_s (MONITORING_BACKEND_TIMEOUT or --backend-timeout)"),
        ("MONITORING_BACKEND_TIMEOUT", "-1", "backend_timeout_s (MONITORING_BACKEND_TIMEOUT or --backend-timeout)"),
        ("MONITORING_BACKEND_TIMEOUT", "300.5", "backend_timeout_s (MONITORING_BACKEND_TIMEOUT or --backend-timeout)"),
        ("MONITORING_SHUTDOWN_GRACE", "-0.1", "shutdown_grace_s (MONITORING_SHUTDOWN_GRACE or --shutdown-grace)"),
        ("MONITORING_SHUTDOWN_GRACE", "601", "shutdown_grace_s (MONITORING_SHUTDOWN_GRACE or --shutdown-grace)"),
        ("MONITORING_ADMIN_TOKEN", "short-token", "admin_token (MONITORING_ADMIN_TOKEN or --admin-token): must be at"),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_setting(env: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(says)):
        config.load([], {env: value})


def test_the_ends_of_each_range_are_accepted() -> None:
    lowest = config.load(
        [],
        {
            "MONITORING_EVAL_INTERVAL": "0.1",
            "MONITORING_BACKEND_TIMEOUT": "0.001",
            "MONITORING_SHUTDOWN_GRACE": "0",
            "MONITORING_ADMIN_TOKEN": "a" * 16,
        },
    )
    assert (lowest.eval_interval_s, lowest.backend_timeout_s, lowest.shutdown_grace_s) == (0.1, 0.001, 0.0)
    highest = ["--eval-interval", "3600", "--backend-timeout", "300", "--shutdown-grace", "600"]
    assert config.load(highest, {}).shutdown_grace_s == 600.0
    assert config.load([], {"MONITORING_ADMIN_TOKEN": ""}).admin_token == ""  # empty: PlatformService is off


def test_secrets_and_the_store_url_can_come_from_files(tmp_path: Any) -> None:
    files = {
        "MONITORING_ADMIN_TOKEN_FILE": "admin-token-from-a-file\n",
        "MONITORING_TOKEN_SECRET_FILE": "token-secret-from-a-file\n",
        "MONITORING_DB_FILE": "postgresql://monitoring:pa55word@db.internal:5432/monitoring\n",
    }
    environ: dict[str, str] = {}
    for variable, content in files.items():
        (tmp_path / variable).write_text(content)
        environ[variable] = str(tmp_path / variable)
    loaded = config.load([], environ)
    assert (loaded.admin_token, loaded.token_secret, loaded.db) == (
        "admin-token-from-a-file",
        "token-secret-from-a-file",
        "postgresql://monitoring:pa55word@db.internal:5432/monitoring",
    )
    (tmp_path / "short").write_text("short\n")  # a value from a file is checked like one from the variable
    with pytest.raises(ConfigError, match=r"^admin_token \(MONITORING_ADMIN_TOKEN or --admin-token\): must be at"):
        config.load([], {"MONITORING_ADMIN_TOKEN_FILE": str(tmp_path / "short")})


@pytest.mark.parametrize("variable", ["MONITORING_ADMIN_TOKEN", "MONITORING_TOKEN_SECRET", "MONITORING_DB"])
def test_a_secret_file_is_refused_when_the_variable_is_set_too_or_it_cannot_be_read(
    tmp_path: Any, variable: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("postgresql://u:pa55word-0123456789@h/d\n")
    with pytest.raises(ConfigError, match=f"both {variable} and {variable}_FILE are set"):
        config.load([], {variable: "postgresql://u:pa55word-0123456789@h/d", f"{variable}_FILE": str(secret)})
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError, match=rf"\({variable}_FILE='{re.escape(str(missing))}'\): cannot read the file"):
        config.load([], {f"{variable}_FILE": str(missing)})


def test_help_names_the_file_variables() -> None:
    shown = config.parser().format_help()
    for variable in ("MONITORING_ADMIN_TOKEN_FILE", "MONITORING_TOKEN_SECRET_FILE", "MONITORING_DB_FILE"):
        assert variable in shown


def test_notify_settings_are_read_and_checked() -> None:
    tables = {"notify": {"poll_s": 0.2, "allow_private_destinations": True}, "alerts": {"deploy_hold_s": 0}}
    settings = config.from_tables(tables)
    assert settings["notify"].poll_s == 0.2 and settings["notify"].allow_private_destinations
    assert settings["alerts"].deploy_hold_s == 0
    with pytest.raises(ConfigError, match=r"\[notify\] retry_max_s: must be at least retry_initial_s"):
        config.from_tables({"notify": {"retry_initial_s": 10, "retry_max_s": 1}})
    with pytest.raises(ConfigError, match=r"\[notify\] allow_private_destinations: must be true or false"):
        config.from_tables({"notify": {"allow_private_destinations": "yes"}})
    with pytest.raises(ConfigError, match=r"\[notify\]: unknown keys \['pol_s'\]"):
        config.from_tables({"notify": {"pol_s": 1}})
    with pytest.raises(ConfigError, match=r"\[alerts\] deploy_hold_s"):
        config.from_tables({"alerts": {"deploy_hold_s": -1}})
