"""Transport security: the gRPC server over TLS (mutual with a client CA) and the edge's HTTPS listener and TLS
upstream, as real processes on 127.0.0.1; and the TLS settings that are refused, naming the setting.

The certificates are made at test time with the ``openssl`` command line: a throwaway CA, a server certificate
for 127.0.0.1 and localhost, and a client certificate, each valid for a day.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import ssl
import subprocess
from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

import envconfig
from dooor.monitoring.v1 import platform_pb2 as ppb
from dooor.monitoring.v1 import platform_pb2_grpc
from edge import config as edge_config
from edge import upstream
from server import config as server_config
from testing.procs import ADMIN_TOKEN, BIN, Process, free_port

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line"),
]

ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    client_cert: pathlib.Path
    client_key: pathlib.Path


def _openssl(*args: str | pathlib.Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _issue(folder: pathlib.Path, name: str, ca: pathlib.Path, ca_key: pathlib.Path, extensions: str) -> None:
    key, csr, ext = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", key, "-out", csr, "-subj", f"/CN={name}"),
    )
    _openssl(
        *("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"),
        *("-days", "1", "-sha256", "-extfile", ext, "-out", folder / f"{name}.pem"),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    _openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", ca_key, "-out", ca, "-days", "1", "-sha256", "-subj", "/CN=test monitoring CA"),
        *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    common = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\n"
    _issue(
        folder,
        "server",
        ca,
        ca_key,
        common + "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    _issue(folder, "client", ca, ca_key, common + "extendedKeyUsage=clientAuth\n")
    return Pki(ca, folder / "server.pem", folder / "server.key", folder / "client.pem", folder / "client.key")


# -- refused settings -------------------------------------------------------------------------------------


def test_server_tls_is_off_by_default() -> None:
    assert server_config.load([], {}).tls is None


def test_server_reads_the_files_at_load(pki: Pki) -> None:
    env = {"MONITORING_TLS_CERT": str(pki.server_cert), "MONITORING_TLS_KEY": str(pki.server_key)}
    tls = server_config.load([], env).tls
    assert tls is not None and tls.client_ca is None
    assert tls.certificate_chain == pki.server_cert.read_bytes()
    mutual = server_config.load([], {**env, "MONITORING_TLS_CLIENT_CA": str(pki.ca)}).tls
    assert mutual is not None and mutual.client_ca == pki.ca.read_bytes()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"MONITORING_TLS_CERT": "server"}, "tls_key (MONITORING_TLS_KEY or --tls-key): must be set together"),
        ({"MONITORING_TLS_KEY": "server_key"}, "tls_cert (MONITORING_TLS_CERT or --tls-cert): must be set together"),
        ({"MONITORING_TLS_CLIENT_CA": "ca"}, "tls_client_ca (MONITORING_TLS_CLIENT_CA or --tls-client-ca): "),
        (
            {"MONITORING_TLS_CERT": "missing", "MONITORING_TLS_KEY": "server_key"},
            "tls_cert (MONITORING_TLS_CERT or --tls-cert)='",
        ),
        (
            {"MONITORING_TLS_CERT": "server", "MONITORING_TLS_KEY": "server"},  # a certificate is not a key
            "tls_key (MONITORING_TLS_KEY or --tls-key)='",
        ),
        (
            {
                "MONITORING_TLS_CERT": "server",
                "MONITORING_TLS_KEY": "server_key",
                "MONITORING_TLS_CLIENT_CA": "missing",
            },
            "tls_client_ca (MONITORING_TLS_CLIENT_CA or --tls-client-ca)='",
        ),
    ],
)
def test_server_refuses_bad_tls_settings_naming_the_setting(pki: Pki, given: dict[str, str], named: str) -> None:
    paths = {"server": pki.server_cert, "server_key": pki.server_key, "ca": pki.ca, "missing": pki.ca.parent / "nope"}
    with pytest.raises(server_config.ConfigError) as refused:
        server_config.load([], {variable: str(paths[name]) for variable, name in given.items()})
    assert str(refused.value).startswith(named)
    assert "BEGIN" not in str(refused.value).partition("(-----")[0]  # never a file's contents


def test_a_missing_file_says_it_cannot_be_read(pki: Pki) -> None:
    missing = pki.ca.parent / "nope.pem"
    env = {"MONITORING_TLS_CERT": str(missing), "MONITORING_TLS_KEY": str(pki.server_key)}
    with pytest.raises(server_config.ConfigError, match="cannot read the file: No such file"):
        server_config.load([], env)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"MONITORING_EDGE_TLS_CERT": "server"}, "tls_key (MONITORING_EDGE_TLS_KEY or --tls-key): must be set"),
        ({"MONITORING_EDGE_TLS_KEY": "server_key"}, "tls_cert (MONITORING_EDGE_TLS_CERT or --tls-cert): must be"),
        (
            {"MONITORING_EDGE_TLS_CERT": "missing", "MONITORING_EDGE_TLS_KEY": "server_key"},
            "tls_cert (MONITORING_EDGE_TLS_CERT or --tls-cert)='",
        ),
        ({"MONITORING_UPSTREAM_CA": "ca"}, "upstream_ca (MONITORING_UPSTREAM_CA or --upstream-ca): only used over"),
        (
            {"MONITORING_UPSTREAM_TLS": "true", "MONITORING_UPSTREAM_CA": "missing"},
            "upstream_ca (MONITORING_UPSTREAM_CA or --upstream-ca)='",
        ),
        (
            {"MONITORING_UPSTREAM_TLS": "true", "MONITORING_UPSTREAM": "list"},
            "upstream_tls_name (MONITORING_UPSTREAM_TLS_NAME or --upstream-tls-name): must be set when",
        ),
        (
            {"MONITORING_UPSTREAM_TLS": "true", "MONITORING_UPSTREAM_CLIENT_CERT": "client"},
            "upstream_client_key (MONITORING_UPSTREAM_CLIENT_KEY or --upstream-client-key): must be set together",
        ),
        (
            {"MONITORING_UPSTREAM_TLS": "true", "MONITORING_UPSTREAM_CLIENT_CERT": "client"}
            | {"MONITORING_UPSTREAM_CLIENT_KEY": "ca"},  # a certificate is not a key
            "upstream_client_key (MONITORING_UPSTREAM_CLIENT_KEY or --upstream-client-key)='",
        ),
    ],
)
def test_edge_refuses_bad_tls_settings_naming_the_setting(pki: Pki, given: dict[str, str], named: str) -> None:
    paths: dict[str, pathlib.Path | str] = {
        "server": pki.server_cert,
        "server_key": pki.server_key,
        "ca": pki.ca,
        "client": pki.client_cert,
        "missing": pki.ca.parent / "nope",
        "true": "true",
        "list": "127.0.0.1:50051,127.0.0.1:50052",
    }
    with pytest.raises(envconfig.ConfigError) as refused:
        edge_config.load([], {variable: str(paths[name]) for variable, name in given.items()})
    assert str(refused.value).startswith(named)


def test_edge_upstream_tls_defaults_to_the_system_roots(pki: Pki) -> None:
    assert edge_config.load([], {}).upstream_tls_files is None
    tls = edge_config.load([], {"MONITORING_UPSTREAM_TLS": "true"}).upstream_tls_files
    assert tls is not None and tls.root_certificates is None and tls.private_key is None


async def test_an_ip_list_over_tls_checks_every_replica_against_the_tls_name(pki: Pki) -> None:
    """gRPC checks the certificates of an ipv4: list against the list itself, which no certificate holds."""
    credentials = grpc.ssl_server_credentials([(pki.server_key.read_bytes(), pki.server_cert.read_bytes())])
    servers = [grpc.aio.server(), grpc.aio.server()]
    addrs = []
    for server in servers:
        health_pb2_grpc.add_HealthServicer_to_server(health_async.HealthServicer(), server)
        addrs.append(f"127.0.0.1:{server.add_secure_port('127.0.0.1:0', credentials)}")
        await server.start()
    try:
        env = {"MONITORING_UPSTREAM": ",".join(addrs), "MONITORING_UPSTREAM_TLS": "true"}
        env["MONITORING_UPSTREAM_CA"] = str(pki.ca)
        named = edge_config.load([], {**env, "MONITORING_UPSTREAM_TLS_NAME": "localhost"})
        assert named.upstream_tls_files is not None
        async with upstream.channel(named.upstream_target, tls=named.upstream_tls_files) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # The control: the same channel without the name fails every handshake (hence the ConfigError).
        unnamed = upstream.Tls(root_certificates=pki.ca.read_bytes())
        async with upstream.channel(named.upstream_target, tls=unnamed) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        for server in servers:
            await server.stop(None)


# -- real processes ---------------------------------------------------------------------------------------


def _credentials(pki: Pki, *, client: bool = True) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if client else None,
        certificate_chain=pki.client_cert.read_bytes() if client else None,
    )


def _health(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return int(reply.status)


def _tls_serving(addr: str, pki: Pki) -> bool:
    with grpc.secure_channel(addr, _credentials(pki)) as channel:
        return _health(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """monitoring-server with TLS that requires client certificates signed by the test CA; its address."""
    folder = tmp_path_factory.mktemp("tls-server")
    addr = f"127.0.0.1:{free_port()}"
    env = {
        "MONITORING_GRPC_ADDR": addr,
        "MONITORING_DB": str(folder / "monitoring.db"),
        "MONITORING_ADMIN_TOKEN": ADMIN_TOKEN,
        "MONITORING_PROMETHEUS_URL": "http://127.0.0.1:9",
        "MONITORING_LOKI_URL": "http://127.0.0.1:9",
        "MONITORING_TLS_CERT": str(pki.server_cert),
        "MONITORING_TLS_KEY": str(pki.server_key),
        "MONITORING_TLS_CLIENT_CA": str(pki.ca),
    }
    server = Process("monitoring-server", [str(BIN / "monitoring-server")], folder, env)
    try:
        server.wait_until(lambda: _tls_serving(addr, pki))
        assert "TLS, client certificates required" in server.log()
        yield addr
    finally:
        server.stop()


def test_a_plaintext_call_to_the_tls_port_fails(tls_server: str) -> None:
    with grpc.insecure_channel(tls_server) as channel, pytest.raises(grpc.RpcError) as failed:
        _health(channel)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_a_tls_call_without_a_client_certificate_is_refused(tls_server: str, pki: Pki) -> None:
    credentials = _credentials(pki, client=False)
    with grpc.secure_channel(tls_server, credentials) as channel, pytest.raises(grpc.RpcError) as failed:
        _health(channel)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_a_server_certificate_from_another_ca_is_not_trusted(tls_server: str, pki: Pki) -> None:
    # The client's own certificate is no CA: trusting it instead of the CA must fail the handshake.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.client_cert.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    with grpc.secure_channel(tls_server, credentials) as channel, pytest.raises(grpc.RpcError) as failed:
        _health(channel)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_https_through_the_edge_to_the_tls_server(tls_server: str, pki: Pki, tmp_path: pathlib.Path) -> None:
    with grpc.secure_channel(tls_server, _credentials(pki)) as channel:
        platform = platform_pb2_grpc.PlatformServiceStub(channel)
        platform.CreateWorkspace(ppb.CreateWorkspaceRequest(workspace_id="ws_tls"), metadata=ADMIN, timeout=5)
        key = platform.CreateApiKey(ppb.CreateApiKeyRequest(workspace_id="ws_tls"), metadata=ADMIN, timeout=5)

    addr = f"127.0.0.1:{free_port()}"
    env = {
        "MONITORING_EDGE_ADDR": addr,
        "MONITORING_UPSTREAM": tls_server,
        "MONITORING_EDGE_TLS_CERT": str(pki.server_cert),
        "MONITORING_EDGE_TLS_KEY": str(pki.server_key),
        "MONITORING_UPSTREAM_TLS": "true",
        "MONITORING_UPSTREAM_CA": str(pki.ca),
        "MONITORING_UPSTREAM_CLIENT_CERT": str(pki.client_cert),
        "MONITORING_UPSTREAM_CLIENT_KEY": str(pki.client_key),
    }
    edge = Process("monitoring-edge", [str(BIN / "monitoring-edge")], tmp_path, env)
    try:
        with httpx.Client(
            base_url=f"https://{addr}", verify=ssl.create_default_context(cafile=pki.ca), timeout=5
        ) as client:
            edge.wait_until(lambda: client.get("/readyz").status_code == 200)
            assert client.get("/readyz").json() == {"status": "SERVING"}  # the edge's TLS channel is up
            alerts = client.get(
                "/api/v1/workspaces/ws_tls/monitoring/alerts", headers={"authorization": f"Bearer {key.secret}"}
            )
            assert alerts.status_code == 200, alerts.text
            refused = client.get(
                "/api/v1/workspaces/ws_tls/monitoring/alerts", headers={"authorization": "Bearer dor_sk_wrong"}
            )
            assert refused.status_code == 401  # answered by the server, through the same channel
        with pytest.raises(httpx.ConnectError):  # HTTPS only: the edge's certificate is not in the system roots
            httpx.get(f"https://{addr}/healthz", timeout=5)
        assert "https://" in edge.log()
    finally:
        status = edge.stop()
    assert status == 0  # a graceful stop, TLS listener and channel included


def test_monitoring_admin_over_mutual_tls(tls_server: str, pki: Pki) -> None:
    def admin(*tls: str | pathlib.Path) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "monitoring-admin"), "--addr", tls_server, "--token", ADMIN_TOKEN, *map(str, tls)]
        return subprocess.run([*argv, "create-workspace", "ws_tls_cli"], capture_output=True, text=True, timeout=30)

    done = admin("--tls-ca", pki.ca, "--tls-cert", pki.client_cert, "--tls-key", pki.client_key)
    assert done.returncode == 0, done.stderr
    assert '"id": "ws_tls_cli"' in done.stdout
    without_certificate = admin("--tls-ca", pki.ca)
    assert without_certificate.returncode == 1
    assert without_certificate.stderr.startswith("error: UNAVAILABLE")
    half = admin("--tls-ca", pki.ca, "--tls-cert", pki.client_cert)
    assert "--tls-cert and --tls-key go together" in half.stderr
