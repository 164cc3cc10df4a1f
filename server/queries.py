"""The PromQL templates and the two label names that tie a series to an app.

Templates are ``string.Template`` strings (``$name`` placeholders; PromQL itself never uses ``$``):

- ``$app``   the matchers of one app, escaped: ``workspace_id="ws_1", app_id="app_1"``
- ``$all``   the matchers of every app's series: ``workspace_id!="", app_id!=""``
- ``$by``    the grouping labels: ``workspace_id, app_id``
- ``$step``  the range query's step as a duration (``1h``); range templates only
- ``$lookback``, ``$resolution``  the window and step of the uptime history subqueries; history only

Every template and both label names can be overridden in the ``[prometheus]`` table of the TOML config
file (see docs/configuration.md). Bad overrides stop the server at start, naming the key.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping
from typing import Any

from server.prometheus import promql_string

# The six series of GetAppMetrics, one app, evaluated with query_range.
RANGE_TEMPLATES: dict[str, str] = {
    "cpu": '100 * sum(rate(container_cpu_usage_seconds_total{$app, container!="", container!="POD"}[5m]))',
    "memory": 'sum(container_memory_working_set_bytes{$app, container!="", container!="POD"}) / 1048576',
    # Requests served during each step: the counter's increase over a window of one step.
    "request_count": "sum(increase(http_requests_total{$app}[$step]))",
    "request_latency": (
        "1000 * sum(rate(http_request_duration_seconds_sum{$app}[5m]))"
        " / sum(rate(http_request_duration_seconds_count{$app}[5m]))"
    ),
    # `or 0 * total`: client libraries create a 5xx series only at the first 5xx, and an app that never
    # failed must read 0 %, not "no data". Zero traffic still divides by zero: no point.
    "error_rate": (
        '100 * (sum(rate(http_requests_total{$app, status=~"5.."}[5m]))'
        " or 0 * sum(rate(http_requests_total{$app}[5m])))"
        " / sum(rate(http_requests_total{$app}[5m]))"
    ),
    # sum, not count(up == 1): an app whose instances are all down has a 0, not a missing point.
    "instance_count": "sum(up{$app})",
}

# The evaluator's instant queries: every app at once, one result element per (workspace, app).
GROUPED_TEMPLATES: dict[str, str] = {
    "cpu": '100 * sum by ($by) (rate(container_cpu_usage_seconds_total{$all, container!="", container!="POD"}[5m]))',
    "memory": 'sum by ($by) (container_memory_working_set_bytes{$all, container!="", container!="POD"}) / 1048576',
    "request_rate": "sum by ($by) (rate(http_requests_total{$all}[5m]))",
    "error_rate": (
        '100 * (sum by ($by) (rate(http_requests_total{$all, status=~"5.."}[5m]))'
        " or 0 * sum by ($by) (rate(http_requests_total{$all}[5m])))"
        " / sum by ($by) (rate(http_requests_total{$all}[5m]))"
    ),
    "latency": (
        "1000 * sum by ($by) (rate(http_request_duration_seconds_sum{$all}[5m]))"
        " / sum by ($by) (rate(http_request_duration_seconds_count{$all}[5m]))"
    ),
    "instances_up": "sum by ($by) (up{$all} == bool 1)",
    "instances_total": "count by ($by) (up{$all})",
}

# Uptime history, asked once per process (server/health.py): per app, the last subquery step with no
# instance up, and the first step with any `up` series, within the lookback.
HISTORY_TEMPLATES: dict[str, str] = {
    "last_down": "max_over_time((timestamp(sum by ($by) (up{$all}) < 1))[$lookback:$resolution])",
    "first_up": "min_over_time((timestamp(sum by ($by) (up{$all})))[$lookback:$resolution])",
}

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Queries:
    """The templates in use, with the label names, and the functions that fill them in."""

    workspace_label: str = "workspace_id"
    app_label: str = "app_id"
    range_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(RANGE_TEMPLATES))
    grouped_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(GROUPED_TEMPLATES))
    history_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(HISTORY_TEMPLATES))

    def app_matchers(self, workspace_id: str, app_id: str) -> str:
        """The label matchers selecting exactly one app's series, values escaped."""
        return f"{self.workspace_label}={promql_string(workspace_id)}, {self.app_label}={promql_string(app_id)}"

    def all_matchers(self) -> str:
        return f'{self.workspace_label}!="", {self.app_label}!=""'

    def grouping(self) -> str:
        return f"{self.workspace_label}, {self.app_label}"

    def app_key(self, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """The (workspace id, app id) a grouped result element belongs to; None if it lacks either label."""
        workspace_id, app_id = labels.get(self.workspace_label), labels.get(self.app_label)
        return (workspace_id, app_id) if workspace_id and app_id else None

    def range_query(self, name: str, workspace_id: str, app_id: str, step_s: int) -> str:
        return string.Template(self.range_templates[name]).substitute(
            app=self.app_matchers(workspace_id, app_id),
            step=duration(step_s),
            all=self.all_matchers(),
            by=self.grouping(),
        )

    def grouped_query(self, name: str) -> str:
        return string.Template(self.grouped_templates[name]).substitute(all=self.all_matchers(), by=self.grouping())

    def history_query(self, name: str, lookback_s: int, resolution_s: int) -> str:
        return string.Template(self.history_templates[name]).substitute(
            all=self.all_matchers(),
            by=self.grouping(),
            lookback=duration(lookback_s),
            resolution=duration(resolution_s),
        )


def duration(seconds: int) -> str:
    """A whole number of seconds as a PromQL duration in its largest exact unit: 3600 → ``1h``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def from_section(section: Mapping[str, Any]) -> Queries:
    """The queries described by the config file's ``[prometheus]`` table (defaults for what it omits)."""
    allowed = {"workspace_label", "app_label", "range", "grouped", "history"}
    _reject_unknown("prometheus", section, allowed)
    labels = {}
    for key in ("workspace_label", "app_label"):
        if key in section:
            value = section[key]
            if not isinstance(value, str) or not _LABEL_NAME.fullmatch(value):
                raise SystemExit(f"config [prometheus] {key}: {value!r} is not a Prometheus label name")
            labels[key] = value
    queries = Queries(
        **labels,
        range_templates={**RANGE_TEMPLATES, **_templates(section, "range", RANGE_TEMPLATES)},
        grouped_templates={**GROUPED_TEMPLATES, **_templates(section, "grouped", GROUPED_TEMPLATES)},
        history_templates={**HISTORY_TEMPLATES, **_templates(section, "history", HISTORY_TEMPLATES)},
    )
    _check(queries)
    return queries


def _templates(section: Mapping[str, Any], table: str, defaults: Mapping[str, str]) -> dict[str, str]:
    overrides = section.get(table, {})
    if not isinstance(overrides, dict):
        raise SystemExit(f"config [prometheus.{table}] must be a table")
    _reject_unknown(f"prometheus.{table}", overrides, set(defaults))
    for key, value in overrides.items():
        if not isinstance(value, str) or not value.strip():
            raise SystemExit(f"config [prometheus.{table}] {key}: must be a non-empty PromQL string")
    return dict(overrides)


def _reject_unknown(table: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise SystemExit(f"config [{table}]: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _check(queries: Queries) -> None:
    """Fills every template once so a typo in a placeholder fails at start, not on the first request."""
    for name, template in queries.range_templates.items():
        try:
            queries.range_query(name, "ws", "app", 60)
        except (KeyError, ValueError) as error:
            raise SystemExit(f"config [prometheus.range] {name}: bad placeholder in {template!r}: {error}") from None
    for name, template in queries.grouped_templates.items():
        try:
            queries.grouped_query(name)
        except (KeyError, ValueError) as error:
            raise SystemExit(
                f"config [prometheus.grouped] {name}: bad placeholder in {template!r}: {error}"
                " ($app and $step are not available in grouped queries)"
            ) from None
    for name, template in queries.history_templates.items():
        try:
            queries.history_query(name, 86400, 300)
        except (KeyError, ValueError) as error:
            raise SystemExit(f"config [prometheus.history] {name}: bad placeholder in {template!r}: {error}") from None
