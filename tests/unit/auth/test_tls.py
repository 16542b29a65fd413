"""`--tls auto`: a private CA and server certificate, made once, reused, renewed, and trusted
by exactly the clients that hold the CA."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import stat
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from aorta.api import clara_pb2, clara_pb2_grpc, common_pb2
from aorta.auth import tls
from aorta.auth.tls import ensure_auto_tls, fingerprint


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(path: Path) -> list[object]:
    extension = _certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return list(extension.value)


def test_the_first_call_makes_a_ca_and_a_server_certificate(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    made = ensure_auto_tls(directory, ["gpu-box.example.org:30031", "10.1.2.3", "0.0.0.0"])

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for key in (made.server_key, directory / tls.CA_KEY):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = _certificate(made.ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > datetime.timedelta(days=3600)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)

    server = _certificate(made.server_cert)
    server.verify_directly_issued_by(ca)
    names = _names(made.server_cert)
    for expected in (
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName(socket.gethostname().lower()),
        x509.DNSName("gpu-box.example.org"),
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
    ):
        assert expected in names
    assert x509.IPAddress(ipaddress.ip_address("0.0.0.0")) not in names
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert datetime.timedelta(days=360) < lifetime < datetime.timedelta(days=370)


def test_the_fingerprint_is_the_sha256_of_the_ca_in_colon_hex(tmp_path: Path) -> None:
    made = ensure_auto_tls(tmp_path, [])
    assert made.ca_fingerprint == fingerprint(made.ca_cert)
    parts = made.ca_fingerprint.split(":")
    assert len(parts) == 32
    assert all(len(part) == 2 and part == part.upper() for part in parts)


def test_later_calls_reuse_both_certificates(tmp_path: Path) -> None:
    first = ensure_auto_tls(tmp_path, ["10.1.2.3"])
    before = first.server_cert.read_bytes(), first.ca_cert.read_bytes()
    second = ensure_auto_tls(tmp_path, ["10.1.2.3"])
    assert (second.server_cert.read_bytes(), second.ca_cert.read_bytes()) == before
    assert second.ca_fingerprint == first.ca_fingerprint


def test_a_new_name_renews_the_server_certificate_under_the_same_ca(tmp_path: Path) -> None:
    first = ensure_auto_tls(tmp_path, [])
    old_server = first.server_cert.read_bytes()
    second = ensure_auto_tls(tmp_path, ["new-name.example.org"])
    assert second.server_cert.read_bytes() != old_server
    assert second.ca_fingerprint == first.ca_fingerprint
    assert x509.DNSName("new-name.example.org") in _names(second.server_cert)


def test_a_server_certificate_near_its_end_is_renewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "SERVER_LIFETIME", datetime.timedelta(days=20))
    first = ensure_auto_tls(tmp_path, [])
    old_server = first.server_cert.read_bytes()
    monkeypatch.setattr(tls, "SERVER_LIFETIME", datetime.timedelta(days=365))
    second = ensure_auto_tls(tmp_path, [])
    assert second.server_cert.read_bytes() != old_server
    assert second.ca_fingerprint == first.ca_fingerprint
    assert _certificate(second.server_cert).not_valid_after_utc > datetime.datetime.now(
        datetime.UTC
    ) + datetime.timedelta(days=300)


def test_a_lost_ca_key_makes_a_new_ca_and_server_certificate(tmp_path: Path) -> None:
    first = ensure_auto_tls(tmp_path, [])
    (tmp_path / tls.CA_KEY).unlink()
    second = ensure_auto_tls(tmp_path, [])
    assert second.ca_fingerprint != first.ca_fingerprint
    _certificate(second.server_cert).verify_directly_issued_by(_certificate(second.ca_cert))


class _Clara(clara_pb2_grpc.ClaraServicer):
    async def Version(
        self,
        request: clara_pb2.ClaraVersionRequest,
        context: grpc.aio.ServicerContext[
            clara_pb2.ClaraVersionRequest, clara_pb2.ClaraVersionResponse
        ],
    ) -> clara_pb2.ClaraVersionResponse:
        return clara_pb2.ClaraVersionResponse(
            header=common_pb2.ResponseHeader(code=0),
            version=common_pb2.Version(major=0, minor=8, patch=1),
        )


@pytest.fixture
def made(tmp_path: Path) -> tls.AutoTls:
    return ensure_auto_tls(tmp_path / "server", [])


@pytest.fixture
def stranger(tmp_path: Path) -> tls.AutoTls:
    return ensure_auto_tls(tmp_path / "other", [])


async def _version(port: int, ca: bytes, host: str) -> int:
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    async with grpc.aio.secure_channel(f"{host}:{port}", credentials) as channel:
        response = await clara_pb2_grpc.ClaraStub(channel).Version(
            clara_pb2.ClaraVersionRequest(), timeout=10
        )
    return response.version.patch


async def test_a_real_server_is_trusted_by_clients_of_its_ca_only(
    made: tls.AutoTls, stranger: tls.AutoTls
) -> None:
    server = grpc.aio.server()
    clara_pb2_grpc.add_ClaraServicer_to_server(_Clara(), server)
    credentials = grpc.ssl_server_credentials(
        [(made.server_key.read_bytes(), made.server_cert.read_bytes())]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        ca = made.ca_cert.read_bytes()
        assert await _version(port, ca, "127.0.0.1") == 1
        assert await _version(port, ca, "localhost") == 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _version(port, stranger.ca_cert.read_bytes(), "127.0.0.1")
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(grace=None)
