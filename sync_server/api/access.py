"""Opening a database for a request, with the access check that goes with it."""

from __future__ import annotations

from flask import g

from ..errors import Forbidden, Unauthorized
from ..security.auth import require_db_admin, require_member
from ..store import Database
from .http import server, settings


def open_db(name: str, *, design_write: bool = False) -> Database:
    """The named database, after checking the current user may use it.

    :raises NotFound: when it does not exist; Unauthorized/Forbidden per ``_security``.
    """
    db = server().get(name)
    if name == "_users" and not g.user.is_admin:  # password hashes: admins only, as CouchDB 3 keeps it
        if g.user.name is None:
            raise Unauthorized("You are not authorized to access this db.")
        raise Forbidden("You are not allowed to access this db.")
    security = db.get_security()
    require_member(g.user, security, settings().couchdb.default_security)
    if design_write:
        require_db_admin(g.user, security)
    return db
