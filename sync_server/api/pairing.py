"""``/_pairing/*``: pair a member's phone with the kiosk, list and revoke devices."""

from __future__ import annotations

from flask import Response, current_app, g, request

from ..errors import BadRequest, Forbidden, NotFound, Unauthorized
from ..handbook.ownership import KIOSK_ADMIN_ROLE
from ..handbook.usage import member_of
from ..security.auth import User, require_admin
from ..security.pairing import Pairing
from .http import json_body, respond


def _pairing() -> Pairing:
    return current_app.extensions["pairing"]


def _require_kiosk_admin() -> None:
    if KIOSK_ADMIN_ROLE in g.user.roles:
        return
    try:
        require_admin(g.user)
    except Forbidden:
        raise Forbidden("Only a kiosk admin pairs and revokes devices.") from None


def new_code() -> Response:
    """``POST /_pairing/code``: a one-time code and its QR code for the kiosk screen."""
    _require_kiosk_admin()
    body = json_body(require_type=False) if request.content_length else {}
    tls = current_app.config.get("TLS")  # set by `serve` when it listens for HTTPS too
    server = current_app.config["SETTINGS"].server
    public_url = server.public_url  # what phones can reach (not 127.0.0.1)
    if public_url is None and server.public_name and tls:  # the kiosk's own name, with its trusted certificate (#19)
        public_url = f"https://{server.public_name}:{tls['port']}/"
    kiosk_url = body.get("kiosk_url") or public_url or (_https_url(tls["port"]) if tls else request.host_url)
    result = _pairing().new_code(str(kiosk_url), fingerprint=tls["fingerprint"] if tls else None,
                                 cells=None if g.user.is_admin else _cells())
    current_app.extensions["audit"].record("pairing_code", by=g.user.name)
    return respond(result, 201)


def _https_url(port: int) -> str:
    """This kiosk's HTTPS address, on the host name the screen itself used."""
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"https://{host}:{port}/"


def _fields(*names: str) -> list[str]:
    body = json_body()
    fields = [body.get(k) for k in names]
    if not all(isinstance(v, str) and v for v in fields):
        raise BadRequest(f"{', '.join(names[:-1])} and {names[-1]} are required")
    return [*fields, str(body.get("label") or "phone")]


def _signed_in(name: str, pin: str, via: str) -> User:
    """The account whose PIN this is (wrong tries count toward the lockout, and are audited)."""
    try:
        return current_app.extensions["authenticator"].check_password(name, pin, request.remote_addr)
    except Exception:
        current_app.extensions["audit"].record("sign_in_failed", name=name, via=via, remote=request.remote_addr)
        raise


def claim() -> Response:
    """``POST /_pairing/claim``: code, member account and PIN in; a device token out."""
    code, name, pin, label = _fields("code", "name", "pin")
    audit = current_app.extensions["audit"]
    authenticator = current_app.extensions["authenticator"]
    user = _signed_in(name, pin, "pairing")
    try:
        device = _pairing().claim(code, user.name or name, label, binding=authenticator.binding(user.name or name))
    except Unauthorized:  # a wrong code counts as a wrong try of this client
        authenticator.failed(request.remote_addr)
        audit.record("pairing_failed", name=name, remote=request.remote_addr)
        raise
    return _paired(user, device, label, {})


def shared_screen(address: str | None) -> bool:
    """Whether a client is the kiosk's own shared screen (``server.shared_screen_addresses``)."""
    listed = current_app.config["SETTINGS"].server.shared_screen_addresses.split()
    return (address or "").removeprefix("::ffff:") in listed


def remember() -> Response:
    """``POST /_pairing/remember``: a member remembers their own phone with their PIN, no code: a device
    token, as pairing gives (revoked by the kiosk admin, by a new PIN, or by signing out on the phone).

    Never from the kiosk's shared screen (the next member would act as this one), and only for a cell
    member's account (a kiosk admin works at the kiosk's screen)."""
    name, pin, label = _fields("name", "pin")
    if shared_screen(request.remote_addr):
        raise Forbidden("This is the kiosk's shared screen: a phone is remembered on the member's own phone only.")
    user = _signed_in(name, pin, "remember")
    if member_of(user) is None:
        raise Forbidden("Only a cell member's own phone is remembered.")
    authenticator = current_app.extensions["authenticator"]
    device = _pairing().remember(user.name or name, label, binding=authenticator.binding(user.name or name))
    return _paired(user, device, label, {"via": "remember"})


def _paired(user: User, device: dict, label: str, how: dict[str, str]) -> Response:
    """Audit and record a new device; the member's oldest phones it replaced are marked revoked."""
    audit = current_app.extensions["audit"]
    audit.record("paired", name=user.name, device=device["device_id"], **how, remote=request.remote_addr)
    current_app.extensions["usage"].paired(user, device["device_id"], label)
    for old in device.pop("replaced"):
        _revoked_record(old, user.name or "")
        audit.record("revoked", device=old, by=user.name, reason="replaced")
    return respond({"ok": True, **device}, 201)


def _cells() -> list[str]:
    """The cells of the kiosk admin asking (its ``cell:<code>`` roles)."""
    return [r[5:] for r in g.user.roles if r.startswith("cell:")]


def _mine(device: dict) -> bool:
    """Whether the kiosk admin asking may see and unpair this device: the server admin all, a kiosk
    admin those of the members of its own cells only (issue #15)."""
    return g.user.is_admin or any(str(device.get("member", "")).startswith(cell + ".") for cell in _cells())


def devices() -> Response:
    """``GET /_pairing/devices``: the devices of the asker's cell (tokens are never shown)."""
    _require_kiosk_admin()
    return respond([d for d in _pairing().devices() if _mine(d)])


def revoke(device_id: str) -> Response:
    """``DELETE /_pairing/devices/{id}``: the device's token is refused from now on."""
    _require_kiosk_admin()
    if not any(d["device_id"] == device_id and _mine(d) for d in _pairing().devices()):
        raise NotFound("no such device")
    forget(device_id, g.user.name)
    return respond({"ok": True})


def forget(device_id: str, by: str | None) -> None:
    """Refuse a device's token from now on, and mark its device record revoked."""
    _pairing().revoke(device_id)
    member = next((d["member"] for d in _pairing().devices() if d["device_id"] == device_id), "")
    _revoked_record(device_id, member)
    current_app.extensions["audit"].record("revoked", device=device_id, by=by)


def _revoked_record(device_id: str, member: str) -> None:
    """Mark a revoked device's record in its member's cell database."""
    if member.count(".") >= 4:  # <cell code (4 parts)>.<member no>: its device record is marked too
        current_app.extensions["usage"].revoked(".".join(member.split(".")[:4]), device_id)


def signed_out(token: str) -> None:
    """A phone signs out with its own device token: the kiosk forgets that device (``DELETE /_session``)."""
    device_id = _pairing().device_of(token)
    if device_id is not None:
        forget(device_id, g.user.name)


def locks() -> Response:
    """``GET /_pairing/locks``: the clients locked out for wrong PINs or pairing codes, and for how long."""
    _require_kiosk_admin()
    return respond(current_app.extensions["authenticator"].throttle.locked())


def lift() -> Response:
    """``DELETE /_pairing/locks[?name=ACCOUNT]``: lift the locks (a member who mistyped, a kiosk shared by many)."""
    _require_kiosk_admin()
    name = request.args.get("name")
    lifted = current_app.extensions["authenticator"].throttle.lift(name)
    current_app.extensions["audit"].record("locks_lifted", by=g.user.name, name=name, count=lifted)
    return respond({"ok": True, "lifted": lifted})
