"""Sealing sync bundles: keys, trusted peers, and the file format (#6). No replication here.

Each side (a kiosk, a hub or district office) keeps in ``DATA_DIR/bundle-keys/``:
``receive.pem`` (X25519, bundles are encrypted to it), ``sign.pem`` (Ed25519, bundles
are signed with it), both mode 0600; ``peers.json`` (the cards of trusted peers) and
``state.json`` (the next bundle number, and which bundles were imported).

A *card* is what two sides exchange once, in person or by phone: both public keys,
the replica's identity root (its server uuid, as replication ids use it) and, for a
kiosk, its cell and sync legs. Its key id is the first 8 bytes of SHA-256 of both
public keys; ``fingerprint`` prints it for reading aloud.

File format (all integers big-endian)::

    magic "HBSB" | version 1 (1 byte) | recipient key id (8) | sender key id (8)
    | ephemeral X25519 public key (32) | nonce (12) | ciphertext length N (8)
    | ciphertext (N, AES-256-GCM, the header as associated data) | Ed25519 signature (64)

The AES key is HKDF-SHA256 over the X25519 secret of the ephemeral key and the
recipient's key; the plaintext is zlib-compressed JSON. The signature covers header
and ciphertext, so an altered byte anywhere is refused before decryption. The clear
part names no person, cell or database: only two key ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import BundleError, StartupError
from ..private_file import write_private

MAGIC = b"HBSB"
VERSION = 1
_HEADER = struct.Struct(">4sB8s8s32s12sQ")
HEADER_BYTES = _HEADER.size  # 73
SIGNATURE_BYTES = 64
CARD_PREFIX = "hbcard1:"
KEY_DIR = "bundle-keys"
# Imported bundle numbers kept per sender, for refusing a replay: far more than a cadre carries.
REMEMBERED_IMPORTS = 1000


def _raw(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(kx_public: bytes, sign_public: bytes) -> str:
    """The id of a side's key pair: 16 hex digits of SHA-256 over both public keys."""
    return hashlib.sha256(kx_public + sign_public).digest()[:8].hex()


def fingerprint(kid: str) -> str:
    """A key id in groups of four, for reading aloud."""
    return " ".join(kid[i:i + 4] for i in range(0, len(kid), 4))


@dataclass(frozen=True)
class Card:
    """A peer's public keys and what it replicates; exchanged once, then trusted."""

    kx: bytes
    sign: bytes
    root: str
    cell: str | None = None
    legs: list[list[Any]] | None = None  # a kiosk's sync legs: [local db, hub db, "push"|"pull", selector]

    @property
    def key_id(self) -> str:
        return key_id(self.kx, self.sign)

    @property
    def name(self) -> str:
        """How the other side calls this peer: its cell, or ``hub``."""
        return self.cell if self.legs is not None and self.cell else "hub"

    def to_json(self) -> dict[str, Any]:
        return {"kx": _b64(self.kx), "sign": _b64(self.sign), "root": self.root, "cell": self.cell,
                "legs": self.legs}

    def text(self) -> str:
        """One line to copy: ``hbcard1:`` and base64url of the JSON."""
        raw = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
        return CARD_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Card:
        """:raises StartupError: for a malformed card, or a kiosk's card that pushes outside its cell."""
        try:
            card = cls(base64.b64decode(value["kx"]), base64.b64decode(value["sign"]), str(value["root"]),
                       value.get("cell"), value.get("legs"))
            for _, remote, direction, _ in card.legs or []:
                if direction == "push" and remote != card.cell:
                    raise StartupError(f"the card of cell {card.cell} pushes into {remote}: refused")
        except (KeyError, TypeError, ValueError) as exc:
            raise StartupError(f"not a peer card: {exc}") from None
        return card

    @classmethod
    def parse(cls, text: str) -> Card:
        """A card from its one-line text.

        :raises StartupError: when the text is not a card.
        """
        text = text.strip()
        if not text.startswith(CARD_PREFIX):
            raise StartupError(f"a peer card starts with {CARD_PREFIX}")
        body = text[len(CARD_PREFIX):]
        try:
            value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            raise StartupError("the peer card is damaged (copy it again)") from None
        return cls.from_json(value)


