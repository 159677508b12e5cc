"""Signed content end to end: keys, publish to a hub, a kiosk pulls it; a tampered article never reaches members."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import couch_dump
import httpx
import pytest
import yaml

pytestmark = pytest.mark.peers
ARTICLE = {"_id": "article:nghi-quyet-18", "type": "article", "title": "Nghị quyết Đại hội XVIII",
           "body": "Toàn văn nghị quyết…", "category": "resolution", "language": "vi",
           "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """A province key pair and a config.yaml that trusts it."""
    made = cli("keys", "create", "--dir", str(tmp_path / "keys"), "--id", "tq-2026")
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    config = tmp_path / "province.yaml"
    config.write_text(yaml.safe_dump({"signing": {"public_keys": {"tq-2026": public}}}))
    return tmp_path / "keys" / "tq-2026.pem", config


@pytest.fixture(params=["pouchdb-server", "couchdb"])
def hub(request: pytest.FixtureRequest) -> Any:
    """The hub (``.url`` with admin credentials where needed)."""
    return request.getfixturevalue("pouchdb_server" if request.param == "pouchdb-server" else "couchdb")


def test_publish_then_a_kiosk_pulls_and_shows_it(tmp_path: Path, keys: Any, hub: Any) -> None:
    """With a PDF and a text attachment: CouchDB keeps the text gzip-encoded under another digest,
    and the tampered revision (its attachments stubs) must still be checked and quarantined."""
    key, config = keys
    article = tmp_path / "article.json"
    article.write_text(json.dumps(ARTICLE, ensure_ascii=False), encoding="utf-8")
    pdf = tmp_path / "nghi-quyet.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 100)
    summary = tmp_path / "tom-tat.txt"
    summary.write_text("Tóm tắt nghị quyết: xây dựng Đảng trong sạch, vững mạnh.\n" * 50, encoding="utf-8")
    couch_dump.create_db(hub.url, "handbook")
    published = cli("publish", str(article), "--hub", f"{hub.url}/handbook", "--key", str(key),
                    "--attach", str(pdf), "--attach", str(summary), "--config", str(config))
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("published article:nghi-quyet-18 (1-")
    # the kiosk trusts the key and pulls
    kiosk_config = tmp_path / "kiosk.yaml"
    kiosk_config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                            "server": {"data_dir": str(tmp_path / "kiosk")}}))
    pulled = cli("replicate", f"{hub.url}/handbook", "handbook", "--config", str(kiosk_config))
    assert pulled.returncode == 0 and "replicated 1 of 1 changes (0 refused)" in pulled.stdout
    # tamper with the article on the hub: the next pull refuses and quarantines it
    with httpx.Client(base_url=hub.url, trust_env=False) as http:
        doc = http.get("/handbook/article:nghi-quyet-18").json()
        doc["body"] = "Nội dung bị sửa trái phép."
        assert http.put("/handbook/article:nghi-quyet-18", json=doc).status_code == 201
    again = cli("replicate", f"{hub.url}/handbook", "handbook", "--config", str(kiosk_config))
    assert again.returncode == 0 and "(1 refused)" in again.stdout and "signature does not verify" in again.stderr
    from sync_server.handbook.policy import open_store
    from sync_server.settings import load

    store = open_store(load(kiosk_config))
    try:
        shown = store.get("handbook").get("article:nghi-quyet-18")
        assert shown["body"] == ARTICLE["body"]  # members still see the signed text, never the forged one
        assert store.get("quarantine").doc_count == 1
    finally:
        store.close()
    status = json.loads(cli("status", "--config", str(kiosk_config), "--json").stdout)
    assert status["quarantined"] == 1


def test_publish_refuses_unsigned_and_badly_signed(tmp_path: Path, keys: Any) -> None:
    key, config = keys
    article = tmp_path / "article.json"
    article.write_text(json.dumps(ARTICLE, ensure_ascii=False), encoding="utf-8")
    unsigned = cli("publish", str(article), "--hub", "http://127.0.0.1:9/handbook", "--config", str(config))
    assert unsigned.returncode != 0 and "not signed" in unsigned.stderr
    other = cli("keys", "create", "--dir", str(tmp_path / "other"), "--id", "tq-2026")
    assert other.returncode == 0
    wrong = cli("publish", str(article), "--hub", "http://127.0.0.1:9/handbook", "--key",
                str(tmp_path / "other" / "tq-2026.pem"), "--config", str(config))
    assert wrong.returncode != 0 and "signature does not verify" in wrong.stderr
    invalid = tmp_path / "bad.json"
    invalid.write_text(json.dumps(dict(ARTICLE, category="gossip")), encoding="utf-8")
    refused = cli("publish", str(invalid), "--hub", "http://127.0.0.1:9/handbook", "--key", str(key), "--config", str(config))
    assert refused.returncode != 0 and "category" in refused.stderr
