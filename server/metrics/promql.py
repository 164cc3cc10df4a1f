"""Every PromQL template and matcher the server sends, and the one object that fills them in.

Templates are ``string.Template`` strings (``$name`` placeholders; PromQL itself never uses ``$``):

- ``$app``   the matchers of one app, escaped: ``workspace_id="ws_1", app_id="app_1"``
- ``$all``   the matchers of every app's series: ``workspace_id!="", app_id!=""``
- ``$ws``    the matchers of every app of one workspace, escaped: ``workspace_id="ws_1", app_id!=""``
- ``$by``    the grouping labels: ``workspace_id, app_id``
- ``$step``  the range query's step as a duration (``1h``); range templates only
- ``$lookback``, ``$resolution``  the window and step of the uptime history subqueries; history only
- ``$instance``  the label telling an app's instances apart (``pod``); alert expressions only
- ``$range``  month to date as a duration (``2419200s``); cost templates only

Which placeholders each family may use is :data:`PLACEHOLDERS`. Every template and the label names can be
overridden in the TOML config file (docs/configuration.md); :mod:`server.config` reads the overrides and
fills each template once at start, so a typo fails there, naming the key.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence

from server.states import AlertType

# The series of GetAppMetrics, one app, evaluated with query_range: the six standard ones, then the optional ones.
RANGE_TEMPLATES: Mapping[str, str] = {
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
    # GetAppMetrics' optional series (`include=`), asked only when requested. Percentiles in ms from the
    # request duration histogram: the buckets of every instance summed per `le` over 5 minutes.
    "latency_p50": (
        "1000 * histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{$app}[5m])))"
    ),
    "latency_p95": (
        "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{$app}[5m])))"
    ),
    "latency_p99": (
        "1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{$app}[5m])))"
    ),
    # Requests per status class and step, like request_count. `or 0 * total`: a class the app never answered
    # has no series (client libraries create it at its first increment) but served requests, so it reads 0.
    **{
        f"requests_{digit}xx": (
            f'sum(increase(http_requests_total{{$app, status=~"{digit}.."}}[$step]))'
            " or 0 * sum(increase(http_requests_total{$app}[$step]))"
        )
        for digit in "2345"
    },
}

# How far back Prometheus keeps samples unless the config file says otherwise ([prometheus] retention_s): GetAppMetrics
# refuses a custom window starting earlier, which would be an empty chart. 31 days holds the 30d period.
DEFAULT_RETENTION_S = 31 * 86400

# GetAppMetrics sends the range templates in fewer requests (server/metrics/app_metrics.py): a batch is one
# expression, its templates joined with `or`, each template's result tagged with this label naming it, so the
# answer splits back exactly. `or` keeps every series of its left side and those of its right side whose label
# set differs; the tags make them all differ, and label_replace leaves values and other labels as they are.
RANGE_BATCH_LABEL = "dooor_series"
RANGE_BATCH_PART = 'label_replace($query, "$label", "$name", "", "")'

# The evaluator's instant queries: every app at once, one result element per (workspace, app).
GROUPED_TEMPLATES: Mapping[str, str] = {
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

# Uptime history, asked once per process (server/metrics/health.py): per app, the last subquery step with
# no instance up, and the first step with any `up` series, within the lookback.
HISTORY_TEMPLATES: Mapping[str, str] = {
    "last_down": "max_over_time((timestamp(sum by ($by) (up{$all}) < 1))[$lookback:$resolution])",
    "first_up": "min_over_time((timestamp(sum by ($by) (up{$all})))[$lookback:$resolution])",
}

# The alert rules' metrics, every app at once. CPU and memory of the busiest instance, in cores and bytes: a
# limit is per instance, and the instance nearest to its limit is the one throttled or OOM-killed. Without
# the instance label every series of the app counts as one instance.
ALERT_TEMPLATES: Mapping[str, str] = {
    AlertType.HIGH_CPU: (
        "max by ($by) (sum by ($by, $instance) ("
        'rate(container_cpu_usage_seconds_total{$all, container!="", container!="POD"}[5m])))'
    ),
    AlertType.HIGH_MEMORY: (
        "max by ($by) (sum by ($by, $instance) ("
        'container_memory_working_set_bytes{$all, container!="", container!="POD"}))'
    ),
}
# Error rate (percent) and latency (ms) are the evaluator's grouped queries, so an override of those
# grouped templates applies to health and alerts alike (unless an alert expression overrides it too).
ALERT_FROM_GROUPED: Mapping[str, str] = {AlertType.HIGH_ERROR_RATE: "error_rate", AlertType.HIGH_LATENCY: "latency"}

# The overview's cost inputs, per app of one workspace. A recording rule can replace any of them (month-to-date
# sums over large workspaces, say); each result is grouped by ($by), one element per app.
COST_TEMPLATES: Mapping[str, str] = {
    "up_now": "sum by ($by) (up{$ws} == bool 1)",
    "memory_now": 'sum by ($by) (container_memory_working_set_bytes{$ws, container!="", container!="POD"})',
    # `up` is 1 or 0, so the sum of its samples is the number of scrapes that found the instance up.
    "up_samples": "sum by ($by) (sum_over_time(up{$ws}[$range]))",
    "memory_samples": (
        'sum by ($by) (sum_over_time(container_memory_working_set_bytes{$ws, container!="", container!="POD"}[$range]))'
    ),
}

# Template family → the placeholders it may use (documented in docs/configuration.md).
PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "range": frozenset({"app", "step", "all", "by"}),
    "grouped": frozenset({"all", "by"}),
    "history": frozenset({"all", "by", "lookback", "resolution"}),
    "alert": frozenset({"all", "by", "instance"}),
    "cost": frozenset({"ws", "by", "range"}),
}
# Template family → the matcher placeholder it must use, and why: a template that does not select by it reads
# the series of every tenant (or of no app), and its result would be shown to one tenant.
REQUIRED_PLACEHOLDERS: Mapping[str, tuple[str, str]] = {
    "range": ("app", "without it the query reads every tenant's series"),
    "grouped": ("all", "without it the query reads series that belong to no app"),
    "history": ("all", "without it the query reads series that belong to no app"),
    "alert": ("all", "without it the query reads series that belong to no app"),
    "cost": ("ws", "without it the query reads every workspace's series"),
}


def quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal.

    PromQL strings follow Go's escape rules; escaping backslash, double quote and newline is enough for
    any Unicode text to stay inside the literal, so a label value can never add a matcher or an operator.
    (Non-ASCII is kept as is: ``\\uXXXX`` surrogate pairs would be rejected by Prometheus.)
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def duration(seconds: int) -> str:
    """A whole number of seconds as a PromQL duration in its largest exact unit: 3600 → ``1h``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclasses.dataclass(frozen=True)
