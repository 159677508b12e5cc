"""Secrets of ``_users`` accounts, never stored in clear.

Passwords are kept as CouchDB 3 keeps them (``password_scheme: pbkdf2``,
``pbkdf2_prf``, ``iterations``, ``salt``, ``derived_key``), so a ``_users``
document replicated between this server and a CouchDB hub works on both.
Members' PINs (a ``pin`` field) are kept with scrypt (``password_scheme:
scrypt``), memory-hard, from the ``cryptography`` package; a PIN has few
digits, so the lockout in ``auth.py`` is what really protects it.

Every hash runs in one small pool of ``HASH_WORKERS`` threads (``server.hash_workers``):
a burst of sign-ins at a cell meeting queues for it instead of running 50 scrypts at
once, so memory stays at ``HASH_WORKERS`` x 16 MiB, the CPU stays free for the rest, and
the buffers come from the pool threads' arenas only (the server also maps such large
buffers outside the arenas, sync_server/api/serving.py ``tune_malloc``, so they go back).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# CouchDB 3.4 uses 600,000 rounds of PBKDF2-SHA256; a kiosk is a small machine and
# successful checks are cached for a few minutes, so this is a compromise.
ITERATIONS = 100_000

# Hashes computed at once (server.hash_workers); the pool is made on first use.
HASH_WORKERS = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def set_hash_workers(workers: int) -> None:
    """Size the hashing pool (before the first hash; the server calls it at start)."""
    global HASH_WORKERS, _pool
    with _pool_lock:
        HASH_WORKERS = workers
        if _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None


def _hashed(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the hashing pool; the caller waits for it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="hash")
        pool = _pool
    return pool.submit(fn, *args).result()


def hash_fields(password: str, iterations: int = ITERATIONS) -> dict[str, Any]:
    """The stored fields for a new password."""
    salt = secrets.token_hex(16)
    key = _hashed(hashlib.pbkdf2_hmac, "sha256", password.encode(), salt.encode(), iterations)
    return {"password_scheme": "pbkdf2", "pbkdf2_prf": "sha256", "iterations": iterations,
            "salt": salt, "derived_key": key.hex()}


# scrypt cost (n, r, p): 16 MiB (128 * r * n bytes) and about 50 ms per check on a kiosk
# (57 ms on the 2-core test machine). Why not more: a PIN has 10^4-10^8 values, so no cost
# a kiosk can pay per sign-in stops an offline search of a stolen _users file (10^8 x 50 ms
# is 58 core-days, and 8 PIN digits are rare); what stops guessing is the lockout online
# (auth.py: wrong tries counted per client and per account, locks that grow) and
# encryption at rest (storage.encryption_key) offline. This cost still makes each offline
# guess ~10^5 times dearer than a fast hash and needs 16 MiB per guess (GPU farms pay in
# memory), while a burst of 60 sign-ins takes 60 x 57 ms / 2 workers = 1.7 s of hashing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def pin_fields(pin: str) -> dict[str, Any]:
    """The stored fields for a member's PIN (scrypt)."""
    salt = secrets.token_hex(16)
    return {"password_scheme": "scrypt", "salt": salt, "scrypt_n": SCRYPT_N, "scrypt_r": SCRYPT_R,
            "scrypt_p": SCRYPT_P, "derived_key": _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)}


def _scrypt(secret: str, salt: str, n: int, r: int, p: int) -> str:
    return _hashed(_scrypt_now, secret, salt, n, r, p)


def _scrypt_now(secret: str, salt: str, n: int, r: int, p: int) -> str:
    return Scrypt(salt=salt.encode(), length=32, n=n, r=r, p=p).derive(secret.encode()).hex()


def check(doc: dict[str, Any], password: str) -> bool:
    """Whether ``password`` (or PIN) matches a user document's stored hash."""
    if not isinstance(doc.get("salt"), str):
        return False
    if doc.get("password_scheme") == "scrypt":
        n, r, p = doc.get("scrypt_n"), doc.get("scrypt_r"), doc.get("scrypt_p")
        if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)) \
                or not all(0 < v <= 2**20 for v in (n, r, p)):
            return False
        return hmac.compare_digest(_scrypt(password, doc["salt"], n, r, p), str(doc.get("derived_key", "")))
    if doc.get("password_scheme") != "pbkdf2":
        return False
    prf = {"sha256": "sha256", "sha": "sha1", "sha1": "sha1"}.get(doc.get("pbkdf2_prf", "sha"))
    iterations = doc.get("iterations")
    if prf is None or not isinstance(iterations, int) or not 0 < iterations <= 10_000_000:
        return False
    key = _hashed(hashlib.pbkdf2_hmac, prf, password.encode(), doc["salt"].encode(), iterations)
    return hmac.compare_digest(key.hex(), str(doc.get("derived_key", "")))
