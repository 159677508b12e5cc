"""The replication id: the same source, target and filter always give the same id. No I/O here.

Like pouchdb-generate-replication-id, ``doc_ids`` are sorted so the id does not
depend on their order; the selector is serialized with sorted keys.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Bump when the checkpoint format changes, so old checkpoints are not misread.
VERSION = 1


def replication_id(source: str, target: str, doc_ids: list[str] | None = None,
                   selector: dict[str, Any] | None = None) -> str:
    """A stable id for a one-way replication (32 hex digits)."""
    key = [VERSION, source, target, sorted(doc_ids) if doc_ids is not None else None, selector]
    text = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.md5(text.encode()).hexdigest()
