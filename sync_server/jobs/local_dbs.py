"""The kiosk's own databases: created when missing, before any sync round (issue 13)."""

from __future__ import annotations

from sync_server.handbook.ownership import cell_of_db, cell_role
from sync_server.settings import Settings
from sync_server.store import Server


def ensure_local_dbs(settings: Settings, server: Server) -> list[str]:
    """Create the kiosk's cell database and handbook when missing, readable by the cell's accounts only.

    A sync round calls this first, so a configured cell database that is missing locally
    (a new or wiped kiosk) is created and then pulled, instead of a push that fails forever.
    """
    sync = settings.sync
    cell = cell_of_db(sync.cell_db) if sync.cell_db else None
    created = []
    for name in (sync.cell_db, sync.handbook_db):
        if name and not server.exists(name):
            db = server.get_or_create(name)
            if cell is not None:
                db.put_security({"admins": {"names": [], "roles": []},
                                 "members": {"names": [], "roles": [cell_role(cell), "kiosk"]}})
            created.append(name)
    return created
