"""Small helpers shared by the in-process API tests (tests/api).

They drive the Flask test client (see the ``client`` fixture in tests/conftest.py)
and assert on the happy path, so a test reads as the CouchDB behaviour it checks.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import gzip
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

DB = "db"


def body(response: Any) -> Any:
    """The JSON body of a response (gzip-decoded if it was compressed)."""
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return json.loads(data)


def create_db(client: Any, name: str = DB) -> str:
    """PUT /{name} and check the 201."""
    response = client.put(f"/{quote(name, safe='')}")
    assert response.status_code == 201, response.get_data()
    assert body(response) == {"ok": True}
    return name


def put(client: Any, doc_id: str, doc: dict | None = None, db: str = DB, **params: str) -> str:
    """PUT a document (201 expected) and return its new rev."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.put(f"/{db}/{quote(doc_id, safe='')}" + (f"?{query}" if query else ""), json=doc or {})
    assert response.status_code == 201, response.get_data()
    result = body(response)
    assert result["ok"] is True and result["id"] == doc_id
    return result["rev"]


def get(client: Any, path: str, status: int = 200, **kwargs: Any) -> Any:
    """GET a path, check the status, return the JSON body."""
    response = client.get(path, **kwargs)
    assert response.status_code == status, (path, response.status_code, response.get_data()[:500])
    return body(response)


def post(client: Any, path: str, payload: Any, status: int = 200, **kwargs: Any) -> Any:
    """POST JSON, check the status, return the JSON body."""
    response = client.post(path, json=payload, **kwargs)
    assert response.status_code == status, (path, response.status_code, response.get_data()[:500])
    return body(response)


def bulk(client: Any, docs: list[dict], db: str = DB, new_edits: bool = True) -> Any:
    """POST _bulk_docs (201 expected) and return its rows."""
    payload: dict[str, Any] = {"docs": docs}
    if not new_edits:
        payload["new_edits"] = False
    return post(client, f"/{db}/_bulk_docs", payload, status=201)


def info(client: Any, db: str = DB) -> dict:
    """GET /{db}."""
    return get(client, f"/{db}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def md5_digest(data: bytes) -> str:
    """CouchDB's attachment digest: md5- and the base64 of the MD5."""
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def db_file(data_dir: str | Path, db: str = DB) -> Path:
    """The SQLite file of a database under DATA_DIR/dbs/."""
    return Path(data_dir) / "dbs" / (quote(db, safe="") + ".sqlite")


def count_rows(data_dir: str | Path, table: str, db: str = DB) -> int:
    """Rows of one table of a database file, read with a separate read-only connection."""
    path = db_file(data_dir, db)
    assert path.exists(), path
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def multipart_parts(response: Any) -> list[tuple[str, bytes]]:
    """(Content-Type, payload) of each part of a multipart/mixed response."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/mixed"), content_type
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.get_data())
    assert message.is_multipart(), response.get_data()[:300]
    return [(part["Content-Type"], part.get_payload(decode=True)) for part in message.iter_parts()]


def seq_number(seq: str) -> int:
    """The number in front of an opaque sequence string."""
    assert isinstance(seq, str), seq
    return int(seq.split("-", 1)[0])
