"""A peer that is a database of this process's own store (no HTTP)."""

from __future__ import annotations

from typing import Any

from sync_server.errors import NotFound
from sync_server.store import Database, Server
from sync_server.store.selector import compile_selector

from .peer import ChangesPage, PeerInfo, Traffic


class LocalPeer:
    """Replicates straight from or into a ``store.Database``."""

    def __init__(self, server: Server, db_name: str) -> None:
        self.server, self.db_name = server, db_name
        self.name = f"local:{db_name}"
        self.remote = False
        self.traffic = Traffic()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = self.server.get(self.db_name)
        return self._db

    def info(self, create: bool = False) -> PeerInfo:
        if create:
            self._db = self.server.get_or_create(self.db_name)
        return PeerInfo(f"{self.server.uuid}/{self.db_name}", self.db.seq_string(self.db.update_seq))

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        db = self.db
        start = db.parse_since(since)
        if wait > 0 and db.update_seq <= start:
            db.wait_for_change(start, wait)
        end = db.update_seq
        predicate = compile_selector(selector) if selector is not None else None
        rows: list[dict] = []
        for change in db.changes(start, until=end, limit=limit, all_leaves=True, doc_ids=doc_ids, predicate=predicate):
            rows.append({"seq": change.seq, "id": change.id, "changes": [{"rev": r} for r in change.revs],
                         **({"deleted": True} if change.deleted else {})})
        last_seq = rows[-1]["seq"] if len(rows) == limit else db.seq_string(end)
        return ChangesPage(rows, last_seq, max(end - db.parse_since(last_seq), 0))

    def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, dict]:
        return self.db.revs_diff(revs)

    def bulk_get(self, wanted: list[dict], attachments: bool = False) -> list[dict]:
        docs = []
        for item in wanted:
            atts_since = (item.get("atts_since") or []) if attachments else None
            for result in self.db.open_revs(item["id"], [item["rev"]], revs=True, latest=True,
                                            atts_since=atts_since, attachments_=attachments and not atts_since):
                if "ok" in result:
                    docs.append(result["ok"])
        return docs

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        """One attachment's data (from ``offset``)."""
        return self.db.attachment(doc_id, name, rev)[1][offset:]

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        return self.db.bulk_docs(docs, new_edits=False)

    def get_local(self, local_id: str) -> dict | None:
        try:
            return self.db.get_local(local_id)
        except NotFound:
            return None

    def put_local(self, local_id: str, doc: dict) -> str:
        return self.db.put_local(local_id, doc)["rev"]

    def close(self) -> None:
        pass
