"""Pairing a phone: QR code with a one-time code, PIN confirmation, device token, revocation (#5)."""

from __future__ import annotations

import base64

import pytest

from sync_server.app import create_app
from sync_server.errors import StartupError
from sync_server.security.pairing import DEVICES_PER_MEMBER
from sync_server.settings import Settings

CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
MEMBER = f"{CELL}.001"


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    c = app.test_client()
    c.put("/_users", headers=ADMIN)
    c.put(f"/{DB}", headers=ADMIN)
    c.put(f"/{DB}/_security", headers=ADMIN, json={"members": {"names": [], "roles": [f"cell:{CELL}"]}})
    for name, roles in ((MEMBER, ["member", f"cell:{CELL}"]), ("quan-tri", ["kiosk-admin", f"cell:{CELL}"])):
        doc = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": roles, "pin": "2468"}
        assert c.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN).status_code == 201
    yield c
    app.extensions["sync_server"].close()


def kiosk_admin() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"quan-tri:2468").decode()}


def pair(client, code: str, pin: str = "2468"):
    return client.post("/_pairing/claim", json={"code": code, "name": MEMBER, "pin": pin, "label": "Điện thoại của Hà"})


def test_pair_use_and_revoke_a_phone(client):
    shown = client.post("/_pairing/code", headers=kiosk_admin())
    assert shown.status_code == 201
    assert shown.json["qr_svg"].startswith("<?xml") and f"pair={shown.json['code']}" in shown.json["url"]
    paired = pair(client, shown.json["code"])
    assert paired.status_code == 201
    bearer = {"Authorization": f"Bearer {paired.json['token']}"}
    assert client.get("/_session", headers=bearer).json["userCtx"]["name"] == MEMBER
    assert client.get(f"/{DB}/_changes", headers=bearer).status_code == 200
    listed = client.get("/_pairing/devices", headers=kiosk_admin()).json
    assert [d["member"] for d in listed] == [MEMBER] and "token" not in listed[0]
    assert client.delete(f"/_pairing/devices/{paired.json['device_id']}", headers=kiosk_admin()).status_code == 200
    refused = client.get(f"/{DB}/_changes", headers=bearer)
    assert refused.status_code == 401 and refused.json["error"] == "unauthorized"


def test_a_code_works_once_and_needs_the_members_pin(client):
    code = client.post("/_pairing/code", headers=ADMIN).json["code"]
    assert pair(client, code, pin="0000").status_code == 401
    assert pair(client, code).status_code == 201
    assert pair(client, code).status_code == 401  # used


def test_only_a_kiosk_admin_shows_codes_and_lists_devices(client):
    member = {"Authorization": "Basic " + base64.b64encode(f"{MEMBER}:2468".encode()).decode()}
    assert client.post("/_pairing/code", headers=member).status_code == 403
    assert client.get("/_pairing/devices", headers=member).status_code == 403
    assert client.post("/_pairing/code").status_code == 401


def test_tokens_are_not_stored_in_clear(client, tmp_path):
    code = client.post("/_pairing/code", headers=ADMIN).json["code"]
    token = pair(client, code).json["token"]
    assert token not in (tmp_path / "devices.json").read_text()
    assert (tmp_path / "devices.json").stat().st_mode & 0o077 == 0


def test_an_expired_code_is_refused(tmp_path):
    from sync_server.errors import Unauthorized
    from sync_server.security.pairing import CODE_SECONDS, Pairing

    pairing = Pairing(tmp_path)
    code = pairing.new_code("http://kiosk.local:5984", now=1000.0)["code"]
    with pytest.raises(Unauthorized, match="expired"):
        pairing.claim(code, MEMBER, "phone", now=1000.0 + CODE_SECONDS + 1)


