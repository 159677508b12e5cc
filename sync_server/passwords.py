"""Passwords of ``_users`` accounts, stored as CouchDB stores them: PBKDF2, never in clear.

The fields (``password_scheme: pbkdf2``, ``pbkdf2_prf``, ``iterations``,
``salt``, ``derived_key``) are CouchDB 3's, so a ``_users`` document replicated
between this server and a CouchDB hub keeps working on both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

# CouchDB 3.4 uses 600,000 rounds of PBKDF2-SHA256; a kiosk is a small machine and
# successful checks are cached for a few minutes, so this is a compromise.
ITERATIONS = 100_000


def hash_fields(password: str, iterations: int = ITERATIONS) -> dict[str, Any]:
    """The stored fields for a new password."""
    salt = secrets.token_hex(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return {"password_scheme": "pbkdf2", "pbkdf2_prf": "sha256", "iterations": iterations,
            "salt": salt, "derived_key": key.hex()}


def check(doc: dict[str, Any], password: str) -> bool:
    """Whether ``password`` matches a user document's stored hash."""
    if doc.get("password_scheme") != "pbkdf2" or not isinstance(doc.get("salt"), str):
        return False
    prf = {"sha256": "sha256", "sha": "sha1", "sha1": "sha1"}.get(doc.get("pbkdf2_prf", "sha"))
    iterations = doc.get("iterations")
    if prf is None or not isinstance(iterations, int) or not 0 < iterations <= 10_000_000:
        return False
    key = hashlib.pbkdf2_hmac(prf, password.encode(), doc["salt"].encode(), iterations)
    return hmac.compare_digest(key.hex(), str(doc.get("derived_key", "")))
