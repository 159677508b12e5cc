"""The set of databases under one data directory, and the server's identity.

Layout: ``DATA_DIR/server.json`` holds the uuid (stable for the life of the data
directory: PouchDB builds replication ids from it) and the cookie secret;
``DATA_DIR/dbs/<quoted name>.sqlite`` is one database.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote, unquote

from ..errors import BadRequest, FileExists, NotFound
from ..private_file import write_private
from .database import Database, StoreOptions

# CouchDB's rule for database names (couch_db:validate_dbname/1), plus its system databases.
_NAME_RE = re.compile(r"^[a-z][a-z0-9_$()+/-]{0,237}$")
SYSTEM_DBS = frozenset({"_users", "_replicator", "_global_changes"})
_SUFFIX = ".sqlite"
# Databases whose idle read connections stay open; older ones give theirs back.
# A hub has a database per cell (thousands): open files and memory stay bounded.
ACTIVE_DBS = 64


def check_db_name(name: str) -> str:
    """Return the name if CouchDB would accept it.

    :raises BadRequest: error ``illegal_database_name``.
    """
    if name in SYSTEM_DBS or _NAME_RE.match(name):
        return name
    raise BadRequest(
        f"Name: '{name[:80]}'. Only lowercase characters (a-z), digits (0-9), and any of the characters "
        "_, $, (, ), +, -, and / are allowed. Must begin with a letter.",
        error="illegal_database_name",
    )


def keep_private(directory: Path) -> None:
    """Only the service account reads a data directory (issue #15): the directory and ``dbs/`` 0700,
    the files in them 0600. Without encryption they hold the cookie secret and every record."""
    for folder in (directory, directory / "dbs"):
        if not folder.is_dir():
            continue
        try:
            os.chmod(folder, 0o700)
            for item in folder.iterdir():
                if item.is_file() and not item.is_symlink() and item.stat().st_mode & 0o077:
                    os.chmod(item, 0o600)
        except OSError:
            pass  # not ours to change (a read-only copy): the checks elsewhere still hold


class Server:
    """Create, open, list and delete databases in a data directory."""

    def __init__(self, data_dir: str | Path, options: StoreOptions | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.options = options or StoreOptions()
        self._dbs_dir = self.data_dir / "dbs"
        self._dbs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keep_private(self.data_dir)
        self._open: dict[str, Database] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        identity = self._identity()
        self.uuid: str = identity["uuid"]
        # Signs session cookies. Encrypted, it comes from the data key, so a copy of the
        # directory (server.json is in clear) cannot forge a session on the live kiosk.
        cipher = self.options.cipher
        self.secret: str = cipher.derive("cookie secret").hex() if cipher is not None else identity["secret"]
        if cipher is not None:
            self._check_all()

    def _check_all(self) -> None:
        """Open every database once, so that each is checked against the key (and a clear one encrypted) now."""
        for name in self.all_dbs():
            self.get(name).trim()

    def _identity(self) -> dict:
        """Read server.json, creating it once (written atomically)."""
        path = self.data_dir / "server.json"
        if path.exists():
            return json.loads(path.read_text())
        identity = {"uuid": secrets.token_hex(16), "secret": secrets.token_hex(32)}
        write_private(path, json.dumps(identity).encode())
        return identity

    def _path(self, name: str) -> Path:
        return self._dbs_dir / (quote(name, safe="") + _SUFFIX)

    def exists(self, name: str) -> bool:
        """Whether the database exists."""
        return name in self._open or self._path(name).exists()

    def all_dbs(self) -> list[str]:
        """Every database name, sorted."""
        names = [unquote(p.name[: -len(_SUFFIX)]) for p in self._dbs_dir.glob("*" + _SUFFIX)]
        return sorted(names)

    def create(self, name: str) -> Database:
        """Create a database.

        :raises FileExists: when it already exists; BadRequest for an illegal name.
        """
        check_db_name(name)
        with self._lock:
            if self.exists(name):
                raise FileExists()
            db = Database(name, str(self._path(name)), self.options)
            for suffix in ("", "-wal", "-shm"):  # SQLite gives the WAL and shm files the database's mode
                if Path(str(self._path(name)) + suffix).exists():
                    os.chmod(str(self._path(name)) + suffix, 0o600)
            security = self.options.security_for(name) if self.options.security_for else None
            if security:
                db.put_security(security)
            self._open[name] = db
            return db

    def get(self, name: str) -> Database:
        """Open an existing database.

        :raises NotFound: reason "Database does not exist."
        """
        db = self._open.get(name)
        if db is None:
            with self._lock:
                if name not in self._open:
                    if not self._path(name).exists():
                        raise NotFound("Database does not exist.")
                    self._open[name] = Database(name, str(self._path(name)), self.options)
                db = self._open[name]
        self._touch(name)
        return db

    def _touch(self, name: str) -> None:
        """Note a use; the least recently used database beyond ACTIVE_DBS gives back its readers."""
        with self._lock:
            self._recent[name] = None
            self._recent.move_to_end(name)
            if len(self._recent) <= ACTIVE_DBS:
                return
            oldest, _ = self._recent.popitem(last=False)
            db = self._open.get(oldest)
        if db is not None:
            db.trim()

    def get_or_create(self, name: str) -> Database:
        """Open a database, creating it when missing."""
        try:
            return self.get(name)
        except NotFound:
            try:
                return self.create(name)
            except FileExists:
                return self.get(name)

    def delete(self, name: str) -> None:
        """Delete a database and its files.

        :raises NotFound: when it does not exist.
        """
        with self._lock:
            if not self.exists(name):
                raise NotFound("Database does not exist.")
            db = self._open.pop(name, None)
            self._recent.pop(name, None)
            if db is not None:
                db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(self._path(name)) + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        """Close every open database."""
        with self._lock:
            for db in self._open.values():
                db.close()
            self._open.clear()
