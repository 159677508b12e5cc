"""Pairing members' phones with the kiosk: one-time codes, device tokens, revocation.

The kiosk screen shows a QR code (``segno``) carrying a one-time pairing code
and the kiosk's address. The phone sends the code with the member's account
name and PIN; the kiosk answers with a device token that the phone then sends
as ``Authorization: Bearer <token>``. Only a hash of each token is kept, in
``DATA_DIR/devices.json``; the kiosk lists devices and revokes them, and a
revoked token is refused at once (401).
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import segno

from ..errors import Forbidden, NotFound, Unauthorized
from ..private_file import write_private

# A pairing code is short enough to type, used once, and expires soon.
CODE_DIGITS = 6
CODE_SECONDS = 600
# Wrong codes (from anyone) after which every live code is dropped.
WRONG_CODES = 10
FILE_NAME = "devices.json"
# Live phones a member may have: a new one past this forgets the oldest (a lost phone, a new
# phone, a second SIM), so a PIN seen over a shoulder cannot mint tokens without end.
DEVICES_PER_MEMBER = 3


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Pairing:
    """Pairing codes and device tokens of one data directory."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"codes": {}, "devices": {}}

    def _save(self, state: dict[str, Any]) -> None:
        write_private(self.path, json.dumps(state).encode())

    def new_code(self, kiosk_url: str, now: float | None = None, fingerprint: str | None = None,
                 cells: list[str] | None = None) -> dict[str, Any]:
        """A one-time code, its expiry, and the QR code (SVG) the kiosk screen shows.

        The link opens the web app; with HTTPS it also carries the kiosk certificate's
        fingerprint (``fp=sha256:...``), which the phone compares with what it is shown.

        :param cells: the cells whose members the code pairs (a kiosk admin's); None: any.
        """
        now = time.time() if now is None else now
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        with self._lock:
            state = self._load()
            state["codes"] = {c: t for c, t in state["codes"].items() if t > now}
            state["codes"][code] = now + CODE_SECONDS
            state["cells"] = {c: v for c, v in state.get("cells", {}).items() if c in state["codes"]}
            if cells is not None:
                state["cells"][code] = cells
            self._save(state)
        link = f"{kiosk_url.rstrip('/')}/_app/?pair={code}" + (f"&fp={fingerprint}" if fingerprint else "")
        svg = io.BytesIO()
        segno.make(link, error="m").save(svg, kind="svg", scale=6, title="Mã ghép nối (pairing code)")
        shown = {"code": code, "expires": int(now + CODE_SECONDS), "url": link, "qr_svg": svg.getvalue().decode()}
        return {**shown, "fingerprint": fingerprint} if fingerprint else shown

    def claim(self, code: str, member: str, label: str, now: float | None = None,
              binding: str | None = None) -> dict[str, Any]:
        """Use a code (once) for an authenticated member's phone; returns its device id and token.

        :param binding: what the token is bound to (the account's PIN, see ``Authenticator.binding``).
        :raises Unauthorized: for an unknown, used or expired code. After WRONG_CODES wrong codes
            every live code is dropped: six digits are not guessed ten at a time.
        :raises Forbidden: for a member of a cell the code's kiosk admin does not serve (the code stays).
        """
        now = time.time() if now is None else now
        with self._lock:
            state = self._load()
            cells = state.get("cells", {}).get(code)
            if code in state["codes"] and cells is not None and not any(member.startswith(c + ".") for c in cells):
                raise Forbidden(f"This code pairs phones of {', '.join(cells) or 'no cell'} only.")
            state.get("cells", {}).pop(code, None)
            expires = state["codes"].pop(code, None)
            if expires is None or expires < now:
                state["wrong"] = state.get("wrong", 0) + 1
                if state["wrong"] >= WRONG_CODES:
                    state["codes"], state["wrong"] = {}, 0
                self._save(state)
                raise Unauthorized("This pairing code is unknown, used or expired: ask for a new one.")
            return self._add(state, member, label, now, binding, "code")

    def remember(self, member: str, label: str, now: float | None = None, binding: str | None = None) -> dict[str, Any]:
        """A member's own phone, remembered on their PIN alone (no code: the caller checked the PIN and
        that the client is not the kiosk's shared screen); returns its device id and token, as ``claim``."""
        with self._lock:
            return self._add(self._load(), member, label, time.time() if now is None else now, binding, "pin")

    def _add(self, state: dict[str, Any], member: str, label: str, now: float, binding: str | None,
             via: str) -> dict[str, Any]:
        """Add a device for ``member``; past ``DEVICES_PER_MEMBER`` live ones the oldest are revoked,
        and their ids returned under ``replaced`` (the caller marks their device records)."""
        live = [i for i, d in state["devices"].items() if d["member"] == member and not d["revoked_at"]]
        replaced = live[:max(0, len(live) - DEVICES_PER_MEMBER + 1)]  # the file keeps the order of pairing
        for old in replaced:
            state["devices"][old]["revoked_at"] = int(now)
        device_id, token = secrets.token_hex(8), secrets.token_urlsafe(32)
        state["devices"][device_id] = {"token": _digest(token), "member": member, "label": label[:100],
                                       "paired_at": int(now), "revoked_at": None, "binding": binding, "via": via}
        self._save(state)
        return {"device_id": device_id, "token": token, "replaced": replaced}

    def device_of(self, token: str) -> str | None:
        """The id of the device a token belongs to (live or not), or None."""
        wanted = _digest(token)
        return next((i for i, d in self._load()["devices"].items() if secrets.compare_digest(d["token"], wanted)), None)

    def member_of(self, token: str, binding: Any = None) -> str | None:
        """The account a live device token belongs to, or None (unknown, revoked, or its PIN changed since).

        :param binding: account name -> its current binding; a token paired under another PIN is refused.
        """
        wanted = _digest(token)
        for device in self._load()["devices"].values():
            if secrets.compare_digest(device["token"], wanted):
                if device["revoked_at"]:
                    return None
                if binding is not None and device.get("binding") and binding(device["member"]) != device["binding"]:
                    return None
                return device["member"]
        return None

    def devices(self) -> list[dict[str, Any]]:
        """Every paired device (no tokens)."""
        return [{"device_id": i, **{k: v for k, v in d.items() if k not in ("token", "binding")}}
                for i, d in sorted(self._load()["devices"].items())]

    def revoke(self, device_id: str, now: float | None = None) -> None:
        """Refuse a device's token from now on.

        :raises NotFound: for an unknown device.
        """
        with self._lock:
            state = self._load()
            if device_id not in state["devices"]:
                raise NotFound("no such device")
            state["devices"][device_id]["revoked_at"] = int(time.time() if now is None else now)
            self._save(state)
