"""The upstream: ``MONITORING_UPSTREAM`` → one gRPC channel target, and the one channel the edge calls through.

Three forms are accepted (``docs/edge.md``, "Several upstreams"):

- ``host:port``: passed to gRPC unchanged, so gRPC resolves it with its default ``dns`` resolver (every
  address the name has is a replica);
- several comma-separated ``IP:port``: one ``ipv4:`` or ``ipv6:`` target, the C-core schemes that take a
  list (grpc ``doc/naming.md``);
- a gRPC name with a resolver scheme (``dns:///monitoring.internal:50051``, ``unix:/run/monitoring.sock``):
  passed to gRPC as is.

Whatever the form, the channel balances with ``round_robin`` and gRPC's client-side health checking
(gRFC A17): each connected replica is watched over ``grpc.health.v1.Health/Watch`` and receives calls only
while it reports SERVING. With :class:`Tls` the channel is a TLS one (``MONITORING_UPSTREAM_TLS``), with the
same options.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import grpc

# The resolver schemes gRPC C-core registers by default (grpc doc/naming.md). Any other prefix is a host
# name: gRPC itself falls back to ``dns`` for an unknown scheme, so ``localhost:50051`` is host:port.
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")

# round_robin over every resolved address; healthCheckConfig turns on C-core's health-checking client in
# each subchannel, which holds a replica out of the rotation while its overall health ("") is not SERVING.
# pick_first, gRPC's default policy, does no health checking (gRFC A17), so the policy is part of the point.
SERVICE_CONFIG = {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}

CHANNEL_OPTIONS: tuple[tuple[str, str | int], ...] = (
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    # grpc.service_config is only a default: a service config published in DNS (TXT) would replace it and
    # could drop the health checking. The edge's balancing is its own decision, so resolvers don't get one.
    ("grpc.service_config_disable_resolution", 1),
    # Keep idle connections healthy and notice a replica that vanished without closing its connection
    # (a partition, not a clean exit) within keepalive_time + keepalive_timeout; long streams may live.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Never ("grpc.inhibit_health_checking", 1): it would keep NOT_SERVING replicas in the rotation
    # (tests/edge/test_upstreams.py shows both behaviours on the installed grpcio).
)

# The largest reply the edge takes from the server (MONITORING_EDGE_MAX_RECEIVE_BYTES). gRPC's 4 MiB default
# is smaller than a ListAppLogs page of 1000 lines of a few KB; the server caps neither its replies nor
# Loki's line length (max_line_size is 256 KB, so a page could reach 256 MB), so the edge sets a bound that
# holds 1000 lines of 64 KB and refuses a bigger reply with a clear error (edge/errors.py).
DEFAULT_MAX_RECEIVE_BYTES = 64 * 1024 * 1024
# gRPC keeps message length limits in a C int.
MAX_RECEIVE_BYTES_LIMIT = 2**31 - 1


def target(value: str) -> str:
    """The gRPC channel target for a ``MONITORING_UPSTREAM`` value; ``ValueError`` says what is wrong."""
    value = value.strip()
    if value.startswith(_SCHEMES):  # case as gRPC matches it
        if not value.partition(":")[2].strip("/"):
            raise ValueError("the gRPC name has nothing after its scheme")
        return value
    addresses = [part.strip() for part in value.split(",")]
    if not all(addresses):
        raise ValueError("an address in the list is empty")
    families = [_family(address) for address in addresses]
    if len(addresses) == 1:
        return addresses[0]  # one address: what gRPC was always given
    if len(set(addresses)) != len(addresses):
        raise ValueError("an address is listed twice")
    # ipv4:/ipv6: take only IP literals, and a list of names has no gRPC form: resolving the names here,
    # once, would freeze their addresses for the life of the process. One DNS name that resolves to every
    # replica (dns:///name:port) is re-resolved by gRPC instead, so names go there.
    if None in families:
        raise ValueError(
            "a list may hold only IP addresses (IPv6 in brackets); for host names use one DNS name that "
            "resolves to every replica, e.g. dns:///monitoring.internal:50051"
        )
    if len(set(families)) != 1:
        raise ValueError("a list cannot mix IPv4 and IPv6 addresses (gRPC's ipv4: and ipv6: lists are separate)")
    return f"ipv{families[0]}:" + ",".join(addresses)


@dataclasses.dataclass(frozen=True)
class Tls:
    """PEM contents for a TLS channel: the CAs to trust (None: the system's roots) and, for mutual TLS,
    the edge's client certificate chain and key (both or neither)."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = dataclasses.field(default=None, repr=False)
    # The name every replica's certificate is checked against instead of the target's host (an IP list has
    # none gRPC can check: its authority is the whole list).
    server_name: str | None = None


def channel(
    grpc_target: str, max_receive_bytes: int = DEFAULT_MAX_RECEIVE_BYTES, tls: Tls | None = None
) -> grpc.aio.Channel:
    """The one shared channel to ``grpc_target`` (from :func:`target`), balanced and health-checked;
    plaintext, or TLS with ``tls``. Every replica behind the target must present a certificate valid for
    the target's host name or IP address, or for ``tls.server_name``."""
    options = (*CHANNEL_OPTIONS, ("grpc.max_receive_message_length", max_receive_bytes))
    if tls is None:
        return grpc.aio.insecure_channel(grpc_target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates,
        private_key=tls.private_key,
        certificate_chain=tls.certificate_chain,
    )
    if tls.server_name:
        options = (*options, ("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(grpc_target, credentials, options=options)


def _family(address: str) -> int | None:
    """4 or 6 for an ``IP:port`` (IPv6 as ``[addr]:port``), None for ``name:port``; ValueError if neither."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port with a port from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1]).version
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    if ":" in host:
        raise ValueError(f"{address!r}: write an IPv6 address in brackets, e.g. [::1]:50051")
    try:
        return ipaddress.IPv4Address(host).version
    except ValueError:
        return None