def test_the_qr_code_points_at_the_address_phones_can_reach(tmp_path):
    settings = Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret",
                                  public_url="http://192.168.50.1:5984/")
    app = create_app(settings)
    shown = app.test_client().post("/_pairing/code", headers=ADMIN).json  # the screen itself is on 127.0.0.1
    assert shown["url"] == f"http://192.168.50.1:5984/_app/?pair={shown['code']}"
    app.extensions["sync_server"].close()
    with pytest.raises(StartupError, match="public_url"):
        Settings().replace("server", public_url="192.168.50.1")


OWN_PHONE = {"REMOTE_ADDR": "192.168.50.23"}  # a phone on the village Wi-Fi (the test client is 127.0.0.1 otherwise)


def remember(client, pin: str = "2468", name: str = MEMBER, **environ: str):
    return client.post("/_pairing/remember", json={"name": name, "pin": pin, "label": "Điện thoại của Hà"},
                       environ_base=environ or OWN_PHONE)


def test_a_member_remembers_their_own_phone_with_the_pin_never_on_the_kiosks_shared_screen(client):
    # the kiosk's own screen (127.0.0.1, ::1 by default): refused before the PIN is even checked
    for screen in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        refused = remember(client, REMOTE_ADDR=screen)
        assert refused.status_code == 403 and "shared screen" in refused.json["reason"]
    assert remember(client, pin="0000").status_code == 401  # a wrong PIN counts as ever
    assert remember(client, name="quan-tri").status_code == 403  # a kiosk admin's account is no member's phone
    remembered = remember(client)
    assert remembered.status_code == 201
    bearer = {"Authorization": f"Bearer {remembered.json['token']}"}
    assert client.get("/_session", headers=bearer).json["userCtx"]["name"] == MEMBER
    listed = client.get("/_pairing/devices", headers=kiosk_admin()).json
    assert [(d["member"], d["via"]) for d in listed] == [(MEMBER, "pin")]  # the kiosk admin sees it, and unpairs it

    # a new PIN ends it, as it ends the member's sessions and paired phones
    account = client.get(f"/_users/org.couchdb.user:{MEMBER}", headers=ADMIN).json
    assert client.put(f"/_users/org.couchdb.user:{MEMBER}", headers=ADMIN, json={**account, "pin": "1357"}).status_code == 201
    assert client.get(f"/{DB}/_changes", headers=bearer).status_code == 401


def test_a_fourth_phone_forgets_the_members_oldest(client):
    code = client.post("/_pairing/code", headers=kiosk_admin()).json["code"]
    tokens = [pair(client, code).json["token"]] + [remember(client).json["token"] for _ in range(DEVICES_PER_MEMBER)]

    def works(token: str) -> bool:
        return client.get(f"/{DB}/_changes", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    assert [works(t) for t in tokens] == [False] + [True] * DEVICES_PER_MEMBER
    listed = client.get("/_pairing/devices", headers=kiosk_admin()).json
    assert [(d["via"], bool(d["revoked_at"])) for d in sorted(listed, key=lambda d: (d["paired_at"], d["via"]))] == \
        [("code", True)] + [("pin", False)] * DEVICES_PER_MEMBER
    assert "replaced" not in remember(client).json  # what the kiosk did is its own business, not the phone's
    assert sum(works(t) for t in tokens) == DEVICES_PER_MEMBER - 1


def test_the_shared_screens_addresses_are_a_setting(tmp_path):
    settings = Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret",
                                  shared_screen_addresses="192.168.50.2")
    app = create_app(settings)
    c = app.test_client()
    c.put("/_users", headers=ADMIN)
    doc = {"_id": f"org.couchdb.user:{MEMBER}", "name": MEMBER, "type": "user", "roles": ["member", f"cell:{CELL}"],
           "pin": "2468"}
    c.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN)
    assert remember(c, REMOTE_ADDR="192.168.50.2").status_code == 403
    assert remember(c, REMOTE_ADDR="127.0.0.1").status_code == 201
    app.extensions["sync_server"].close()
    with pytest.raises(StartupError, match="shared_screen_addresses"):
        Settings().replace("server", shared_screen_addresses="kiosk; rm")
