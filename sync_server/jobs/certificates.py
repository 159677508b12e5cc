"""The certificate round (issue #19): a trusted certificate for every kiosk's name, over the sync link.

The kiosk's side (:func:`kiosk_step`, called by every sync round): make the key once
(``DATA_DIR/tls/public.key``, 0600, it never leaves the kiosk), write a request
``cert_request:<cell>:kiosk`` (a CSR for ``server.public_name``) into the cell's database
when it has no certificate or fewer than 30 days are left, and install the
``certificate:<cell>:kiosk`` the province returned once it is checked against the key.
Both documents travel with the cell's records through the ordinary replication.

The province's side (:func:`issue_pending`, ``sync-server certificates --now`` or on
schedule in ``serve``): read each cell's request from the hub, refuse any name but the
cell's own in the province's zone, obtain the certificate with ACME (certbot's ``acme``
library) answering the DNS-01 challenge through a :class:`~.dns_update.DnsProvider`,
and write the certificate back to the cell's database on the hub. Only the province
holds the ACME account and the DNS credentials; the hub's ``validate_doc_update``
lets only the kiosk's account write the request and only the province the certificate.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import josepy
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from replication.http_peer import Connection, db_path, doc_path
from schemas.hierarchy import cell_db_name, load_hierarchy
from sync_server.errors import CertificateError, CouchError, NotFound, PeerUnavailable, StartupError
from sync_server.handbook.ownership import cell_of_db
from sync_server.private_file import write_private
from sync_server.security import tls
from sync_server.security.audit import audit_for
from sync_server.security.secrets_source import read_secret
from sync_server.settings import Settings
from sync_server.store import Server

from .dns_update import DnsProvider, Rfc2136

log = logging.getLogger(__name__)
# Longest wait for the CA to validate and issue one order.
ORDER_SECONDS = 300


def request_id(cell: str) -> str:
    return f"cert_request:{cell}:kiosk"


def certificate_id(cell: str) -> str:
    return f"certificate:{cell}:kiosk"


def kiosk_name(cell: str, zone: str) -> str:
    """The one name the province certifies for a cell's kiosk: ``TQ.NH.KH.C01`` -> ``c01.kh.nh.<zone>``."""
    return ".".join(reversed(cell.lower().split(".")[1:])) + "." + zone.strip(".").lower()


