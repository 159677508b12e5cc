"""Who is asking, and what they may do. Pure decisions and cookie arithmetic, no I/O.

Until accounts arrive (issue 5) the only account is the server admin. With no
admin configured the server is in CouchDB's "admin party": everyone is admin,
which is why the CLI then binds to loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from .errors import Forbidden, Unauthorized


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
    """Checks credentials against the configured admin and signs session cookies."""

    def __init__(self, admin: str | None, secret: str, session_timeout: int) -> None:
        self.admin_name, self.admin_password = (admin.split(":", 1) if admin else (None, None))
        self._secret = secret.encode()
        self.session_timeout = session_timeout

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
        raise Unauthorized("Name or password is incorrect.")

    def make_cookie(self, name: str, now: int) -> str:
        """An ``AuthSession`` value: base64url of ``name:hex-time:hmac`` (CouchDB's shape)."""
        payload = f"{name}:{now:X}"
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return base64.urlsafe_b64encode(f"{payload}:{mac}".encode()).decode().rstrip("=")

    def read_cookie(self, value: str, now: int) -> tuple[User, int] | None:
        """The user and issue time of a valid, unexpired cookie, else None."""
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            name, stamp, mac = text.rsplit(":", 2)
            issued = int(stamp, 16)
        except (ValueError, UnicodeDecodeError):
            return None
        expected = hmac.new(self._secret, f"{name}:{stamp}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected) or now - issued > self.session_timeout or name != self.admin_name:
            return None
        return User(name, ("_admin",)), issued


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
