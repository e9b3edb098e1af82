"""History routes over real HTTP with a real SQLite record."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.servers import Running, running_demo_with_record


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running_demo_with_record(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
def api(server: Running) -> Iterator[httpx.Client]:
    with server.client(server.pair()) as c:
        yield c


def run_a_session(api: httpx.Client) -> str:
    sid: str = api.post("/api/rooms/room-1/session", json={"preset": "tour", "label": "demo"}) \
        .json()["state"]["session"]["id"]
    api.post("/api/rooms/room-1/session/next", json={})
    api.post("/api/rooms/room-1/lights", json={"brightness": 30})
    api.post("/api/rooms/room-1/emergency", json={"on": True})
    api.post("/api/rooms/room-1/emergency", json={"on": False})
    api.post("/api/rooms/room-1/session/end", json={})
    return sid


def test_history_lists_exports_and_draws_a_session(api: httpx.Client) -> None:
    sid = run_a_session(api)
    listed = api.get("/api/sessions", params={"room": "room-1"}).json()
    assert [s["id"] for s in listed] == [sid]
    assert listed[0]["preset_name"] == "Tour" and listed[0]["label"] == "demo"
    assert listed[0]["ended_at"] is not None and listed[0]["event_count"] == 6
    detail = api.get(f"/api/sessions/{sid}").json()
    assert [e["kind"] for e in detail["events"]] == [
        "started", "advanced", "lights_set", "emergency_on", "emergency_off", "ended"]
    assert detail["preset"]["name"] == "Tour"
    exported = api.get(f"/api/sessions/{sid}/export.json").json()
    assert exported["id"] == sid and len(exported["events"]) == 6
    rows = list(csv.reader(io.StringIO(api.get(f"/api/sessions/{sid}/export.csv").text)))
    assert len(rows) == 7 and rows[1][0] == "0:00:00"
    svg = api.get(f"/api/sessions/{sid}/report.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.text).tag.endswith("svg")
    assert api.get("/api/sessions/nope").status_code == 404


def test_label_delete_and_purge(api: httpx.Client) -> None:
    sid = run_a_session(api)
    assert api.patch(f"/api/sessions/{sid}", json={"label": "Tue 9:00"}).json()["label"] == "Tue 9:00"
    assert api.patch(f"/api/sessions/{sid}", json={"label": "x" * 81}).status_code == 422
    assert api.post("/api/sessions/purge", json={"older_than_days": 30}).json() == {"deleted": 0}
    assert api.delete(f"/api/sessions/{sid}").status_code == 204
    assert api.get(f"/api/sessions/{sid}").status_code == 404
    assert api.delete(f"/api/sessions/{sid}").status_code == 404


def test_a_running_session_cannot_be_deleted(api: httpx.Client) -> None:
    sid = api.post("/api/rooms/room-1/session", json={"preset": "tour"}).json()["state"]["session"]["id"]
    r = api.delete(f"/api/sessions/{sid}")
    assert r.status_code == 409 and "running" in r.json()["detail"]
