"""The sample database a new user gets is valid under the project's own write policy."""

from sync_server.handbook.policy import open_store
from sync_server.handbook.sample import SAMPLE_DOCS, ensure_sample
from sync_server.settings import Settings


def test_sample_database_is_created_once_and_every_document_is_valid(tmp_path):
    server = open_store(Settings().replace("server", data_dir=str(tmp_path)))
    assert ensure_sample(server, "handbook-sample") is True
    assert ensure_sample(server, "handbook-sample") is False
    assert server.get("handbook-sample").doc_count == len(SAMPLE_DOCS)
    server.close()


def test_sample_province_has_a_handbook_a_cell_and_demo_accounts(tmp_path):
    from sync_server.app import create_app
    from sync_server.handbook.sample import CELL_DB, CELL_DOCS, DEMO_KIOSK_ADMIN, DEMO_MEMBER, DEMO_SECRETARY, HANDBOOK_DOCS, SAMPLE_PDF

    settings = Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret")
    app = create_app(settings)
    server = app.extensions["sync_server"]
    ensure_sample(server, "handbook-sample")
    assert server.get("handbook").doc_count == len(HANDBOOK_DOCS)
    assert server.get(CELL_DB).doc_count == len(CELL_DOCS)
    assert server.get(CELL_DB).get_security()["members"]["roles"] == ["cell:TQ.NH.KH.C01"]
    client = app.test_client()
    pdf_path = "/handbook/article:nghi-quyet-01-tu/nghi-quyet-01-tu.pdf"
    assert client.get(pdf_path, headers={"Accept": "*/*"}).status_code == 401  # deny by default (#15)
    for account in (DEMO_MEMBER, DEMO_SECRETARY):
        signed_in = client.post("/_session", json={"name": account["name"], "password": account["pin"]})
        assert signed_in.status_code == 200 and "cell:TQ.NH.KH.C01" in signed_in.json["roles"]
        pdf = client.get(pdf_path, headers={"Accept": "*/*"})
        assert pdf.status_code == 200 and pdf.data == SAMPLE_PDF and pdf.data.startswith(b"%PDF-1.4")
    assert client.get(f"/{CELL_DB}/_all_docs").status_code == 200  # the secretary's cookie opens the cell
    client.delete("/_session")
    assert app.test_client().get(f"/{CELL_DB}/_all_docs").status_code == 401  # nobody else
    # the demo kiosk admin pairs phones (and reads the cell), but is no member: no attendance of its own
    kiosk = app.test_client()
    signed_in = kiosk.post("/_session", json={"name": DEMO_KIOSK_ADMIN["name"], "password": DEMO_KIOSK_ADMIN["pin"]})
    assert signed_in.status_code == 200 and "kiosk-admin" in signed_in.json["roles"] \
        and "member" not in signed_in.json["roles"]
    assert kiosk.post("/_pairing/code").status_code == 201
    assert kiosk.get(f"/{CELL_DB}/_all_docs").status_code == 200
    server.close()


def test_sample_province_is_completed_not_replaced(tmp_path):
    from sync_server.handbook.sample import CELL_DB, ensure_sample_province

    server = open_store(Settings().replace("server", data_dir=str(tmp_path)))
    assert ensure_sample_province(server) == ["handbook", CELL_DB, "TQ.NH.KH.C01.0003", "TQ.NH.KH.C01.0012",
                                              "TQ.NH.KH.C01.kiosk"]
    server.delete(CELL_DB)
    assert ensure_sample_province(server) == [CELL_DB]
    assert ensure_sample_province(server) == []
    server.close()


