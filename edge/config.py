"""The edge's configuration: one dataclass, read from flags, then environment variables, then defaults.

Nothing else in the edge reads ``os.environ``. ``monitoring-edge --help`` lists every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence

import envconfig
from edge import upstream as upstream_module
from envconfig import Setting

_MIN_RECEIVE_BYTES = 1024 * 1024
_MAX_PEM_BYTES = 1024 * 1024  # a certificate chain or a key; anything larger is the wrong file


@dataclasses.dataclass(frozen=True)
class Config:
    addr: str = "127.0.0.1:8080"
    upstream: str = "127.0.0.1:50051"
    # Origins allowed to call the API from a browser (CORS); empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # Deadline of a unary call when the request has no Grpc-Timeout header.
    default_deadline_s: float = 20.0
    # Upper bound on any deadline a client asks for with Grpc-Timeout.
    max_deadline_s: float = 300.0
    # Seconds without an event after which an SSE stream gets a `: keepalive` comment.
    heartbeat_s: float = 15.0
    # The `retry:` an SSE stream announces first, in milliseconds (EventSource's reconnect delay).
    sse_retry_ms: int = 3000
    # How long a stream may take to be accepted or refused upstream before the 200 is sent anyway;
    # a refusal within this window (bad key, unknown app) is a real HTTP status, later ones go in-band.
    stream_accept_wait_s: float = 1.0
    # Seconds open connections (SSE streams included) get to finish on SIGTERM.
    shutdown_grace_s: float = 5.0
    # The largest gRPC reply accepted from the server; a bigger one is a 502 (edge/upstream.py says why 64 MiB).
    max_receive_bytes: int = upstream_module.DEFAULT_MAX_RECEIVE_BYTES
    access_log: bool = True
    log_level: str = "INFO"
    # PEM files of the HTTPS listener's certificate chain and key (both or neither; neither: plain HTTP).
    tls_cert: str = ""
    tls_key: str = ""
    # TLS to the gRPC server: the CA to trust (empty: the system's roots) and, for mutual TLS, the edge's
    # client certificate chain and key (both or neither).
    upstream_tls: bool = False
    upstream_ca: str = ""
    upstream_client_cert: str = ""
    upstream_client_key: str = ""
    # The name the server's certificates are checked against; empty: the host in `upstream` (a list needs one).
    upstream_tls_name: str = ""
    # Their contents, read by load(); None: a plaintext upstream channel.
    upstream_tls_files: upstream_module.Tls | None = dataclasses.field(default=None, repr=False)

    @property
    def host(self) -> str:
        return self.addr.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.addr.rpartition(":")[2])

    @property
    def upstream_target(self) -> str:
        """``upstream`` as the gRPC channel target (``edge/upstream.py``): as given, or an ipv4:/ipv6: list."""
        return upstream_module.target(self.upstream)


# The environment variables are part of the public interface.
_SETTINGS = (
    Setting("addr", "MONITORING_EDGE_ADDR", "host:port the HTTP edge listens on"),
    Setting(
        "upstream",
        "MONITORING_UPSTREAM",
        "the monitoring gRPC server: host:port, comma-separated IP:port replicas, or a gRPC name (dns:///host:port)",
    ),
    Setting("cors_origins", "MONITORING_EDGE_CORS_ORIGINS", "comma-separated origins allowed by CORS"),
    Setting("default_deadline_s", "MONITORING_EDGE_DEADLINE", "seconds a unary call may take without Grpc-Timeout"),
    Setting("max_deadline_s", "MONITORING_EDGE_MAX_DEADLINE", "cap in seconds on a client's Grpc-Timeout"),
    Setting("heartbeat_s", "MONITORING_EDGE_HEARTBEAT", "seconds of SSE silence before a keepalive comment"),
    Setting("sse_retry_ms", "MONITORING_EDGE_SSE_RETRY_MS", "SSE reconnect delay announced to clients (ms)"),
    Setting("stream_accept_wait_s", "MONITORING_EDGE_STREAM_ACCEPT_WAIT", "seconds to wait for a stream's acceptance"),
    Setting("shutdown_grace_s", "MONITORING_EDGE_SHUTDOWN_GRACE", "seconds open connections get on SIGTERM"),
    Setting(
        "max_receive_bytes",
        "MONITORING_EDGE_MAX_RECEIVE_BYTES",
        "largest reply (bytes) taken from the gRPC server; a bigger one is a 502",
    ),
    Setting("access_log", "MONITORING_EDGE_ACCESS_LOG", "true or false: log one line per request"),
    Setting("log_level", "MONITORING_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    Setting("tls_cert", "MONITORING_EDGE_TLS_CERT", "PEM file of the HTTPS listener's certificate chain"),
    Setting("tls_key", "MONITORING_EDGE_TLS_KEY", "PEM file of the HTTPS listener's private key"),
    Setting("upstream_tls", "MONITORING_UPSTREAM_TLS", "true or false: call the gRPC server over TLS"),
    Setting("upstream_ca", "MONITORING_UPSTREAM_CA", "PEM file of the CA the gRPC server's certificate chains to"),
    Setting("upstream_client_cert", "MONITORING_UPSTREAM_CLIENT_CERT", "PEM file of the edge's client certificate"),
    Setting("upstream_client_key", "MONITORING_UPSTREAM_CLIENT_KEY", "PEM file of the edge's client key"),
    Setting(
        "upstream_tls_name",
        "MONITORING_UPSTREAM_TLS_NAME",
        "name the gRPC server's certificate must be valid for (default: the upstream's host)",
    ),
)


def parser() -> argparse.ArgumentParser:
    description = (
        "REST/SSE edge of the Dooor OS Monitoring API: serves /api/v1 over HTTP and calls the "
        "gRPC MonitoringService. Each flag falls back to its environment variable."
    )
    return envconfig.parser("monitoring-edge", description, Config(), _SETTINGS)


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    config = envconfig.load(Config, parser(), _SETTINGS, argv, environ)
    _check_addr(config.addr)
    _check_upstream(config.upstream)
    _check_max_receive_bytes(config.max_receive_bytes)
    _check_listener_tls(config)
    return dataclasses.replace(config, upstream_tls_files=_upstream_tls(config))


def _check_listener_tls(config: Config) -> None:
    """uvicorn reads the files itself; they are checked here so that a bad one is a ConfigError, not a trace."""
    _both_or_neither(config, "tls_cert", "tls_key")
    if config.tls_cert:
        _read_pem("tls_cert", config.tls_cert, "CERTIFICATE")
        _read_pem("tls_key", config.tls_key, "PRIVATE KEY")


def _upstream_tls(config: Config) -> upstream_module.Tls | None:
    _both_or_neither(config, "upstream_client_cert", "upstream_client_key")
    if not config.upstream_tls:
        for field in ("upstream_ca", "upstream_client_cert", "upstream_tls_name"):
            if getattr(config, field):
                raise envconfig.ConfigError(
                    f"{_named(field)}: only used over TLS; set {_named('upstream_tls')} to true"
                )
        return None
    listed = config.upstream_target.startswith(("ipv4:", "ipv6:")) and "," in config.upstream_target
    if listed and not config.upstream_tls_name:
        raise envconfig.ConfigError(
            f"{_named('upstream_tls_name')}: must be set when {_named('upstream')} lists several addresses"
            " over TLS: gRPC checks the certificates against this name (one the certificates hold)"
        )
    client = config.upstream_client_cert
    return upstream_module.Tls(
        root_certificates=_read_pem("upstream_ca", config.upstream_ca, "CERTIFICATE") if config.upstream_ca else None,
        certificate_chain=_read_pem("upstream_client_cert", client, "CERTIFICATE") if client else None,
        private_key=_read_pem("upstream_client_key", config.upstream_client_key, "PRIVATE KEY") if client else None,
        server_name=config.upstream_tls_name or None,
    )


def _both_or_neither(config: Config, first: str, second: str) -> None:
    for given, missing in ((first, second), (second, first)):
        if getattr(config, given) and not getattr(config, missing):
            raise envconfig.ConfigError(f"{_named(missing)}: must be set together with {_named(given)}")


def _read_pem(field: str, path: str, kind: str) -> bytes:
    """A PEM file's bytes; errors name the setting and the path, never the contents."""
    where = f"{_named(field)}={path!r}"
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)  # bounded: a path such as /dev/zero must not hang the start
    except OSError as error:
        raise envconfig.ConfigError(
            f"{where}: cannot read the file: {error.strerror or type(error).__name__}"
        ) from None
    if len(data) > _MAX_PEM_BYTES:
        raise envconfig.ConfigError(f"{where}: the file is larger than {_MAX_PEM_BYTES} bytes")
    # "PRIVATE KEY-----" also matches the older "EC PRIVATE KEY" and "RSA PRIVATE KEY" blocks.
    if b"-----BEGIN " not in data or f"{kind}-----".encode() not in data:
        raise envconfig.ConfigError(f"{where}: not a PEM file holding a {kind.lower()} (-----BEGIN {kind}-----)")
    return data


