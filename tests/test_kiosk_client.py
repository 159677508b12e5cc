"""The web app's files (kiosk_client/static) and how the kiosk serves them at /_app/; no browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sync_server.api.app_static import STATIC

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("vi", "en", "ur")
# Keys built at run time from document fields (t(`category.${doc.category}`) and the like).
DYNAMIC = {"category": ["all", "resolution", "directive", "charter", "study", "training", "news"],
           "meeting.kind": ["regular", "thematic", "extraordinary"],
           "meeting.status": ["scheduled", "held", "cancelled"],
           "feedback.about": ["software", "content", "training", "other"],
           "badge": ["active", "online", "offline", "signin"], "language": list(LANGUAGES),
           "doc": ["minutes", "meeting", "attendance", "feedback", "member", "device"]}
SCRIPTS = [STATIC / "app.js", STATIC / "i18n.js", *sorted((STATIC / "views").glob("*.js"))]
LITERAL = re.compile(r"""'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`""")
# A literal a person would read: an upper-case letter, a letter outside ASCII, or words with punctuation.
READABLE = re.compile(r"[A-Z][a-z]|[^\x00-\x7f]|[A-Za-z]{2,}[ ,!?][A-Za-z]")
# Literals that look readable but are not shown: DOM names, element tags, route and data keys.
NOT_SHOWN = re.compile(r"^(?:[A-Z]+|[a-z][\w.-]*\(?\w*\)?|[A-Z][a-z]+Element|\\uffff|\\u0300-\\u036f.*)$")

NAMES_FOLLOW = ("class: ", "querySelectorAll(", "querySelector(")


def strings(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_vendored_pouchdb_is_the_locked_npm_build() -> None:
    vendored = STATIC / "vendor" / "pouchdb.min.js"
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/pouchdb"]["version"]
    assert vendored.read_bytes().startswith(f"// PouchDB {locked}\n".encode())
    assert vendored.read_bytes() == (ROOT / "node_modules" / "pouchdb" / "dist" / "pouchdb.min.js").read_bytes()
    assert "Apache License" in (STATIC / "vendor" / "pouchdb.LICENSE.txt").read_text()


def test_translation_files_have_the_same_keys_and_placeholders() -> None:
    english = strings("en")
    for lang in LANGUAGES:
        other = strings(lang)
        assert sorted(other) == sorted(english), lang
        for key, text in other.items():
            assert text.strip(), (lang, key)
            assert sorted(re.findall(r"\{\w+\}", text)) == sorted(re.findall(r"\{\w+\}", english[key])), (lang, key)


def test_every_key_the_app_uses_is_translated() -> None:
    used = set()
    for path in SCRIPTS:
        used.update(re.findall(r"\bt\('([a-z_.]+)'", path.read_text()))
    used.update(re.findall(r'data-i18n="([a-z_.]+)"', (STATIC / "index.html").read_text()))
    used.update(f"{prefix}.{value}" for prefix, values in DYNAMIC.items() for value in values)
    used.update(("sync.province_ok", "sync.province_failed", "signin.demo_member", "signin.demo_secretary",
                 "signin.demo_kiosk_admin"))
    assert len(used) > 80
    assert sorted(used - set(strings("en"))) == []


def test_no_interface_text_is_hard_coded() -> None:
    """Every word on screen comes from a translation file: the scripts hold only keys and names."""
    found = []
    for path in SCRIPTS:
        code = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.MULTILINE)
        for match in LITERAL.finditer(code):
            text = next(g for g in match.groups() if g is not None)
            plain = re.sub(r"\$\{[^}]*\}", "", text)
            before = code[max(0, match.start() - 20):match.start()]
            if before.endswith(NAMES_FOLLOW):  # class lists and CSS selectors
                continue
            if READABLE.search(plain) and not NOT_SHOWN.match(plain.strip()):
                found.append(f"{path.name}: {text!r}")
    assert found == []
    html = (STATIC / "index.html").read_text()
    body = re.sub(r"<[^>]*>", "\n", html.split("<body>", 1)[1])
    assert body.split() == []  # the page's text is filled in from the translation file


@pytest.fixture
def sample_app(make_app):
    flask_app = make_app()
    flask_app.config["SAMPLE_ACCOUNTS"] = True
    return flask_app


