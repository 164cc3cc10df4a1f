"""The server's configuration, in one place: flags, then environment variables, then defaults, plus the TOML
file they may name. :func:`load` returns one frozen :class:`Config`; each capability receives its part of it.

Nothing else in the server reads ``os.environ`` or a TOML file. A value that cannot be used raises
:class:`ConfigError` naming the setting (the variable or flag, or the file and its key) and what is allowed;
only the command-line entry point turns it into an exit. docs/configuration.md documents every key.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import envconfig
from envconfig import ConfigError, Setting
from server.alerts.thresholds import BUILT_IN, Thresholds, check_thresholds
from server.errors import InvalidArgument
from server.logs.logql import LabelScheme
from server.metrics.promql import (
    COST_TEMPLATES,
    GROUPED_TEMPLATES,
    HISTORY_TEMPLATES,
    RANGE_TEMPLATES,
    Queries,
    check_placeholders,
)
from server.states import AlertType

__all__ = [
    "AlertSettings",
    "ApiSettings",
    "Config",
    "ConfigError",
    "CostSettings",
    "HealthSettings",
    "LokiSettings",
    "TailSettings",
    "TlsFiles",
    "load",
    "parser",
    "read_file",
]

# Prometheus's and Loki's label name syntax; the one check for every label name the file can set.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MIN_TOKEN_SECRET_BYTES = 16
_MIN_ADMIN_TOKEN_CHARS = 16
_MAX_PEM_BYTES = 1024 * 1024  # a certificate chain or a key; anything larger is the wrong file


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """The PEM contents of the TLS settings, read once at load (a file that cannot be read fails the start)."""

    certificate_chain: bytes
    private_key: bytes
    # When set, clients must present a certificate signed by one of these CAs (mutual TLS).
    client_ca: bytes | None = None


@dataclasses.dataclass(frozen=True)
class HealthSettings:
    """``[health]``: the thresholds of the health judgement, snapshot retention and uptime history."""

    degraded_error_rate_percent: float = 5.0
    unhealthy_error_rate_percent: float = 50.0
    degraded_latency_ms: float = 1000.0
    unhealthy_latency_ms: float = 5000.0
    # Snapshots older than this are deleted (the latest of each app is always younger: written every tick).
    # 31 days: GetAppHealthHistory's 30-day uptime window and its longest transitions window are read from them.
    snapshot_retention_s: float = 31 * 86400.0
    # After a restart, uptime continues from the stored snapshot if it is at most this old.
    uptime_gap_s: float = 300.0
    # At startup, how far back Prometheus's history is read to find when each app was last down, and at
    # which resolution (outages shorter than the resolution can be missed; uptime is capped by the lookback).
    uptime_lookback_s: float = 7 * 86400.0
    uptime_resolution_s: float = 600.0


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """``[alerts]``: default thresholds per type and the resolution of the hold windows.

    (Its ``instance_label`` and ``[alerts.expressions]`` are PromQL, so they live in :class:`Queries`.)
    """

    defaults: Mapping[AlertType, Thresholds] = dataclasses.field(default_factory=lambda: dict(BUILT_IN))
    # Step of the hold-window subqueries, in seconds; holds are judged at this resolution.
    resolution_s: int = 15
    # Seconds after a recorded deploy of an app during which its alerts fire held back: they are notified
    # only if still open when the hold ends (0 turns the hold off). See docs/notifications.md.
    deploy_hold_s: int = 300


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: how alert notifications are sent (server/notify/; docs/notifications.md)."""

    # Seconds between two rounds of the sender (due deliveries, reminders, the Alertmanager refresh).
    poll_s: float = 1.0
    # Retries back off exponentially with full jitter from the first delay up to the cap; a delivery still
    # failing this long after its event is given up (status failed).
    retry_initial_s: float = 1.0
    retry_max_s: float = 600.0
    give_up_after_s: float = 86400.0
    # Seconds one attempt may take (connect, send, answer).
    timeout_s: float = 10.0
    # Deliveries sent at once by one sender round.
    concurrency: int = 8
    # Seconds between two pushes of the open alerts to an Alertmanager channel; each push sets endsAt to three
    # intervals ahead, so an Alertmanager resolves them by itself if this service stops pushing.
    alertmanager_resend_s: float = 60.0
    # Whether channel URLs may point at loopback, private, link-local or otherwise internal addresses. Off by
    # default: a tenant's webhook must not reach the service's own network (make run and the tests turn it on).
    allow_private_destinations: bool = False
    # Per-workspace caps.
    max_channels_per_workspace: int = 20
    max_live_silences_per_workspace: int = 1000
    # Days delivered and failed deliveries stay in the delivery log.
    delivery_log_days: int = 30