def _rfc3339(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the kiosk's side ----------------------------------------------------------------------


@dataclass
class KioskState:
    """What one step of the kiosk's side did and found."""

    name: str
    installed: str | None = None  # not_after of a certificate installed by this step
    requested: str | None = None  # the reason of a request written by this step
    refused: str | None = None  # why a returned certificate was refused
    not_after: str | None = None  # of the certificate served now, if any


def kiosk_step(settings: Settings, server: Server, now: datetime.datetime | None = None) -> KioskState | None:
    """Install a returned certificate, and ask for one when needed; None when the kiosk has no public name.

    :param now: the clock of the decision (tests fake it to see a renewal or an expiry).
    """
    name, cell_db = settings.server.public_name, settings.sync.cell_db
    if not name or not cell_db or not server.exists(cell_db):
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    cell = cell_of_db(settings.sync.hub_cell_db or cell_db)
    if cell is None:
        return None
    data_dir = settings.server.data_dir
    db = server.get(cell_db)
    key = tls.public_key(data_dir)
    state = KioskState(name)
    current = tls.installed(data_dir, name, now)
    answer, asked = _get(db, certificate_id(cell)), _get(db, request_id(cell))
    wrong_key = False
    if answer is not None:
        try:
            leaf = tls.check_issued(answer["chain"], key, name, now)
        except CertificateError as exc:
            wrong_key = "another key" in str(exc)
            if answer.get("_rev") != _seen(db):  # said once per returned certificate, not every round
                log.error("certificate round: %s", exc)
                audit_for(data_dir).record("certificate_refused", name=name, reason=str(exc))
                _mark_seen(db, answer.get("_rev"))
            state.refused = str(exc)
        else:
            newer = current is None or (leaf.fingerprint(hashes.SHA256()) != current.fingerprint(hashes.SHA256())
                                        and leaf.not_valid_after_utc >= current.not_valid_after_utc)
            if newer:
                tls.install(data_dir, answer["chain"])
                current = leaf
                state.installed = _rfc3339(leaf.not_valid_after_utc)
                log.warning("certificate round: installed the certificate for %s, valid until %s", name,
                            state.installed)
                audit_for(data_dir).record("certificate_installed", name=name, not_after=state.installed,
                                           serial=f"{leaf.serial_number:x}")
    state.not_after = _rfc3339(current.not_valid_after_utc) if current is not None else None
    reason = tls.renewal_reason(current, now)
    if reason is not None and wrong_key:
        reason = "wrong_key"
    if reason is None:
        return state
    pending = (asked is not None and (answer is None or answer.get("request_rev") != asked.get("_rev"))
               and _csr_is_mine(asked, key, name))
    if pending:
        return state  # asked already; the province has not answered yet
    doc: dict[str, Any] = {"_id": request_id(cell), "type": "cert_request", "cell": cell, "name": name,
                           "csr": tls.make_csr(key, name), "requested_at": _rfc3339(now), "reason": reason}
    if current is not None:
        doc["not_after"] = state.not_after
    if asked is not None:
        doc["_rev"] = asked["_rev"]
    result = db.bulk_docs([doc])
    if result and "error" in result[0]:
        raise CertificateError(f"cannot write the certificate request: {result[0].get('reason')}")
    state.requested = reason
    audit_for(data_dir).record("certificate_requested", name=name, reason=reason)
    return state


def _get(db: Any, doc_id: str) -> dict | None:
    try:
        return db.get(doc_id)
    except NotFound:
        return None


_SEEN = "certificate-round"  # a _local document: the last refused certificate's revision


def _seen(db: Any) -> str | None:
    try:
        return db.get_local(_SEEN).get("refused_rev")
    except NotFound:
        return None


def _mark_seen(db: Any, rev: str | None) -> None:
    try:
        current = db.get_local(_SEEN)["_rev"]
    except NotFound:
        current = None
    db.put_local(_SEEN, {"refused_rev": rev, **({"_rev": current} if current else {})})


def _csr_is_mine(asked: dict, key: Any, name: str) -> bool:
    try:
        csr = x509.load_pem_x509_csr(str(asked.get("csr", "")).encode("ascii"))
    except ValueError:
        return False
    return asked.get("name") == name and tls.same_key(csr.public_key(), key)


# -- the province's side -------------------------------------------------------------------


class AcmeIssuer:
    """Obtains certificates from an ACME CA with the DNS-01 challenge, under the province's account."""

    def __init__(self, directory: str, account_key: str | Path, dns: DnsProvider, *, email: str | None = None,
                 ca_bundle: str | None = None, dns_wait: float = 60.0) -> None:
        self.directory, self.account_key, self.dns = directory, Path(account_key), dns
        self.email, self.ca_bundle, self.dns_wait = email, ca_bundle, dns_wait
        self._client: client.ClientV2 | None = None
        self._key: josepy.JWKRSA | None = None

    def _account(self) -> tuple[client.ClientV2, josepy.JWKRSA]:
        if self._client is not None and self._key is not None:
            return self._client, self._key
        if self.account_key.exists():
            private = serialization.load_pem_private_key(self.account_key.read_bytes(), password=None)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.account_key.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.account_key, private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        if not isinstance(private, rsa.RSAPrivateKey):
            raise StartupError(f"the ACME account key {self.account_key} is not an RSA key")
        key = josepy.JWKRSA(key=private)
        # requests' ``verify`` takes a CA bundle path as well as a bool
        net = client.ClientNetwork(key, user_agent="party-handbook-sync", verify_ssl=self.ca_bundle or True)  # type: ignore[arg-type]
        try:
            acme = client.ClientV2(client.ClientV2.get_directory(self.directory, net), net)
            registration = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
            try:
                acme.new_account(registration)
            except errors.ConflictError as exc:  # the account exists: use it
                net.account = messages.RegistrationResource(body=messages.Registration(), uri=exc.location)
        except (errors.Error, OSError, ValueError) as exc:
            raise CertificateError(f"the ACME server {self.directory} cannot be used: {exc}") from None
        self._client, self._key = acme, key
        return acme, key

    def issue(self, csr_pem: str) -> str:
        """The PEM chain the CA issues for ``csr_pem``.

        :raises CertificateError: the DNS update, the challenge or the order failed.
        """
        acme, key = self._account()
        added: list[tuple[str, str]] = []
        try:
            order = acme.new_order(csr_pem.encode("ascii"))
            answers = []
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue
                challb = next((c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)), None)
                if challb is None:
                    raise CertificateError(f"the CA offers no DNS-01 challenge for {authz.body.identifier.value}")
                response, validation = challb.response_and_validation(key)
                record = challb.chall.validation_domain_name(authz.body.identifier.value)
                self.dns.add_txt(record, validation)
                added.append((record, validation))
                if not self.dns.wait_visible(record, validation, self.dns_wait):
                    raise CertificateError(f"the DNS server does not answer {record} after {self.dns_wait:.0f} s")
                answers.append((challb, response))
            for challb, response in answers:
                acme.answer_challenge(challb, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_SECONDS)
            done = acme.poll_and_finalize(order, deadline)
        except errors.Error as exc:
            raise CertificateError(f"the ACME order failed: {exc}") from None
        except messages.Error as exc:  # the CA's problem document
            raise CertificateError(f"the CA refused: {exc}") from None
        finally:
            for record, validation in added:
                try:
                    self.dns.remove_txt(record, validation)
                except CertificateError as exc:
                    log.warning("certificate round: %s", exc)
        return str(done.fullchain_pem)