@pytest.mark.parametrize(("path", "content_type"), [
    ("/_app/", "text/html; charset=utf-8"), ("/_app/app.js", "text/javascript; charset=utf-8"),
    ("/_app/sw.js", "text/javascript; charset=utf-8"), ("/_app/i18n/ur.json", "application/json"),
    ("/_app/manifest.webmanifest", "application/manifest+json"), ("/_app/vendor/pouchdb.min.js",
                                                                  "text/javascript; charset=utf-8"),
    ("/_app/icons/icon-192.png", "image/png")])
def test_app_files_are_served_with_their_type_and_revalidated(anon, path, content_type) -> None:
    response = anon.get(path)
    assert response.status_code == 200 and response.content_type == content_type
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["ETag"]
    assert anon.get(path, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304


def test_app_service_worker_scope_is_the_app(anon) -> None:
    assert anon.get("/_app/sw.js").headers["Service-Worker-Allowed"] == "/_app/"


@pytest.mark.parametrize("path", ["/_app/nothing.js", "/_app/../sync_server/app.py", "/_app/%2e%2e/__init__.py",
                                  "/_app/views/%2e%2e/%2e%2e/__init__.py", "/_app/.hidden"])
def test_app_serves_nothing_outside_its_folder(anon, path) -> None:
    response = anon.get(path)
    assert response.status_code == 404 and response.json == {"error": "not_found", "reason": "missing"}


def test_app_root_redirects_browsers_and_answers_couchdb_clients(anon) -> None:
    browser = anon.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 302 and browser.headers["Location"].endswith("/_app/")
    for accept in ("application/json", "*/*", None):
        response = anon.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200 and response.json["couchdb"] == "Welcome"
    assert anon.get("/_app").status_code == 301


def test_app_demo_accounts_only_from_a_sample_server(anon, sample_app, make_client) -> None:
    assert anon.get("/_app/sample.json").status_code == 404
    demo = make_client(sample_app, auth=False).get("/_app/sample.json").json
    assert demo["sample"] is True and demo["member"]["name"] == "TQ.NH.KH.C01.0003"
    assert demo["kiosk_admin"] == {"name": "TQ.NH.KH.C01.kiosk", "pin": "1357"}


def test_kiosk_json_names_the_cell_of_the_kiosk(anon, sample_app, make_app, make_client, app_settings) -> None:
    """GET /_app/kiosk.json: the cell of sync.cell_db (the sample's on a sample server), else 404."""
    missing = anon.get("/_app/kiosk.json")
    assert missing.status_code == 404 and missing.json == {"error": "not_found", "reason": "missing"}
    sample = make_client(sample_app, auth=False).get("/_app/kiosk.json")
    assert sample.status_code == 200 and sample.content_type == "application/json"
    assert sample.json == {"cell": "TQ.NH.KH.C01", "cell_db": "cell-tq-nh-kh-c01", "handbook_db": "handbook",
                           "screen_idle_seconds": 90, "checkin_opens_minutes": 60, "checkin_closes_minutes": 240}
    assert sample.headers["Cache-Control"] == "no-cache"
    kiosk = make_app(settings=app_settings.replace("sync", cell_db="cell-tq-ch-vq-c12", handbook_db="handbook-tq")
                     .replace("server", screen_idle_seconds=45, checkin_opens_minutes=30, checkin_closes_minutes=180))
    kiosk.config["SAMPLE_ACCOUNTS"] = True  # the configured cell wins over the sample's
    answer = make_client(kiosk, auth=False).get("/_app/kiosk.json")
    assert answer.json == {"cell": "TQ.CH.VQ.C12", "cell_db": "cell-tq-ch-vq-c12", "handbook_db": "handbook-tq",
                           "screen_idle_seconds": 45,  # the shared screen's idle sign-out
                           "checkin_opens_minutes": 30, "checkin_closes_minutes": 180}  # the check-in window
    assert make_client(make_app(settings=app_settings.replace("sync", cell_db="province")), auth=False) \
        .get("/_app/kiosk.json").status_code == 404  # not a cell's database


def test_service_worker_keeps_every_file_of_the_app() -> None:
    """A screen missing from sw.js would not open offline."""
    files = re.search(r"const FILES = \[(.*?)\];", (STATIC / "sw.js").read_text(), re.DOTALL)
    assert files is not None
    listed = set(re.findall(r"'/_app/([^']*)'", files.group(1)))
    shipped = {str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file()}
    assert shipped - listed == {"sw.js", "vendor/pouchdb.LICENSE.txt"}
    assert listed - shipped == {""}  # "/_app/" itself, i.e. index.html
