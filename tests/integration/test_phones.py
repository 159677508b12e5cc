"""A cell meeting on a real kiosk process: 20 phones (PouchDB 9 in Node, tests/peers/phones.js)
sign in with their PINs and live-sync the handbook and the cell database as the web app does,
each with up to 6 keep-alive connections from its own address, while another client keeps
making ordinary requests. The kiosk must not stall: every phone catches up, every check-in
reaches every other phone, every other request is answered, and nothing fails.

The bounds are generous on purpose (a stalled kiosk fails, a slow machine does not); the
figures themselves are bench/bench_phones.py's job.
"""

from __future__ import annotations

from pathlib import Path

import phones
import pytest
from conftest import ADMIN, Kiosk, free_port

pytestmark = pytest.mark.peers

PHONES = 20


def test_twenty_phones_at_a_cell_meeting_catch_up_and_see_every_check_in(tmp_path: Path) -> None:
    data_dir = tmp_path / "kiosk"
    data_dir.mkdir()
    kiosk = Kiosk(data_dir, free_port())
    kiosk.extra_args = ["--sample"]
    kiosk.start()
    try:
        expect = phones.prepare(kiosk.base, ADMIN, PHONES, articles=40, meetings=20)
        probe = phones.Probe(kiosk.base, ADMIN).start()
        try:
            result = phones.run_phones(kiosk.base, PHONES, expect, checkins=3, catchup_timeout=180,
                                       checkin_timeout=60)
        finally:
            probe.stop()
        alive = kiosk.proc is not None and kiosk.proc.poll() is None
    finally:
        kiosk.stop()
    figures = phones.summarize(result, probe)
    assert alive, kiosk.log.read_text()[-3000:]
    assert figures["caught_up"] == PHONES, figures
    assert figures["checkin_pairs"] == 3 * (PHONES - 1) and figures["checkin_missed"] == 0, figures
    assert result["errors"] == [] and probe.errors == [], figures["error_samples"]
    assert figures["other_requests"] > 0