@dataclasses.dataclass(frozen=True)
class CostSettings:
    """``[cost]``: the prices of the overview's cost estimate (its queries are in :class:`Queries`)."""

    instance_hour_usd: float = 0.01
    memory_gib_hour_usd: float = 0.005
    # The scrape interval of the `up` and memory series: each sample stands for this many seconds.
    sample_interval_s: float = 15.0


@dataclasses.dataclass(frozen=True)
class TailSettings:
    """The live stream's hub (``stream_*``, ``max_*`` and ``tail_*`` in ``[loki]``; the rest are fixed here)."""

    buffer: int = 1000  # messages buffered per subscriber before it gets a slow_consumer gap
    buffer_bytes: int = 1024 * 1024  # ... and bytes (one message always fits: Loki's lines reach 256 KB)
    max_lifetime_s: float = 3600.0  # a stream then ends with reason `lifetime` (the client resumes)
    stalled_after_s: float = 60.0  # a subscriber that takes nothing this long from a full buffer is dropped
    key_recheck_s: float = 5.0  # how often a stream's API key is checked again (revoked: the stream ends)
    max_streams_per_key: int = 20  # open streams of one API key in one server process
    max_streams: int = 1000  # open streams in one server process
    # Loki allows 10 tails per tenant (max_concurrent_tail_requests) and every workspace shares the tenant:
    max_upstream_tails: int = 8  # upstream Loki tails of one server process (one per tailed app)
    max_tailed_apps_per_workspace: int = 3  # distinct apps one workspace tails at once in one server process
    linger_s: float = 5.0  # an upstream tail stays open this long after its last subscriber leaves
    late_window_s: float = 5.0  # how far behind the newest entry a late or refilled entry is still accepted
    delay_for: int = 0  # Loki's delay_for (0..5 s)
    fill_batch: int = 1000  # query_range limit while back-filling or replaying
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 5.0  # a connection that lived this long resets the backoff
    pace_wait_s: float = 1.0  # how long a back-fill waits for a subscriber's buffer to have room
    watchdog_s: float = 5.0  # a tail silent this long is checked against query_range (hung tails)
    lookback_s: float = 2.0  # a new upstream starts this long before its first subscriber came


@dataclasses.dataclass(frozen=True)
class LokiSettings:
    """``[loki]``: the tenant, the stream labels, and the tail hub's settings."""

    tenant: str = ""  # sent as X-Scope-OrgID when set (a multi-tenant Loki)
    labels: LabelScheme = dataclasses.field(default_factory=LabelScheme)
    tail: TailSettings = dataclasses.field(default_factory=TailSettings)


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    """``[api]``: the per-API-key token bucket on MonitoringService calls (per server process; 0 turns it off),
    the API's cache of Prometheus range results (kept until the next step boundary; 0 turns it off), and how
    long a server process trusts an API key it has looked up (0: every call asks the store)."""

    rate_per_key: float = 50.0  # calls per second, refilled continuously
    burst_per_key: int = 100  # calls a key may make at once after being idle
    range_cache_entries: int = 1024
    # Seconds: a key revoked through another process is refused by this one within this bound (at once by the
    # process that revoked it). See docs/configuration.md.
    key_cache_s: float = 1.0


# A longer key cache would let a revoked key work for longer than an operator expects of "revoke".
MAX_KEY_CACHE_S = 60.0


