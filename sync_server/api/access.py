"""Opening a database for a request, with the access check that goes with it."""

from __future__ import annotations

from flask import g

from ..security.auth import require_admin, require_db_admin, require_member
from ..store import Database
from .http import server, settings


def open_db(name: str, *, design_write: bool = False) -> Database:
    """The named database, after checking the current user may use it.

    :raises NotFound: when it does not exist; Unauthorized/Forbidden per ``_security``.
    """
    db = server().get(name)
    if name == "_users":  # password hashes: admins only, as CouchDB 3 keeps it
        require_admin(g.user)
    security = db.get_security()
    require_member(g.user, security, settings().couchdb.default_security)
    if design_write:
        require_db_admin(g.user, security)
    return db
