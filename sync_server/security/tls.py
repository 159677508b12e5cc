"""HTTPS on the village Wi-Fi: the kiosk's certificate and its TLS listener.

A kiosk with a name of its own in the province's DNS zone (``server.public_name``)
serves a publicly trusted certificate for it, obtained through the certificate
round (issue #19): it makes its key here (``DATA_DIR/tls/public.key``, mode 0600,
never sent anywhere) and a CSR for its name; the province returns the certificate
as a document, which :func:`check_issued` checks against the key before
:func:`install` puts it at ``DATA_DIR/tls/public.crt``. Until then, or with no
name, it serves either a certificate given in the settings (``server.tls_cert``
and ``server.tls_key``) or one it generates once into ``DATA_DIR/tls/`` (ECDSA
P-256, valid for the kiosk's host name, ``localhost`` and its addresses). Either
way the certificate's SHA-256 fingerprint goes into the pairing QR code, so that
a phone pairing with the kiosk can check that it talks to this kiosk and not to
a look-alike on the same Wi-Fi.

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

from ..errors import CertificateError, StartupError
from ..private_file import write_atomic, write_private

TLS_DIR = "tls"
CERT_NAME, KEY_NAME = "kiosk.crt", "kiosk.key"
# The kiosk's own key for its public name, and the certificate the province returned for it.
PUBLIC_CERT, PUBLIC_KEY = "public.crt", "public.key"
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
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
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


def certificate_for(settings: Any, now: datetime.datetime | None = None) -> Certificate:
    """The certificate to serve now: the one the certificate round installed for ``server.public_name``
    while it is valid; else the one the settings name; else the kiosk's own."""
    server = settings.server
    if (server.tls_cert is None) != (server.tls_key is None):
        raise StartupError("set both server.tls_cert and server.tls_key, or neither")
    if server.public_name:
        cert = installed(server.data_dir, server.public_name, now)
        if cert is not None:
            folder = Path(server.data_dir) / TLS_DIR
            return Certificate(folder / PUBLIC_CERT, folder / PUBLIC_KEY, fingerprint_of(cert), False)
    if server.tls_cert is not None:
        return load(server.tls_cert, server.tls_key)
    return ensure(server.data_dir, server.host)


# -- the certificate round, the kiosk's side (issue #19) ---------------------------------


def public_key(data_dir: str | Path) -> ec.EllipticCurvePrivateKey:
    """The kiosk's key for its public name, made once (ECDSA P-256, mode 0600); it never leaves the kiosk."""
    folder = Path(data_dir) / TLS_DIR
    path = folder / PUBLIC_KEY
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StartupError(f"{path} is not an ECDSA key")
        return key
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return key


def make_csr(key: ec.EllipticCurvePrivateKey, name: str) -> str:
    """A PEM certificate signing request for ``name`` alone, signed by ``key``."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def same_key(public: Any, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether a certificate's or request's public key is ``key``'s."""
    mine = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == mine)


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


def check_issued(chain_pem: str, key: ec.EllipticCurvePrivateKey, name: str,
                 now: datetime.datetime | None = None) -> x509.Certificate:
    """The leaf of a returned chain, when it is for ``name``, for ``key`` and valid at ``now``.

    :raises CertificateError: saying which of those it is not (a certificate for another key is
        refused: serving it would fail every handshake, and it is not this kiosk's).
    """
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    except ValueError as exc:
        raise CertificateError(f"the certificate returned for {name} cannot be read: {exc}") from None
    leaf = chain[0]
    if not same_key(leaf.public_key(), key):
        raise CertificateError(f"the certificate returned for {name} (serial {leaf.serial_number:x}) is for another "
                               f"key than this kiosk's ({Path(TLS_DIR) / PUBLIC_KEY}); refused, not installed")
    if name not in dns_names(leaf):
        raise CertificateError(f"the certificate returned is for {', '.join(dns_names(leaf)) or 'no name'}, not {name}")
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise CertificateError(f"the certificate returned for {name} is not valid now "
                               f"({leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})")
    return leaf


def install(data_dir: str | Path, chain_pem: str) -> Path:
    """Put a checked chain in place (atomically); the HTTPS listener picks it up (serving.py)."""
    path = Path(data_dir) / TLS_DIR / PUBLIC_CERT
    write_private(path, chain_pem.encode("ascii"))
    path.chmod(0o644)
    return path


def installed(data_dir: str | Path, name: str, now: datetime.datetime | None = None) -> x509.Certificate | None:
    """The installed certificate for ``name`` when it fits the kiosk's key and is valid at ``now``."""
    folder = Path(data_dir) / TLS_DIR
    if not (folder / PUBLIC_CERT).exists() or not (folder / PUBLIC_KEY).exists():
        return None
    try:
        return check_issued((folder / PUBLIC_CERT).read_text(encoding="ascii"), public_key(data_dir), name, now)
    except (CertificateError, OSError, UnicodeDecodeError):
        return None


def renewal_reason(cert: x509.Certificate | None, now: datetime.datetime | None = None,
                   renew_days: int = RENEW_DAYS) -> str | None:
    """Why the kiosk asks for a certificate now: ``new`` (none), ``renewal`` (fewer than 30 days left), or None."""
    now = now or datetime.datetime.now(datetime.UTC)
    if cert is None:
        return "new"
    if cert.not_valid_after_utc - now < datetime.timedelta(days=renew_days):
        return "renewal"
    return None

