"""Secrets of ``_users`` accounts, never stored in clear.

Passwords are kept as CouchDB 3 keeps them (``password_scheme: pbkdf2``,
``pbkdf2_prf``, ``iterations``, ``salt``, ``derived_key``), so a ``_users``
document replicated between this server and a CouchDB hub works on both.
Members' PINs (a ``pin`` field) are kept with scrypt (``password_scheme:
scrypt``), memory-hard, from the ``cryptography`` package; a PIN has few
digits, so the lockout in ``auth.py`` is what really protects it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# CouchDB 3.4 uses 600,000 rounds of PBKDF2-SHA256; a kiosk is a small machine and
# successful checks are cached for a few minutes, so this is a compromise.
ITERATIONS = 100_000


def hash_fields(password: str, iterations: int = ITERATIONS) -> dict[str, Any]:
    """The stored fields for a new password."""
    salt = secrets.token_hex(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return {"password_scheme": "pbkdf2", "pbkdf2_prf": "sha256", "iterations": iterations,
            "salt": salt, "derived_key": key.hex()}


# scrypt cost (n, r, p): 16 MiB and about 50 ms per check on a kiosk.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def pin_fields(pin: str) -> dict[str, Any]:
    """The stored fields for a member's PIN (scrypt)."""
    salt = secrets.token_hex(16)
    return {"password_scheme": "scrypt", "salt": salt, "scrypt_n": SCRYPT_N, "scrypt_r": SCRYPT_R,
            "scrypt_p": SCRYPT_P, "derived_key": _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)}


def _scrypt(secret: str, salt: str, n: int, r: int, p: int) -> str:
    return Scrypt(salt=salt.encode(), length=32, n=n, r=r, p=p).derive(secret.encode()).hex()


def check(doc: dict[str, Any], password: str) -> bool:
    """Whether ``password`` (or PIN) matches a user document's stored hash."""
    if not isinstance(doc.get("salt"), str):
        return False
    if doc.get("password_scheme") == "scrypt":
        n, r, p = doc.get("scrypt_n"), doc.get("scrypt_r"), doc.get("scrypt_p")
        if not all(isinstance(v, int) and 0 < v <= 2**20 for v in (n, r, p)):
            return False
        return hmac.compare_digest(_scrypt(password, doc["salt"], n, r, p), str(doc.get("derived_key", "")))
    if doc.get("password_scheme") != "pbkdf2":
        return False
    prf = {"sha256": "sha256", "sha": "sha1", "sha1": "sha1"}.get(doc.get("pbkdf2_prf", "sha"))
    iterations = doc.get("iterations")
    if prf is None or not isinstance(iterations, int) or not 0 < iterations <= 10_000_000:
        return False
    key = hashlib.pbkdf2_hmac(prf, password.encode(), doc["salt"].encode(), iterations)
    return hmac.compare_digest(key.hex(), str(doc.get("derived_key", "")))