@dataclasses.dataclass(frozen=True)
class Config:
    grpc_addr: str = "127.0.0.1:50051"
    # When set, PlatformService (workspaces, keys, apps: the operators' API) is served only on this second
    # listener, so the tenants' port does not offer it at all. Empty: both services on grpc_addr.
    admin_addr: str = ""
    db: str = dataclasses.field(default="./data/monitoring.db", repr=False)  # a URL may carry a password
    prometheus_url: str = "http://127.0.0.1:9090"
    loki_url: str = "http://127.0.0.1:3100"
    # Guards PlatformService; when empty, every PlatformService call is refused.
    admin_token: str = dataclasses.field(default="", repr=False)
    # Signs log page tokens and stream cursors (HMAC). When empty, a random one is generated once and kept
    # in the store, so tokens survive restarts and work on every replica sharing the database.
    token_secret: str = dataclasses.field(default="", repr=False)
    # Path of a TOML file that overrides queries, label names and thresholds (see docs/configuration.md).
    config_file: str = ""
    # Seconds a Prometheus or Loki request may take before the call fails with DEADLINE_EXCEEDED.
    backend_timeout_s: float = 10.0
    # Seconds between two runs of the health and alert evaluator.
    eval_interval_s: float = 30.0
    # Seconds in-flight calls get to finish on SIGTERM before they are cancelled.
    shutdown_grace_s: float = 5.0
    log_level: str = "INFO"
    # Server processes sharing grpc_addr (SO_REUSEPORT); 0 means one per core. 1 runs no supervisor.
    workers: int = 1
    # PEM files of the listener's certificate chain and key (both or neither; neither: plaintext), and of the
    # CA that client certificates must be signed by (mutual TLS; needs the other two).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Their contents, read by load(); None: plaintext.
    tls: TlsFiles | None = dataclasses.field(default=None, repr=False)
    # From the TOML file (defaults when there is none).
    queries: Queries = dataclasses.field(default_factory=Queries)
    health: HealthSettings = dataclasses.field(default_factory=HealthSettings)
    alerts: AlertSettings = dataclasses.field(default_factory=AlertSettings)
    cost: CostSettings = dataclasses.field(default_factory=CostSettings)
    loki: LokiSettings = dataclasses.field(default_factory=LokiSettings)
    api: ApiSettings = dataclasses.field(default_factory=ApiSettings)
    notify: NotifySettings = dataclasses.field(default_factory=NotifySettings)

    @property
    def stale_after_s(self) -> float:
        """A health snapshot older than three missed ticks means the evaluator is not running: ``unknown``."""
        return max(3 * self.eval_interval_s, 60.0)