def issuer_for(settings: Settings) -> AcmeIssuer:
    """The ACME issuer and RFC 2136 DNS provider the province's settings describe."""
    province = settings.province
    missing = [k for k in ("acme_directory", "kiosk_zone", "dns_server") if not getattr(province, k)]
    if missing:
        raise StartupError("set province." + ", province.".join(missing) + " in config.yaml to issue kiosk certificates")
    assert province.acme_directory and province.kiosk_zone and province.dns_server
    tsig = read_secret(province.dns_tsig) if province.dns_tsig else None
    dns = Rfc2136(province.dns_server, province.kiosk_zone, tsig)
    return AcmeIssuer(province.acme_directory, province.acme_account_key, dns, email=province.acme_email,
                      ca_bundle=province.acme_ca_bundle, dns_wait=province.dns_wait_seconds)


@dataclass
class Issued:
    """What one run of the province's side did."""

    cells: int = 0
    pending: int = 0
    issued: list[str] = field(default_factory=list)  # names
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell, why)


def issue_pending(settings: Settings, issuer: AcmeIssuer | None = None) -> Issued:
    """Answer every cell's pending certificate request on the hub; a failed cell is recorded and the others go on."""
    province = settings.province
    if not province.hub_url or not province.hierarchy:
        raise StartupError("province.hub_url and province.hierarchy must be set in config.yaml")
    issuer = issuer or issuer_for(settings)
    zone = str(province.kiosk_zone)
    done = Issued()
    root = Connection(province.hub_url, timeout=settings.sync.timeout_seconds, ca_bundle=settings.sync.ca_bundle)
    try:
        for cell in load_hierarchy(province.hierarchy).cells():
            done.cells += 1
            db = cell_db_name(cell.code)
            try:
                rows = root.request("POST", db_path(db) + "/_all_docs", params={"include_docs": "true"},
                                    body={"keys": [request_id(cell.code), certificate_id(cell.code)]})["rows"]
            except NotFound:
                continue  # not provisioned yet
            asked, answer = (row.get("doc") for row in rows)
            if asked is None or (answer is not None and answer.get("request_rev") == asked["_rev"]):
                continue
            done.pending += 1
            try:
                done.issued.append(_answer(root, db, cell.code, asked, answer, zone, issuer))
            except (CertificateError, CouchError) as exc:
                log.error("certificate for cell %s: %s", cell.code, exc)
                done.failed.append((cell.code, str(exc)))
            except PeerUnavailable:
                raise
    finally:
        root.close()
    return done


def _answer(root: Connection, db: str, cell: str, asked: dict, answer: dict | None, zone: str,
            issuer: AcmeIssuer) -> str:
    name = kiosk_name(cell, zone)
    if asked.get("name") != name:
        raise CertificateError(f"the kiosk of {cell} asks for {asked.get('name')!r}; its name is {name}")
    csr = x509.load_pem_x509_csr(str(asked["csr"]).encode("ascii"))
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    if list(names) != [name] or not csr.is_signature_valid:
        raise CertificateError(f"the request of {cell} is not a signed request for {name} alone")
    chain = issuer.issue(str(asked["csr"]))
    leaf = x509.load_pem_x509_certificates(chain.encode("ascii"))[0]
    doc: dict[str, Any] = {"_id": certificate_id(cell), "type": "certificate", "cell": cell, "name": name,
                           "chain": chain, "request_rev": asked["_rev"],
                           "not_after": _rfc3339(leaf.not_valid_after_utc),
                           "issued_at": _rfc3339(datetime.datetime.now(datetime.UTC))}
    if answer is not None:
        doc["_rev"] = answer["_rev"]
    root.request("PUT", doc_path(db, doc["_id"]), body=doc)
    log.warning("certificate for %s issued, valid until %s", name, doc["not_after"])
    return name
