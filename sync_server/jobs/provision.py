"""``sync-server provision``: set a hub up from the hierarchy file, idempotently.

Creates the ``handbook`` database (the province writes, kiosks read), one
database per cell whose ``_security`` admits only that cell's kiosk account
and the province, the kiosk accounts in ``_users``, the unit documents, and in
every database a ``validate_doc_update`` rendered from ``sync_server.handbook.ownership``
(the rules this project's server also enforces natively). Each thing is read
first and written only when it differs, so running it again changes nothing.
New kiosk passwords are written once, to a credentials file only root can read.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from replication.http_peer import Connection, db_path, doc_path
from schemas.hierarchy import Hierarchy, cell_db_name, kiosk_account
from sync_server.errors import Conflict, NotFound
from sync_server.handbook import ownership

KIOSK_ROLE = "kiosk"


@dataclass
class Report:
    """What a provisioning run changed (all zero on a second run)."""

    created_dbs: int = 0
    security_set: int = 0
    design_docs: int = 0
    units_written: int = 0
    accounts_created: list[tuple[str, str, str]] = field(default_factory=list)  # (cell, account, password)

    @property
    def changes(self) -> int:
        return (self.created_dbs + self.security_set + self.design_docs + self.units_written
                + len(self.accounts_created))


class Provisioner:
    """Talks to one hub (a CouchDB-protocol server root URL with an admin account)."""

    def __init__(self, hub_url: str) -> None:
        self._hub = Connection(hub_url)
        self.report = Report()

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        return self._hub.request(method, path, body=body, ok=ok)

    def _get(self, path: str) -> Any:
        try:
            return self._call("GET", path)
        except NotFound:
            return None

    def ensure_db(self, name: str) -> None:
        if self._get(db_path(name)) is None:
            self._call("PUT", db_path(name), ok=(201, 202, 412))
            self.report.created_dbs += 1

    def ensure_security(self, db: str, security: dict) -> None:
        path = db_path(db) + "/_security"
        if (self._get(path) or {}) != security:
            self._call("PUT", path, security)
            self.report.security_set += 1

    def ensure_doc(self, db: str, doc: dict) -> bool:
        """Write ``doc`` unless the database already holds the same content; True when written."""
        path = doc_path(db, doc["_id"])
        current = self._get(path)
        if current is not None and _content(current) == _content(doc):
            return False
        body = dict(doc, _rev=current["_rev"]) if current else doc
        self._call("PUT", path, body)
        return True

    def ensure_account(self, cell: str) -> None:
        name = kiosk_account(cell)
        doc_id = f"org.couchdb.user:{name}"
        if self._get(doc_path("_users", doc_id)) is not None:
            return  # keep its password: re-running must not lock a kiosk out
        password = secrets.token_urlsafe(18)
        try:
            self._call("PUT", doc_path("_users", doc_id),
                       {"_id": doc_id, "name": name, "type": "user", "roles": [KIOSK_ROLE], "password": password})
        except Conflict:
            return
        self.report.accounts_created.append((cell, name, password))

    def close(self) -> None:
        self._hub.close()


def _content(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_rev", "_revisions")}


def security_of_cell(cell: str) -> dict:
    return {"admins": {"names": [], "roles": [ownership.PROVINCE_ROLE]},
            "members": {"names": [kiosk_account(cell)], "roles": [ownership.PROVINCE_ROLE]}}


HANDBOOK_SECURITY = {"admins": {"names": [], "roles": [ownership.PROVINCE_ROLE]},
                     "members": {"names": [], "roles": [ownership.PROVINCE_ROLE, KIOSK_ROLE]}}


def provision(hub_url: str, hierarchy: Hierarchy, credentials: str | Path | None = None) -> Report:
    """Set the hub up for every cell of the hierarchy; returns what changed."""
    hub = Provisioner(hub_url)
    try:
        hub.ensure_db("_users")
        hub.ensure_db(ownership.HANDBOOK_DB)
        hub.ensure_security(ownership.HANDBOOK_DB, HANDBOOK_SECURITY)
        hub.report.design_docs += hub.ensure_doc(
            ownership.HANDBOOK_DB, ownership.design_doc(ownership.rules_for(ownership.HANDBOOK_DB) or {}))
        for unit in hierarchy.unit_docs():
            hub.report.units_written += hub.ensure_doc(ownership.HANDBOOK_DB, unit)
        for cell in hierarchy.cells():
            code = cell.code
            db = cell_db_name(code)
            hub.ensure_db(db)
            hub.ensure_security(db, security_of_cell(code))
            hub.report.design_docs += hub.ensure_doc(db, ownership.design_doc(ownership.rules_for(db) or {}))
            hub.ensure_account(code)
    finally:
        hub.close()
        if credentials and hub.report.accounts_created:
            write_credentials(credentials, hub_url, hub.report.accounts_created)
    return hub.report


def write_credentials(path: str | Path, hub_url: str, accounts: list[tuple[str, str, str]]) -> None:
    """Append new kiosk accounts to a CSV only its owner can read (cell, account, password, hub).

    Each row goes to one kiosk: ``hub`` is the hub's address without the admin account
    provisioning ran with (issue #15), which never leaves the province.
    """
    hub_url = str(httpx.URL(hub_url).copy_with(username=None, password=None))
    path = Path(path)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = io.StringIO()
    writer = csv.writer(out)
    if new:
        writer.writerow(["cell", "account", "password", "hub"])
    for cell, name, password in accounts:
        writer.writerow([cell, name, password, hub_url])
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(out.getvalue())
