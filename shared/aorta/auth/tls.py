"""`--tls auto`: a private certificate authority and a server certificate it signs.

On first start the platform makes a CA (EC P-256, ten years, allowed to sign server
certificates only) and a server certificate (one year) for every name and address clients may
use. Clients trust the CA's file (`aorta --ca`, `AORTA_CA`) after checking its fingerprint,
which is printed at start. Later starts reuse both, renewing the server certificate when it
nears its end or lacks a name asked for, so clients keep trusting the same CA.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aorta.auth.private_files import private_directory, write_private

CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
"""A certificate this close to its end is made anew."""

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"

_ALWAYS = ("localhost", "127.0.0.1", "::1")

GeneralName = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class AutoTls:
    """The files of an automatic TLS set-up, and the CA's fingerprint for clients to check."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    ca_fingerprint: str


def fingerprint(pem_path: Path) -> str:
    """The SHA-256 fingerprint of the certificate in `pem_path`, as `AB:CD:...` (the form
    `openssl x509 -fingerprint -sha256` prints)."""
    certificate = x509.load_pem_x509_certificate(pem_path.read_bytes())
    return _fingerprint(certificate)


def _fingerprint(certificate: x509.Certificate) -> str:
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


def subject_names(hosts: Sequence[str]) -> list[GeneralName]:
    """The subject alternative names a server certificate needs: localhost, the loopback
    addresses, this host's name and every name or address in `hosts` (ports dropped)."""
    wanted: list[GeneralName] = []
    for text in (*_ALWAYS, socket.gethostname(), *hosts):
        name = _general_name(text)
        if name is not None and name not in wanted:
            wanted.append(name)
    return wanted


def _general_name(text: str) -> GeneralName | None:
    host = text.strip()
    if host.startswith("[") and "]" in host:
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return x509.DNSName(host.lower())
    # A wildcard listen address is no name a client connects to.
    return None if address.is_unspecified else x509.IPAddress(address)


def ensure_auto_tls(directory: Path, hosts: Sequence[str]) -> AutoTls:
    """The CA and server certificate under `directory`, made or renewed as needed.

    `directory` is made `0700` and the keys `0600`. The CA is reused while it has more than
    30 days left; the server certificate while it has more than 30 days left, names every
    entry of `hosts` (and localhost, the loopback addresses and this host's name) and was
    signed by that CA. Blocking (key generation, file I/O): call it at start-up, or in a thread.
    """
    private_directory(directory)
    now = datetime.datetime.now(datetime.UTC)
    ca_cert_path, ca_key_path = directory / CA_CERT, directory / CA_KEY
    server_cert_path, server_key_path = directory / SERVER_CERT, directory / SERVER_KEY
    ca = _load(ca_cert_path, ca_key_path)
    if ca is None or ca[0].not_valid_after_utc - now < RENEW_BEFORE:
        ca = _make_ca(now)
        write_private(ca_key_path, _key_pem(ca[1]))
        write_private(ca_cert_path, ca[0].public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = ca
    names = subject_names(hosts)
    server = _load(server_cert_path, server_key_path)
    if server is None or not _still_good(server[0], ca_cert, names, now):
        certificate, key = _make_server(ca_cert, ca_key, names, now)
        write_private(server_key_path, _key_pem(key))
        write_private(server_cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return AutoTls(ca_cert_path, server_cert_path, server_key_path, _fingerprint(ca_cert))


def _load(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate and its EC key, or None when either is missing or unreadable (then
    both are made anew)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        return None
    return certificate, key


def _still_good(
    certificate: x509.Certificate,
    ca: x509.Certificate,
    names: Sequence[GeneralName],
    now: datetime.datetime,
) -> bool:
    if certificate.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        present = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return all(name in present.value for name in names)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aorta"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Aorta private CA {socket.gethostname()}"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _make_server(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: Sequence[GeneralName],
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aorta-gateway")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_LIFETIME, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key