def test_the_sample_cells_figures_follow_from_what_its_members_did(tmp_path):
    """No flag is typed in: installed, registered and active come from device records, first sign-ins and
    the months marked, and the report (its rules in schemas/MODEL.md) counts them so."""
    from schemas.hierarchy import Hierarchy, Unit
    from sync_server.handbook import reports
    from sync_server.handbook.sample import CELL, CELL_DB, CELL_DOCS, HANDBOOK_DOCS, ensure_sample_province

    members = [d for d in CELL_DOCS if d["type"] == "member"]
    live = {d["member"] for d in CELL_DOCS if d["type"] == "device" and not d["revoked"]}
    for member in members:  # each flag is what the kiosk would have written from the records
        assert member["installed"] is (member["_id"] in live)
        assert member["registered"] is ("registered_at" in member)
    server = open_store(Settings().replace("server", data_dir=str(tmp_path)))
    ensure_sample_province(server)
    units = [Unit(d["code"], d["name"], d["level"], d["parent"]) for d in HANDBOOK_DOCS if d["type"] == "unit"]
    report = reports.compute(server.get(CELL_DB), Hierarchy(units), "2026-11")
    row = report.row(CELL)
    assert (row.members, row.installed, row.registered, row.active) == (3, 2, 2, 2)
    assert (row.cells_using, row.attendance_present, row.attendance_records) == (1, 3, 3)
    october = reports.compute(server.get(CELL_DB), Hierarchy(units), "2026-10").row(CELL)
    assert (october.installed, october.registered, october.active) == (1, 1, 1)  # only the secretary had paired
    server.close()


def _sample_app(tmp_path):
    from sync_server.app import create_app

    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    ensure_sample(app.extensions["sync_server"], "handbook-sample")
    return app


def test_the_samples_next_meeting_is_the_half_hour_when_the_sample_is_written_not_imported(tmp_path, monkeypatch):
    """It was fixed on 2026-12-03 (the check-in closed four hours after its 19:30); then it was fixed
    when the module was imported, and a process that imported it long before writing (a test run) wrote a
    stale time. Here the clock moves a day and a half on after import, and the meeting follows it."""
    from datetime import datetime, timedelta

    from accounts import basic

    from sync_server.handbook import sample

    later = datetime.now(sample.PROVINCE_TZ) + timedelta(hours=36, minutes=7)
    monkeypatch.setattr(sample, "_now", lambda: later)
    app = _sample_app(tmp_path)
    client, admin = app.test_client(), basic("admin", "secret")
    scheduled = client.get(f"/{sample.CELL_DB}/{sample.MEETING_NEXT}", headers=admin).json["scheduled"]
    assert 0 <= (later - datetime.fromisoformat(scheduled)).total_seconds() < 30 * 60
    rows = client.get("/handbook-sample/_all_docs?include_docs=true", headers=admin).json["rows"]
    assert [row["doc"]["scheduled"] for row in rows if row["doc"]["type"] == "meeting"] == [scheduled]
    app.extensions["sync_server"].close()


def test_the_demo_member_can_check_in_to_the_samples_next_meeting_whenever_the_sample_is_made(tmp_path):
    """The sample's next meeting is in the last half hour when the sample is made, so the demo's
    check-in (open until four hours after a meeting) is open on any day."""
    from datetime import datetime

    from accounts import basic

    from sync_server.handbook.sample import CELL, CELL_DB, DEMO_MEMBER, MEETING_NEXT

    app = _sample_app(tmp_path)
    client = app.test_client()
    scheduled = client.get(f"/{CELL_DB}/{MEETING_NEXT}", headers=basic("admin", "secret")).json["scheduled"]
    now = datetime.now().astimezone()
    assert 0 <= (now - datetime.fromisoformat(scheduled)).total_seconds() < 30 * 60 + 5
    number = DEMO_MEMBER["name"].rsplit(".", 1)[1]
    doc = {"type": "attendance", "cell": CELL, "meeting": MEETING_NEXT, "member": DEMO_MEMBER["member"],
           "status": "present", "scheduled": scheduled, "checked_in_at": now.isoformat(timespec="seconds")}
    answer = client.put(f"/{CELL_DB}/attendance:{MEETING_NEXT}:{number}", json=doc,
                        headers=basic(DEMO_MEMBER["name"], DEMO_MEMBER["pin"]))
    assert answer.status_code == 201, answer.json
    app.extensions["sync_server"].close()