# The environment variables are part of the public interface.
_SETTINGS = (
    Setting("grpc_addr", "MONITORING_GRPC_ADDR", "host:port the gRPC server listens on"),
    Setting(
        "admin_addr",
        "MONITORING_ADMIN_ADDR",
        "host:port of a separate listener for PlatformService (empty: served on grpc_addr)",
    ),
    Setting("db", "MONITORING_DB", "path of the SQLite database file, or a postgresql:// URL", file_variant=True),
    Setting("prometheus_url", "MONITORING_PROMETHEUS_URL", "base URL of Prometheus's HTTP API"),
    Setting("loki_url", "MONITORING_LOKI_URL", "base URL of Loki's HTTP API"),
    Setting(
        "admin_token",
        "MONITORING_ADMIN_TOKEN",
        "bearer token that PlatformService requires",
        secret=True,
        file_variant=True,
    ),
    Setting(
        "token_secret",
        "MONITORING_TOKEN_SECRET",
        "secret (16+ chars) that signs log page tokens and cursors",
        secret=True,
        file_variant=True,
    ),
    Setting("config_file", "MONITORING_CONFIG_FILE", "TOML file with query templates, labels and thresholds"),
    Setting("backend_timeout_s", "MONITORING_BACKEND_TIMEOUT", "seconds before a backend request times out"),
    Setting("eval_interval_s", "MONITORING_EVAL_INTERVAL", "seconds between health/alert evaluations"),
    Setting("shutdown_grace_s", "MONITORING_SHUTDOWN_GRACE", "seconds in-flight calls get on SIGTERM"),
    Setting("log_level", "MONITORING_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    Setting("workers", "MONITORING_WORKERS", "server processes sharing the port (0: one per core)"),
    Setting("tls_cert", "MONITORING_TLS_CERT", "PEM file of the gRPC listener's certificate chain (TLS)"),
    Setting("tls_key", "MONITORING_TLS_KEY", "PEM file of the gRPC listener's private key (TLS)"),
    Setting("tls_client_ca", "MONITORING_TLS_CLIENT_CA", "PEM file of the CA client certificates must chain to"),
)


def parser() -> argparse.ArgumentParser:
    description = "Dooor OS Monitoring API gRPC server. Each flag falls back to its environment variable."
    return envconfig.parser("monitoring-server", description, Config(), _SETTINGS)


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The whole configuration: flags and environment, then the TOML file they name (if any)."""
    config = envconfig.load(Config, parser(), _SETTINGS, argv, environ)
    if config.token_secret and len(config.token_secret.encode()) < _MIN_TOKEN_SECRET_BYTES:
        raise ConfigError(
            f"token_secret (MONITORING_TOKEN_SECRET or --token-secret): must be at least"
            f" {_MIN_TOKEN_SECRET_BYTES} bytes long"
        )
    _check_workers(config)
    _check_admin_addr(config)
    _check_ranges(config)
    _check_admin_token(config.admin_token)
    config = dataclasses.replace(config, tls=_read_tls(config))
    if not config.config_file:
        return config
    return dataclasses.replace(config, **read_file(config.config_file))


def _check_workers(config: Config) -> None:
    """Several workers bind each address together, so each must be a fixed TCP port."""
    name = "workers (MONITORING_WORKERS or --workers)"
    if config.workers < 0:
        raise ConfigError(f"{name}: must be an integer ≥ 0 (0: one per core), got {config.workers}")
    if config.workers == 1:
        return
    for field in ("grpc_addr", "admin_addr") if config.admin_addr else ("grpc_addr",):
        addr = getattr(config, field)
        # Each worker would get a port of its own from port 0, and a second bind of a socket path replaces it.
        if addr.startswith("unix") or addr.rpartition(":")[2] == "0":
            raise ConfigError(
                f"{name}: {config.workers} (0: one per core) needs a fixed TCP port in {_setting_name(field)}"
                f" for the workers to share, got {addr!r}"
            )


def _check_admin_addr(config: Config) -> None:
    if config.admin_addr and config.admin_addr == config.grpc_addr:
        raise ConfigError(
            f"{_setting_name('admin_addr')}: must differ from grpc_addr ({config.grpc_addr!r}),"
            " or be empty to serve PlatformService on grpc_addr"
        )


def _check_ranges(config: Config) -> None:
    """Durations outside these bounds are typos (milliseconds for seconds) or stall a tick, a wait or a drain."""
    _check_seconds("eval_interval_s", config.eval_interval_s, 0.1, 3600.0)
    _check_seconds("backend_timeout_s", config.backend_timeout_s, 0.0, 300.0, lowest_included=False)
    _check_seconds("shutdown_grace_s", config.shutdown_grace_s, 0.0, 600.0)


def _check_seconds(field: str, value: float, lowest: float, highest: float, *, lowest_included: bool = True) -> None:
    above = value >= lowest if lowest_included else value > lowest
    if not (above and value <= highest):  # NaN fails both comparisons
        bounds = (
            f"from {lowest:g} to {highest:g}" if lowest_included else f"greater than {lowest:g}, at most {highest:g}"
        )
        raise ConfigError(f"{_setting_name(field)}: must be {bounds} seconds, got {value:g}")


def _check_admin_token(token: str) -> None:
    # Empty means PlatformService is off; a short one could be guessed, and it guards every workspace.
    if token and len(token) < _MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            f"{_setting_name('admin_token')}: must be at least {_MIN_ADMIN_TOKEN_CHARS} characters long"
            " (or empty to refuse every PlatformService call)"
        )


def _read_tls(config: Config) -> TlsFiles | None:
    """The TLS files' contents; plaintext (None) when no TLS setting is given."""
    if not (config.tls_cert or config.tls_key or config.tls_client_ca):
        return None
    for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if getattr(config, given) and not getattr(config, missing):
            raise ConfigError(f"{_setting_name(missing)}: must be set together with {_setting_name(given)}")
    if not config.tls_cert:
        raise ConfigError(
            f"{_setting_name('tls_client_ca')}: verifies client certificates, so it needs TLS:"
            f" set {_setting_name('tls_cert')} and {_setting_name('tls_key')} too"
        )
    return TlsFiles(
        certificate_chain=_read_pem("tls_cert", config.tls_cert, "CERTIFICATE"),
        private_key=_read_pem("tls_key", config.tls_key, "PRIVATE KEY"),
        client_ca=_read_pem("tls_client_ca", config.tls_client_ca, "CERTIFICATE") if config.tls_client_ca else None,
    )


def _read_pem(field: str, path: str, kind: str) -> bytes:
    """A PEM file's bytes; errors name the setting and the path, never the contents."""
    where = f"{_setting_name(field)}={path!r}"
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)  # bounded: a path such as /dev/zero must not hang the start
    except OSError as error:
        raise ConfigError(f"{where}: cannot read the file: {error.strerror or type(error).__name__}") from None
    if len(data) > _MAX_PEM_BYTES:
        raise ConfigError(f"{where}: the file is larger than {_MAX_PEM_BYTES} bytes")
    # "PRIVATE KEY-----" also matches the older "EC PRIVATE KEY" and "RSA PRIVATE KEY" blocks.
    if b"-----BEGIN " not in data or f"{kind}-----".encode() not in data:
        raise ConfigError(f"{where}: not a PEM file holding a {kind.lower()} (-----BEGIN {kind}-----)")
    return data


