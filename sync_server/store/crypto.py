"""Encryption at rest: document bodies, attachments and ``_local`` documents under AES-256-GCM.

One random 256-bit **data key** per data directory encrypts every stored value.
It is kept in ``DATA_DIR/keyring.json`` only *wrapped*: encrypted with AES-256-GCM
under a key derived by scrypt from a passphrase (or the contents of a key file)
given at start. Changing the passphrase re-wraps the data key; no data is
rewritten.

Each stored value is ``b"E1" + nonce(12) + ciphertext + tag(16)``; the
associated data binds it to where it lives (database name, document id and
revision; the digest of an attachment; the id of a ``_local`` document), so a
value copied into another row fails to decrypt instead of showing the wrong
document.

What stays in clear (a copied data directory shows it): database names,
document ids, revision ids and trees, sequence numbers, attachment digests and
lengths, ``_security`` objects, and the row counts. Ids are what replication
compares without reading bodies, so they must stay searchable; the handbook
keeps names, PINs and minutes text in bodies, never in ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import StartupError, StoreCorrupt
from ..private_file import write_private

KEYRING = "keyring.json"
_MAGIC = b"E1"
_NONCE = 12
# scrypt cost: 2**15 x 8 x 1 takes about 0.1 s and 32 MB once at start, and makes each
# guess at a short passphrase as costly for whoever copied the directory.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_WRAP_AAD = b"party-sync data key v1"


class Cipher:
    """Seals and opens stored values under one data key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key = key
        self.key_id = hashlib.sha256(b"key id" + key).hexdigest()[:16]

    def derive(self, label: str) -> bytes:
        """A secret of its own for ``label`` (HMAC-SHA256 of the data key), e.g. the cookie secret."""
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _MAGIC + nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, value: bytes, aad: bytes) -> bytes:
        """The plaintext of a sealed value.

        :raises StoreCorrupt: when the value is not sealed or fails authentication
            (edited, moved to another row, or sealed under another key).
        """
        if not isinstance(value, bytes) or not value.startswith(_MAGIC):
            raise StoreCorrupt("a stored value is not encrypted although the database is")
        try:
            return self._aead.decrypt(value[2:2 + _NONCE], value[2 + _NONCE:], aad)
        except InvalidTag:
            raise StoreCorrupt("a stored value fails its integrity check (edited, moved or another key)") from None

    def seal_text(self, text: str, aad: bytes) -> bytes:
        return self.seal(text.encode(), aad)

    def open_text(self, value: bytes, aad: bytes) -> str:
        return self.open(value, aad).decode()


def _kek(passphrase: str, salt: bytes, params: dict) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def is_encrypted(data_dir: str | Path) -> bool:
    """Whether the data directory has a keyring (and so needs a passphrase)."""
    return (Path(data_dir) / KEYRING).exists()


def unlock(data_dir: str | Path, passphrase: str) -> Cipher:
    """The data directory's cipher: unwraps the data key, creating it on first use.

    :raises StartupError: on a wrong passphrase or an unreadable keyring.
    """
    if not passphrase:
        raise StartupError("the encryption passphrase is empty")
    path = Path(data_dir) / KEYRING
    if not path.exists():
        return _create(path, passphrase)
    return Cipher(_unwrap(path, passphrase, data_dir))


def change_passphrase(data_dir: str | Path, old: str, new: str) -> None:
    """Re-wrap the data key under a new passphrase (atomically; the data is not rewritten).

    :raises StartupError: when ``old`` is wrong or the directory is not encrypted.
    """
    path = Path(data_dir) / KEYRING
    if not path.exists():
        raise StartupError(f"{data_dir} is not encrypted")
    if not new:
        raise StartupError("the new passphrase is empty")
    _write(path, _unwrap(path, old, data_dir), new)


def _unwrap(path: Path, passphrase: str, data_dir: str | Path) -> bytes:
    """The data key, unwrapped with the passphrase."""
    ring = _read(path)
    try:
        salt, nonce, wrapped = (base64.b64decode(ring[k]) for k in ("salt", "nonce", "wrapped"))
        return AESGCM(_kek(passphrase, salt, ring["scrypt"])).decrypt(nonce, wrapped, _WRAP_AAD)
    except InvalidTag:
        raise StartupError(f"wrong passphrase for the encrypted data directory {data_dir}") from None
    except (KeyError, TypeError, ValueError):
        raise StartupError(f"{path} is damaged: restore it from a backup") from None


def _read(path: Path) -> dict:
    try:
        ring = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read {path}: {exc}") from None
    if not isinstance(ring, dict) or ring.get("version") != 1:
        raise StartupError(f"{path} is not a keyring this version knows")
    return ring


def _create(path: Path, passphrase: str) -> Cipher:
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, key, passphrase)
    return Cipher(key)


def _write(path: Path, key: bytes, passphrase: str) -> None:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(_NONCE)
    wrapped = AESGCM(_kek(passphrase, salt, _SCRYPT)).encrypt(nonce, key, _WRAP_AAD)
    ring = {"version": 1, "cipher": "AES-256-GCM", "kdf": "scrypt", "scrypt": _SCRYPT,
            "salt": _b64(salt), "nonce": _b64(nonce), "wrapped": _b64(wrapped), "key_id": Cipher(key).key_id}
    write_private(path, json.dumps(ring, indent=1).encode())
