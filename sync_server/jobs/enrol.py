"""Kiosk enrolment: the province issues one file per kiosk; the kiosk sets itself up from it.

The **enrolment file** (JSON, mode 0600) carries what a kiosk needs and nothing more: its
cell, the hub's URL, its own hub account (``kiosk-<cell>``, role ``kiosk``: it opens only
its cell's database and reads the handbook; never the hub admin's password) and the
province's signing public keys. The province makes one when it provisions a new kiosk
account (``sync-server provision --enrolment-dir``) or, for a replacement kiosk, with
``sync-server kiosk enrolment``, which gives the account a new password: the old kiosk
(dead, stolen, flooded) and any earlier file stop working at once.

``sync-server kiosk enrol FILE`` then, in one command:

1. checks the account against the hub (nothing is written when the hub refuses it);
2. keeps the account in ``DATA_DIR/hub-credentials`` (0600), named by
   ``sync.hub_credentials``; writes the kiosk's settings into config.yaml (other keys kept);
3. creates the cell's database and the handbook locally, readable by the cell's accounts only,
   and a kiosk admin account ``<cell>.kiosk`` with a PIN printed once (when missing);
4. pulls the cell's records and the handbook (signatures checked with the file's keys);
5. deletes the enrolment file: the account now lives only in the data directory (a
   file on read-only media is reported, to be destroyed by hand).

A kiosk cannot change its own hub password (CouchDB 3 keeps ``_users`` to admins), so
what makes a file one-time is the province: re-issuing gives the account a new password.

A kiosk whose data directory was wiped comes back with the same command (and a file the
province re-issued: the first was removed when it was used). What lived only on the kiosk is not on the hub
and does not come back: members' PINs (the "Đảng viên" screen lists who has none) and
paired phones (pair again).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from replication.http_peer import Connection, HttpPeer, split_url
from schemas.hierarchy import cell_db_name, check_code, kiosk_account
from sync_server.errors import CouchError, NotFound, PeerUnavailable, StartupError
from sync_server.handbook.members import new_pin
from sync_server.handbook.ownership import HANDBOOK_DB, KIOSK_ADMIN_ROLE, cell_role
from sync_server.handbook.policy import open_store
from sync_server.jobs.kiosk_sync import Syncer
from sync_server.jobs.local_dbs import ensure_local_dbs
from sync_server.private_file import write_private
from sync_server.security.audit import audit_for
from sync_server.security.auth import USER_PREFIX, current_name, current_roles
from sync_server.security.secrets_source import with_credentials
from sync_server.settings import Settings, load
from sync_server.store import Server

FORMAT = "party-handbook-kiosk-enrolment/1"
CREDENTIALS_FILE = "hub-credentials"
_FIELDS = ("format", "cell", "hub_url", "account", "password", "public_keys", "issued")


# --- the province's side ------------------------------------------------------------------

def enrolment(cell: str, hub_url: str, account: str, password: str, public_keys: dict[str, str] | None,
              handbook_selector: dict | None = None) -> dict[str, Any]:
    """The content of one kiosk's enrolment file (``hub_url`` without credentials).

    :raises StartupError: without the province's public keys (the kiosk would take any article).
    """
    if not public_keys:
        raise StartupError("no signing.public_keys in the province's config (--config): "
                           "a kiosk enrolled without them would accept unsigned articles")
    root = _bare(hub_url)
    doc = {"format": FORMAT, "cell": check_code(cell), "hub_url": root, "account": account,
           "password": password, "public_keys": dict(public_keys or {}), "issued": int(time.time())}
    if handbook_selector:
        doc["handbook_selector"] = handbook_selector
    return doc


def write_enrolment(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write an enrolment file only its owner can read."""
    path = Path(path)
    write_private(path, (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode())
    return path


def write_enrolments(directory: str | Path, hub_url: str, accounts: list[tuple[str, str, str]],
                     public_keys: dict[str, str] | None) -> list[Path]:
    """One enrolment file per new kiosk account (``enrol-<cell db>.json``) from a provisioning run."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [write_enrolment(directory / f"enrol-{cell_db_name(cell)}.json",
                            enrolment(cell, hub_url, name, password, public_keys))
            for cell, name, password in accounts]


def reissue(hub_admin_url: str, cell: str, out: str | Path, kiosk_hub_url: str | None = None,
            public_keys: dict[str, str] | None = None, handbook_selector: dict | None = None) -> Path:
    """A new enrolment file for a provisioned kiosk: its hub account gets a new password.

    :raises StartupError: when the hub has no account for that cell (provision it first).
    """
    name = kiosk_account(cell)
    enrolment(cell, kiosk_hub_url or hub_admin_url, name, "", public_keys)  # refuses before the hub is touched
    path = f"/_users/{quote(USER_PREFIX + name, safe='')}"
    with Connection(hub_admin_url) as hub:
        try:
            account = hub.request("GET", path)
        except NotFound:
            raise StartupError(f"the hub has no account {name}: provision cell {cell} first") from None
        password = secrets.token_urlsafe(18)
        hub.request("PUT", path, body={**{k: v for k, v in account.items() if not _secret_field(k)},
                                       "password": password})
    doc = enrolment(cell, kiosk_hub_url or hub_admin_url, name, password, public_keys, handbook_selector)
    return write_enrolment(out, doc)


def _secret_field(key: str) -> bool:
    return key in ("password", "derived_key", "salt", "iterations", "password_scheme", "pbkdf2_prf",
                   "scrypt_n", "scrypt_r", "scrypt_p")


def _bare(url: str) -> str:
    """A root URL without credentials."""
    return split_url(url.rstrip("/") + "/x")[0].rstrip("/") + "/"


# --- the kiosk's side ---------------------------------------------------------------------

def read_enrolment(path: str | Path) -> dict[str, Any]:
    """Read and check an enrolment file.

    :raises StartupError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StartupError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise StartupError(f"{path} is not an enrolment file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StartupError(f"{path} is not an enrolment file (format {FORMAT} expected)")
    missing = [k for k in _FIELDS if k not in doc]
    if missing:
        raise StartupError(f"{path}: missing {', '.join(missing)}")
    for key in ("cell", "hub_url", "account", "password"):
        if not isinstance(doc[key], str) or not doc[key]:
            raise StartupError(f"{path}: {key} must be a non-empty string")
    try:
        check_code(doc["cell"])
    except Exception:
        raise StartupError(f"{path}: {doc['cell']!r} is not a cell code") from None
    if doc["account"] != kiosk_account(doc["cell"]):
        raise StartupError(f"{path}: the account of cell {doc['cell']} is {kiosk_account(doc['cell'])}, "
                           f"not {doc['account']!r} (a kiosk never gets another account)")
    if not isinstance(doc["public_keys"], dict) or not doc["public_keys"]:
        raise StartupError(f"{path}: public_keys must name the province's signing keys (key id: base64)")
    return doc


@dataclass
class Enrolled:
    """What ``kiosk enrol`` did."""

    cell: str
    config_path: Path
    data_dir: Path
    admin_pin: str | None          # the new kiosk admin account's PIN, printed once
    cell_docs: int
    handbook_docs: int
    sync_error: str | None         # the first pull stopped (serve or sync --once finishes it)
    removed: bool                  # the enrolment file was deleted (its account now lives in the data dir)


def enrol(path: str | Path, config_path: str | Path, data_dir: str | Path | None = None) -> Enrolled:
    """Set this kiosk up from an enrolment file (see the module's docstring)."""
    doc = read_enrolment(path)
    config_path = Path(config_path).resolve()
    current = _read_yaml(config_path)
    data_dir = Path(data_dir or current.get("server", {}).get("data_dir") or config_path.parent / "data").resolve()
    cell, cell_db = doc["cell"], cell_db_name(doc["cell"])
    _check_account(doc, cell_db, current)

    data_dir.mkdir(parents=True, exist_ok=True)
    credentials = data_dir / CREDENTIALS_FILE
    write_private(credentials, f"{doc['account']}:{doc['password']}".encode())
    settings = _write_settings(config_path, current, {
        "server": {"data_dir": str(data_dir)},
        "sync": {"hub_url": doc["hub_url"], "hub_credentials": f"file:{credentials}", "cell_db": cell_db,
                 "hub_cell_db": None, "handbook_db": HANDBOOK_DB,
                 "handbook_selector": doc.get("handbook_selector")},
        "signing": {"public_keys": doc["public_keys"]}})

    server = open_store(settings)
    try:
        ensure_local_dbs(settings, server)
        admin_pin = _ensure_kiosk_admin(server, cell)
        syncer = Syncer(settings, server)
        try:
            done = syncer.run_round()
        finally:
            syncer.close()
        counts = {name: server.get(name).doc_count if server.exists(name) else 0 for name in (cell_db, HANDBOOK_DB)}
        audit_for(server.data_dir).record("enrolled", cell=cell, hub=doc["hub_url"], ok=done.ok,
                                          admin_created=admin_pin is not None)
    finally:
        server.close()
    return Enrolled(cell, config_path, data_dir, admin_pin, counts[cell_db], counts[HANDBOOK_DB],
                    None if done.ok else done.error, _remove(Path(path)))


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _check_account(doc: dict[str, Any], cell_db: str, current: dict) -> None:
    """The hub must open the cell's database to this account, before anything is written."""
    ca_bundle = (current.get("sync") or {}).get("ca_bundle")
    peer = HttpPeer(_as_kiosk(doc, cell_db), timeout=30, retries=2, ca_bundle=ca_bundle)
    try:
        peer.request("GET", f"/{cell_db}")
    except CouchError as exc:
        if exc.status in (401, 403):
            raise StartupError(f"the hub refused the account {doc['account']} ({exc.reason}): "
                               "this file was replaced by a newer one; ask the province for a new one") from None
        if exc.status == 404:
            raise StartupError(f"the hub has no database {cell_db}: ask the province to provision cell {doc['cell']}") from None
        raise StartupError(f"the hub answered {exc.status} {exc.error}: {exc.reason}") from None
    except PeerUnavailable as exc:
        raise StartupError(f"cannot reach the hub {doc['hub_url']}: {exc}") from None
    finally:
        peer.close()


def _as_kiosk(doc: dict[str, Any], db: str) -> str:
    """The URL of a hub database with the file's account in it."""
    return with_credentials(doc["hub_url"], f"{doc['account']}:{doc['password']}").rstrip("/") + "/" + db


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"cannot read {path}: {exc}") from None
    if not isinstance(found, dict):
        raise StartupError(f"{path} is not a mapping of sections")
    return found


def _write_settings(path: Path, current: dict[str, Any], changes: dict[str, dict[str, Any]]) -> Settings:
    """Merge ``changes`` into config.yaml (None removes a key), check it, and only then replace the file."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in current.items()}
    for section, values in changes.items():
        target = merged.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    text = ("# Written by `sync-server kiosk enrol`; every key is documented in the project's config.yaml.\n"
            + yaml.safe_dump(merged, allow_unicode=True, sort_keys=False))
    trial = path.with_name(path.name + ".new")
    write_private(trial, text.encode())
    try:
        settings = load(trial)
    except StartupError:
        trial.unlink()
        raise
    trial.replace(path)
    return settings


def _ensure_kiosk_admin(server: Server, cell: str) -> str | None:
    """The cell's kiosk admin account ``<cell>.kiosk`` with a new PIN, when it has none; the PIN or None."""
    users = server.get_or_create("_users")
    name = f"{cell}.kiosk"
    try:
        users.get(USER_PREFIX + name)
        return None
    except NotFound:
        pass
    pin = new_pin()
    roles, who = current_roles.set(None), current_name.set(None)
    try:
        result = users.bulk_docs([{"_id": USER_PREFIX + name, "type": "user", "name": name,
                                   "roles": [KIOSK_ADMIN_ROLE, cell_role(cell)], "pin": pin}])
    finally:
        current_roles.reset(roles)
        current_name.reset(who)
    if "error" in result[0]:
        raise StartupError(f"cannot create the kiosk admin account {name}: {result[0]['reason']}")
    return pin
