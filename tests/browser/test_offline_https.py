"""A phone opens the app by the kiosk's name over HTTPS, trusting the certificate as it trusts a public CA,
and reopens it with the kiosk out of reach (issue #19).

The kiosk gets its certificate through the certificate round (CouchDB hub, the province's job, pebble as
the CA, BIND for DNS-01). Chromium trusts pebble's root through an NSS database in a HOME of its own (as
a phone trusts its public CAs: no ``ignoreHTTPSErrors``), and resolves the kiosk's name to 127.0.0.1
(``--host-resolver-rules``, standing in for the village Wi-Fi's dnsmasq, deploy/dnsmasq/).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import acme_peers
import httpx
import pytest
from acme_peers import NAME, served_certificate
from conftest import ADMIN, ROOT, free_port, start_process, stop_process, wait_ready
from playwright.sync_api import expect, sync_playwright

from sync_server.handbook.sample import CELL_DB, DEMO_MEMBER, HANDBOOK_DOCS, MEETING_NEXT

pytestmark = pytest.mark.peers
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000
ARTICLES = sum(1 for d in HANDBOOK_DOCS if d["type"] == "article")


def trusting_home(tmp: Path, root_pem: str) -> Path:
    """A HOME whose NSS database (Chromium's on Linux) trusts ``root_pem`` to issue server certificates."""
    certutil = shutil.which("certutil")
    if certutil is None:
        pytest.fail("certutil is missing: run scripts/install-acme (Debian's libnss3-tools)")
    home = tmp / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    (tmp / "root.pem").write_text(root_pem)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "pebble-root", "-i", str(tmp / "root.pem")],
                   check=True, capture_output=True)
    return home


def test_the_app_opened_by_name_over_https_reopens_with_the_kiosk_away(cert_round: Any, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): run scripts/install-browser (as root) to install it")
    r = cert_round
    port, tls_port = free_port(), free_port()
    r.write_kiosk(r.hub_url, tls_port=tls_port, port=port)
    log = tmp_path / "kiosk.log"
    args = [sys.executable, "-m", "sync_server", "serve", "--config", str(r.kiosk), "--admin", ":".join(ADMIN), "--sample"]
    kiosk = start_process(args, ROOT, log)
    try:
        wait_ready(kiosk, f"http://127.0.0.1:{port}/_up", log)
        # The round: the kiosk asks, the province's job answers, the kiosk installs and serves it.
        acme_peers.wait_until(lambda: r.hub_doc(f"cert_request:{acme_peers.CELL}:kiosk"), 60, "the request at the hub", log)
        done = subprocess.run([sys.executable, "-m", "sync_server", "certificates", "--now", "--config", str(r.province)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        acme_peers.wait_until(lambda: served_certificate(tls_port, r.trust()), 60, "the trusted certificate served", log)

        home = trusting_home(tmp_path, r.pebble.root_pem())
        app_url = f"https://{NAME}:{tls_port}/_app/"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                args=[*ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
            try:
                page = browser.new_context(viewport={"width": 360, "height": 760},
                                           timezone_id="Asia/Ho_Chi_Minh").new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(app_url)
                page.wait_for_selector("body[data-ready=true]")
                assert page.evaluate("window.isSecureContext") is True
                expect(page.locator("#articles .card")).to_have_count(ARTICLES)  # signed in as the demo member
                expect(page.locator("#insecure")).to_be_hidden()  # no warning: this way works offline
                page.click("nav a[data-screen=meetings]")
                expect(page.locator(f"[data-meeting='{MEETING_NEXT}']")).to_be_visible()
                page.wait_for_function("navigator.serviceWorker.controller !== null")  # the app is kept

                # The kiosk goes away; the member reloads at home: the handbook and the meetings are there.
                stop_process(kiosk)
                page.reload()
                page.wait_for_selector("body[data-ready=true]")
                expect(page.locator("#sync-badge")).to_have_attribute("data-state", "offline")
                page.click("nav a[data-screen=handbook]")
                expect(page.locator("#articles .card")).to_have_count(ARTICLES)
                page.click("nav a[data-screen=meetings]")
                page.click(f"[data-meeting='{MEETING_NEXT}'] .checkin")  # checked in offline: it waits

                # The kiosk is back: the offline check-in arrives.
                kiosk = start_process(args, ROOT, log)
                wait_ready(kiosk, f"http://127.0.0.1:{port}/_up", log)
                attendance = f"attendance:{MEETING_NEXT}:{DEMO_MEMBER['member'].rsplit(':', 1)[1]}"

                def arrived() -> Any:
                    got = httpx.get(f"http://127.0.0.1:{port}/{CELL_DB}/{attendance}", auth=ADMIN, trust_env=False)
                    return got.json() if got.status_code == 200 else None

                page.click("nav a[data-screen=sync]")
                page.click("#sync-now")
                assert acme_peers.wait_until(arrived, 60, "the offline check-in at the kiosk", log)["member"] == \
                    DEMO_MEMBER["member"]
                # The same app over plain HTTP says it will not open at home, and where to open it instead.
                plain = browser.new_context(viewport={"width": 360, "height": 760}).new_page()
                plain.set_default_timeout(WAIT_MS)
                plain.goto(f"http://{NAME}:{port}/_app/")
                plain.wait_for_selector("body[data-ready=true]")
                expect(plain.locator("#insecure")).to_be_visible()
                expect(plain.locator("#open-offline")).to_have_attribute("href", app_url)
            finally:
                browser.close()
    finally:
        stop_process(kiosk)