class KeyStore:
    """One side's bundle keys, trusted peers and bundle numbers, in ``DATA_DIR/bundle-keys/``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.directory = Path(data_dir) / KEY_DIR
        self._kx: X25519PrivateKey | None = None
        self._sign: Ed25519PrivateKey | None = None

    # -- own keys --------------------------------------------------------------

    def ensure_keys(self) -> bool:
        """Create the two key pairs if missing; True when they were created now."""
        if (self.directory / "receive.pem").exists() and (self.directory / "sign.pem").exists():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        for name, key in (("receive.pem", X25519PrivateKey.generate()), ("sign.pem", Ed25519PrivateKey.generate())):
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            write_private(self.directory / name, pem)
        return True

    @property
    def kx_key(self) -> X25519PrivateKey:
        if self._kx is None:
            key = self._load("receive.pem")
            if not isinstance(key, X25519PrivateKey):
                raise StartupError(f"{self.directory / 'receive.pem'}: not an X25519 key")
            self._kx = key
        return self._kx

    @property
    def sign_key(self) -> Ed25519PrivateKey:
        if self._sign is None:
            key = self._load("sign.pem")
            if not isinstance(key, Ed25519PrivateKey):
                raise StartupError(f"{self.directory / 'sign.pem'}: not an Ed25519 key")
            self._sign = key
        return self._sign

    def _load(self, name: str) -> Any:
        path = self.directory / name
        if not path.exists():
            raise StartupError(f"no bundle keys in {self.directory}: run `sync-server bundle keys` first")
        try:
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise StartupError(f"{path}: cannot read the key: {exc}") from None

    @property
    def key_id(self) -> str:
        return key_id(_raw(self.kx_key.public_key()), _raw(self.sign_key.public_key()))

    def card(self, root: str, cell: str | None = None, legs: list[list[Any]] | None = None) -> Card:
        """This side's card, to give to the other side."""
        return Card(_raw(self.kx_key.public_key()), _raw(self.sign_key.public_key()), root, cell, legs)

    # -- trusted peers -----------------------------------------------------------

    def peers(self) -> dict[str, Card]:
        """Trusted peers by name (a cell, or ``hub``)."""
        raw = _read_json(self.directory / "peers.json")
        return {name: Card.from_json(value) for name, value in raw.items()}

    def trust(self, card: Card) -> str:
        """Add or replace a peer's card (under its name); returns the name."""
        raw = _read_json(self.directory / "peers.json")
        raw[card.name] = card.to_json()
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_json(self.directory / "peers.json", raw)
        return card.name

    def peer(self, name: str) -> Card:
        """:raises StartupError: when no such peer is trusted."""
        found = self.peers().get(name)
        if found is None:
            raise StartupError(f"no trusted peer '{name}': add its card with `sync-server bundle trust`")
        return found

    # -- bundle numbers ------------------------------------------------------------

    def next_number(self) -> int:
        """The next number of a bundle this side sends (monotonic, kept on disk)."""
        state = _read_json(self.directory / "state.json")
        number = int(state.get("next", 1))
        state["next"] = number + 1
        _write_json(self.directory / "state.json", state)
        return number

    def imported(self, sender: str, number: int) -> bool:
        return number in _read_json(self.directory / "state.json").get("imported", {}).get(sender, [])

    def mark_imported(self, sender: str, number: int) -> None:
        state = _read_json(self.directory / "state.json")
        seen = state.setdefault("imported", {}).setdefault(sender, [])
        seen.append(number)
        seen[:] = sorted(set(seen))[-REMEMBERED_IMPORTS:]
        _write_json(self.directory / "state.json", state)

    # -- sealing -------------------------------------------------------------------

    def seal(self, payload: dict[str, Any], recipient: Card) -> bytes:
        """The bundle file for ``payload``: compressed, encrypted to ``recipient``, signed by this side."""
        plain = zlib.compress(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), 9)
        ephemeral = X25519PrivateKey.generate()
        nonce = os.urandom(12)
        header = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(recipient.key_id), bytes.fromhex(self.key_id),
                              _raw(ephemeral.public_key()), nonce, len(plain) + 16)
        key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.kx)), header)
        body = header + AESGCM(key).encrypt(nonce, plain, header)
        return body + self.sign_key.sign(body)

    def open(self, data: bytes) -> tuple[Card, dict[str, Any]]:
        """Check and decrypt a bundle meant for this side; returns its sender's card and the payload.

        :raises BundleError: naming what is wrong; nothing has been applied then.
        """
        if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
            if data and not MAGIC.startswith(data[:4]):
                raise BundleError("not a sync bundle (wrong magic bytes)")
            raise BundleError(f"bundle is cut short (expected at least {HEADER_BYTES} bytes, got {len(data)})")
        _, version, recipient, sender, ephemeral, nonce, length = _HEADER.unpack_from(data)
        if version != VERSION:
            raise BundleError(f"bundle format version {version} is not supported (this server reads {VERSION})")
        expected = HEADER_BYTES + length + SIGNATURE_BYTES
        if len(data) < expected:
            raise BundleError(f"bundle is cut short (expected {expected} bytes, got {len(data)})")
        if len(data) > expected:
            raise BundleError(f"bundle has {len(data) - expected} unexpected bytes after its end (expected {expected})")
        if recipient.hex() != self.key_id:
            raise BundleError(f"bundle is meant for another recipient (key {fingerprint(recipient.hex())}), "
                              f"not this one (key {fingerprint(self.key_id)})")
        card = next((c for c in self.peers().values() if c.key_id == sender.hex()), None)
        if card is None:
            raise BundleError(f"bundle was signed by an unknown key {fingerprint(sender.hex())}")
        body, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
        try:
            Ed25519PublicKey.from_public_bytes(card.sign).verify(signature, body)
        except InvalidSignature:
            raise BundleError("bundle signature does not verify (the file was altered)") from None
        header = body[:HEADER_BYTES]
        try:
            key = _derive(self.kx_key.exchange(X25519PublicKey.from_public_bytes(ephemeral)), header)
            plain = AESGCM(key).decrypt(nonce, body[HEADER_BYTES:], header)
            payload = json.loads(zlib.decompress(plain))
        except (InvalidTag, ValueError, zlib.error):
            raise BundleError("bundle does not decrypt with this side's key") from None
        if not isinstance(payload, dict) or payload.get("sender") != card.key_id:
            raise BundleError("bundle payload does not name its signer")
        return card, payload


def _derive(secret: bytes, header: bytes) -> bytes:
    # The header (both key ids, the ephemeral key and the nonce) is bound into the key as well.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"hbsync bundle v1|" + header).derive(secret)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StartupError(f"{path}: cannot read: {exc}") from None
    return value if isinstance(value, dict) else {}


def _write_json(path: Path, value: dict[str, Any]) -> None:
    write_private(path, json.dumps(value, ensure_ascii=False, indent=1).encode())
