"""The audit log: what is recorded, and that editing, removing or cutting lines is detected."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sync_server.app import create_app
from sync_server.security.audit import AuditLog, verify
from sync_server.settings import Settings


def lines(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "audit.log").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    audit = AuditLog(tmp_path)
    for i in range(5):
        audit.record("sync", ok=True, n_docs=i, note="Đồng bộ")
    return tmp_path


def test_intact_log_verifies(log: Path) -> None:
    assert verify(log) == (True, 5, "")


def rewrite(log: Path, change) -> None:
    path = log / "audit.log"
    kept = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(change(kept)) + "\n", encoding="utf-8")


def test_an_edited_line_is_detected(log: Path) -> None:
    def edit(kept):
        entry = json.loads(kept[2])
        entry["ok"] = False
        kept[2] = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        return kept
    rewrite(log, edit)
    assert verify(log) == (False, 2, "line 3 was edited (its hash does not match)")


def test_a_removed_line_is_detected(log: Path) -> None:
    rewrite(log, lambda kept: kept[:1] + kept[2:])
    intact, count, problem = verify(log)
    assert not intact and count == 1 and problem.startswith("line 2: the chain is broken")


def test_lines_cut_off_the_end_are_detected(log: Path) -> None:
    rewrite(log, lambda kept: kept[:3])
    intact, count, problem = verify(log)
    assert not intact and count == 3 and "cut off the end" in problem


def test_cli_verify_says_intact_or_tampered(log: Path) -> None:
    command = [sys.executable, "-m", "sync_server", "audit", "verify", "--data-dir", str(log)]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "audit log intact: 5 entries"
    rewrite(log, lambda kept: kept[:1] + kept[2:])
    bad = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.startswith("Error: audit log tampered with: line 2")


def test_sign_ins_and_refused_writes_are_recorded(tmp_path: Path) -> None:
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    client = app.test_client()
    admin = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
    client.put("/cell-tq-nh-kh-c01", headers=admin)
    assert client.get("/", headers={"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}).status_code == 401
    assert client.post("/_session", json={"name": "admin", "password": "secret"}).status_code == 200
    bad = {"_id": "meeting:TQ.NH.KH.C02:x1", "type": "meeting", "cell": "TQ.NH.KH.C02", "kind": "regular",
           "scheduled": "2026-12-03T19:30:00+07:00", "status": "scheduled"}
    assert client.put("/cell-tq-nh-kh-c01/meeting:TQ.NH.KH.C02:x1", json=bad, headers=admin).status_code == 403
    app.extensions["sync_server"].close()
    events = [(e["event"], e.get("name") or e.get("id")) for e in lines(tmp_path)]
    assert events == [("sign_in_failed", "admin"), ("sign_in", "admin"), ("refused_write", "meeting:TQ.NH.KH.C02:x1")]
    assert lines(tmp_path)[-1]["user"] == "admin" and verify(tmp_path)[0]
