"""The server's configuration: one dataclass, read from flags, then environment variables, then defaults.

Nothing else in the server reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import envconfig
from envconfig import Setting


@dataclasses.dataclass(frozen=True)
class Config:
    grpc_addr: str = "127.0.0.1:50051"
    db: str = "./data/monitoring.db"
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


# The environment variables are part of the public interface.
_SETTINGS = (
    Setting("grpc_addr", "MONITORING_GRPC_ADDR", "host:port the gRPC server listens on"),
    Setting("db", "MONITORING_DB", "path of the SQLite database file"),
    Setting("prometheus_url", "MONITORING_PROMETHEUS_URL", "base URL of Prometheus's HTTP API"),
    Setting("loki_url", "MONITORING_LOKI_URL", "base URL of Loki's HTTP API"),
    Setting("admin_token", "MONITORING_ADMIN_TOKEN", "bearer token that PlatformService requires", secret=True),
    Setting(
        "token_secret",
        "MONITORING_TOKEN_SECRET",
        "secret (16+ chars) that signs log page tokens and cursors",
        secret=True,
    ),
    Setting("config_file", "MONITORING_CONFIG_FILE", "TOML file with query templates, labels and thresholds"),
    Setting("backend_timeout_s", "MONITORING_BACKEND_TIMEOUT", "seconds before a backend request times out"),
    Setting("eval_interval_s", "MONITORING_EVAL_INTERVAL", "seconds between health/alert evaluations"),
    Setting("shutdown_grace_s", "MONITORING_SHUTDOWN_GRACE", "seconds in-flight calls get on SIGTERM"),
    Setting("log_level", "MONITORING_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
)


def parser() -> argparse.ArgumentParser:
    description = "Dooor OS Monitoring API gRPC server. Each flag falls back to its environment variable."
    return envconfig.parser("monitoring-server", description, Config(), _SETTINGS)


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    return envconfig.load(Config, parser(), _SETTINGS, argv, environ)


@functools.cache
def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SystemExit(f"cannot read config file {path}: {error}") from None


def file_section(config: Config, name: str) -> dict[str, Any]:
    """One top-level table of the TOML config file (``[prometheus]``, ``[loki]``, ...); empty when absent.

    Each capability reads and validates its own section; docs/configuration.md documents them all.
    """
    if not config.config_file:
        return {}
    section = _read_file(config.config_file).get(name, {})
    if not isinstance(section, dict):
        raise SystemExit(f"config file {config.config_file}: [{name}] must be a table")
    return section
