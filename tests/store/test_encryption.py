"""Encryption at rest, from the outside: a running server, its raw files, and the command line.

A copied data directory without the passphrase must not show a member's name, a PIN
hash, minutes text or attachment contents. The same test on a server in clear finds
every one of them, which shows the grep can fail.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, Kiosk, free_port

from sync_server.settings import Settings
from sync_server.store import Server, StoreOptions, crypto
from sync_server.store.crypto import Cipher

PASS_ENV = "SYNC_TEST_PASSPHRASE"
CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"
NAME = "Hoàng Thị Lựu Nghiêm"
MINUTES = "Chi bộ thống nhất làm đường bê tông lên bản Khuổi Phầy trước mùa mưa"
ATTACHMENT = b"%PDF-1.4 Danh sach dang vien chi bo Khuoi Phay, so dien thoai 0912345678"


def member_doc() -> dict:
    return {"_id": f"member:{CELL}:0042", "type": "member", "cell": CELL, "member_no": "0042", "name": NAME,
            "born": 1961, "gender": "female", "joined": "1990-02-03", "status": "active",
            "smartphone": True, "installed": True, "registered": True}


def minutes_doc() -> dict:
    meeting = f"meeting:{CELL}:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384"
    return {"_id": f"minutes:{meeting}", "type": "minutes", "cell": CELL, "meeting": meeting, "text": MINUTES,
            "decisions": [], "secretary": f"member:{CELL}:0012", "written_at": "2026-11-05T21:10:00+07:00",
            "_attachments": {"danh-sach.pdf": {"content_type": "application/pdf",
                                               "data": base64.b64encode(ATTACHMENT).decode()}}}


def start(tmp_path: Path, data_dir: Path, passphrase: str | None) -> Kiosk:
    kiosk = Kiosk(data_dir, free_port())
    if passphrase is not None:
        config = tmp_path / "config.yaml"
        config.write_text(f"storage:\n  encryption_key: env:{PASS_ENV}\n")
        kiosk.extra_args, kiosk.env = ["--config", str(config)], {PASS_ENV: passphrase}
    return kiosk.start()


def fill(kiosk: Kiosk) -> str:
    """Write an account with a PIN, a member and minutes with an attachment; returns the PIN hash."""
    with httpx.Client(base_url=kiosk.url, trust_env=False) as client:
        for db in ("_users", DB):
            assert client.put(f"/{db}").status_code == 201
        account = {"_id": f"org.couchdb.user:{CELL}.0042", "name": f"{CELL}.0042", "type": "user",
                   "roles": ["member", f"cell:{CELL}"], "pin": "4821"}
        assert client.put(f"/_users/{account['_id']}", json=account).status_code == 201
        for doc in (member_doc(), minutes_doc()):
            assert client.put(f"/{DB}/{doc['_id']}", json=doc).status_code == 201, doc["_id"]
        return client.get(f"/_users/{account['_id']}").json()["derived_key"]


def raw_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under the data directory (databases, WAL, keyring, logs)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def secrets_found(data_dir: Path, pin_hash: str) -> list[str]:
    raw = raw_bytes(data_dir)
    wanted = {"member name": NAME.encode(), "minutes text": MINUTES.encode(), "PIN hash": pin_hash.encode(),
              "attachment": ATTACHMENT}
    return sorted(what for what, needle in wanted.items() if needle in raw)


def serve_once(data_dir: Path, env: dict[str, str], config: Path | None = None) -> subprocess.CompletedProcess:
    """Run `serve` expecting it to refuse to start (so it returns at once)."""
    args = [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(data_dir), "--port", str(free_port())]
    if config is not None:
        args += ["--config", str(config)]
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.peers
def test_a_copied_data_directory_reveals_no_name_pin_hash_minutes_or_attachment(tmp_path):
    encrypted = start(tmp_path, tmp_path / "enc", "núi cao bản xa 2026")
    pin_hash = fill(encrypted)
    doc = httpx.get(f"{encrypted.url}/{DB}/{minutes_doc()['_id']}?attachments=true", trust_env=False,
                    headers={"Accept": "application/json"}).json()
    assert doc["text"] == MINUTES and base64.b64decode(doc["_attachments"]["danh-sach.pdf"]["data"]) == ATTACHMENT
    encrypted.stop()
    assert secrets_found(tmp_path / "enc", pin_hash) == []
    assert (tmp_path / "enc" / crypto.KEYRING).stat().st_mode & 0o777 == 0o600

    clear = start(tmp_path, tmp_path / "clear", None)  # the control: the same grep finds everything
    clear_hash = fill(clear)
    clear.stop()
    assert secrets_found(tmp_path / "clear", clear_hash) == ["PIN hash", "attachment", "member name", "minutes text"]


@pytest.mark.peers
def test_restart_needs_the_right_passphrase_and_then_reads_everything(tmp_path):
    data_dir = tmp_path / "data"
    kiosk = start(tmp_path, data_dir, "đúng rồi")
    fill(kiosk)
    kiosk.stop()

    config = tmp_path / "config.yaml"
    wrong = serve_once(data_dir, {PASS_ENV: "sai rồi"}, config)
    assert wrong.returncode != 0
    assert wrong.stderr.strip().splitlines() == [f"Error: wrong passphrase for the encrypted data directory {data_dir}"]
    missing = serve_once(data_dir, {})
    assert missing.returncode != 0 and "is encrypted: set storage.encryption_key" in missing.stderr
    assert "Traceback" not in wrong.stderr + missing.stderr

    kiosk = start(tmp_path, data_dir, "đúng rồi")
    with httpx.Client(base_url=kiosk.url, trust_env=False) as client:
        assert client.get(f"/{DB}/{member_doc()['_id']}").json()["name"] == NAME
        member = httpx.BasicAuth(f"{CELL}.0042", "4821")
        assert client.get("/_session", auth=member).json()["userCtx"]["name"] == f"{CELL}.0042"
    kiosk.stop()


@pytest.mark.peers
def test_a_clear_data_directory_is_encrypted_in_place_when_a_key_is_set(tmp_path):
    data_dir = tmp_path / "data"
    kiosk = start(tmp_path, data_dir, None)
    pin_hash = fill(kiosk)
    with httpx.Client(base_url=kiosk.url, trust_env=False) as client:  # a database nobody opens after the key is set
        assert client.put("/archive").status_code == 201
        assert client.put("/archive/old", json={"note": MINUTES + " (archive)"}).status_code == 201
    kiosk.stop()
    assert "member name" in secrets_found(data_dir, pin_hash)
    assert (MINUTES + " (archive)").encode() in raw_bytes(data_dir)

    kiosk = start(tmp_path, data_dir, "bây giờ mới khoá")
    with httpx.Client(base_url=kiosk.url, trust_env=False) as client:
        assert client.get(f"/{DB}/{member_doc()['_id']}").json()["name"] == NAME
        assert client.get(f"/{DB}/{minutes_doc()['_id']}/danh-sach.pdf").content == ATTACHMENT
        assert client.get(f"/_users/org.couchdb.user:{CELL}.0042").json()["derived_key"] == pin_hash
    kiosk.stop()
    assert secrets_found(data_dir, pin_hash) == []
    assert (MINUTES + " (archive)").encode() not in raw_bytes(data_dir)


def test_a_row_moved_to_another_document_fails_its_check_with_a_couchdb_shaped_500(tmp_path):
    from sync_server.app import create_app

    settings = Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret")
    store = Server(tmp_path, StoreOptions(cipher=Cipher(os.urandom(32))))
    db = store.create("x")
    db.bulk_docs([{"_id": "a", "secret": "of a"}, {"_id": "b", "secret": "of b"}])
    path = db.path
    store.close()
    with sqlite3.connect(path) as conn:  # give b the body sealed for a
        (body_a,) = conn.execute("SELECT body FROM revs WHERE doc_id = 'a'").fetchone()
        conn.execute("UPDATE revs SET body = ? WHERE doc_id = 'b'", (body_a,))
    store = Server(tmp_path, StoreOptions(cipher=store.options.cipher))
    client = create_app(settings, store).test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
    assert client.get("/x/a", headers=auth).json["secret"] == "of a"
    response = client.get("/x/b", headers=auth)
    assert response.status_code == 500 and response.json["error"] == "store_corrupt"
    store.close()


def test_another_key_or_no_key_is_refused_and_cookies_are_signed_with_a_derived_secret(tmp_path):
    from sync_server.errors import StartupError

    cipher = Cipher(os.urandom(32))
    store = Server(tmp_path, StoreOptions(cipher=cipher))
    store.create("x").bulk_docs([{"_id": "a"}])
    clear_secret = store._identity()["secret"]
    assert store.secret != clear_secret and store.secret == cipher.derive("cookie secret").hex()
    store.close()
    for options in (StoreOptions(cipher=Cipher(os.urandom(32))), StoreOptions()):
        with pytest.raises(StartupError, match="database x is encrypted"):
            Server(tmp_path, options).get("x")


def test_change_passphrase_rewraps_the_key_only(tmp_path):
    first = crypto.unlock(tmp_path, "một")
    crypto.change_passphrase(tmp_path, "một", "hai")
    assert crypto.unlock(tmp_path, "hai").key_id == first.key_id
    from sync_server.errors import StartupError

    with pytest.raises(StartupError, match="wrong passphrase"):
        crypto.unlock(tmp_path, "một")


def test_cli_changes_the_passphrase(tmp_path):
    crypto.unlock(tmp_path / "data", "cũ")
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  encryption_key: env:{PASS_ENV}\n")
    run = subprocess.run([sys.executable, "-m", "sync_server", "encryption", "passphrase", "--new", "env:NEW_PASS",
                          "--config", str(config), "--data-dir", str(tmp_path / "data")],
                         cwd=ROOT, env={**os.environ, PASS_ENV: "cũ", "NEW_PASS": "mới"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert crypto.unlock(tmp_path / "data", "mới")


def test_a_copied_encrypted_directory_does_not_confirm_guessed_field_values(tmp_path: Path) -> None:
    """Revision ids stay in clear; with encryption they are keyed, so trying every attendance status
    (or birth year) against them, as CouchDB hashes a body, finds nothing (issue #15)."""
    from sync_server.store.revid import new_revid

    meeting = f"meeting:{CELL}:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384"
    doc = {"_id": f"attendance:{meeting}:0042", "type": "attendance", "cell": CELL, "meeting": meeting,
           "member": f"member:{CELL}:0042", "status": "excused"}
    found = {}
    for label, passphrase in (("clear", None), ("encrypted", "một câu mật khẩu dài")):
        (tmp_path / label / "data").mkdir(parents=True)
        kiosk = start(tmp_path / label, tmp_path / label / "data", passphrase)
        try:
            with httpx.Client(base_url=kiosk.url, trust_env=False) as client:
                client.put(f"/{DB}")
                assert client.put(f"/{DB}/{doc['_id']}", json=doc).status_code == 201
        finally:
            kiosk.stop()
        with sqlite3.connect(tmp_path / label / "data" / "dbs" / f"{DB}.sqlite") as raw:  # the stolen copy
            stored = raw.execute("SELECT winner FROM docs WHERE id = ?", (doc["_id"],)).fetchone()[0]
        body = {k: v for k, v in doc.items() if k != "_id"}
        found[label] = [status for status in ("present", "absent", "excused")
                        if f"1-{new_revid(False, 0, None, dict(body, status=status), [])}" == stored]
    assert found == {"clear": ["excused"], "encrypted": []}
