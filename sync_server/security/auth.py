"""Who is asking, and what they may do: decisions and cookie arithmetic.

Accounts are the server admin (from the settings) and the users of the
``_users`` database (CouchDB's format, passwords hashed with PBKDF2). With no
admin configured the server is in CouchDB's "admin party": everyone is admin,
which is why the CLI then binds to loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from . import passwords
from ..errors import Forbidden, Unauthorized

# The roles of the user whose request is being served; None outside any request
# (the server's own work, such as the replication it runs). Set per request by the app.
current_roles: ContextVar[tuple[str, ...] | None] = ContextVar("current_roles", default=None)
current_name: ContextVar[str | None] = ContextVar("current_name", default=None)
USER_PREFIX = "org.couchdb.user:"
# A successful password check is remembered this long: PBKDF2 is slow on purpose.
CHECK_CACHE_SECONDS = 300
# Wrong tries before an account is locked, and the first lock; each further lock doubles.
MAX_TRIES = 5
FIRST_LOCK_SECONDS = 30.0


@dataclass(frozen=True)
class User:
    """A user context: name (None when anonymous) and roles."""

    name: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_admin(self) -> bool:
        return "_admin" in self.roles

    def to_json(self) -> dict:
        return {"name": self.name, "roles": list(self.roles)}


ANONYMOUS = User()
ADMIN_PARTY = User(None, ("_admin",))


class Authenticator:
    """Checks credentials against the admin and ``_users``, and signs session cookies."""

    def __init__(self, admin: str | None, secret: str, session_timeout: int,
                 users: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self.admin_name, self.admin_password = (admin.split(":", 1) if admin else (None, None))
        self._secret = secret.encode()
        self.session_timeout = session_timeout
        self._users = users or (lambda name: None)
        # (name, hash of stored key and password) -> (until, user): skips the slow KDF, not the lookup
        self._checked: dict[tuple[str, str], tuple[float, User]] = {}
        self._failures: dict[str, list[float]] = {}  # name -> [wrong tries, locks so far, locked until]
        self._failed_salt: dict[str, str] = {}  # name -> salt of the PIN or password the wrong tries were against

    @property
    def admin_party(self) -> bool:
        return self.admin_name is None

    def check_password(self, name: str, password: str) -> User:
        """The user for a name and password.

        :raises Unauthorized: "Name or password is incorrect."
        """
        if self.admin_name is not None and hmac.compare_digest(name.encode(), self.admin_name.encode()) \
                and hmac.compare_digest(password.encode(), str(self.admin_password).encode()):
            return User(name, ("_admin",))
        doc = self._users(name)  # read every time: a changed password or deleted account counts at once
        self._lift_lock_if_new_secret(name, doc)
        self._refuse_if_locked(name)
        stored = str((doc or {}).get("derived_key", ""))
        key = (name, hashlib.sha256((stored + ":" + password).encode()).hexdigest())
        cached = self._checked.get(key)
        if doc is not None and cached and cached[0] > time.monotonic():
            return cached[1]
        if doc is None or not passwords.check(doc, password):
            self._failed(name)
            self._failed_salt[name] = str((doc or {}).get("salt", ""))
            raise Unauthorized("Name or password is incorrect.")
        self._failures.pop(name, None)
        user = User(name, tuple(str(r) for r in doc.get("roles") or []))
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[key] = (time.monotonic() + CHECK_CACHE_SECONDS, user)
        return user

    def _refuse_if_locked(self, name: str) -> None:
        state = self._failures.get(name)
        if state and state[2] > time.monotonic():
            raise Unauthorized(f"Too many wrong tries: this account is locked for {state[2] - time.monotonic():.0f} s.")

    def _failed(self, name: str) -> None:
        """Count a wrong try; the MAX_TRIES-th locks the account, each lock twice as long as the last."""
        state = self._failures.setdefault(name, [0, 0, 0.0])
        state[0] += 1
        if state[0] >= MAX_TRIES:
            state[1] += 1
            state[0] = 0
            state[2] = time.monotonic() + FIRST_LOCK_SECONDS * 2 ** (state[1] - 1)

    # --- a new PIN lifts the lockout (issue 13) ---------------------------------------------
    def _lift_lock_if_new_secret(self, name: str, doc: dict[str, Any] | None) -> None:
        """Wrong tries count against one PIN or password: a new one (a new salt, written by any
        process: the kiosk admin's screen or ``sync-server member pin``) starts afresh."""
        if name in self._failures and self._failed_salt.get(name) != str((doc or {}).get("salt", "")):
            self.unlock(name)

    def unlock(self, name: str) -> None:
        """Forget an account's wrong tries and lock (its PIN was just reset)."""
        self._failures.pop(name, None)
        self._failed_salt.pop(name, None)

    def locked_for(self, name: str) -> float:
        """Seconds an account stays locked (0 when it is not)."""
        state = self._failures.get(name)
        return max(0.0, state[2] - time.monotonic()) if state else 0.0

    def locked(self, name: str) -> bool:
        """Whether an account is locked now."""
        state = self._failures.get(name)
        return bool(state and state[2] > time.monotonic())

    def user_named(self, name: str) -> User | None:
        """The user a valid cookie names (roles read afresh), or None if the account is gone."""
        found = self._account(name)
        return found[0] if found else None

    def _account(self, name: str) -> tuple[User, str] | None:
        """The user and the salt of their stored password or PIN ("" for the configured admin)."""
        if name == self.admin_name:
            return User(name, ("_admin",)), ""
        doc = self._users(name)
        if not doc:
            return None
        return User(name, tuple(str(r) for r in doc.get("roles") or [])), str(doc.get("salt", ""))

    def _cookie_mac(self, payload: str, salt: str) -> str:
        # Keyed by the account's salt too, as CouchDB's cookies are: a new PIN or password
        # (a new salt) or a deleted account revokes every session at once.
        return hmac.new(self._secret + salt.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def make_cookie(self, name: str, now: int) -> str:
        """An ``AuthSession`` value: base64url of ``name:hex-time:hmac`` (CouchDB's shape)."""
        found = self._account(name)
        payload = f"{name}:{now:X}"
        mac = self._cookie_mac(payload, found[1] if found else "")
        return base64.urlsafe_b64encode(f"{payload}:{mac}".encode()).decode().rstrip("=")

    def read_cookie(self, value: str, now: int) -> tuple[User, int] | None:
        """The user and issue time of a valid, unexpired cookie, else None."""
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            name, stamp, mac = text.rsplit(":", 2)
            issued = int(stamp, 16)
        except (ValueError, UnicodeDecodeError):
            return None
        found = self._account(name)
        if found is None or now - issued > self.session_timeout:
            return None
        if not hmac.compare_digest(mac, self._cookie_mac(f"{name}:{stamp}", found[1])):
            return None
        return found[0], issued


def require_admin(user: User) -> None:
    """:raises Unauthorized: for anonymous users; Forbidden for others who are not admins."""
    if user.is_admin:
        return
    if user.name is None:
        raise Unauthorized("You are not a server admin.")
    raise Forbidden("You are not a server admin.")


def require_member(user: User, security: dict, default_security: str) -> None:
    """Check read/write access to a database from its ``_security`` object.

    :raises Unauthorized: for anonymous users; Forbidden for other outsiders.
    """
    if user.is_admin or _listed(user, security.get("admins")):
        return
    members = security.get("members") or {}
    if not (members.get("names") or members.get("roles")):
        if default_security == "everyone":
            return
    elif _listed(user, members):
        return
    if user.name is None:
        raise Unauthorized("You are not authorized to access this db.")
    raise Forbidden("You are not allowed to access this db.")


def require_db_admin(user: User, security: dict) -> None:
    """Check the right to write design documents (server or database admins)."""
    if user.is_admin or _listed(user, security.get("admins")):
        return
    raise Unauthorized("You are not a db or server admin.") if user.name is None else \
        Forbidden("You are not a db or server admin.")


def _listed(user: User, group: object) -> bool:
    if not isinstance(group, dict) or user.name is None and not user.roles:
        return False
    return user.name in (group.get("names") or []) or bool(set(user.roles) & set(group.get("roles") or []))
