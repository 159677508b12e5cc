"""An append-only audit log whose entries are chained by hashes.

``DATA_DIR/audit.log`` holds one JSON object per line: a number, a time, the
event and its fields, the previous entry's hash, and this entry's hash
(SHA-256 over the previous hash and the entry's canonical JSON without its own
hash). Editing or removing a line breaks the chain at that line, which
``verify`` reports (``sync-server audit verify``). Cutting lines off the end
leaves a shorter valid chain: ``DATA_DIR/audit.head`` keeps the newest number
and hash, so that is caught too unless both files are rewritten together.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..private_file import write_private
from .signing import canonical

GENESIS = "0" * 64
# Longest text and list kept of one field: a client chooses what it sends (a 1 MB "name" on a
# failed sign-in), the log must not grow by that much per request (issue #15).
MAX_TEXT, MAX_ITEMS = 200, 20


def bounded(value: Any) -> Any:
    """A field value cut to a size the log can afford, saying how long it was."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}… ({len(value)} characters)"
    if isinstance(value, (list, tuple)):
        kept = [bounded(v) for v in value[:MAX_ITEMS]]
        return kept + [f"… ({len(value)} items)"] if len(value) > MAX_ITEMS else kept
    if isinstance(value, dict):
        return {bounded(str(k)): bounded(v) for k, v in list(value.items())[:MAX_ITEMS]}
    return value
LOG_NAME, HEAD_NAME = "audit.log", "audit.head"


def entry_hash(prev: str, entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(prev.encode() + canonical(body)).hexdigest()


class AuditLog:
    """Appends chained entries to one data directory's audit log.

    Safe across threads and processes (the server and a ``sync --once`` beside
    it): each append holds an exclusive lock on the log and reads the head anew.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / LOG_NAME
        self.head_path = Path(data_dir) / HEAD_NAME
        self._lock = threading.Lock()

    def _read_head(self) -> tuple[int, str]:
        try:
            head = json.loads(self.head_path.read_text())
            return int(head["n"]), str(head["hash"])
        except (OSError, ValueError, KeyError):
            return 0, GENESIS

    def record(self, event: str, **fields: Any) -> None:
        """Append one event (``sign_in``, ``sign_in_failed``, ``refused_write``, ``sync``, ...)."""
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                number, prev = self._read_head()
                entry = {"n": number + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event,
                         **{k: bounded(v) for k, v in fields.items()}, "prev": prev}
                entry["hash"] = entry_hash(prev, entry)
                os.write(fd, (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
                os.fsync(fd)
                write_private(self.head_path, json.dumps({"n": entry["n"], "hash": entry["hash"]}))
            finally:
                os.close(fd)  # releases the lock


_LOGS: dict[Path, AuditLog] = {}


def audit_for(data_dir: str | Path) -> AuditLog:
    """The audit log of a data directory (one object per directory and process)."""
    path = Path(data_dir).resolve()
    if path not in _LOGS:
        _LOGS[path] = AuditLog(path)
    return _LOGS[path]


def verify(data_dir: str | Path) -> tuple[bool, int, str]:
    """Check the whole chain: (intact, entries checked, what is wrong or '')."""
    log = AuditLog(data_dir)
    prev, count = GENESIS, 0
    try:
        lines = log.path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            return False, count, f"line {number} is not JSON"
        if entry.get("prev") != prev or entry.get("n") != number:
            return False, count, f"line {number}: the chain is broken (a line before it was removed or changed)"
        if entry.get("hash") != entry_hash(prev, entry):
            return False, count, f"line {number} was edited (its hash does not match)"
        prev, count = entry["hash"], count + 1
    head_n, head_hash = log._read_head()
    if (head_n, head_hash) != (count, prev):
        return False, count, f"the log ends at entry {count} but entry {head_n} was written (lines cut off the end)"
    return True, count, ""
