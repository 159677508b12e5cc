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
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..errors import Forbidden, Unauthorized
from . import passwords

# The roles of the user whose request is being served; None outside any request
# (the server's own work, such as the replication it runs). Set per request by the app.
current_roles: ContextVar[tuple[str, ...] | None] = ContextVar("current_roles", default=None)
current_name: ContextVar[str | None] = ContextVar("current_name", default=None)
USER_PREFIX = "org.couchdb.user:"
# A successful password check is remembered this long: PBKDF2 is slow on purpose.
CHECK_CACHE_SECONDS = 300
# Wrong tries from one client before it is locked out of that account, and the first lock;
# each further lock doubles, up to MAX_LOCK_SECONDS (issue #15: a lock is a nuisance to
# members too, so it is per client and short, and a kiosk admin can lift it).
MAX_TRIES = 5
FIRST_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 900.0
# Wrong tries from one client over any accounts (a common PIN sprayed over every member).
CLIENT_TRIES = 20
# Wrong tries on one account from all clients together (a guesser changing addresses): the
# account takes no new sign-in for a while; its sessions and paired phones keep working.
ACCOUNT_TRIES = 50
# A key that saw no wrong try for this long starts afresh.
FORGET_SECONDS = 3600.0


class Throttle:
    """Wrong tries per key ((client, account), or a client alone): locks that double, capped, liftable."""

    def __init__(self) -> None:
        self._state: dict[tuple, list[float]] = {}  # key -> [wrong tries, locks so far, locked until, last wrong]
        self._lock = threading.Lock()

    def wait(self, key: tuple) -> float:
        """Seconds the key is still locked (0 when it is not)."""
        state = self._state.get(key)
        return max(0.0, state[2] - time.monotonic()) if state else 0.0

    def failed(self, key: tuple, limit: int) -> None:
        """Count a wrong try; the ``limit``-th locks the key, each lock twice as long as the last (capped)."""
        now = time.monotonic()
        with self._lock:
            if len(self._state) > 100_000:  # bounded memory under a flood of names
                self._state = {k: v for k, v in self._state.items() if v[2] > now}
            state = self._state.get(key)
            if state is None or now - state[3] > FORGET_SECONDS and state[2] <= now:
                state = self._state[key] = [0, 0, 0.0, now]
            state[0] += 1
            state[3] = now
            if state[0] >= limit:
                state[1] += 1
                state[0] = 0
                state[2] = now + min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** min(state[1] - 1, 30))

    def forget(self, key: tuple) -> None:
        self._state.pop(key, None)

    def forget_account(self, name: str) -> None:
        """Forget every wrong try and lock on one account, from every client."""
        with self._lock:
            for key in [k for k in self._state if k[2:] == (name,)]:
                del self._state[key]

    def wait_account(self, name: str) -> float:
        """Seconds the account is still locked for some client (0 when it is not)."""
        now = time.monotonic()
        return max([v[2] - now for k, v in list(self._state.items()) if k[2:] == (name,)] + [0.0])

    def locked(self) -> list[dict[str, Any]]:
        """The keys locked now, for the kiosk admin."""
        now = time.monotonic()
        return [{"client": k[1] or "(any)", **({"name": k[2]} if len(k) > 2 else {}), "seconds_left": round(v[2] - now)}
                for k, v in list(self._state.items()) if v[2] > now]

    def lift(self, name: str | None = None) -> int:
        """Lift every lock (or those of one account); how many were lifted."""
        now = time.monotonic()
        with self._lock:
            chosen = [k for k, v in self._state.items() if v[2] > now and (name is None or k[2:] == (name,))]
            for key in chosen:
                del self._state[key]
        return len(chosen)


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
        self.admin_name: str | None = admin.split(":", 1)[0] if admin else None
        self.admin_password: str | None = admin.split(":", 1)[1] if admin else None
        self._secret = secret.encode()
        self.session_timeout = session_timeout
        self._users = users or (lambda name: None)
        # (name, hash of stored key and password) -> (until, user): skips the slow KDF, not the lookup
        self._checked: dict[tuple[str, str], tuple[float, User]] = {}
        self.throttle = Throttle()
        # What the admin's cookies are bound to: a new admin password revokes them (issue #15).
        self._admin_salt = hmac.new(self._secret, f"admin:{self.admin_password}".encode(), hashlib.sha256).hexdigest() \
            if admin else ""
        self._failed_salt: dict[str, str] = {}  # name -> salt of the PIN or password the wrong tries were against

    @property
    def admin_party(self) -> bool:
        return self.admin_name is None

    def check_password(self, name: str, password: str, client: str | None = None) -> User:
        """The user for a name and password, tried from ``client`` (its address).

        :raises Unauthorized: "Name or password is incorrect.", or while this client is locked out
            of this account (or of all, after wrong tries over many accounts). The admin too.
        """
        is_admin = self.admin_name is not None and hmac.compare_digest(name.encode(), self.admin_name.encode())
        doc = None if is_admin else self._users(name)  # read every time: a new PIN or a deleted account counts at once
        if not is_admin:
            self._lift_lock_if_new_secret(name, doc)
        self.refuse_if_locked(client, name)
        if is_admin and hmac.compare_digest(password.encode(), str(self.admin_password).encode()):
            self.throttle.forget(("account", client, name))
            return User(name, ("_admin",))
        stored = str((doc or {}).get("derived_key", ""))
        key = (name, hashlib.sha256((stored + ":" + password).encode()).hexdigest())
        cached = self._checked.get(key)
        if doc is not None and cached and cached[0] > time.monotonic():
            return cached[1]
        if doc is None or not passwords.check(doc, password):
            self.failed(client, name)
            self._failed_salt[name] = str((doc or {}).get("salt", ""))
            raise Unauthorized("Name or password is incorrect.")
        self.throttle.forget(("account", client, name))
        user = User(name, tuple(str(r) for r in doc.get("roles") or []))
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[key] = (time.monotonic() + CHECK_CACHE_SECONDS, user)
        return user

    def refuse_if_locked(self, client: str | None, name: str | None = None) -> None:
        """:raises Unauthorized: while this client is locked out (of this account, or of all)."""
        wait = self.throttle.wait(("client", client))
        if wait:
            raise Unauthorized(f"Too many wrong tries from this device: wait {wait:.0f} s.")
        if name is None:
            return
        wait = max(self.throttle.wait(("account", client, name)), self.throttle.wait(("account", None, name)))
        if wait:
            raise Unauthorized(f"Too many wrong tries: this account is locked for {wait:.0f} s.")

    def failed(self, client: str | None, name: str | None = None) -> None:
        """Count a wrong PIN, password or pairing code from ``client``."""
        if name is not None:
            self.throttle.failed(("account", client, name), MAX_TRIES)
            self.throttle.failed(("account", None, name), ACCOUNT_TRIES)
        self.throttle.failed(("client", client), CLIENT_TRIES)

    def binding(self, name: str) -> str | None:
        """What a device token of this account is bound to: a new PIN or password revokes it (issue #15)."""
        found = self._account(name)
        return hashlib.sha256(found[1].encode()).hexdigest()[:32] if found else None

    # --- a new PIN lifts the lockout (issue 13) ---------------------------------------------
    def _lift_lock_if_new_secret(self, name: str, doc: dict[str, Any] | None) -> None:
        """Wrong tries count against one PIN or password: a new one (a new salt, written by any
        process: the kiosk admin's screen or ``sync-server member pin``) starts afresh."""
        if name in self._failed_salt and self._failed_salt[name] != str((doc or {}).get("salt", "")):
            self.unlock(name)

    def unlock(self, name: str) -> None:
        """Forget an account's wrong tries and locks, from every client (its PIN was just reset)."""
        self.throttle.forget_account(name)
        self._failed_salt.pop(name, None)

    def locked_for(self, name: str) -> float:
        """Seconds an account stays locked for anyone (0 when it is not)."""
        return self.throttle.wait_account(name)

    def locked(self, name: str) -> bool:
        """Whether an account is locked now."""
        return self.locked_for(name) > 0

    def user_named(self, name: str) -> User | None:
        """The user a valid cookie names (roles read afresh), or None if the account is gone."""
        found = self._account(name)
        return found[0] if found else None

    def _account(self, name: str) -> tuple[User, str] | None:
        """The user and the salt of their stored password or PIN ("" for the configured admin)."""
        if name == self.admin_name:
            return User(name, ("_admin",)), self._admin_salt
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