class Queries:
    """The templates in use, with the label names, and the functions that fill them in."""

    workspace_label: str = "workspace_id"
    app_label: str = "app_id"
    # The label that tells an app's instances apart in the CPU and memory series (alert expressions).
    instance_label: str = "pod"
    range_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(RANGE_TEMPLATES))
    grouped_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(GROUPED_TEMPLATES))
    history_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(HISTORY_TEMPLATES))
    # Overrides of an alert type's metric; types absent here use ALERT_TEMPLATES or ALERT_FROM_GROUPED.
    alert_templates: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cost_templates: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(COST_TEMPLATES))
    # The label telling the range templates of one batch apart in its answer (dropped before anyone sees it).
    batch_label: str = RANGE_BATCH_LABEL
    # Seconds of history Prometheus keeps (its --storage.tsdb.retention.time, [prometheus] retention_s): a
    # GetAppMetrics custom window may not start earlier, where it would only find an empty chart.
    retention_s: int = DEFAULT_RETENTION_S

    # -- matchers ---------------------------------------------------------------------------------------

    def app_matchers(self, workspace_id: str, app_id: str) -> str:
        """The label matchers selecting exactly one app's series, values escaped."""
        return f"{self.workspace_label}={quote(workspace_id)}, {self.app_label}={quote(app_id)}"

    def all_matchers(self) -> str:
        return f'{self.workspace_label}!="", {self.app_label}!=""'

    def workspace_matchers(self, workspace_id: str) -> str:
        """Every app's series of one workspace, the value escaped."""
        return f'{self.workspace_label}={quote(workspace_id)}, {self.app_label}!=""'

    def grouping(self) -> str:
        return f"{self.workspace_label}, {self.app_label}"

    def app_key(self, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """The (workspace id, app id) a grouped result element belongs to; None if it lacks either label."""
        workspace_id, app_id = labels.get(self.workspace_label), labels.get(self.app_label)
        return (workspace_id, app_id) if workspace_id and app_id else None

    # -- queries ----------------------------------------------------------------------------------------

    def range_query(self, name: str, workspace_id: str, app_id: str, step_s: int) -> str:
        return _fill(
            self.range_templates[name],
            app=self.app_matchers(workspace_id, app_id),
            step=duration(step_s),
            all=self.all_matchers(),
            by=self.grouping(),
        )

    def range_batch(self, names: Sequence[str], workspace_id: str, app_id: str, step_s: int) -> str:
        """The range templates ``names`` as one expression, each result tagged ``batch_label="<name>"``.

        A batch of one is the template alone: nothing to tell apart, and a template may then be a scalar,
        which label_replace refuses.
        """
        queries = [self.range_query(name, workspace_id, app_id, step_s) for name in names]
        if len(queries) == 1:
            return queries[0]
        return " or ".join(
            _fill(RANGE_BATCH_PART, query=query, label=self.batch_label, name=name)
            for name, query in zip(names, queries, strict=True)
        )

    def grouped_query(self, name: str) -> str:
        return _fill(self.grouped_templates[name], all=self.all_matchers(), by=self.grouping())

    def history_query(self, name: str, lookback_s: int, resolution_s: int) -> str:
        return _fill(
            self.history_templates[name],
            all=self.all_matchers(),
            by=self.grouping(),
            lookback=duration(lookback_s),
            resolution=duration(resolution_s),
        )

    def alert_expression(self, alert_type: AlertType) -> str:
        """An alert type's metric for every app, in the unit the engine converts from (cores, bytes, %, ms)."""
        template = self.alert_templates.get(alert_type)
        if template is None and alert_type in ALERT_FROM_GROUPED:
            return self.grouped_query(ALERT_FROM_GROUPED[alert_type])
        return _fill(
            template or ALERT_TEMPLATES[alert_type],
            all=self.all_matchers(),
            by=self.grouping(),
            instance=self.instance_label,
        )

    def alert_window_query(self, alert_type: AlertType, hold_s: int, resolution_s: int, *, with_max: bool) -> str:
        """The hold-window query of one (alert type, hold): see server/alerts/engine.py for what it answers.

        With ``W = hold + R`` and ``R`` the resolution, per app: the minimum over the window, the value one
        step before it began (``start``: the series existed then), and, only when asked, the maximum::

            label_replace(min_over_time((E >= 0)[W:R]), "stat", "min", "", "")
            or label_replace(last_over_time((E >= 0)[R:R] offset W), "stat", "start", "", "")
            or label_replace(max_over_time((E >= 0)[W:R]), "stat", "max", "", "")

        ``E >= 0`` drops NaN points (a ratio over zero traffic). A hold of 0 is the value now.
        """
        expression = f"({self.alert_expression(alert_type)}) >= 0"
        if hold_s == 0:
            return expression
        step = duration(resolution_s)
        width = duration(hold_s + resolution_s)
        parts = [
            ("min", f"min_over_time(({expression})[{width}:{step}])"),
            ("start", f"last_over_time(({expression})[{step}:{step}] offset {width})"),
        ]
        if with_max:
            parts.append(("max", f"max_over_time(({expression})[{width}:{step}])"))
        return " or ".join(f'label_replace({query}, "stat", "{stat}", "", "")' for stat, query in parts)

    def cost_query(self, name: str, workspace_id: str, range_s: int) -> str:
        return _fill(
            self.cost_templates[name], ws=self.workspace_matchers(workspace_id), by=self.grouping(), range=f"{range_s}s"
        )


def _fill(template: str, **values: str) -> str:
    return string.Template(template).substitute(values)


def check_placeholders(family: str, template: str) -> str | None:
    """What is wrong with a template's placeholders for its family, or None: each one must be allowed there
    (:data:`PLACEHOLDERS`), and the family's matcher must be among them (:data:`REQUIRED_PLACEHOLDERS`)."""
    allowed = PLACEHOLDERS[family]
    parsed = string.Template(template)
    try:
        parsed.substitute(dict.fromkeys(allowed, "x"))
    except KeyError as error:
        return f"bad placeholder ${error.args[0]} (allowed here: {', '.join('$' + p for p in sorted(allowed))})"
    except ValueError as error:
        return f"bad placeholder: {error}"
    required, why = REQUIRED_PLACEHOLDERS[family]
    if required not in parsed.get_identifiers():  # `$$app` is a literal dollar sign, not the placeholder
        return f"must select by ${required}: {why}"
    return None
