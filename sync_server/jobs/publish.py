"""``sync-server publish``: sign an article and put it, with its attachments, on the hub."""

from __future__ import annotations

import base64
import json
import mimetypes
from pathlib import Path
from typing import Any

from replication.http_peer import HttpPeer, doc_path
from sync_server.errors import CouchError, Forbidden, NotFound, StartupError
from sync_server.handbook import validation
from sync_server.security import signing


def read_article(path: str | Path) -> dict[str, Any]:
    """The article JSON file, checked to be an object."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StartupError(f"{path}: cannot read the article: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "article":
        raise StartupError(f"{path}: not an article (a JSON object with \"type\": \"article\")")
    return doc


def prepare(doc: dict[str, Any], files: list[str], key_path: str | None, key_id: str | None,
            public_keys: dict[str, str]) -> dict[str, Any]:
    """Attach the files, sign (when a key is given) and check the result as a kiosk will.

    :raises Forbidden: an unsigned or badly signed article, or one that breaks its schema.
    """
    data = {Path(f).name: Path(f).read_bytes() for f in files}
    doc = {k: v for k, v in doc.items() if k not in ("_rev", "_attachments")}
    if key_path:
        doc = signing.sign(doc, signing.load_key(key_path), key_id or Path(key_path).stem, data)
    if not public_keys:
        raise StartupError("no public keys configured (signing.public_keys in config.yaml): cannot check the signature")
    signing.verify(doc, public_keys, data)
    doc["_attachments"] = {name: {"content_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                                  "data": base64.b64encode(raw).decode()} for name, raw in data.items()}
    validation.validate(doc)
    return doc


# What a retraction keeps of the article: kiosks pull the handbook through a selector on these
# (sync.handbook_selector), and a tombstone that does not match it would never reach them.
RETRACTION_KEEPS = ("type", "audience", "language", "category")


def retraction(doc_id: str, key_path: str, key_id: str | None, public_keys: dict[str, str],
               article: dict[str, Any] | None = None) -> dict[str, Any]:
    """The province's signed tombstone of an article: kiosks apply no other deletion of one (#15).

    ``retracted: true`` is signed with the id, so neither a live article nor another
    article's deletion can carry this signature.

    :param article: the article as the hub has it; its audience and the like go into the tombstone.
    """
    if not doc_id.startswith("article:"):
        raise StartupError(f"{doc_id}: only articles (article:<slug>) are retracted")
    kept = {k: v for k, v in (article or {}).items() if k in RETRACTION_KEEPS}
    doc = signing.sign({**kept, "_id": doc_id, "retracted": True}, signing.load_key(key_path),
                       key_id or Path(key_path).stem, {})
    if not public_keys:
        raise StartupError("no public keys configured (signing.public_keys in config.yaml): cannot check the signature")
    signing.verify(doc, public_keys, {})
    return {**doc, "_deleted": True}


def current(doc_id: str, handbook_url: str) -> dict[str, Any] | None:
    """The hub's current revision of a document, or None."""
    peer = HttpPeer(handbook_url)
    try:
        return peer.request("GET", doc_path(peer.db_name, doc_id))
    except NotFound:
        return None
    except CouchError as exc:
        raise StartupError(f"the hub refused: {exc.error}: {exc.reason}") from None
    finally:
        peer.close()


def publish(doc: dict[str, Any], handbook_url: str) -> str:
    """Write the article to the hub's handbook database (a new revision if it exists); returns the rev."""
    peer = HttpPeer(handbook_url)
    try:
        path = doc_path(peer.db_name, doc["_id"])
        try:
            doc["_rev"] = peer.request("GET", path)["_rev"]
        except NotFound:
            pass
        return peer.request("PUT", path, body=doc)["rev"]
    except CouchError as exc:
        raise StartupError(f"the hub refused the article: {exc.error}: {exc.reason}") from None
    finally:
        peer.close()


__all__ = ["Forbidden", "current", "prepare", "publish", "read_article", "retraction"]