def _check_addr(value: str) -> None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise envconfig.ConfigError(f"invalid value for {_named('addr')}: {value!r} (expected host:port)")


def _check_max_receive_bytes(value: int) -> None:
    # Below 1 MiB a unit slip (64 for 64 MiB) would fail most replies; above, gRPC's C int overflows.
    if not _MIN_RECEIVE_BYTES <= value <= upstream_module.MAX_RECEIVE_BYTES_LIMIT:
        raise envconfig.ConfigError(
            f"invalid value for {_named('max_receive_bytes')}: {value} (expected bytes from {_MIN_RECEIVE_BYTES} "
            f"to {upstream_module.MAX_RECEIVE_BYTES_LIMIT}; default {upstream_module.DEFAULT_MAX_RECEIVE_BYTES})"
        )


def _check_upstream(value: str) -> None:
    try:
        upstream_module.target(value)
    except ValueError as error:
        raise envconfig.ConfigError(
            f"invalid value for {_named('upstream')}: {value!r}: {error} (expected host:port, comma-separated "
            "IP:port, or a gRPC name such as dns:///monitoring.internal:50051)"
        ) from None


def _named(field: str) -> str:
    """A setting as envconfig names it in its own errors: field (VARIABLE or --flag)."""
    setting = next(s for s in _SETTINGS if s.field == field)
    return f"{field} ({setting.env} or {setting.flag})"
