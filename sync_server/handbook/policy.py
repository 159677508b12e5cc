"""What every document write must satisfy on this server, whatever the client.

- a typed document must match its JSON Schema (``validation.py``);
- when the province's public keys are configured, an article must carry a
  signature that verifies, attachments included (``signing.py``). An article
  that fails is kept in the quarantine database (admins only), never in the
  database members read, and the write is refused with 403 ``forbidden`` so a
  replicator records it and carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..design import engine as design_engine
from ..design.validate import DesignValidator, check_design_doc
from ..errors import BadRequest, Forbidden, NotFound, StartupError
from ..security import passwords, signing
from ..security.audit import audit_for
from ..security.auth import USER_PREFIX, current_name, current_roles
from ..security.secrets_source import read_passphrase
from ..store import Server, StoreOptions, crypto
from ..store.crypto import Cipher
from . import ownership, validation

log = logging.getLogger(__name__)

AttachmentData = Callable[[str], bytes]


class DocumentPolicy:
    """The write checks of one server, called by the store for every live document."""

    def __init__(self, public_keys: dict[str, str] | None, quarantine_db: str, handbook_db: str | None = None,
                 checkin: dict[str, int] | None = None) -> None:
        self.public_keys = public_keys or {}
        self.quarantine_db = quarantine_db
        self.handbook_db = handbook_db
        self.checkin = checkin
        self.server: Server | None = None  # set once the store is open

    def __call__(self, db_name: str, doc: dict, data: AttachmentData, old: dict | None = None) -> dict | None:
        """Check one document replacing ``old`` (None: a new one); a refusal is also written to the audit log."""
        try:
            return self._check(db_name, doc, data, old)
        except Forbidden as exc:
            if self.server is not None:
                audit_for(self.server.data_dir).record(
                    "refused_write", db=db_name, id=str(doc.get("_id")), reason=exc.reason,
                    user=current_name.get(), roles=list(current_roles.get() or ["(server)"]))
            raise

    def _check(self, db_name: str, doc: dict, data: AttachmentData, old: dict | None) -> dict | None:
        """:raises Forbidden: naming the rule the document breaks; returns a rewritten document or None.

        In a database with an ownership rule (a cell's, the handbook) every write meets
        it, whatever ``type`` says; elsewhere documents whose ``type`` is not one of the
        handbook's (or that have none) are left alone: this is still a general CouchDB replica.
        """
        if db_name == "_users":
            return None if doc.get("_deleted") else user_doc(doc)
        if doc.get("type") in validation.DOCUMENT_TYPES:
            validation.validate(doc)
        rule = ownership.rules_for(db_name, self.handbook_db, self.checkin)
        roles = current_roles.get()
        reason = ownership.check(rule, doc, roles, current_name.get(), old)
        if reason is None and rule is not None and rule["kind"] == "cell" and ownership.is_plain_member(roles) \
                and ownership.kind_of(str(doc.get("_id", ""))) == "attendance":
            reason = ownership.checkin_meets_meeting(doc, self._doc(db_name, str(doc.get("meeting"))))
        if reason is not None:
            raise Forbidden(reason)
        if str(doc.get("_id", "")).startswith("article:") and self.public_keys and db_name != self.quarantine_db:
            try:
                if doc.get("_deleted"):
                    verify_retraction(doc, self.public_keys)
                else:
                    atts = {name: data(stub["digest"]) for name, stub in (doc.get("_attachments") or {}).items()}
                    signing.verify(doc, self.public_keys, atts)
            except Forbidden as exc:
                self._quarantine(db_name, doc, exc.reason)
                raise
        return None

    def _doc(self, db_name: str, doc_id: str) -> dict | None:
        """A document of this server as committed (read outside the write under way), or None."""
        if self.server is None or not self.server.exists(db_name):
            return None
        try:
            return self.server.get(db_name).get(doc_id)
        except NotFound:
            return None

    def _quarantine(self, db_name: str, doc: dict, reason: str) -> None:
        if self.server is None:
            return
        db = self.server.get_or_create(self.quarantine_db)
        if not db.get_security():
            db.put_security({"admins": {"names": [], "roles": []}, "members": {"names": [], "roles": ["_admin"]}})
        record = {"_id": f"{db_name}:{doc.get('_id')}:{int(time.time() * 1000)}", "db": db_name,
                  "reason": reason, "quarantined_at": int(time.time()),
                  "article": {k: v for k, v in doc.items() if k != "_attachments"}}
        db.bulk_docs([record])
        log.warning("quarantined %s from %s: %s", doc.get("_id"), db_name, reason)


def verify_retraction(doc: dict, public_keys: dict[str, str]) -> None:
    """A deleted article must be the province's signed retraction (``sync-server publish --retract``).

    :raises Forbidden: for a deletion without ``"retracted": true`` and a signature that verifies.
    """
    if doc.get("retracted") is not True or not doc.get("signature"):
        raise Forbidden(f"article {doc.get('_id')}: deletion not signed by the province (not a signed retraction)")
    signing.verify(doc, public_keys, {})


def _check_account(doc: dict, doc_id: str) -> None:
    """CouchDB's rules for an account document (its ``_users`` validate_doc_update), in its order and words.

    :raises Forbidden: for the first rule broken.
    """
    name, roles = doc.get("name"), doc.get("roles")
    if doc.get("type") != "user":
        raise Forbidden("doc.type must be user")
    if not name or not isinstance(name, str):
        raise Forbidden("doc.name is required")
    if roles is None:
        raise Forbidden("doc.roles must exist")
    if not isinstance(roles, list):
        raise Forbidden("doc.roles must be an array")
    if not all(isinstance(r, str) for r in roles):
        raise Forbidden("doc.roles can only contain strings")
    if doc_id != USER_PREFIX + name:
        raise Forbidden("Doc ID must be of the form org.couchdb.user:name")
    if any(r.startswith("_") for r in roles):  # "_admin" in _users would make a server admin
        raise Forbidden("No system roles (starting with underscore) in users db.")
    if name.startswith("_"):
        raise Forbidden("Username may not start with underscore.")
    if ":" in name:
        raise Forbidden("Character `:` is not allowed in usernames.")


def user_doc(doc: dict) -> dict | None:
    """Check a ``_users`` document as CouchDB does, and hash a clear-text password.

    :raises Forbidden: for a malformed account document.
    """
    doc_id = str(doc.get("_id", ""))
    if doc_id.startswith("_design/"):
        return None
    _check_account(doc, doc_id)
    secret = "pin" if "pin" in doc else "password" if "password" in doc else None
    if secret is None:
        return None
    if not isinstance(doc[secret], str) or not doc[secret]:
        raise BadRequest(f"{secret} must be a non-empty string")
    if secret == "pin" and not (doc["pin"].isdigit() and 4 <= len(doc["pin"]) <= 8):
        raise BadRequest("a PIN is 4 to 8 digits")
    rewritten = {k: v for k, v in doc.items() if k not in ("password", "pin")}
    rewritten.update(passwords.pin_fields(doc["pin"]) if secret == "pin" else passwords.hash_fields(doc["password"]))
    return rewritten


def quarantined_count(server: Server, quarantine_db: str) -> int:
    """How many articles wait in quarantine (for the sync status)."""
    return server.get(quarantine_db).doc_count if server.exists(quarantine_db) else 0


__all__ = ["DocumentPolicy", "open_store", "quarantined_count"]


def open_store(settings: Any) -> Server:
    """The store of a data directory with this server's write policy: every entry point opens it so."""
    server_settings = settings.server
    window = ownership.checkin_window(server_settings.checkin_opens_minutes, server_settings.checkin_closes_minutes,
                                      server_settings.clock_skew_seconds)
    policy = DocumentPolicy(settings.signing.public_keys, settings.signing.quarantine_db, settings.sync.handbook_db,
                            window)
    security = kiosk_security_for(settings)
    server = Server(settings.server.data_dir, StoreOptions(
        max_document_size=settings.couchdb.max_document_size, revs_limit=settings.couchdb.revs_limit,
        synchronous=settings.storage.synchronous, validate=policy, cipher=store_cipher(settings),
        security_for=security, validate_design=DesignValidator(), check_design=check_design_doc))
    design_engine.configure(settings.design.js_time_limit_ms, settings.design.js_memory_limit_mb)
    policy.server = server
    for name in (settings.sync.cell_db, settings.sync.handbook_db):
        if name and server.exists(name):
            secure(server.get(name), security(name))
    return server


def kiosk_security_for(settings: Any) -> Callable[[str], dict | None]:
    """The ``_security`` a kiosk's own databases (``sync.cell_db``, ``sync.handbook_db``) get, by name."""
    cell = ownership.cell_of_db(settings.sync.cell_db or "")

    def security(name: str) -> dict | None:
        if name in (settings.sync.cell_db, settings.sync.handbook_db):
            return ownership.kiosk_security(name, cell)
        return None

    return security


def secure(db: Any, security: dict | None) -> None:
    """Give a database ``security`` unless its ``_security`` already names readers (a set one is kept)."""
    members = db.get_security().get("members") or {}
    if security and not (members.get("names") or members.get("roles")):
        db.put_security(security)


def store_cipher(settings: Any) -> Cipher | None:
    """The data directory's cipher from ``storage.encryption_key``, or None when it is kept in clear.

    :raises StartupError: when the directory is encrypted and no key is set, or the passphrase is wrong.
    """
    data_dir, spec = settings.server.data_dir, settings.storage.encryption_key
    if spec is None:
        if crypto.is_encrypted(data_dir):
            raise StartupError(f"the data directory {data_dir} is encrypted: set storage.encryption_key "
                               "(env:NAME, file:/path or prompt)")
        return None
    return crypto.unlock(data_dir, read_passphrase(spec, f"the data directory {data_dir}"))
