"""The document store: CouchDB semantics on SQLite. Imports sqlite3, never Flask."""

from .database import Change, Database, StoreOptions
from .server import Server

__all__ = ["Change", "Database", "Server", "StoreOptions"]