def _setting_name(field: str) -> str:
    """A setting as the errors name it: field (VARIABLE or --flag)."""
    setting = next(s for s in _SETTINGS if s.field == field)
    return f"{field} ({setting.env} or {setting.flag})"


def read_file(path: str) -> dict[str, Any]:
    """The settings a TOML file gives, as :class:`Config` fields (``queries``, ``health``, ``alerts``, ...)."""
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    return from_tables(tables, source=f"config file {path}")


def from_tables(tables: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """The settings of already parsed TOML tables; ``source`` names where they came from in errors."""
    root = _Table(source, "", tables)
    root.only(("prometheus", "health", "alerts", "cost", "loki", "api", "notify"))
    prometheus, alerts, cost = root.table("prometheus"), root.table("alerts"), root.table("cost")
    return {
        "queries": _queries(prometheus, alerts, cost),
        "health": _health(root.table("health")),
        "alerts": _alerts(alerts),
        "cost": _cost(cost),
        "loki": _loki(root.table("loki")),
        "api": _api(root.table("api")),
        "notify": _notify(root.table("notify")),
    }


# -- one function per table -------------------------------------------------------------------------------


def _queries(prometheus: _Table, alerts: _Table, cost: _Table) -> Queries:
    """``[prometheus]`` and its template tables, ``[alerts]`` instance_label and expressions, ``[cost.queries]``."""
    prometheus.only(("workspace_label", "app_label", "retention_s", "range", "grouped", "history"))
    defaults = Queries()
    return Queries(
        workspace_label=prometheus.label("workspace_label", defaults.workspace_label),
        app_label=prometheus.label("app_label", defaults.app_label),
        # Whole seconds, at least the shortest period: how far back a GetAppMetrics custom window may start.
        retention_s=prometheus.integer("retention_s", defaults.retention_s, lowest=3600),
        instance_label=alerts.label("instance_label", defaults.instance_label),
        range_templates={**RANGE_TEMPLATES, **prometheus.table("range").templates("range", RANGE_TEMPLATES)},
        grouped_templates={**GROUPED_TEMPLATES, **prometheus.table("grouped").templates("grouped", GROUPED_TEMPLATES)},
        history_templates={**HISTORY_TEMPLATES, **prometheus.table("history").templates("history", HISTORY_TEMPLATES)},
        alert_templates=alerts.table("expressions").templates("alert", AlertType),
        cost_templates={**COST_TEMPLATES, **cost.table("queries").templates("cost", COST_TEMPLATES)},
    )


def _health(table: _Table) -> HealthSettings:
    defaults = HealthSettings()
    names = [f.name for f in dataclasses.fields(HealthSettings)]
    table.only(names)
    values = {name: table.number(name, getattr(defaults, name), positive=True) for name in names}
    for name in ("uptime_lookback_s", "uptime_resolution_s"):  # PromQL subquery durations: whole seconds
        if not values[name].is_integer():
            raise table.error(name, f"must be a whole number of seconds, got {values[name]:g}")
    settings = HealthSettings(**values)
    if settings.degraded_error_rate_percent > settings.unhealthy_error_rate_percent:
        raise table.error(None, "degraded_error_rate_percent exceeds unhealthy_error_rate_percent")
    if settings.degraded_latency_ms > settings.unhealthy_latency_ms:
        raise table.error(None, "degraded_latency_ms exceeds unhealthy_latency_ms")
    return settings


def _alerts(table: _Table) -> AlertSettings:
    table.only(("defaults", "resolution_s", "deploy_hold_s", "instance_label", "expressions"))
    resolution = table.integer("resolution_s", AlertSettings.resolution_s, lowest=1, highest=3600)
    deploy_hold = table.integer("deploy_hold_s", AlertSettings.deploy_hold_s, lowest=0, highest=86400)
    overrides = table.table("defaults")
    overrides.only(AlertType)
    defaults = dict(BUILT_IN)
    for alert_type in AlertType:
        if alert_type in overrides.values:
            defaults[alert_type] = _thresholds(overrides.table(alert_type), BUILT_IN[alert_type])
    return AlertSettings(defaults=defaults, resolution_s=resolution, deploy_hold_s=deploy_hold)


def _thresholds(table: _Table, base: Thresholds) -> Thresholds:
    table.only(("warning", "critical", "recovery", "hold_seconds"))
    merged = Thresholds(
        warning=table.number("warning", base.warning),
        critical=table.number("critical", base.critical),
        recovery=table.number("recovery", base.recovery),
        hold_seconds=table.integer("hold_seconds", base.hold_seconds, lowest=0),
    )
    try:
        return check_thresholds(merged)
    except InvalidArgument as error:
        raise table.error(None, error.message) from None


def _cost(table: _Table) -> CostSettings:
    names = [f.name for f in dataclasses.fields(CostSettings)]
    table.only((*names, "queries"))
    defaults = CostSettings()
    settings = CostSettings(**{name: table.number(name, getattr(defaults, name)) for name in names})
    if settings.sample_interval_s <= 0:
        raise table.error("sample_interval_s", "must be greater than 0")
    return settings


def _loki(table: _Table) -> LokiSettings:
    table.only(
        (
            "tenant",
            "workspace_label",
            "app_label",
            "level_label",
            "level_fallback_label",
            "stream_buffer",
            "stream_buffer_bytes",
            "stream_max_lifetime_s",
            "stream_stalled_after_s",
            "stream_key_recheck_s",
            "max_streams_per_key",
            "max_streams",
            "max_upstream_tails",
            "max_tailed_apps_per_workspace",
            "tail_linger_s",
            "tail_late_window_s",
            "tail_delay_for",
            "tail_watchdog_s",
        )
    )
    labels, tail = LabelScheme(), TailSettings()
    tenant = table.values.get("tenant", "")
    if isinstance(tenant, bool) or not isinstance(tenant, str | int):  # an org id may be written as a number
        raise table.error("tenant", f"must be a string, got {tenant!r}")
    return LokiSettings(
        tenant=str(tenant),
        labels=LabelScheme(
            workspace_label=table.label("workspace_label", labels.workspace_label),
            app_label=table.label("app_label", labels.app_label),
            level_label=table.label("level_label", labels.level_label),
            level_fallback_label=table.label("level_fallback_label", labels.level_fallback_label),
        ),
        tail=dataclasses.replace(
            tail,
            buffer=table.integer("stream_buffer", tail.buffer, lowest=2),
            buffer_bytes=table.integer("stream_buffer_bytes", tail.buffer_bytes, lowest=1024),
            max_lifetime_s=table.number("stream_max_lifetime_s", tail.max_lifetime_s, lowest=1.0),
            stalled_after_s=table.number("stream_stalled_after_s", tail.stalled_after_s, lowest=1.0),
            key_recheck_s=table.number("stream_key_recheck_s", tail.key_recheck_s, lowest=0.5),
            max_streams_per_key=table.integer("max_streams_per_key", tail.max_streams_per_key, lowest=1),
            max_streams=table.integer("max_streams", tail.max_streams, lowest=1),
            max_upstream_tails=table.integer("max_upstream_tails", tail.max_upstream_tails, lowest=1),
            max_tailed_apps_per_workspace=table.integer(
                "max_tailed_apps_per_workspace", tail.max_tailed_apps_per_workspace, lowest=1
            ),
            linger_s=table.number("tail_linger_s", tail.linger_s),
            late_window_s=table.number("tail_late_window_s", tail.late_window_s),
            delay_for=table.integer("tail_delay_for", tail.delay_for, lowest=0, highest=5, why="Loki's limit"),
            watchdog_s=table.number("tail_watchdog_s", tail.watchdog_s, lowest=0.5),
        ),
    )


def _api(table: _Table) -> ApiSettings:
    table.only(("rate_per_key", "burst_per_key", "range_cache_entries", "key_cache_s"))
    defaults = ApiSettings()
    key_cache_s = table.number("key_cache_s", defaults.key_cache_s)
    if key_cache_s > MAX_KEY_CACHE_S:
        raise table.error("key_cache_s", f"must be at most {MAX_KEY_CACHE_S:g} seconds, got {key_cache_s:g}")
    return ApiSettings(
        rate_per_key=table.number("rate_per_key", defaults.rate_per_key),
        burst_per_key=table.integer("burst_per_key", defaults.burst_per_key, lowest=0),
        range_cache_entries=table.integer("range_cache_entries", defaults.range_cache_entries, lowest=0),
        key_cache_s=key_cache_s,
    )


def _notify(table: _Table) -> NotifySettings:
    defaults = NotifySettings()
    table.only(field.name for field in dataclasses.fields(NotifySettings))
    retry_initial = table.number("retry_initial_s", defaults.retry_initial_s, positive=True)
    retry_max = table.number("retry_max_s", defaults.retry_max_s, positive=True)
    if retry_max < retry_initial:
        raise table.error("retry_max_s", f"must be at least retry_initial_s ({retry_initial:g}), got {retry_max:g}")
    allow = table.values.get("allow_private_destinations", defaults.allow_private_destinations)
    if not isinstance(allow, bool):
        raise table.error("allow_private_destinations", f"must be true or false, got {allow!r}")
    return NotifySettings(
        poll_s=table.number("poll_s", defaults.poll_s, positive=True),
        retry_initial_s=retry_initial,
        retry_max_s=retry_max,
        give_up_after_s=table.number("give_up_after_s", defaults.give_up_after_s, positive=True),
        timeout_s=table.number("timeout_s", defaults.timeout_s, positive=True),
        concurrency=table.integer("concurrency", defaults.concurrency, lowest=1, highest=256),
        alertmanager_resend_s=table.number("alertmanager_resend_s", defaults.alertmanager_resend_s, positive=True),
        allow_private_destinations=allow,
        max_channels_per_workspace=table.integer(
            "max_channels_per_workspace", defaults.max_channels_per_workspace, lowest=1
        ),
        max_live_silences_per_workspace=table.integer(
            "max_live_silences_per_workspace", defaults.max_live_silences_per_workspace, lowest=1
        ),
        delivery_log_days=table.integer("delivery_log_days", defaults.delivery_log_days, lowest=1, highest=3650),
    )


# -- reading one table ------------------------------------------------------------------------------------


class _Table:
    """One TOML table and where it came from; its readers raise ConfigError naming the file and the key."""

    def __init__(self, source: str, name: str, values: Mapping[str, Any]):
        self.source = source
        self.name = name
        self.values = values

    def error(self, key: str | None, problem: str) -> ConfigError:
        where = f"[{self.name}]" if self.name else "top level"
        return ConfigError(f"{self.source}: {where}{' ' + key if key else ''}: {problem}")

    def only(self, allowed: Iterable[str]) -> None:
        allowed = sorted(str(key) for key in allowed)
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            raise self.error(None, f"unknown keys {unknown}; allowed: {allowed}")

    def table(self, key: str) -> _Table:
        """A sub-table; empty when absent."""
        value = self.values.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table")
        return _Table(self.source, f"{self.name}.{key}" if self.name else key, value)

    def label(self, key: str, default: str) -> str:
        value = self.values.get(key, default)
        if not isinstance(value, str) or not _LABEL_NAME.fullmatch(value):
            raise self.error(key, f"{value!r} is not a label name (expected {_LABEL_NAME.pattern})")
        return value

    def number(self, key: str, default: float, *, positive: bool = False, lowest: float = 0.0) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.error(key, f"must be a positive number, got {value!r}")
        if value < lowest:
            raise self.error(key, f"must be a number ≥ {lowest:g}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, lowest: int, highest: int | None = None, why: str = "") -> int:
        value = self.values.get(key, default)
        bounds = f"from {lowest} to {highest}" if highest is not None else f"≥ {lowest}"
        if isinstance(value, float) and value.is_integer():  # `buffer = 100.0` means 100
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer {bounds}, got {value!r}")
        if value < lowest or (highest is not None and value > highest):
            raise self.error(key, f"must be an integer {bounds}{f' ({why})' if why else ''}, got {value!r}")
        return value

    def templates(self, family: str, known: Iterable[str]) -> dict[str, str]:
        """The PromQL overrides of one template table, each filled once so a typo fails now."""
        self.only(known)
        out: dict[str, str] = {}
        for key, value in self.values.items():
            if not isinstance(value, str) or not value.strip():
                raise self.error(key, "must be a non-empty PromQL string")
            problem = check_placeholders(family, value)
            if problem is not None:
                raise self.error(key, f"{problem} in {value!r}")
            out[key] = value
        return out
