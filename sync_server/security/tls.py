"""HTTPS on the village Wi-Fi: the kiosk's certificate and its TLS listener.

A kiosk has no public name, so no public CA can certify it. It serves HTTPS with
either a certificate the province issued for it (``server.tls_cert`` and
``server.tls_key``, e.g. for a name of its own that resolves to the kiosk's
local address) or, without one, a certificate it generates once into
``DATA_DIR/tls/`` (ECDSA P-256, valid for the kiosk's host name, ``localhost``
and its addresses). Either way the certificate's SHA-256 fingerprint goes into
the pairing QR code, so that a phone pairing with the kiosk can check that it
talks to this kiosk and not to a look-alike on the same Wi-Fi.

The TLS listener runs on ``server.tls_port`` (CouchDB's HTTPS port is 6984) in the
same event loop as plain HTTP (sync_server/api/serving.py), with the same limits.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import StartupError
from ..private_file import write_private

TLS_DIR = "tls"
CERT_NAME, KEY_NAME = "kiosk.crt", "kiosk.key"
# A generated certificate lasts this long; it is made again when fewer than RENEW_DAYS are left.
VALID_DAYS, RENEW_DAYS = 825, 30


@dataclass(frozen=True)
class Certificate:
    """Where the PEM files are, and what a phone checks."""

    cert_path: Path
    key_path: Path
    fingerprint: str  # "sha256:" + 64 hex digits, over the DER certificate
    generated: bool


def fingerprint_of(cert: x509.Certificate) -> str:
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def load(cert_path: str | Path, key_path: str | Path) -> Certificate:
    """A given certificate and key (issued by the province).

    :raises StartupError: when either is unreadable or they do not match.
    """
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot use the TLS certificate {cert_path} with key {key_path}: {exc}") from None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise StartupError(f"the TLS key {key_path} does not belong to the certificate {cert_path}")
    return Certificate(Path(cert_path), Path(key_path), fingerprint_of(cert), False)


def ensure(data_dir: str | Path, host: str, now: datetime.datetime | None = None) -> Certificate:
    """The kiosk's own certificate in ``DATA_DIR/tls``, generated when missing or about to expire."""
    now = now or datetime.datetime.now(datetime.UTC)
    folder = Path(data_dir) / TLS_DIR
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_DAYS):
            return Certificate(cert_path, key_path, fingerprint_of(cert), False)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, _names(host), now)
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, fingerprint_of(cert), True)


def _names(host: str) -> list[x509.GeneralName]:
    """The kiosk's host name, localhost, and its addresses (the bound one first)."""
    dns = [socket.gethostname(), "localhost"]
    addresses = {"127.0.0.1", "::1"}
    if host not in ("0.0.0.0", "::", ""):
        try:
            addresses.add(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.insert(0, host)
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addresses.add(str(info[4][0]))
    except OSError:
        pass
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns) if n]
    names += [x509.IPAddress(ipaddress.ip_address(a.split("%")[0])) for a in sorted(addresses)]
    return names


def _self_signed(key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName],
                 now: datetime.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "party-handbook kiosk"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, socket.gethostname()[:64] or "kiosk")])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))


def certificate_for(settings: Any) -> Certificate:
    """The certificate the settings ask for: the province's, or the kiosk's own."""
    server = settings.server
    if (server.tls_cert is None) != (server.tls_key is None):
        raise StartupError("set both server.tls_cert and server.tls_key, or neither")
    if server.tls_cert is not None:
        return load(server.tls_cert, server.tls_key)
    return ensure(server.data_dir, server.host)

