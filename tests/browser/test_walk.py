"""Issue 13's "Done when", walked once as a new province and a village would (one test).

The hub is Apache CouchDB 3.4.3 (fixture ``couchdb``); the kiosk is ``sync-server serve`` on the
data directory ``kiosk enrol`` made; the screens are the web app in Chromium: the kiosk's own
shared screen and one member's phone. Everything else goes through the ``sync-server`` command
line, as the province and the village run it:

provision the hub from a hierarchy CSV (with enrolment files) and publish an article; enrol the
kiosk in one command; on the kiosk screen the kiosk admin imports the cell's register (CSV),
gives PINs, names the secretary and pairs a member's phone; the secretary schedules a meeting,
the member checks in on the phone (and reads the article), the secretary marks a member without
a phone, holds the meeting and writes the minutes (the count taken from the list); the kiosk
syncs; the province's nightly report then shows, for that cell, exactly what was done. Last, the
kiosk's data directory is wiped and one command brings back everything the hub had.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ADMIN, ROOT, free_port, start_process, stop_process, wait_ready
from playwright.sync_api import Browser, Page, expect
from test_app import KIOSK_SCREEN, PHONE, WAIT_MS, browser, meeting_ids, wait_for, with_status  # noqa: F401 (fixture)

from sync_server.api.app_static import STATIC
from sync_server.handbook.policy import open_store
from sync_server.security import signing
from sync_server.settings import load

pytestmark = pytest.mark.peers

CELL = "TQ.NH.KH.C01"
CELL_DB = "cell-tq-nh-kh-c01"
ZONE = "Asia/Ho_Chi_Minh"  # the kiosk, the command line and both browsers keep the province's time
TZ = timezone(timedelta(hours=7))
HIERARCHY = """code,name,level,parent
TQ,Tuyên Quang,province,
TQ.NH,Na Hang,district,TQ
TQ.NH.KH,Khâu Tinh,commune,TQ.NH
TQ.NH.KH.C01,Chi bộ thôn Bản Lằn,cell,TQ.NH.KH
"""
# the commune's register: three members in the cell, one moved away (not counted)
REGISTER = ("Số đảng viên,Họ và tên,Năm sinh,Giới tính,Điện thoại thông minh,Tình trạng\n"
            "1,Ma Thị Lụa,1981,nữ,có,active\n"
            "2,Hoàng Văn Thắng,1972,nam,có,active\n"
            "3,Bàn Văn Tiến,1950,nam,không,active\n"
            "4,Triệu Thị Xuân,1990,nữ,có,moved\n")
ARTICLE = {"_id": "article:dieu-le-dang", "type": "article", "title": "Điều lệ Đảng", "category": "charter",
           "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00",
           "body": "Đảng Cộng sản Việt Nam..."}


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "sync_server", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TZ": ZONE})
    assert proc.returncode == 0, f"{args[:2]}: {proc.stdout}{proc.stderr}"
    return proc


class EnrolledKiosk:
    """``sync-server serve`` on what ``kiosk enrol`` wrote (its config.yaml and data directory)."""

    def __init__(self, config: Path) -> None:
        self.config, self.port = config, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EnrolledKiosk:
        log = self.config.parent / "kiosk.log"
        self.proc = start_process([sys.executable, "-m", "sync_server", "serve", "--config", str(self.config),
                                   "--host", "127.0.0.1", "--port", str(self.port), "--admin", ":".join(ADMIN)],
                                  ROOT, log, env={"TZ": ZONE})
        wait_ready(self.proc, self.base + "/_up", log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.base}/{CELL_DB}/{doc_id}", auth=ADMIN, trust_env=False)
        return response.json() if response.status_code == 200 else None


@pytest.fixture
def served() -> Iterator[list[EnrolledKiosk]]:
    """Kiosks the test starts; all stopped afterwards."""
    started: list[EnrolledKiosk] = []
    yield started
    for kiosk in started:
        kiosk.stop()


def page_at(browser: Browser, viewport: dict[str, int], url: str) -> Page:
    page = browser.new_context(viewport=viewport, timezone_id=ZONE).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def sign_in(page: Page, number: str, pin: str) -> None:
    """On the shared screen's sign-in form: the member's number in the kiosk's cell, and the PIN."""
    page.fill("#member", number)
    page.fill("#pin", pin)
    page.click("#signin-submit")
    expect(page.locator("#who")).to_be_visible()


def all_docs(url: str, db: str, auth: Any = None) -> dict[str, str]:
    """Every document of a database but design documents: id -> winning revision."""
    rows = httpx.get(f"{url}/{db}/_all_docs", auth=auth, trust_env=False, timeout=30).json()["rows"]
    return {r["id"]: r["value"]["rev"] for r in rows if not r["id"].startswith("_design/")}


