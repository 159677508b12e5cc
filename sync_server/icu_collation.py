"""ICU root collation of strings, as CouchDB compares them (couch_ejson_compare with ICU).

Used by view keys (design/collation.py turns it into sortable bytes) and by Mango selectors
(store/selector.py compares with it), so ``{"name": {"$gt": "a"}}`` matches ``"B"`` as CouchDB's
does. ICU collators are not thread-safe: one per thread.
"""

from __future__ import annotations

import threading
from typing import Any

import icu

_local = threading.local()


def collator() -> Any:
    """This thread's ICU root collator."""
    coll = getattr(_local, "collator", None)
    if coll is None:
        coll = _local.collator = icu.Collator.createInstance(icu.Locale.getRoot())
    return coll


def version() -> str:
    """The collation's version for ``collator_versions`` (CouchDB names its collator's own version, which
    PyICU does not expose: the ICU library's version stands for it)."""
    return str(icu.ICU_VERSION)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1: how two strings order in ICU's root collation (equal strings: 0 at once)."""
    if a == b:
        return 0
    return int(collator().compare(a, b))
