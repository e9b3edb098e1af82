"""Monitoring through the real stack: doses, vitals with their checks and the clinic's ranges,
the observation window, and which paired device did what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.servers import PIN, Running, running_demo_with_record

ROOM = "/api/rooms/room-1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running_demo_with_record(tmp_path / "data") as srv:
        yield srv


def paired(server: Running, name: str) -> httpx.Client:
    r = httpx.post(server.url + "/api/pair", json={"pin": PIN, "label": name})
    r.raise_for_status()
    return server.client(r.json()["token"])


def test_doses_vitals_and_who_did_what(server: Running) -> None:
    with paired(server, "Dr. A") as a, paired(server, "Nurse B") as b:
        r = a.post(f"{ROOM}/session", json={"preset": "esketamine-monitored"})
        assert r.status_code == 201, r.text
        session_id = r.json()["state"]["session"]["id"]
        assert a.post(f"{ROOM}/session/next").status_code == 200
        state = b.post(f"{ROOM}/doses", json={"route": "nasal", "amount": "28 mg"}).json()
        assert [d["by"] for d in state["session"]["doses"]] == ["Nurse B"]
        assert state["session"]["observe_until"] is not None
        state = a.post(f"{ROOM}/doses", json={"route": "nasal", "amount": "28 mg"}).json()
        assert len(state["session"]["doses"]) == 2
        # vitals at any time, one out of the clinic's range: highlighted until acknowledged
        state = b.post(f"{ROOM}/vitals", json={"vitals": {"systolic": 171, "diastolic": 95, "heart_rate": 80,
                                                         "spo2": 97, "observations": {"sedation": 1}}}).json()
        (alert,) = state["session"]["alerts"]
        assert alert["flagged"] == ["systolic"] and alert["by"] == "Nurse B"
        state = a.post(f"{ROOM}/alerts/ack", json={"alert": alert["id"]}).json()
        assert state["session"]["alerts"] == []
        # ending inside the observation window needs a reason, which is recorded
        refused = a.post(f"{ROOM}/session/end")
        assert refused.status_code == 409 and "observation runs until" in refused.json()["detail"]
        assert a.post(f"{ROOM}/session/end", json={"reason": "client asked to leave; stable"}).status_code == 200
        events = a.get(f"/api/sessions/{session_id}").json()["events"]
    by = {e["kind"]: e["by"]["name"] for e in events if e.get("by")}
    assert by["started"] == "Dr. A" and by["alert_acknowledged"] == "Dr. A"
    assert by["vitals_recorded"] == "Nurse B"
    ended = next(e for e in events if e["kind"] == "ended")
    assert ended["reason"] == "client asked to leave; stable"


@pytest.mark.parametrize(("vitals", "field"), [
    ({"systolic": 400, "diastolic": 80}, "vitals.systolic"),
    ({"systolic": 120}, "vitals"),
    ({"spo2": "98"}, "vitals.spo2"),
    ({"heart_rate": 10}, "vitals.heart_rate"),
    ({"spo2": 97, "observations": {"sleepiness": 2}}, "observations.sleepiness"),
    ({"spo2": 97, "observations": {"sedation": 9}}, "observations.sedation"),
])
def test_bad_vitals_are_refused_naming_the_field(server: Running, vitals: dict[str, object], field: str) -> None:
    with paired(server, "Dr. A") as a:
        assert a.post(f"{ROOM}/session", json={"preset": "esketamine-monitored"}).status_code == 201
        r = a.post(f"{ROOM}/vitals", json={"vitals": vitals})
        assert r.status_code == 422, r.text
        assert r.json()["problems"][0]["field"] == field, r.json()
        assert a.get(f"{ROOM}/state").json()["session"]["vitals"] == []  # nothing recorded


def test_a_dose_in_the_future_is_refused(server: Running) -> None:
    with paired(server, "Dr. A") as a:
        started = a.post(f"{ROOM}/session", json={"preset": "esketamine-monitored"}).json()
        t = started["state"]["t"]
        r = a.post(f"{ROOM}/doses", json={"given_at": t + 3600})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "given_at"
        ok = a.post(f"{ROOM}/doses", json={"given_at": t - 120, "amount": "56 mg"})
        assert ok.status_code == 200
        assert ok.json()["session"]["time_since_dose_s"] >= 120


def test_the_monitoring_record_prints(server: Running, tmp_path: Path) -> None:
    with paired(server, "Dr. A") as a:
        started = a.post(f"{ROOM}/session", json={"preset": "esketamine-monitored", "label": "Client 0147"})
        session_id = started.json()["state"]["session"]["id"]
        a.post(f"{ROOM}/vitals", json={"vitals": {"systolic": 132, "diastolic": 84, "heart_rate": 71, "spo2": 98}})
        a.post(f"{ROOM}/session/next")
        a.post(f"{ROOM}/doses", json={"route": "nasal", "amount": "28 mg"})
        a.post(f"{ROOM}/vitals", json={"vitals": {"systolic": 168, "diastolic": 99, "spo2": 96,
                                                 "observations": {"sedation": 3, "dissociation": 1}},
                                      "note": "resting, eyes closed"})
        a.post(f"{ROOM}/session/end", json={"reason": "transferred to the recovery room"})
        rows = a.get(f"/api/sessions/{session_id}/monitoring.csv").text.splitlines()
        token = a.headers["Authorization"]
    assert rows[0] == "date,time,record,details,by"
    assert "client reference: Client 0147" in rows[1]
    assert [r.split(",")[2] for r in rows[2:5]] == ["vitals", "dose 1", "vitals"]
    assert "Systolic 168 mmHg (outside the clinic's range)" in rows[4] and "Dr. A" in rows[4]
    assert "before the end of observation: transferred to the recovery room" in rows[-2]
    assert rows[-1].endswith(",clinicians,Dr. A,")

    pdf = tmp_path / "monitoring.pdf"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(extra_http_headers={"Authorization": token}).new_page()
            page.goto(f"{server.url}/api/sessions/{session_id}/monitoring.html")
            assert page.locator("h1").inner_text() == "Monitoring record"
            assert page.locator("td.flag").count() == 2  # systolic 168 and sedation 3
            page.pdf(path=str(pdf), format="A4")
        finally:
            browser.close()
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert data.startswith(b"%PDF") and 1 <= pages <= 2, pages


def test_exports_printouts_and_deletions_are_on_the_audit_list(server: Running) -> None:
    with paired(server, "Dr. A") as a, paired(server, "Nurse B") as b:
        session_id = a.post(f"{ROOM}/session", json={"preset": "esketamine-monitored"}).json()["state"]["session"]["id"]
        assert a.post(f"{ROOM}/session/end", json={"reason": "test record"}).status_code == 200
        assert b.get(f"/api/sessions/{session_id}/export.csv").status_code == 200
        assert a.get(f"/api/sessions/{session_id}/monitoring.html").status_code == 200
        assert b.patch(f"/api/sessions/{session_id}", json={"label": "Tue AM"}).status_code == 200
        assert b.get(f"/api/sessions/{session_id}/report.svg").status_code == 200  # looking is not exporting
        audit = a.get(f"/api/sessions/{session_id}/audit").json()
        assert [(e["action"], e["device_name"]) for e in audit] == [
            ("label", "Nurse B"), ("monitoring.html", "Dr. A"), ("export.csv", "Nurse B")]
        assert audit[0]["detail"] == "Tue AM"
        assert audit[0]["at"] >= audit[1]["at"] >= audit[2]["at"]

        # Only the clinic's admin (the first device paired) deletes; the deletion outlives the record.
        assert b.delete(f"/api/sessions/{session_id}").status_code == 403
        assert a.delete(f"/api/sessions/{session_id}").status_code == 204
        assert a.get(f"/api/sessions/{session_id}").status_code == 404
        gone = a.get(f"/api/sessions/{session_id}/audit").json()
        assert gone[0]["action"] == "deleted" and gone[0]["device_name"] == "Dr. A"
        assert (gone[0]["detail"] or "").startswith("Esketamine, monitored, started ")
        assert "Tue AM" not in (gone[0]["detail"] or "")  # a client reference goes with the record
        everything = a.get("/api/sessions/audit").json()
        assert [e["action"] for e in everything] == ["deleted", "label", "monitoring.html", "export.csv"]
        assert a.get("/api/sessions/no-such-session/audit").status_code == 404
