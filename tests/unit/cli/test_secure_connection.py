"""The CLI against a platform that requires a token: it sends it over TLS and over plain
loopback, trusts only the CA it is given, presents a client certificate for mTLS, and says
clearly when the platform refuses it."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import click
import grpc
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aorta.api import clara_pb2, clara_pb2_grpc, common_pb2
from aorta.auth.tls import CA_KEY, AutoTls, ensure_auto_tls
from aorta.cli import register

TOKEN = "aorta_the-right-token"
VIEWER_TOKEN = "aorta_a-viewer-token"


@dataclass
class _Clara(clara_pb2_grpc.ClaraServicer):
    """Answers Version to the right token only, remembering the authorization it saw."""

    seen: list[str | None] = field(default_factory=list)

    def _check(self, context: grpc.ServicerContext) -> None:
        sent = dict(context.invocation_metadata()).get("authorization")
        self.seen.append(sent if isinstance(sent, str) else None)
        if sent == f"Bearer {VIEWER_TOKEN}":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "Clara.Version needs the admin role")
        if sent != f"Bearer {TOKEN}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "the token is not known")

    def Utilization(
        self, request: clara_pb2.ClaraUtilizationRequest, context: grpc.ServicerContext
    ) -> Iterator[clara_pb2.ClaraUtilizationResponse]:
        self._check(context)
        gpu = clara_pb2.ClaraUtilizationResponse.GpuUtilization(node_id="n1", pcie_id=7)
        yield clara_pb2.ClaraUtilizationResponse(
            header=common_pb2.ResponseHeader(code=0), gpu_metrics=[gpu]
        )

    def Version(
        self, request: clara_pb2.ClaraVersionRequest, context: grpc.ServicerContext
    ) -> clara_pb2.ClaraVersionResponse:
        self._check(context)
        return clara_pb2.ClaraVersionResponse(
            header=common_pb2.ResponseHeader(code=0),
            version=common_pb2.Version(major=0, minor=8, patch=1),
        )


@dataclass
class _Server:
    address: str
    clara: _Clara


def _serve(credentials: grpc.ServerCredentials | None) -> Iterator[_Server]:
    clara = _Clara()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    clara_pb2_grpc.add_ClaraServicer_to_server(clara, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield _Server(f"127.0.0.1:{port}", clara)
    server.stop(grace=None).wait()


@pytest.fixture
def tls_files(tmp_path: Path) -> AutoTls:
    return ensure_auto_tls(tmp_path / "tls", [])


@pytest.fixture
def plain_server() -> Iterator[_Server]:
    yield from _serve(None)


@pytest.fixture
def tls_server(tls_files: AutoTls) -> Iterator[_Server]:
    pair = (tls_files.server_key.read_bytes(), tls_files.server_cert.read_bytes())
    yield from _serve(grpc.ssl_server_credentials([pair]))


@pytest.fixture
def mtls_server(tls_files: AutoTls) -> Iterator[_Server]:
    pair = (tls_files.server_key.read_bytes(), tls_files.server_cert.read_bytes())
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=tls_files.ca_cert.read_bytes(), require_client_auth=True
    )
    yield from _serve(credentials)


def _aorta(tmp_path: Path, *args: str, **environ: str) -> Result:
    @click.group()
    def root() -> None:
        """aorta"""

    register(root)
    env = {"AORTA_CONFIG": str(tmp_path / "no-config.yaml"), "NO_COLOR": "1", **environ}
    for variable in ("AORTA_TOKEN", "AORTA_TOKEN_FILE", "AORTA_CA", "AORTA_HOST"):
        env.setdefault(variable, "")
    return CliRunner().invoke(root, list(args), env=env)


def test_the_token_is_sent_on_a_plain_loopback_channel(
    plain_server: _Server, tmp_path: Path
) -> None:
    result = _aorta(tmp_path, "version", "--host", plain_server.address, AORTA_TOKEN=TOKEN)
    assert result.exit_code == 0, result.stderr
    assert "0.8.1" in result.stdout
    assert plain_server.clara.seen == [f"Bearer {TOKEN}"]


def test_the_token_is_sent_over_tls_to_a_server_the_ca_signed(
    tls_server: _Server, tls_files: AutoTls, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = _aorta(
        tmp_path,
        "version",
        "--host",
        tls_server.address,
        "--ca",
        str(tls_files.ca_cert),
        AORTA_TOKEN_FILE=str(token_file),
    )
    assert result.exit_code == 0, result.stderr
    assert tls_server.clara.seen == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("secure", [False, True])
def test_the_token_is_sent_on_streaming_calls_too(
    plain_server: _Server, tls_server: _Server, tls_files: AutoTls, tmp_path: Path, secure: bool
) -> None:
    server = tls_server if secure else plain_server
    ca = ("--ca", str(tls_files.ca_cert)) if secure else ()
    result = _aorta(
        tmp_path, "utilization", "--json", "--host", server.address, *ca, AORTA_TOKEN=TOKEN
    )
    assert result.exit_code == 0, result.stderr
    assert [gpu["pcie_id"] for gpu in json.loads(result.stdout)] == [7]
    assert server.clara.seen == [f"Bearer {TOKEN}"]


def test_a_server_another_ca_signed_is_not_trusted(tls_server: _Server, tmp_path: Path) -> None:
    other = ensure_auto_tls(tmp_path / "other", [])
    result = _aorta(
        tmp_path,
        "version",
        "--host",
        tls_server.address,
        AORTA_CA=str(other.ca_cert),
        AORTA_TOKEN=TOKEN,
    )
    assert result.exit_code == 4
    assert "--ca / AORTA_CA" in result.stderr
    assert tls_server.clara.seen == []
    assert TOKEN not in result.stderr


def test_no_token_is_a_clear_refusal(plain_server: _Server, tmp_path: Path) -> None:
    result = _aorta(tmp_path, "version", "--host", plain_server.address)
    assert result.exit_code == 1
    assert "refused Clara.Version: the token is not known" in result.stderr
    assert "AORTA_TOKEN" in result.stderr
    assert plain_server.clara.seen == [None]


def test_a_role_too_low_is_a_clear_refusal(plain_server: _Server, tmp_path: Path) -> None:
    result = _aorta(tmp_path, "version", "--host", plain_server.address, AORTA_TOKEN=VIEWER_TOKEN)
    assert result.exit_code == 1
    assert "refused Clara.Version: Clara.Version needs the admin role" in result.stderr


def test_a_token_is_not_sent_in_clear_to_another_host(tmp_path: Path) -> None:
    result = _aorta(tmp_path, "version", "--host", "192.0.2.1:30031", AORTA_TOKEN=TOKEN)
    assert result.exit_code == 2
    assert "without TLS" in result.stderr
    assert TOKEN not in result.stderr


def _client_certificate(tls_files: AutoTls, directory: Path) -> tuple[Path, Path]:
    ca = x509.load_pem_x509_certificate(tls_files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(
        (tls_files.ca_cert.parent / CA_KEY).read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a-client")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "client.pem", directory / "client.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_mtls_needs_the_client_certificate(
    mtls_server: _Server, tls_files: AutoTls, tmp_path: Path
) -> None:
    common = ("version", "--host", mtls_server.address, "--ca", str(tls_files.ca_cert))
    without = _aorta(tmp_path, *common, AORTA_TOKEN=TOKEN)
    assert without.exit_code == 4
    assert mtls_server.clara.seen == []

    cert, key = _client_certificate(tls_files, tmp_path)
    result = _aorta(
        tmp_path, *common, AORTA_TOKEN=TOKEN, AORTA_CLIENT_CERT=str(cert), AORTA_CLIENT_KEY=str(key)
    )
    assert result.exit_code == 0, result.stderr
    assert mtls_server.clara.seen == [f"Bearer {TOKEN}"]
