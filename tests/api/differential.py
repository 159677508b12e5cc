"""Send the same request to a real Apache CouchDB 3.4.3 and to our server, and compare.

What is compared: the status code, the headers that matter to clients (``Location``,
``ETag``, the content type's media type, ``Content-Encoding``), and the body's *shape*:
the same JSON with revision ids, sequences, uuids and generated ids replaced by
placeholders. Revision ids are computed as CouchDB computes them, so where a test
sends the same documents they are compared as they are (``revs=True``).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

# Keys whose values differ between two servers by nature.
_OPAQUE_KEYS = {"seq", "last_seq", "update_seq", "_local_seq", "uuid", "instance_start_time", "purge_seq",
                "sizes", "props", "cluster", "compact_running", "disk_format_version", "pending"}
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_REV = re.compile(r"^(\d+)-[0-9a-f]{32}$")


@dataclass
class Pair:
    """Two HTTP clients, CouchDB's and ours, each with the admin's credentials."""

    couch: httpx.Client
    kiosk: httpx.Client
    db: str  # a fresh database name, created on both

    def both(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
        """The same request to both servers; ``{db}`` in the path is this test's database."""
        path = path.replace("{db}", self.db)
        return (self.couch.request(method, path, **kwargs), self.kiosk.request(method, path, **kwargs))

    def same(self, method: str, path: str, *, revs: bool = True, reason: bool = True,
             headers_too: tuple[str, ...] = (), **kwargs: Any) -> tuple[Any, Any]:
        """Send to both and assert the same status and body shape; return both parsed bodies."""
        couch, kiosk = self.both(method, path, **kwargs)
        assert kiosk.status_code == couch.status_code, _show(method, path, couch, kiosk)
        for name in headers_too:
            assert _header(kiosk, name, self) == _header(couch, name, self), (name, _show(method, path, couch, kiosk))
        a, b = _parse(couch), _parse(kiosk)
        assert shape(b, revs, reason) == shape(a, revs, reason), _show(method, path, couch, kiosk)
        return a, b


def _header(response: httpx.Response, name: str, pair: Pair) -> str | None:
    value = response.headers.get(name)
    if value is None:
        return None
    if name.lower() == "location":  # CouchDB sends absolute URLs: compare the path
        return httpx.URL(value).raw_path.decode() if "://" in value else value
    if name.lower() == "content-type":
        return value.split(";", 1)[0].strip()
    return value


def _parse(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        return response.json()
    return response.content


def shape(value: Any, revs: bool = True, reason: bool = True, key: str | None = None) -> Any:
    """The value with what legitimately differs between two servers replaced by placeholders."""
    if key in _OPAQUE_KEYS:
        return "<opaque>" if value is not None else None
    if key == "reason" and not reason:
        return "<reason>"
    if isinstance(value, dict):
        return {k: shape(v, revs, reason, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, revs, reason) for v in value]
    if isinstance(value, str):
        if _HEX32.match(value):
            return "<uuid>"
        if not revs and _REV.match(value):
            return _REV.sub(r"\1-<hash>", value)
    return value


def _show(method: str, path: str, couch: httpx.Response, kiosk: httpx.Response) -> str:
    def one(r: httpx.Response) -> str:
        return f"{r.status_code} {dict(r.headers)}\n{r.text[:800]}"
    return f"{method} {path}\nCOUCH {one(couch)}\nKIOSK {one(kiosk)}"


def new_db_name() -> str:
    return "diff-" + uuid.uuid4().hex[:12]


def jdump(value: Any) -> str:
    return json.dumps(value)
