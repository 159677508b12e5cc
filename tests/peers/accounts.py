"""Accounts at an in-process kiosk, shared by the API, security and handbook tests.

``basic`` signs a request in; ``account`` is a ``_users`` document with a PIN (or a password);
``open_cells`` gives a test client cell databases, readable by their cells, and accounts.
"""

from __future__ import annotations

import base64
from typing import Any


def basic(name: str, secret: str) -> dict[str, str]:
    """The ``Authorization`` header of HTTP Basic sign-in."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


ADMIN = basic("admin", "secret")  # the server admin of Settings(..., admin="admin:secret")


def account(name: str, secret: str, *roles: str, field: str = "pin") -> dict:
    """A ``_users`` document: ``secret`` is its PIN, or with ``field="password"`` its password."""
    return {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": list(roles), field: secret}


def open_cells(client: Any, cells: dict[str, str], accounts: list[dict], roles: tuple[str, ...] = ()) -> None:
    """Create each cell database (``{db: cell code}``) with its members role ``cell:<code>`` (and
    ``roles``), then ``_users`` and ``accounts`` in it, as the server admin."""
    for db, cell in cells.items():
        client.put(f"/{db}", headers=ADMIN)
        client.put(f"/{db}/_security", headers=ADMIN,
                   json={"admins": {"names": [], "roles": []}, "members": {"names": [], "roles": [f"cell:{cell}", *roles]}})
    client.put("/_users", headers=ADMIN)
    for doc in accounts:
        assert client.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN).status_code == 201