def province_side(hub: str, tmp_path: Path) -> tuple[Path, Path]:
    """Provision the hub from the hierarchy CSV with enrolment files, and publish one signed article."""
    hierarchy = tmp_path / "hierarchy.csv"
    hierarchy.write_text(HIERARCHY, encoding="utf-8")
    key, public = signing.create_key(tmp_path / "keys", "tq-2026")
    province = tmp_path / "province.yaml"
    province.write_text(yaml.safe_dump({
        "server": {"data_dir": str(tmp_path / "province-data")},
        "signing": {"public_keys": {"tq-2026": public}},
        "province": {"hub_url": hub, "hierarchy": str(hierarchy), "report_dir": str(tmp_path / "reports")}}))
    enrolment = tmp_path / "enrolment"
    cli("provision", "--hub", hub, "--hierarchy", hierarchy, "--credentials", tmp_path / "kiosks.csv",
        "--enrolment-dir", enrolment, "--config", province)
    article = tmp_path / "article.json"
    article.write_text(json.dumps(ARTICLE, ensure_ascii=False), encoding="utf-8")
    cli("publish", article, "--hub", f"{hub}/handbook", "--key", key, "--config", province)
    return province, enrolment / f"enrol-{CELL_DB}.json"


def admin_pin(enrolled: str) -> str:
    line = next(line for line in enrolled.splitlines() if line.startswith(f"kiosk admin {CELL}.kiosk: PIN "))
    return line.split("PIN ")[1].split()[0]


def members_and_phone(browser: Browser, kiosk: EnrolledKiosk, pin: str, tmp_path: Path,
                      vi: dict[str, str]) -> tuple[Page, Page, dict[str, str]]:
    """The kiosk admin, on the shared screen: the register, PINs, the secretary, a phone paired."""
    screen = page_at(browser, KIOSK_SCREEN, kiosk.base + "/_app/?screen=shared")
    sign_in(screen, "kiosk", pin)
    screen.click("nav a[data-screen=sync]")
    screen.click("#members-open")
    register = tmp_path / "so-dang-vien.csv"
    register.write_text(REGISTER, encoding="utf-8")
    screen.set_input_files("#register-file", str(register))
    screen.click("#register-import")
    expect(screen.locator("#members-message")).to_have_text(vi["members.imported"].format(added=4, updated=0))
    pins = {}
    for number in ("0001", "0002"):  # the members present get their PINs, read off the screen
        screen.click(f"[data-member='{number}'] .give-pin")
        pins[number] = screen.locator("#pin-shown").inner_text()
        screen.click("#pin-once .pin-hide")
    screen.click("[data-member='0001'] .make-secretary")
    screen.click("[data-member='0001'] .confirm-yes")
    expect(screen.locator("[data-member='0001'] .facts")).to_contain_text(vi["members.secretary"])

    screen.click("nav a[data-screen=sync]")
    with screen.expect_response(lambda r: r.url.endswith("/_pairing/code")) as answer:
        screen.click("#pair-open")
    phone = page_at(browser, PHONE, answer.value.json()["url"])  # the phone opens the QR code's link
    phone.fill("#pair-member", "2")
    phone.fill("#pair-pin", pins["0002"])
    phone.click("#pair-submit")
    expect(phone.locator("#who-name")).to_contain_text("Hoàng Văn Thắng")
    phone.click("#articles .card")  # the member reads the province's article
    expect(phone.locator("article h1")).to_have_text(ARTICLE["title"])
    screen.click("#not-me")
    return screen, phone, pins


def hold_the_meeting(screen: Page, phone: Page, kiosk: EnrolledKiosk, secretary_pin: str, vi: dict[str, str]) -> str:
    """The secretary schedules a meeting now; the member checks in on the phone; the secretary marks
    the member without a phone, holds the meeting and writes the minutes. Returns the meeting's id."""
    sign_in(screen, "1", secretary_pin)
    screen.click("nav a[data-screen=meetings]")
    before = meeting_ids(screen)
    screen.click("#meeting-new")
    now = datetime.now(TZ)
    screen.fill("#meeting-date", now.strftime("%Y-%m-%d"))
    screen.fill("#meeting-time", now.strftime("%H:%M"))
    screen.click("#meeting-save")
    (meeting,) = wait_for(lambda: meeting_ids(screen) - before, "the new meeting on the schedule")

    phone.click("nav a[data-screen=meetings]")
    card = phone.locator(f"[data-meeting='{meeting}']")
    card.locator(".checkin").click()  # the meeting reached the phone through the kiosk
    expect(card.locator(".done")).to_be_visible()

    screen.click(f"[data-meeting='{meeting}'] .who-came")
    expect(screen.locator("#attendees [data-member='0002']")).to_have_class(re.compile(r"\bpresent\b"))
    screen.click("#attendees [data-member='0003'] .mark")
    expect(screen.locator("#attendance-count")).to_have_text(vi["attendance.count"].format(present=2, members=3))
    wait_for(lambda: with_status(kiosk.doc(f"attendance:{meeting}:0003"), "present"), "the mark")

    screen.click("nav a[data-screen=meetings]")
    screen.click(f"[data-meeting='{meeting}'] .edit")
    screen.click("#meeting-status [data-value=held]")
    screen.click("#meeting-save")
    wait_for(lambda: with_status(kiosk.doc(meeting), "held"), "the meeting held, at the kiosk")
    screen.click("nav a[data-screen=minutes]")
    screen.click(f"[data-meeting='{meeting}'] .write")
    expect(screen.locator("#minutes-count")).to_contain_text(vi["attendance.count"].format(present=2, members=3))
    screen.fill("#minutes-text", "Chi bộ quán triệt Điều lệ Đảng.")
    screen.click("#minutes-save")
    minutes = wait_for(lambda: kiosk.doc(f"minutes:{meeting}"), "the minutes at the kiosk")
    assert minutes["attendance"] == {"present": 2, "members": 3}
    return meeting


