"""The web app (kiosk_client/) in headless Chromium, driven by Playwright, against a real kiosk.

Our server runs as a subprocess with the sample province (``serve --sample``) on a free
loopback port; the hub is a pouchdb-server. The walk-through signs in, reads an article,
checks in, writes minutes, loses the kiosk, keeps working, gets it back, resolves the
conflict that the outage produced, and sees the records reach the hub. A kiosk admin pairs
a phone from the kiosk screen, then unpairs it. Screenshots at 360 px and at kiosk size in
each language go to $APP_SCREENSHOT_DIR (else a tmp dir).

Chromium must be installed (``scripts/install-browser``); without it these tests fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import couch_dump
import httpx
import pytest
import yaml
from conftest import ADMIN, ROOT, free_port, start_process, stop_process, wait_ready
from playwright.sync_api import Browser, Page, expect, sync_playwright

from sync_server.api.app_static import STATIC
from sync_server.handbook.policy import open_store
from sync_server.handbook.sample import CELL_DB, CELL_DOCS, DEMO_KIOSK_ADMIN, DEMO_MEMBER, DEMO_SECRETARY, HANDBOOK_DOCS, MEETING_NEXT
from sync_server.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 760}
KIOSK_SCREEN = {"width": 1280, "height": 800}
WAIT_MS = 30_000  # longest a UI state or a sync may take to show up (PouchDB retries every <= 15 s)
LANGUAGES = ("vi", "en", "ur")
ARTICLES = sum(1 for d in HANDBOOK_DOCS if d["type"] == "article")
NEXT = next(d for d in CELL_DOCS if d["_id"] == MEETING_NEXT)


class SampleKiosk:
    """``sync-server serve --sample`` with an admin, on one port and data dir across restarts."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "kiosk.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []

    def start(self) -> SampleKiosk:
        args = [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                "--port", str(self.port), "--admin", ":".join(ADMIN), "--sample", *self.extra_args]
        self.proc = start_process(args, ROOT, self.log)
        wait_ready(self.proc, self.base + "/_up", self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def doc(self, doc_id: str, **params: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.base}/{CELL_DB}/{doc_id}", params=params, auth=ADMIN, trust_env=False)
        return response.json() if response.status_code == 200 else None

    def put(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Write a document of the cell as the admin (over its current revision); the stored document."""
        current = self.doc(doc["_id"])
        body = dict(doc, _rev=current["_rev"]) if current else doc
        response = httpx.put(f"{self.base}/{CELL_DB}/{doc['_id']}", json=body, auth=ADMIN, trust_env=False)
        assert response.status_code in (201, 202), response.text
        return self.doc(doc["_id"]) or {}

    def meeting_at(self, meeting: dict[str, Any], minutes_from_now: float) -> dict[str, Any]:
        """(Re)schedule a meeting this many minutes from now: check-in opens and closes around the real clock."""
        return self.put(dict(meeting, scheduled=at(minutes_from_now)))


def at(minutes_from_now: float) -> str:
    """A time this many minutes from now, in the province's offset (as the app writes times)."""
    moment = datetime.now(timezone(timedelta(hours=7))) + timedelta(minutes=minutes_from_now)
    return moment.replace(second=0, microsecond=0).isoformat()  # to the minute, as the meeting form writes


@pytest.fixture
def sample_kiosk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleKiosk]:
    kiosk = SampleKiosk(tmp_path_factory.mktemp("app-kiosk")).start()
    kiosk.meeting_at(NEXT, -10)  # the sample's next meeting began ten minutes ago: check-in is open
    yield kiosk
    kiosk.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): run scripts/install-browser (as root) to install it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("APP_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_app(browser: Browser, kiosk: SampleKiosk, viewport: dict[str, int], **context: Any) -> Page:
    # the province's time zone, so meeting times read as the cell sees them
    page = browser.new_context(viewport=viewport, timezone_id="Asia/Ho_Chi_Minh", **context).new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(kiosk.base + "/")  # a browser asking for / is sent to /_app/
    page.wait_for_selector("body[data-ready=true]")
    assert page.url == kiosk.base + "/_app/"
    assert errors == []
    return page


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` until it returns something truthy (a bounded number of tries)."""
    for _ in range(WAIT_MS // 250):
        found = check()
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def chrome_lines(page: Page) -> list[str]:
    """The lines of the app's name, sync badge, navigation and screen title, read in one step (a sync
    may redraw the screen between reads), once all four are on the page."""
    script = """() => {
        const parts = ['.app-name', '#sync-badge', 'nav', '#view h1'].map((s) => document.querySelector(s));
        return parts.every(Boolean) ? parts.map((e) => e.innerText).join('\\n').split('\\n') : null;
    }"""
    return wait_for(lambda: page.evaluate(script), "the app's name, badge, navigation and title")


def no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]


def scroll_to(page: Page, selector: str) -> None:
    """Bring ``selector`` into view in one step of the page's own script: a sync that re-renders
    the screen between Playwright finding the element and scrolling to it cannot detach it."""
    expect(page.locator(selector)).to_be_visible()
    assert page.evaluate("s => { const e = document.querySelector(s); if (e) e.scrollIntoView({block: 'center'}); return !!e; }",
                         selector)


def box_of(page: Page, selector: str) -> dict[str, float]:
    """The element's size, measured in one step of the page's script (as ``scroll_to``)."""
    expect(page.locator(selector)).to_be_visible()
    box = page.evaluate("s => { const e = document.querySelector(s); if (!e) return null;"
                        " const r = e.getBoundingClientRect(); return {width: r.width, height: r.height}; }", selector)
    assert box is not None, selector
    return box


def big_enough_targets(page: Page) -> None:
    targets = page.eval_on_selector_all(
        "nav a, button, .button, select, input",
        "els => els.filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().height)")
    assert targets and min(targets) >= 48  # every visible target (the bar is hidden before signing in)


def fits_in_every_language(page: Page, check: Callable[[], None]) -> None:
    """Switch to ur, en, then vi: in each, ``check`` holds and the screen fits a phone."""
    for lang in ("ur", "en", "vi"):
        page.select_option("#language", lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        check()
        no_horizontal_scroll(page)
        big_enough_targets(page)


pytestmark = pytest.mark.peers  # every test starts our server as a subprocess


def hub_config(tmp_path: Path, kiosk: SampleKiosk, hub_url: str) -> Path:
    path = tmp_path / "hub-sync.yaml"
    path.write_text(yaml.safe_dump({"server": {"data_dir": str(kiosk.data_dir)},
                                    "sync": {"hub_url": hub_url, "cell_db": CELL_DB}}))
    return path


def test_app_works_offline_and_changes_reach_the_kiosk_and_the_hub(
        browser: Browser, sample_kiosk: SampleKiosk, pouchdb_server: Any, shots: Path, tmp_path: Path) -> None:
    kiosk = sample_kiosk
    page = open_app(browser, kiosk, PHONE)

    # opened signed in as the sample's demo member, with the handbook synced into the browser
    expect(page.locator("#articles .card")).to_have_count(ARTICLES)
    page.fill("#search", "nghi quyet")  # search ignores diacritics
    expect(page.locator("#articles .card")).to_have_count(1)
    page.click("#articles .card")
    expect(page.locator("article h1")).to_have_text("Nghị quyết số 01-NQ/TU về chuyển đổi số")
    page.click("a.attachment")  # the PDF opens inside the app, from the browser's own copy
    expect(page.locator("#file-view")).to_be_attached()  # rendered once the local copy is read
    pdf = page.eval_on_selector("#file-view", "f => fetch(f.src).then(r => r.text()).then(t => t.slice(0, 5))")
    assert pdf == "%PDF-"
    no_horizontal_scroll(page)
    page.go_back()

    # check in to the next meeting: the attendance record reaches the kiosk
    page.click("nav a[data-screen=meetings]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .checkin")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}'] .done")).to_be_visible()
    attendance_id = f"attendance:{MEETING_NEXT}:0003"
    assert wait_for(lambda: kiosk.doc(attendance_id), "attendance at the kiosk")["member"] == DEMO_MEMBER["member"]

    # sign out; the secretary signs in with member code and PIN and writes minutes
    page.click("nav a[data-screen=sync]")
    expect(page.locator("#signed-in-as")).to_contain_text(DEMO_MEMBER["name"])
    page.click("#sign-out")
    page.fill("#member", DEMO_SECRETARY["name"])
    page.fill("#pin", "0000")
    page.click("#signin-submit")
    expect(page.locator(".signin .message")).not_to_be_empty()  # a wrong PIN is refused
    page.fill("#pin", DEMO_SECRETARY["pin"])
    page.click("#signin-submit")
    page.click("nav a[data-screen=minutes]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .write")
    page.fill("#minutes-text", "Chi bộ quán triệt Nghị quyết số 01-NQ/TU.")
    page.fill("#minutes-decisions", "Mỗi đảng viên cài Sổ tay.")
    page.click("#minutes-save")
    minutes_id = f"minutes:{MEETING_NEXT}"
    wait_for(lambda: kiosk.doc(minutes_id), "minutes at the kiosk")
    page.wait_for_function("navigator.serviceWorker.controller !== null")  # the app itself is kept offline

    # the kiosk goes away: the app keeps working, even reloaded, from the browser's database
    kiosk.stop()
    expect(page.locator("#sync-badge")).to_have_attribute("data-state", "offline")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.click("nav a[data-screen=minutes]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .write")
    page.fill("#minutes-text", "Bản sửa trên điện thoại khi mất kết nối.")
    page.click("#minutes-save")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}'] .minutes-text")).to_contain_text("mất kết nối")
    page.click("nav a[data-screen=feedback]")
    page.fill("#feedback-text", "Chữ to, dễ đọc.")
    page.click("#feedback-send")
    expect(page.locator("#view .message")).not_to_be_empty()
    page.click("nav a[data-screen=sync]")
    expect(page.locator("#status-kiosk dd")).not_to_have_text("")
    assert int(page.inner_text("#status-waiting dd")) >= 2  # the minutes and the feedback wait to go up

    # meanwhile the same minutes were edited at the kiosk (another device, also offline)
    store = open_store(Settings().replace("server", data_dir=str(kiosk.data_dir)))
    db = store.get(CELL_DB)
    kiosk_version = db.get(minutes_id)
    kiosk_version["text"] = "Bản sửa trên máy nhà văn hoá."
    assert "error" not in db.bulk_docs([kiosk_version])[0]
    store.close()

    # the kiosk comes back: the changes arrive and the conflict is shown, not dropped
    kiosk.start()
    page.click("#sync-now")
    wait_for(lambda: (kiosk.doc(minutes_id, conflicts="true") or {}).get("_conflicts"), "the conflict at the kiosk")
    feedback = wait_for(lambda: [r for r in httpx.get(f"{kiosk.base}/{CELL_DB}/_all_docs", auth=ADMIN, trust_env=False,
                                                      params={"startkey": '"feedback:"', "endkey": '"feedback:\ufff0"'}
                                                      ).json()["rows"]], "feedback at the kiosk")
    page.click("#sync-now")
    page.click("#conflicts .resolve")
    versions = page.locator(".version .minutes-text")
    expect(versions).to_have_count(2)
    assert sorted(versions.all_inner_texts()) == sorted(["Bản sửa trên máy nhà văn hoá.",
                                                         "Bản sửa trên điện thoại khi mất kết nối."])
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "conflict-360-vi.png"))
    page.click("#merge-save")
    def resolved() -> dict[str, Any] | None:
        doc = kiosk.doc(minutes_id, conflicts="true")
        return doc if doc and not doc.get("_conflicts") else None

    merged = wait_for(resolved, "the merged minutes at the kiosk")
    assert "mất kết nối" in merged["text"] and "nhà văn hoá" in merged["text"]

    # from the kiosk to the hub, with the kiosk's own sync round
    couch_dump.create_db(pouchdb_server.url, CELL_DB)
    proc = subprocess.run([sys.executable, "-m", "sync_server", "sync", "--once", "--config",
                           str(hub_config(tmp_path, kiosk, pouchdb_server.url))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    on_hub = couch_dump.dump(pouchdb_server.url, CELL_DB)
    assert attendance_id in on_hub and feedback[0]["id"] in on_hub
    assert on_hub[minutes_id]["winner"]["text"] == merged["text"]
    assert [leaf["doc"]["text"] for leaf in on_hub[minutes_id]["leaves"] if not leaf["doc"].get("_deleted")] \
        == [merged["text"]]  # the hub has the resolution too: one live version
    page.click("#sync-now")  # the app shows when the kiosk last reached the province
    expect(page.locator("#status-province dd")).to_have_text(re.compile(r"^\d\d:\d\d .*\d{4}$"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "sync-360-vi.png"))


def test_screens_in_every_language_at_phone_and_kiosk_size(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    english: set[str] = set()
    # the words of the other languages: a redraw begun before English was chosen may still show them
    # on a loaded machine, and they must not count as English
    i18n = Path(__file__).parents[2] / "kiosk_client" / "static" / "i18n"
    elsewhere = {text for code in LANGUAGES if code != "en"
                 for text in json.loads((i18n / f"{code}.json").read_text(encoding="utf-8")).values()}
    for lang in ("en", *[code for code in LANGUAGES if code != "en"]):
        for name, viewport in (("360", PHONE), ("kiosk", KIOSK_SCREEN)):
            page = open_app(browser, sample_kiosk, viewport)
            page.select_option("#language", lang)
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ur" else "ltr")
            expect(page.locator("#articles .card")).to_have_count(ARTICLES)
            for screen in ("meetings", "minutes", "feedback", "sync", "handbook"):
                page.click(f"nav a[data-screen={screen}]")
                expect(page.locator("body")).to_have_attribute("data-screen", screen)
                page.wait_for_selector("#view section")
                if lang == "en":
                    english.update(line for line in chrome_lines(page) if len(line) > 3 and line not in elsewhere)
                else:
                    # nothing of the English interface shows through: no string is hard-coded. A
                    # redraw begun before the language changed may show the old words for a moment
                    # on a loaded machine; a hard-coded string stays, and fails.
                    leaked: list[str] = []
                    for _ in range(20):
                        leaked = [line for line in chrome_lines(page) if line in english]
                        if not leaked:
                            break
                        time.sleep(0.25)
                    assert not leaked, (lang, name, screen, leaked)
                if viewport is PHONE:
                    no_horizontal_scroll(page)
                    targets = page.eval_on_selector_all(
                        "nav a, button, .button, select, input", "els => els.map(e => e.getBoundingClientRect().height)")
                    assert min(targets) >= 48
                if screen in ("handbook", "meetings"):
                    page.screenshot(path=str(shots / f"{screen}-{name}-{lang}.png"))
            page.context.close()
    assert len(english) > 5


def test_a_kiosk_admin_pairs_a_phone_and_unpairs_it(browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))

    # the kiosk screen opens as the demo member, who may not pair phones; the kiosk admin signs in
    screen = open_app(browser, kiosk, KIOSK_SCREEN)
    screen.click("nav a[data-screen=sync]")
    expect(screen.locator("#signed-in-as")).to_contain_text(DEMO_MEMBER["name"])
    expect(screen.locator("#pair-open")).to_have_count(0)
    screen.click("#sign-out")
    screen.fill("#member", DEMO_KIOSK_ADMIN["name"])
    screen.fill("#pin", DEMO_KIOSK_ADMIN["pin"])
    screen.click("#signin-submit")
    screen.click("nav a[data-screen=sync]")
    with screen.expect_response(lambda r: r.url.endswith("/_pairing/code")) as answer:
        screen.click("#pair-open")  # two taps from any screen
    shown = answer.value.json()
    expect(screen.locator("#pair-qr")).to_be_visible()
    assert screen.get_attribute("#pair-qr", "src").startswith("data:image/svg+xml")
    assert screen.get_attribute("#pair-qr", "data-url") == shown["url"]
    assert box_of(screen, "#pair-qr")["width"] >= 300  # large: read by a camera across a table
    expect(screen.locator("#pair-code")).to_have_text(f"{shown['code'][:3]} {shown['code'][3:]}")
    expect(screen.locator("#pair-left")).to_contain_text(re.compile(r"\b(10:00|9:[0-5]\d)\b"))
    expect(screen.locator("#devices .empty")).to_have_text(vi["pair.no_devices"])
    screen.screenshot(path=str(shots / "pair-kiosk-vi.png"))

    # the phone opens the link in the QR code: the pairing form, code filled in, nobody signed in
    phone = browser.new_context(viewport=PHONE, timezone_id="Asia/Ho_Chi_Minh").new_page()
    phone.set_default_timeout(WAIT_MS)
    phone.goto(shown["url"])
    phone.wait_for_selector("body[data-ready=true]")
    expect(phone.locator("#pair-code-input")).to_have_value(shown["code"])
    expect(phone.locator("#pair-label")).to_have_value(vi["pair.label_default"])
    # the form in every language fits the phone; the code stays filled in
    fits_in_every_language(phone, lambda: expect(phone.locator("#pair-code-input")).to_have_value(shown["code"]))
    phone.screenshot(path=str(shots / "pair-phone-360-vi.png"))
    phone.fill("#pair-member", DEMO_MEMBER["name"])
    phone.fill("#pair-pin", "0000")  # a wrong PIN is refused (and counts toward the lockout)
    phone.click("#pair-submit")
    expect(phone.locator("#pair-message")).to_have_text(vi["pair.wrong_pin"])
    phone.fill("#pair-pin", DEMO_MEMBER["pin"])
    with phone.expect_request(lambda r: f"/{CELL_DB}/" in r.url) as synced:
        phone.click("#pair-submit")
    expect(phone.locator("#articles .card")).to_have_count(ARTICLES)
    assert "pair=" not in phone.url and phone.url.endswith("/_app/#/handbook")
    assert synced.value.all_headers()["authorization"].startswith("Bearer ")  # the device token, no cookie
    assert [c for c in phone.context.cookies() if c["name"] == "AuthSession"] == []
    device = phone.evaluate("JSON.parse(localStorage.getItem('phs.device'))")
    assert device["name"] == DEMO_MEMBER["name"]

    # the paired phone checks in: the attendance reaches the kiosk
    phone.click("nav a[data-screen=meetings]")
    phone.click(f"[data-meeting='{MEETING_NEXT}'] .checkin")
    attendance_id = f"attendance:{MEETING_NEXT}:0003"
    assert wait_for(lambda: kiosk.doc(attendance_id), "attendance at the kiosk")["member"] == DEMO_MEMBER["member"]

    # the kiosk screen lists the phone (and shows a new code: the old one is spent); the admin unpairs it
    row = screen.locator(f"#devices [data-device='{device['deviceId']}']")
    expect(row).to_contain_text(vi["pair.label_default"], timeout=WAIT_MS)  # the list is looked at every 5 s
    expect(row).to_contain_text(DEMO_MEMBER["name"])
    expect(screen.locator("#pair-code")).not_to_have_text(f"{shown['code'][:3]} {shown['code'][3:]}",
                                                          timeout=WAIT_MS)
    row.locator(".revoke").click()
    row.locator(".revoke-cancel").click()  # asked first; "no" keeps it
    row.locator(".revoke").click()
    row.locator(".revoke-confirm").click()
    expect(row).to_have_count(0)
    listed = httpx.get(f"{kiosk.base}/_pairing/devices", auth=ADMIN, trust_env=False).json()
    assert [d["revoked_at"] is not None for d in listed if d["device_id"] == device["deviceId"]] == [True]

    # the phone's next sync gets 401: it says it was unpaired, forgets the token, keeps its data
    phone.click("nav a[data-screen=sync]")
    phone.click("#sync-now")
    expect(phone.locator("#notice #unpaired-text")).to_have_text(vi["pair.unpaired"], timeout=WAIT_MS)
    assert phone.evaluate("localStorage.getItem('phs.device')") is None
    phone.click("nav a[data-screen=meetings]")
    expect(phone.locator(f"[data-meeting='{MEETING_NEXT}'] .done")).to_be_visible()
    phone.click("nav a[data-screen=handbook]")
    expect(phone.locator("#articles .card")).to_have_count(ARTICLES)
    expect(phone.locator("#notice")).to_be_visible()
    no_horizontal_scroll(phone)
    big_enough_targets(phone)
    phone.screenshot(path=str(shots / "unpaired-360-vi.png"))
    phone.context.close()
    screen.context.close()


def sign_in_as(page: Page, account: dict[str, str]) -> None:
    """Sign out whoever is signed in, then sign in with the account's code and PIN."""
    page.click("nav a[data-screen=sync]")
    page.click("#sign-out")
    page.fill("#member", account["name"])
    page.fill("#pin", account["pin"])
    page.click("#signin-submit")
    expect(page.locator("body")).to_have_attribute("data-screen", "handbook")


def meeting_ids(page: Page) -> set[str]:
    return set(page.eval_on_selector_all("#view [data-meeting]", "els => els.map(e => e.dataset.meeting)"))


def with_status(doc: dict[str, Any] | None, status: str) -> dict[str, Any] | None:
    return doc if doc and doc["status"] == status else None


def test_the_secretary_schedules_and_edits_meetings_and_members_cannot(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    cell = DEMO_MEMBER["member"].split(":")[1]
    page = open_app(browser, kiosk, PHONE)

    # a member sees the schedule without "New meeting" or "Edit", and the kiosk refuses a member's meeting
    page.click("nav a[data-screen=meetings]")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}']")).to_be_visible()
    expect(page.locator("#meeting-new")).to_have_count(0)
    expect(page.locator("#view .edit")).to_have_count(0)
    member = httpx.Client(base_url=kiosk.base, trust_env=False)
    assert member.post("/_session", json={"name": DEMO_MEMBER["name"], "password": DEMO_MEMBER["pin"]}).status_code == 200
    forged = {"type": "meeting", "cell": cell, "kind": "regular", "scheduled": "2026-12-10T19:30:00+07:00",
              "status": "scheduled"}
    refused = member.put(f"/{CELL_DB}/meeting:{cell}:00000000-0000-4000-8000-000000000000", json=forged)
    assert refused.status_code == 403, refused.text
    member.close()

    # the secretary gets both, and a form that fits the phone in every language
    sign_in_as(page, DEMO_SECRETARY)
    page.click("nav a[data-screen=meetings]")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}'] .edit")).to_be_visible()
    before = meeting_ids(page)
    expect(page.locator("#view .edit")).to_have_count(len(before))
    page.click("#meeting-new")
    expect(page.locator("body")).to_have_attribute("data-screen", "meeting-edit")
    expect(page.locator("nav a[data-screen=meetings]")).to_have_attribute("aria-current", "page")
    fits_in_every_language(page, lambda: expect(page.locator("#meeting-date")).to_be_visible())
    expect(page.locator("#meeting-place")).to_have_value("Nhà văn hoá thôn Bản Lằn")  # the last meeting's place
    page.click("#meeting-save")  # no date yet: asked for it, nothing saved
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))
    expect(page.locator("#meeting-message")).to_have_text(vi["meeting.when_needed"])
    page.fill("#meeting-date", "2026-12-17")
    page.fill("#meeting-time", "19:30")
    page.click("#meeting-kind [data-value=thematic]")
    expect(page.locator("#meeting-kind [data-value=thematic]")).to_have_attribute("aria-pressed", "true")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "meeting-edit-360-vi.png"))
    page.click("#meeting-save")
    expect(page.locator("body")).to_have_attribute("data-screen", "meetings")
    added = wait_for(lambda: meeting_ids(page) - before, "the new meeting on the schedule")
    (new_id,) = added
    assert re.fullmatch(rf"meeting:{re.escape(cell)}:[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}",
                        new_id)
    at_kiosk = wait_for(lambda: kiosk.doc(new_id), "the new meeting at the kiosk")  # the kiosk validates it
    assert {k: v for k, v in at_kiosk.items() if not k.startswith("_")} == {
        "type": "meeting", "cell": cell, "kind": "thematic", "scheduled": "2026-12-17T19:30:00+07:00",
        "status": "scheduled", "place": "Nhà văn hoá thôn Bản Lằn"}

    # the secretary edits it: later, held, at another place; the agenda of an older meeting is kept
    page.click(f"[data-meeting='{new_id}'] .edit")
    expect(page.locator("#meeting-date")).to_have_value("2026-12-17")
    expect(page.locator("#meeting-time")).to_have_value("19:30")
    expect(page.locator("#meeting-kind [data-value=thematic]")).to_have_attribute("aria-pressed", "true")
    page.fill("#meeting-time", "20:00")
    page.fill("#meeting-place", "Nhà ông Thắng")
    page.click("#meeting-status [data-value=held]")
    page.click("#meeting-save")
    expect(page.locator(f"[data-meeting='{new_id}'] .status-held")).to_be_visible()
    edited = wait_for(lambda: with_status(kiosk.doc(new_id), "held"), "the edited meeting at the kiosk")
    assert edited["scheduled"] == "2026-12-17T20:00:00+07:00" and edited["place"] == "Nhà ông Thắng"
    assert edited["_rev"].startswith("2-")
    scheduled = kiosk.doc(MEETING_NEXT)["scheduled"]
    page.click(f"[data-meeting='{MEETING_NEXT}'] .edit")
    page.click("#meeting-status [data-value=cancelled]")
    page.click("#meeting-save")
    cancelled = wait_for(lambda: with_status(kiosk.doc(MEETING_NEXT), "cancelled"), "the cancelled meeting at the kiosk")
    assert cancelled["agenda"] and cancelled["scheduled"] == scheduled
    page.context.close()


def test_members_sign_in_with_their_number_at_a_kiosk_that_knows_its_cell(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    cell = DEMO_MEMBER["member"].split(":")[1]
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))
    # no service worker: the kiosk's cell must come from the app's own copy when kiosk.json cannot be had
    page = open_app(browser, kiosk, PHONE, service_workers="block")
    page.click("nav a[data-screen=sync]")
    page.click("#sign-out")

    # the cell part is fixed; the member types the number on a numeric keyboard
    expect(page.locator("#member-cell")).to_have_text(f"{cell}.")
    expect(page.locator("label[for=member]")).to_have_text(vi["signin.number"])
    expect(page.locator("#member")).to_have_attribute("inputmode", "numeric")
    fits_in_every_language(page, lambda: expect(page.locator("#member-cell")).to_be_visible())
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "signin-360-vi.png"))
    page.fill("#member", DEMO_SECRETARY["name"].rsplit(".", 1)[1])
    page.fill("#pin", DEMO_SECRETARY["pin"])
    page.click("#signin-submit")
    page.click("nav a[data-screen=sync]")
    expect(page.locator("#signed-in-as")).to_contain_text(DEMO_SECRETARY["name"])
    assert json.loads(page.evaluate("localStorage.getItem('phs.kiosk')"))["cell"] == cell

    # "another cell": the full code, typed on the ordinary keyboard
    page.click("#sign-out")
    page.click("#member-other")
    expect(page.locator("#member-cell")).to_be_hidden()
    expect(page.locator("#member")).not_to_have_attribute("inputmode", "numeric")
    expect(page.locator("label[for=member]")).to_have_text(vi["signin.member"])
    page.fill("#member", DEMO_MEMBER["name"])
    page.fill("#pin", DEMO_MEMBER["pin"])
    page.click("#signin-submit")
    page.click("nav a[data-screen=sync]")
    expect(page.locator("#signed-in-as")).to_contain_text(DEMO_MEMBER["name"])

    # with kiosk.json out of reach the form still knows the cell (kept from the last answer), and so does pairing
    page.route("**/_app/kiosk.json", lambda route: route.abort())
    page.click("#sign-out")
    expect(page.locator("#member-cell")).to_have_text(f"{cell}.")
    page.click("#pair-link")
    expect(page.locator("#pair-member-cell")).to_have_text(f"{cell}.")
    expect(page.locator("#pair-member")).to_have_attribute("inputmode", "numeric")
    no_horizontal_scroll(page)
    big_enough_targets(page)
    page.context.close()


def test_a_session_revoked_while_the_app_is_open_asks_to_sign_in_again_and_keeps_the_data(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    texts = {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}
    page = open_app(browser, kiosk, PHONE)  # signed in as the demo member with the AuthSession cookie
    page.click("nav a[data-screen=meetings]")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}']")).to_be_visible()
    expect(page.locator("#notice")).to_be_hidden()

    # the admin gives the member a new PIN over HTTP: the kiosk revokes every session of the account
    url = f"{kiosk.base}/_users/org.couchdb.user:{DEMO_MEMBER['name']}"
    account = httpx.get(url, auth=ADMIN, trust_env=False).json()
    account["pin"] = "9753"
    assert httpx.put(url, json=account, auth=ADMIN, trust_env=False).status_code in (201, 202)

    # the next sync gets 401: the app says so on every screen and keeps what it has
    page.click("nav a[data-screen=sync]")
    page.click("#sync-now")
    expect(page.locator("#notice #session-text")).to_have_text(texts["vi"]["session.expired"])
    expect(page.locator("#sync-badge")).to_have_attribute("data-state", "signin")
    page.click("nav a[data-screen=meetings]")
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}']")).to_be_visible()
    page.click("nav a[data-screen=handbook]")
    expect(page.locator("#articles .card")).to_have_count(ARTICLES)
    for lang in ("ur", "en", "vi"):
        page.select_option("#language", lang)
        expect(page.locator("#notice #session-text")).to_have_text(texts[lang]["session.expired"])
        no_horizontal_scroll(page)
        big_enough_targets(page)
    page.screenshot(path=str(shots / "session-ended-360-vi.png"))

    # signing in again with the new PIN clears the notice and syncing resumes
    page.click("#notice a.button")
    page.fill("#member", DEMO_MEMBER["name"].rsplit(".", 1)[1])
    page.fill("#pin", "9753")
    page.click("#signin-submit")
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("#sync-badge")).not_to_have_attribute("data-state", "signin")
    page.context.close()


def sign_in_status(kiosk: SampleKiosk, name: str, pin: str) -> httpx.Response:
    return httpx.post(f"{kiosk.base}/_session", json={"name": name, "password": pin}, trust_env=False)


def test_the_kiosk_admin_manages_the_cells_members_on_the_members_screen(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path, tmp_path: Path) -> None:
    kiosk = sample_kiosk
    cell = DEMO_MEMBER["member"].split(":")[1]
    texts = {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}
    vi = texts["vi"]
    page = open_app(browser, kiosk, PHONE)
    page.click("nav a[data-screen=sync]")
    expect(page.locator("#members-open")).to_have_count(0)  # a member sees no such screen
    page.goto(kiosk.base + "/_app/#/members")
    expect(page.locator("section .warning")).to_have_text(vi["members.admin_only"])
    page.click("nav a[data-screen=sync]")
    page.click("#sign-out")
    page.fill("#member", "kiosk")
    page.fill("#pin", DEMO_KIOSK_ADMIN["pin"])
    page.click("#signin-submit")
    page.click("nav a[data-screen=sync]")
    page.click("#members-open")  # two taps from any screen

    # the sample's three members, by given name
    cards = page.locator("#members .card")
    expect(cards).to_have_count(3)
    expect(page.locator("#members .card .title")).to_have_text(["Đặng Thị Hoà", "Ma Thị Lụa", "Hoàng Văn Thắng"])
    expect(page.locator("[data-member='0012'] .facts")).to_contain_text(vi["members.secretary"])

    # add one ("21" is member 0021), then import the register: two more and one known
    page.fill("#new-number", "21")
    page.fill("#new-name", "Lý Văn Nam")
    page.fill("#new-born", "1958")
    page.click("#member-add")
    expect(page.locator("#members-message")).to_have_text(vi["members.added"].format(name="Lý Văn Nam", no="0021"))
    register = tmp_path / "so-dang-vien.csv"
    register.write_text("Số đảng viên,Họ và tên,Năm sinh,Giới tính,Điện thoại thông minh\n"
                        "22,Triệu Thị Xuân,1975,nữ,có\n23,Bàn Văn Tiến,1950,nam,không\n"
                        "13,Đặng Thị Hoà,1968,nữ,có\n", encoding="utf-8")
    page.set_input_files("#register-file", str(register))
    page.click("#register-import")
    expect(page.locator("#members-message")).to_have_text(vi["members.imported"].format(added=2, updated=1))
    expect(cards).to_have_count(6)
    assert kiosk.doc(f"member:{cell}:0022")["gender"] == "female"

    # a PIN for the new member, shown once on the screen; the member signs in with it
    page.click("[data-member='0021'] .give-pin")
    pin = page.locator("#pin-shown").inner_text()
    assert re.fullmatch(r"\d{6}", pin)
    assert sign_in_status(kiosk, f"{cell}.0021", pin).status_code == 200
    fits_in_every_language(page, lambda: expect(page.locator("#pin-shown")).to_have_text(pin))
    box = box_of(page, "#pin-shown")
    assert box["height"] < 80 and box["width"] <= PHONE["width"]  # one line of big digits, read across the table
    scroll_to(page, "[data-member='0021']")
    page.screenshot(path=str(shots / "members-360-vi.png"))
    page.click("#pin-once .pin-hide")
    expect(page.locator("#pin-shown")).to_have_count(0)

    # the demo member locks their account; the screen says so, and a new PIN opens it at once
    for _ in range(5):
        sign_in_status(kiosk, DEMO_MEMBER["name"], "0000")
    assert "locked" in sign_in_status(kiosk, DEMO_MEMBER["name"], DEMO_MEMBER["pin"]).json()["reason"]
    page.click("nav a[data-screen=sync]")
    page.click("#members-open")
    expect(page.locator("[data-member='0003'] .locked")).to_be_visible()
    page.click("[data-member='0003'] .give-pin")
    expect(page.locator("[data-member='0003'] .actions .warning")).to_have_text(
        vi["members.new_pin_confirm"].format(name="Hoàng Văn Thắng"))
    page.click("[data-member='0003'] .confirm-yes")
    new_pin = page.locator("#pin-shown").inner_text()
    assert sign_in_status(kiosk, DEMO_MEMBER["name"], new_pin).status_code == 200
    expect(page.locator("[data-member='0003'] .locked")).to_have_count(0)

    # name the new member secretary: the sample's secretary goes back to member
    page.click("[data-member='0021'] .make-secretary")
    page.click("[data-member='0021'] .confirm-yes")
    expect(page.locator("[data-member='0021'] .facts")).to_contain_text(vi["members.secretary"])
    expect(page.locator("[data-member='0012'] .facts")).not_to_contain_text(vi["members.secretary"])
    roles = httpx.get(f"{kiosk.base}/_users/org.couchdb.user:{DEMO_SECRETARY['name']}", auth=ADMIN,
                      trust_env=False).json()["roles"]
    assert "secretary" not in roles and "member" in roles

    # a member who moved away: marked, and their PIN stops working
    page.click("[data-member='0003'] .mark-moved")
    page.click("[data-member='0003'] .confirm-yes")
    expect(page.locator("[data-member='0003']")).to_have_attribute("data-status", "moved")
    expect(page.locator("[data-member='0003'] .mark-active")).to_be_visible()
    assert sign_in_status(kiosk, DEMO_MEMBER["name"], new_pin).status_code == 401
    assert kiosk.doc(DEMO_MEMBER["member"])["status"] == "moved"
    no_horizontal_scroll(page)
    big_enough_targets(page)
    page.set_viewport_size(KIOSK_SCREEN)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "members-kiosk-vi.png"))
    page.context.close()


def test_the_shared_kiosk_screen_shows_who_is_signed_in_and_signs_them_out(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory, shots: Path) -> None:
    workdir = tmp_path_factory.mktemp("shared-kiosk")
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"screen_idle_seconds": 15}}))
    kiosk = SampleKiosk(workdir)
    kiosk.extra_args = ["--config", str(config)]
    kiosk.start()
    kiosk.meeting_at(NEXT, -10)
    try:
        walk_the_shared_screen(browser, kiosk, shots)
    finally:
        kiosk.stop()


def walk_the_shared_screen(browser: Browser, kiosk: SampleKiosk, shots: Path) -> None:
    texts = {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}
    vi = texts["vi"]
    page = browser.new_context(viewport=KIOSK_SCREEN, timezone_id="Asia/Ho_Chi_Minh").new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(kiosk.base + "/_app/?screen=shared")  # how the kiosk's own browser starts
    page.wait_for_selector("body[data-ready=true]")

    # whose account is in use, by name, on every screen, with the way out
    expect(page.locator("#who-name")).to_contain_text("Hoàng Văn Thắng")
    expect(page.locator("#who-name")).to_contain_text(DEMO_MEMBER["name"])
    page.click("nav a[data-screen=meetings]")
    expect(page.locator("#who #not-me")).to_have_text(vi["who.not_me"])
    page.click("#not-me")
    expect(page.locator("#who")).to_be_hidden()

    # the number field is the cell's member number, and "3" is member 0003; a lockout says so, and how long
    expect(page.locator("label[for=member]")).to_have_text(vi["signin.number"])
    for _ in range(5):
        page.fill("#member", "3")
        page.fill("#pin", "0000")
        page.click("#signin-submit")
        expect(page.locator(".signin .message .refusal")).to_be_visible()
    page.fill("#member", "3")
    page.fill("#pin", DEMO_MEMBER["pin"])
    page.click("#signin-submit")
    refusal = page.locator(".signin .message .refusal")
    expect(refusal).to_have_text(re.compile(vi["signin.locked_seconds"].replace("{seconds}", r"(2\d|30)")))
    expect(page.locator("#forgot-pin")).to_have_text(vi["signin.forgot"])
    page.screenshot(path=str(shots / "locked-kiosk-vi.png"))

    # the kiosk admin gives a new PIN (which lifts the lock): the member signs in with "3" and it
    given = httpx.post(f"{kiosk.base}/_members/3/pin", json={}, auth=ADMIN, trust_env=False)
    assert given.status_code == 201
    page.fill("#member", "3")
    page.fill("#pin", given.json()["pin"])
    page.click("#signin-submit")
    expect(page.locator("#who-name")).to_contain_text("Hoàng Văn Thắng")

    # a check-in on the shared screen: once it is at the kiosk, the member is signed out for the next one
    page.click("nav a[data-screen=meetings]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .checkin")
    expect(page.locator("#signed-out-note")).to_have_text(
        vi["signin.out_after_checkin"].format(name=DEMO_MEMBER["name"]), timeout=WAIT_MS)
    assert kiosk.doc(f"attendance:{MEETING_NEXT}:0003")["member"] == DEMO_MEMBER["member"]
    expect(page.locator("#who")).to_be_hidden()

    # the secretary signs in and walks away: signed out after the idle time (15 s here)
    page.fill("#member", "12")
    page.fill("#pin", DEMO_SECRETARY["pin"])
    page.click("#signin-submit")
    expect(page.locator("#who-name")).to_contain_text("Ma Thị Lụa")
    started = time.monotonic()
    expect(page.locator("#signed-out-note")).to_have_text(
        vi["signin.out_idle"].format(name=DEMO_SECRETARY["name"]), timeout=40_000)
    assert time.monotonic() - started >= 10
    page.context.close()

    # on a phone (not the shared screen) nobody is signed out; a check-in the kiosk has not received
    # says it is waiting, never that it is done, until it is there
    phone = open_app(browser, kiosk, PHONE)  # the demo member's sample PIN was replaced: the secretary signs in
    phone.fill("#member", "12")
    phone.fill("#pin", DEMO_SECRETARY["pin"])
    phone.click("#signin-submit")
    expect(phone.locator("#who-name")).to_contain_text("Ma Thị Lụa")
    fits_in_every_language(phone, lambda: expect(phone.locator("#not-me")).to_be_visible())
    phone.route(f"**/{CELL_DB}/_bulk_docs*", lambda route: route.abort())
    phone.route(f"**/{CELL_DB}/_revs_diff*", lambda route: route.abort())
    kiosk.meeting_at(MEETING_HELD_NEW, 30)  # check-in opens an hour before
    phone.click("nav a[data-screen=meetings]")
    card = phone.locator(f"[data-meeting='{MEETING_HELD_NEW['_id']}']")
    card.locator(".checkin").click()
    expect(card.locator(".waiting")).to_have_text(vi["meeting.waiting"])
    expect(card.locator(".done")).to_have_count(0)
    phone.wait_for_timeout(3000)
    expect(card.locator(".done")).to_have_count(0)
    assert kiosk.doc(f"attendance:{MEETING_HELD_NEW['_id']}:0012") is None
    phone.unroute(f"**/{CELL_DB}/_bulk_docs*")
    phone.unroute(f"**/{CELL_DB}/_revs_diff*")
    phone.click("nav a[data-screen=sync]")
    phone.click("#sync-now")
    phone.click("nav a[data-screen=meetings]")
    expect(card.locator(".done")).to_be_visible(timeout=WAIT_MS)
    assert wait_for(lambda: kiosk.doc(f"attendance:{MEETING_HELD_NEW['_id']}:0012"), "the check-in at the kiosk")
    expect(phone.locator("#who")).to_be_visible()
    phone.context.close()


MEETING_HELD_NEW = {"_id": f"meeting:{DEMO_MEMBER['member'].split(':')[1]}:0b8f3c1e-7d2a-4e5b-9c6d-1a2b3c4d5e6f",
                    "type": "meeting", "kind": "thematic", "cell": DEMO_MEMBER["member"].split(":")[1],
                    "scheduled": "2026-12-20T19:30:00+07:00", "place": "Nhà văn hoá thôn Bản Lằn",
                    "status": "scheduled"}


def test_opening_an_article_is_counted_for_the_cell_and_day_not_the_member(
        browser: Browser, sample_kiosk: SampleKiosk) -> None:
    kiosk = sample_kiosk
    page = open_app(browser, kiosk, PHONE)  # signed in as the sample's demo member
    expect(page.locator("#articles .card")).to_have_count(ARTICLES)
    page.click("#articles .card >> nth=0")
    expect(page.locator("article h1")).to_be_visible()

    def counted() -> list[dict[str, Any]]:
        rows = httpx.get(f"{kiosk.base}/{CELL_DB}/_all_docs", auth=ADMIN, trust_env=False,
                         params={"startkey": '"reading:"', "endkey": '"reading;"', "include_docs": "true"}).json()
        return [r["doc"] for r in rows["rows"]]

    docs = wait_for(counted, "the reading count at the kiosk")
    assert len(docs) == 1 and sum(docs[0]["counts"].values()) == 1
    assert set(docs[0]) == {"_id", "_rev", "type", "cell", "date", "counts"}  # nobody named
    assert page.evaluate("localStorage.getItem('phs.reads')") == "{}"  # sent: nothing waits


def test_check_in_opens_around_the_meeting_can_be_undone_and_the_secretary_lists_who_came(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))
    cell = DEMO_MEMBER["member"].split(":")[1]
    later = kiosk.put(dict(NEXT, _id=f"meeting:{cell}:0c1d2e3f-0000-4000-8000-00000000a001", scheduled=at(3 * 24 * 60)))
    missed = kiosk.put(dict(NEXT, _id=f"meeting:{cell}:0c1d2e3f-0000-4000-8000-00000000a002", scheduled=at(-2 * 24 * 60)))
    page = open_app(browser, kiosk, PHONE)  # the demo member
    page.click("nav a[data-screen=meetings]")

    # open for the meeting under way; not yet for one in three days, no more for one two days ago, and says when
    card = page.locator(f"[data-meeting='{MEETING_NEXT}']")
    expect(card.locator(".checkin")).to_be_visible()
    for meeting in (later, missed):
        expect(page.locator(f"[data-meeting='{meeting['_id']}'] .checkin")).to_have_count(0)
    opens = page.locator(f"[data-meeting='{later['_id']}'] .checkin-closed").inner_text()
    assert opens.startswith(vi["meeting.opens_at"].split("{")[0])
    closed = page.locator(f"[data-meeting='{missed['_id']}'] .checkin-closed").inner_text()
    assert closed.startswith(vi["meeting.closed_at"].split("{")[0])

    # check in, undo it (the same day), check in again: each change reaches the kiosk
    attendance_id = f"attendance:{MEETING_NEXT}:0003"
    card.locator(".checkin").click()
    expect(card.locator(".done")).to_be_visible()
    wait_for(lambda: with_status(kiosk.doc(attendance_id), "present"), "the check-in at the kiosk")
    card.locator(".undo").click()
    expect(card.locator(".undone")).to_have_text(vi["meeting.undone"])
    undone = wait_for(lambda: with_status(kiosk.doc(attendance_id), "absent"), "the undo at the kiosk")
    assert undone["withdrawn_at"][:10] == undone["checked_in_at"][:10]
    fits_in_every_language(page, lambda: expect(card.locator(".checkin")).to_be_visible())
    page.evaluate("window.scrollTo(0, 0)")
    scroll_to(page, f"[data-meeting='{MEETING_NEXT}'] .undone")
    page.screenshot(path=str(shots / "checkin-360-vi.png"))
    card.locator(".checkin").click()
    expect(card.locator(".undo")).to_be_visible()
    again = wait_for(lambda: with_status(kiosk.doc(attendance_id), "present"), "the new check-in at the kiosk")
    assert "withdrawn_at" not in again and again["scheduled"] == kiosk.doc(MEETING_NEXT)["scheduled"]

    # whatever the app does, the kiosk refuses a member's check-in outside the window
    member = httpx.Client(base_url=kiosk.base, trust_env=False)
    assert member.post("/_session", json={"name": DEMO_MEMBER["name"], "password": DEMO_MEMBER["pin"]}).status_code == 200
    forged = {"type": "attendance", "cell": cell, "meeting": later["_id"], "member": DEMO_MEMBER["member"],
              "status": "present", "scheduled": later["scheduled"], "checked_in_at": at(0)}
    refused = member.put(f"/{CELL_DB}/attendance:{later['_id']}:0003", json=forged)
    assert refused.status_code == 403 and "check-in is open from 60 minutes" in refused.json()["reason"]
    member.close()

    # the secretary sees who came, marks a member without a phone, and the minutes take the count
    sign_in_as(page, DEMO_SECRETARY)
    page.click("nav a[data-screen=meetings]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .who-came")
    expect(page.locator("body")).to_have_attribute("data-screen", "attendance")
    members = [d for d in CELL_DOCS if d["type"] == "member" and d["status"] == "active"]
    expect(page.locator("#attendees .attendee")).to_have_count(len(members))
    expect(page.locator("#attendees [data-member='0003']")).to_have_class(re.compile(r"\bpresent\b"))
    expect(page.locator("#attendance-count")).to_have_text(vi["attendance.count"].format(present=1, members=len(members)))
    page.click("#attendees [data-member='0013'] .mark")
    expect(page.locator("#attendance-count")).to_have_text(vi["attendance.count"].format(present=2, members=len(members)))
    marked = wait_for(lambda: with_status(kiosk.doc(f"attendance:{MEETING_NEXT}:0013"), "present"), "the mark at the kiosk")
    assert marked["marked_by"] == DEMO_SECRETARY["member"] and "checked_in_at" not in marked
    fits_in_every_language(page, lambda: expect(page.locator("#attendees .attendee")).to_have_count(len(members)))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "attendance-360-vi.png"))
    page.click("nav a[data-screen=minutes]")
    page.click(f"[data-meeting='{MEETING_NEXT}'] .write")
    expect(page.locator("#minutes-count")).to_contain_text(vi["attendance.count"].format(present=2, members=len(members)))
    page.fill("#minutes-text", "Chi bộ sinh hoạt thường kỳ.")
    page.click("#minutes-save")
    minutes = wait_for(lambda: kiosk.doc(f"minutes:{MEETING_NEXT}"), "the minutes at the kiosk")
    assert minutes["attendance"] == {"present": 2, "members": len(members)}
    expect(page.locator(f"[data-meeting='{MEETING_NEXT}'] .minutes-attendance")).to_have_text(
        vi["attendance.count"].format(present=2, members=len(members)))

    # a member sees no list; the secretary's list is refused to them
    page.goto(kiosk.base + f"/_app/#/attendance/{MEETING_NEXT}")
    sign_in_as(page, DEMO_MEMBER)
    page.goto(kiosk.base + f"/_app/#/attendance/{MEETING_NEXT}")
    expect(page.locator("section .warning")).to_have_text(vi["meeting.secretary_only"])
    page.context.close()


def test_a_pdf_opens_inside_the_app_from_the_local_copy_even_offline(
        browser: Browser, sample_kiosk: SampleKiosk, shots: Path) -> None:
    kiosk = sample_kiosk
    with_pdf = next(d for d in HANDBOOK_DOCS if d["type"] == "article" and d.get("_attachments"))
    name = next(iter(with_pdf["_attachments"]))
    served = httpx.get(f"{kiosk.base}/handbook/{with_pdf['_id']}/{name}", auth=ADMIN, trust_env=False)
    assert served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"].startswith("inline")  # opened where it is, not saved
    page = open_app(browser, kiosk, PHONE)
    expect(page.locator("#articles .card")).to_have_count(ARTICLES)
    page.route("**/handbook/**", lambda route: route.abort())  # the kiosk's copy is out of reach
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    page.goto(kiosk.base + f"/_app/#/article/{with_pdf['_id']}")
    page.click("a.attachment")
    expect(page.locator("body")).to_have_attribute("data-screen", "file")
    src = page.get_attribute("#file-view", "src")
    assert src and src.startswith("blob:")
    assert page.evaluate("src => fetch(src).then(r => r.text()).then(t => t.slice(0, 5))", src) == "%PDF-"
    assert page.get_attribute("#file-tab", "download") is None
    fits_in_every_language(page, lambda: expect(page.locator("#file-view")).to_be_visible())
    page.screenshot(path=str(shots / "pdf-360-vi.png"))
    page.click("a.back")
    expect(page.locator("body")).to_have_attribute("data-screen", "article")
    assert downloads == []
    page.context.close()


def reopened(browser: Browser, page: Page, url: str, viewport: dict[str, int]) -> Page:
    """Close the browser and open it again: what it keeps on disk (localStorage, lasting cookies) stays;
    session cookies and sessionStorage go, as when a phone's browser is closed."""
    state = page.context.storage_state()
    state["cookies"] = [c for c in state["cookies"] if c["expires"] > 0]
    page.context.close()
    again = browser.new_context(viewport=viewport, timezone_id="Asia/Ho_Chi_Minh", storage_state=state).new_page()
    again.set_default_timeout(WAIT_MS)
    again.goto(url)
    again.wait_for_selector("body[data-ready=true]")
    return again


def test_a_phone_keeps_its_sign_in_across_closing_the_browser_and_the_shared_screen_does_not(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory, shots: Path) -> None:
    workdir = tmp_path_factory.mktemp("remember")
    config = workdir / "config.yaml"
    # here the phones and the kiosk's screen are all on 127.0.0.1: the screen's address is not told apart
    # (tests/security/test_pairing.py shows the kiosk refusing the shared screen's addresses)
    config.write_text(yaml.safe_dump({"server": {"shared_screen_addresses": ""}}))
    kiosk = SampleKiosk(workdir)
    kiosk.extra_args = ["--config", str(config)]
    kiosk.start()
    kiosk.meeting_at(NEXT, -10)
    vi = json.loads((STATIC / "i18n" / "vi.json").read_text(encoding="utf-8"))
    try:
        # signed in with the PIN alone (the sample's own sign-in): closing the browser ends it
        phone = open_app(browser, kiosk, PHONE)
        expect(phone.locator("#who-name")).to_contain_text(DEMO_MEMBER["name"])
        phone = reopened(browser, phone, kiosk.base + "/_app/", PHONE)
        expect(phone.locator("#notice #session-text")).to_have_text(vi["session.expired"])

        # "keep me signed in on this phone": the kiosk pairs it on the PIN; it outlives closing the browser
        phone.click("#not-me")
        expect(phone.locator("label[for=remember]")).to_have_text(vi["signin.remember"])
        phone.fill("#member", "3")
        phone.fill("#pin", DEMO_MEMBER["pin"])
        phone.check("#remember")
        phone.click("#signin-submit")
        expect(phone.locator("#who-name")).to_contain_text(DEMO_MEMBER["name"])
        device = phone.evaluate("JSON.parse(localStorage.getItem('phs.device'))")
        assert device["name"] == DEMO_MEMBER["name"]
        phone = reopened(browser, phone, kiosk.base + "/_app/", PHONE)
        expect(phone.locator("#who-name")).to_contain_text(DEMO_MEMBER["name"])
        phone.click("nav a[data-screen=meetings]")
        phone.click(f"[data-meeting='{MEETING_NEXT}'] .checkin")  # it still syncs: the check-in reaches the kiosk
        expect(phone.locator(f"[data-meeting='{MEETING_NEXT}'] .done")).to_be_visible()
        assert wait_for(lambda: kiosk.doc(f"attendance:{MEETING_NEXT}:0003"), "the check-in at the kiosk")
        expect(phone.locator("#notice")).to_be_hidden()
        listed = httpx.get(f"{kiosk.base}/_pairing/devices", auth=ADMIN, trust_env=False).json()
        assert [(d["member"], d["via"], d["revoked_at"]) for d in listed] == [(DEMO_MEMBER["name"], "pin", None)]

        # signing out on the phone ends it at the kiosk too (as the kiosk admin unpairing it would)
        phone.click("#not-me")
        revoked = wait_for(lambda: [d for d in httpx.get(f"{kiosk.base}/_pairing/devices", auth=ADMIN,
                                                         trust_env=False).json() if d["revoked_at"]], "the device revoked")
        assert [d["device_id"] for d in revoked] == [device["deviceId"]]
        phone.context.close()

        # the kiosk's shared screen never offers it, and a browser started anew there begins signed out
        screen = browser.new_context(viewport=KIOSK_SCREEN, timezone_id="Asia/Ho_Chi_Minh").new_page()
        screen.set_default_timeout(WAIT_MS)
        screen.goto(kiosk.base + "/_app/?screen=shared")
        screen.wait_for_selector("body[data-ready=true]")
        screen.click("#not-me")
        expect(screen.locator("#remember")).to_have_count(0)
        screen.fill("#member", "12")
        screen.fill("#pin", DEMO_SECRETARY["pin"])
        screen.click("#signin-submit")
        expect(screen.locator("#who-name")).to_contain_text(DEMO_SECRETARY["name"])
        screen.reload()  # a reload is the same browser session: still signed in
        screen.wait_for_selector("body[data-ready=true]")
        expect(screen.locator("#who-name")).to_contain_text(DEMO_SECRETARY["name"])
        screen = reopened(browser, screen, kiosk.base + "/_app/", KIOSK_SCREEN)
        expect(screen.locator("body")).to_have_attribute("data-screen", "signin")
        expect(screen.locator("#who")).to_be_hidden()
        screen.context.close()
    finally:
        kiosk.stop()
