"""HTTPS, from the outside: the kiosk's own certificate and its fingerprint in the pairing QR
code; a hub with a certificate from a province's own CA, trusted only through sync.ca_bundle.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN, ROOT, Kiosk, free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from province_ca import make_ca

pytestmark = pytest.mark.peers


def tls_kiosk(tmp_path: Path, name: str, extra: str = "") -> tuple[Kiosk, int]:
    data_dir = tmp_path / name
    data_dir.mkdir()
    kiosk = Kiosk(data_dir, free_port())
    tls_port = free_port()
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"server:\n  tls_port: {tls_port}\n{extra}")
    kiosk.extra_args = ["--config", str(config)]
    return kiosk.start(), tls_port


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents (no checks: we compare it ourselves)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.getpeercert(binary_form=True)


def test_kiosk_serves_https_with_its_own_certificate_and_the_qr_code_carries_its_fingerprint(tmp_path):
    kiosk, tls_port = tls_kiosk(tmp_path, "kiosk")
    cert_file = kiosk.data_dir / "tls" / "kiosk.crt"
    assert (kiosk.data_dir / "tls" / "kiosk.key").stat().st_mode & 0o777 == 0o600
    fingerprint = "sha256:" + hashlib.sha256(served_certificate(tls_port)).hexdigest()
    assert f"certificate {fingerprint} (generated)" in kiosk.log.read_text()

    # A phone that trusts this certificate (what pairing sets up) talks HTTPS; plain HTTP still answers.
    trusted = ssl.create_default_context(cafile=str(cert_file))
    with httpx.Client(base_url=f"https://127.0.0.1:{tls_port}", verify=trusted, auth=ADMIN, trust_env=False) as https:
        assert https.get("/").json()["couchdb"] == "Welcome"
        assert https.put("/notes").status_code == 201
        assert https.put("/notes/a", json={"over": "tls"}).status_code == 201
        shown = https.post("/_pairing/code").json()
    assert shown["fingerprint"] == fingerprint
    assert shown["url"].startswith(f"https://127.0.0.1:{tls_port}/_app/?pair={shown['code']}&fp={fingerprint}")
    assert httpx.get(f"{kiosk.url}/notes/a", trust_env=False).json()["over"] == "tls"
    with pytest.raises(httpx.ConnectError):  # not trusted by default: a look-alike would not be either
        httpx.get(f"https://127.0.0.1:{tls_port}/", trust_env=False)

    kiosk.restart()  # the same certificate after a restart: the phone's trust stays valid
    assert "sha256:" + hashlib.sha256(served_certificate(tls_port)).hexdigest() == fingerprint
    kiosk.stop()


def replicate(tmp_path: Path, source: str, target: str, ca_bundle: Path | None) -> subprocess.CompletedProcess:
    config = tmp_path / "replicate.yaml"
    config.write_text(f"sync:\n  ca_bundle: {ca_bundle}\n" if ca_bundle else "sync: {}\n")
    return subprocess.run([sys.executable, "-m", "sync_server", "replicate", source, target, "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "CI": "true"})


def test_a_hub_certified_by_the_provinces_own_ca_is_trusted_only_through_the_ca_bundle(tmp_path):
    ca, cert, key = make_ca(tmp_path)
    hub, hub_tls = tls_kiosk(tmp_path, "hub", f"  tls_cert: {cert}\n  tls_key: {key}\n")
    kiosk, _ = tls_kiosk(tmp_path, "kiosk")
    with httpx.Client(base_url=kiosk.url, trust_env=False) as client:
        assert client.put("/cell").status_code == 201
        assert client.post("/cell/_bulk_docs", json={"docs": [{"_id": f"d{i}"} for i in range(5)]}).status_code == 201
    hub_cell = f"https://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{hub_tls}/cell"

    refused = replicate(tmp_path, f"{kiosk.url}/cell", hub_cell, None)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr + refused.stdout and "Traceback" not in refused.stderr

    done = replicate(tmp_path, f"{kiosk.url}/cell", hub_cell, ca)
    assert done.returncode == 0, done.stderr
    assert httpx.get(f"{hub.url}/cell", trust_env=False).json()["doc_count"] == 5
    hub.stop()
    kiosk.stop()


def test_a_key_that_does_not_match_the_certificate_stops_the_server_with_one_line(tmp_path):
    _, cert, _ = make_ca(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  tls_port: {free_port()}\n  tls_cert: {cert}\n  tls_key: {wrong_key}\n")
    run = subprocess.run([sys.executable, "-m", "sync_server", "serve", "--config", str(config), "--data-dir",
                          str(tmp_path / "data"), "--port", str(free_port())],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [f"Error: the TLS key {wrong_key} does not belong to the certificate {cert}"]