def the_cells_row(reports: Path, month: str) -> dict[str, str]:
    with (reports / month / "cells.csv").open(encoding="utf-8-sig", newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["code"] == CELL)


def test_a_new_province_from_its_hierarchy_to_the_nightly_report_and_a_wiped_kiosk_back(
        browser: Browser, couchdb: Any, served: list[EnrolledKiosk], tmp_path: Path) -> None:
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))
    hub = couchdb.url
    province, enrolment = province_side(hub, tmp_path)

    # the kiosk: one command, then it serves (usage marks written at once, not after a minute)
    config = tmp_path / "kiosk" / "config.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"server": {"usage_delay": 0}}))
    enrolled = cli("kiosk", "enrol", enrolment, "--config", config, "--data-dir", config.parent / "data")
    kiosk = EnrolledKiosk(config).start()
    served.append(kiosk)

    screen, phone, pins = members_and_phone(browser, kiosk, admin_pin(enrolled.stdout), tmp_path, vi)
    meeting = hold_the_meeting(screen, phone, kiosk, pins["0001"], vi)
    attendance = kiosk.doc(f"attendance:{meeting}:0002")
    assert attendance and attendance["checked_in_at"]  # the member checked in through the app
    screen.context.close()
    phone.context.close()

    # the kiosk syncs with the hub; the province runs its nightly report
    cli("sync", "--once", "--config", config)
    on_hub = all_docs(couchdb.base, CELL_DB, couchdb.auth)
    assert {meeting, f"minutes:{meeting}", f"attendance:{meeting}:0002", f"attendance:{meeting}:0003"} <= set(on_hub)
    assert [i for i in on_hub if i.startswith("device:")] and [i for i in on_hub if i.startswith("reading:")]
    month = meeting_month(kiosk.doc(meeting) or {})
    cli("report", "--now", "--month", month, "--config", province)
    row = the_cells_row(tmp_path / "reports", month)
    counts = {key: int(row[key]) for key in ("members", "smartphone", "installed", "registered", "active",
                                              "cells_using", "meetings_held", "attendance_records",
                                              "attendance_present", "minutes_recorded", "reads", "cells_to_help")}
    assert counts == {
        "members": 3,             # the register's active members (the one who moved is not counted)
        "smartphone": 2,          # those of them the register says own one
        "installed": 1,           # one phone paired (0002)
        "registered": 2,          # 0002 by pairing, the secretary 0001 by signing in; 0003 never signed in
        "active": 2,              # the same two, this month
        "cells_using": 1,         # a held meeting with a check-in through the app
        "meetings_held": 1,
        "attendance_records": 2,  # 0002 checked in, 0003 marked by the secretary
        "attendance_present": 2,
        "minutes_recorded": 1,
        "reads": 1,               # the article, opened once on the phone
        "cells_to_help": 0,
    }
    assert float(row["share_using"]) == 1.0 and float(row["attendance_rate"]) == 1.0
    assert float(row["install_rate_target"]) == 0.5

    # the kiosk is lost with its data: the province re-issues its file, one command brings all back
    kiosk.stop()
    shutil.rmtree(config.parent / "data")
    again = tmp_path / "again.json"
    cli("kiosk", "enrolment", "--hub", hub, "--cell", CELL, "--out", again, "--config", province)
    back = cli("kiosk", "enrol", again, "--config", config)
    assert f"enrolled for cell {CELL}" in back.stdout
    restored = open_store(load(config))
    try:
        for db in (CELL_DB, "handbook"):
            local = {row["id"]: row["value"]["rev"] for row in restored.get(db).all_docs()}
            hub_docs = all_docs(couchdb.base, db, couchdb.auth)
            assert hub_docs and {i: local.get(i) for i in hub_docs} == hub_docs, db  # nothing the hub had is lost
    finally:
        restored.close()


def meeting_month(meeting: dict[str, Any]) -> str:
    """The month of a meeting's ``scheduled`` time, read in its own offset (as the report reads it)."""
    return str(meeting["scheduled"])[:7]
