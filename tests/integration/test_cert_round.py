"""The certificate round end to end (issue #19): a kiosk, a real CouchDB hub provisioned as the province
does it, the province's job, pebble (ACME test CA) validating DNS-01 through BIND (RFC 2136 updates with
a TSIG key), and the kiosk serving the certificate it got, over real TLS, trusted through pebble's root.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import acme_peers
import httpx
import pytest
from acme_peers import CELL, DB, NAME, Round, served_certificate
from couch_node import free_port
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from sync_server.handbook.policy import open_store
from sync_server.jobs import certificates
from sync_server.jobs.kiosk_sync import Syncer
from sync_server.security import tls
from sync_server.security.audit import LOG_NAME
from sync_server.settings import load

pytestmark = pytest.mark.peers


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=300)


def start_kiosk(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return acme_peers.start([sys.executable, "-m", "sync_server", "serve", "--config", str(config)], log)


stop_kiosk = acme_peers.stop


wait_for = acme_peers.wait_until


def test_a_serving_kiosk_gets_its_certificate_through_the_hub_and_serves_it_without_restart(cert_round: Round) -> None:
    r = cert_round
    tls_port = free_port()
    r.write_kiosk(r.hub_url, tls_port=tls_port, admin="admin:secret")
    log = r.tmp / "kiosk.log"
    proc = start_kiosk(r.kiosk, log)
    try:
        # Its own certificate at first: a phone trusting only public CAs (pebble's root) refuses it.
        wait_for(lambda: socket.create_connection(("127.0.0.1", tls_port), timeout=1).close() or True, 60,
                 "the kiosk listens for HTTPS", log)
        with pytest.raises(ssl.SSLCertVerificationError):
            served_certificate(tls_port, r.trust())
        # The kiosk's scheduled round writes the request into the cell and pushes it to the hub.
        asked = wait_for(lambda: r.hub_doc(f"cert_request:{CELL}:kiosk"), 60, "the request reaches the hub", log)
        assert asked["name"] == NAME and asked["reason"] == "new" and "PRIVATE" not in json.dumps(asked)
        key = r.kiosk_data / "tls" / "public.key"
        assert key.stat().st_mode & 0o777 == 0o600
        csr = x509.load_pem_x509_csr(asked["csr"].encode())
        assert tls.same_key(csr.public_key(), tls.public_key(r.kiosk_data))
        # The province's job: ACME DNS-01 with pebble, the challenge answered through BIND.
        done = cli("certificates", "--now", "--config", str(r.province))
        assert done.returncode == 0, done.stderr
        assert f"1 requests pending, 1 issued ({NAME})" in done.stdout
        answer = r.hub_doc(f"certificate:{CELL}:kiosk")
        assert answer is not None and answer["request_rev"] == asked["_rev"]
        # Nothing pending any more: a second run issues nothing.
        again = cli("certificates", "--now", "--config", str(r.province))
        assert again.returncode == 0 and "0 requests pending, 0 issued" in again.stdout, again.stdout
        # The kiosk's next round pulls and installs it; the listener serves it without a restart.
        served = wait_for(lambda: served_certificate(tls_port, r.trust()), 60, "the trusted certificate is served", log)
        assert tls.dns_names(served) == [NAME]
        assert served == x509.load_pem_x509_certificates(answer["chain"].encode())[0]
        assert proc.poll() is None
        # The pairing QR code carries the kiosk's name, with the port of its HTTPS.
        code = httpx.post(f"http://127.0.0.1:{_http_port(log)}/_pairing/code", auth=("admin", "secret"), trust_env=False)
        assert code.status_code == 201, code.text
        assert code.json()["url"].startswith(f"https://{NAME}:{tls_port}/_app/?pair=")
    finally:
        stop_kiosk(proc)
    # Two months with no hub: the kiosk still serves the certificate it has.
    r.write_kiosk(f"http://kiosk:pw@127.0.0.1:{free_port()}/", tls_port=tls_port)
    proc = start_kiosk(r.kiosk, log)
    try:
        served = wait_for(lambda: served_certificate(tls_port, r.trust()), 60, "the certificate is served offline", log)
        assert tls.dns_names(served) == [NAME]
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=61)
        offline = r.kiosk_round(now=later)
        assert not offline.ok
        assert tls.certificate_for(load(r.kiosk), now=later).cert_path.name == "public.crt"
    finally:
        stop_kiosk(proc)


def _http_port(log: Path) -> int:
    for line in log.read_text().splitlines():
        if "listening on http://" in line:
            return int(line.split("listening on http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    raise AssertionError(log.read_text())


def test_renewal_when_fewer_than_30_days_remain_and_expiry(cert_round: Round) -> None:
    r = cert_round
    first = r.kiosk_round()
    assert first.ok and first.certificate.requested == "new"
    assert cli("certificates", "--now", "--config", str(r.province)).returncode == 0
    got = r.kiosk_round()
    assert got.certificate.installed and not got.certificate.requested
    leaf = tls.installed(r.kiosk_data, NAME)
    assert leaf is not None
    # 31 days before expiry: nothing to do; 29 days before: a renewal goes up.
    quiet = r.kiosk_round(now=leaf.not_valid_after_utc - datetime.timedelta(days=31))
    assert quiet.certificate.requested is None
    due = leaf.not_valid_after_utc - datetime.timedelta(days=29)
    renew = r.kiosk_round(now=due)
    assert renew.certificate.requested == "renewal"
    asked = r.hub_doc(f"cert_request:{CELL}:kiosk")
    assert asked["reason"] == "renewal" and asked["_rev"].startswith("2-")
    # Asked already: the next round waits for the province instead of asking again.
    assert r.kiosk_round(now=due).certificate.requested is None
    assert cli("certificates", "--now", "--config", str(r.province)).returncode == 0
    renewed = r.kiosk_round(now=due)
    assert renewed.certificate.installed
    new_leaf = tls.installed(r.kiosk_data, NAME)
    assert new_leaf is not None and new_leaf.serial_number != leaf.serial_number
    # Past its end the certificate is no longer served: the kiosk falls back to its own.
    expired = new_leaf.not_valid_after_utc + datetime.timedelta(days=1)
    assert tls.installed(r.kiosk_data, NAME, expired) is None
    assert tls.certificate_for(load(r.kiosk), now=expired).cert_path.name == tls.CERT_NAME


def test_a_certificate_for_another_key_is_refused_and_asked_again(cert_round: Round) -> None:
    r = cert_round
    assert r.kiosk_round().certificate.requested == "new"
    asked = r.hub_doc(f"cert_request:{CELL}:kiosk")
    # A province gone wrong: a certificate for the right name, but for another key.
    issuer = certificates.issuer_for(load(r.province))
    other = ec.generate_private_key(ec.SECP256R1())
    chain = issuer.issue(tls.make_csr(other, NAME))
    wrong = {"_id": f"certificate:{CELL}:kiosk", "type": "certificate", "cell": CELL, "name": NAME, "chain": chain,
             "request_rev": asked["_rev"], "not_after": "2030-01-01T00:00:00Z", "issued_at": "2026-01-01T00:00:00Z"}
    base = r.hub.base.split("://", 1)[1]
    put = httpx.put(f"http://{base}/{DB}/{wrong['_id']}", json=wrong, auth=("tinh", "pw-tinh"), trust_env=False)
    assert put.status_code == 201, put.text
    refused = r.kiosk_round()
    assert refused.certificate.refused and "another key" in refused.certificate.refused
    assert not (r.kiosk_data / "tls" / "public.crt").exists()
    assert refused.certificate.requested == "wrong_key"
    assert "certificate_refused" in (r.kiosk_data / LOG_NAME).read_text()
    assert r.hub_doc(f"cert_request:{CELL}:kiosk")["reason"] == "wrong_key"
    # The province answers the new request; the right certificate is installed.
    assert cli("certificates", "--now", "--config", str(r.province)).returncode == 0
    assert r.kiosk_round().certificate.installed
    assert tls.installed(r.kiosk_data, NAME) is not None


def test_the_province_refuses_a_name_that_is_not_the_cells(cert_round: Round) -> None:
    r = cert_round
    r.write_kiosk(r.hub_url)
    settings = load(r.kiosk).replace("server", public_name=f"c02.kh.nh.{acme_peers.ZONE}")
    server = open_store(settings)
    syncer = Syncer(settings, server)
    try:
        assert syncer.run_round().certificate.requested == "new"
    finally:
        syncer.close()
        server.close()
    done = cli("certificates", "--now", "--config", str(r.province))
    assert done.returncode == 1
    assert f"cell {CELL}: no certificate: the kiosk of {CELL} asks for 'c02.kh.nh.{acme_peers.ZONE}'" in done.stderr
    assert r.hub_doc(f"certificate:{CELL}:kiosk") is None
