"""A session survives the service being killed: `roomctl serve` as a real subprocess, SIGKILL
in the journey, started again — same phase, same remaining time, every command in the log."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomctl.events import Event, EventKind
from roomctl.preset import load_preset
from roomctl.session import Session
from roomctl.store import SessionStore
from testkit.servers import free_port

PIN = "135790"


def write_config(tmp: Path, port: int) -> Path:
    cfg = tmp / "roomctl.toml"
    cfg.write_text(f"""
listen = {{ host = "127.0.0.1", port = {port} }}
data_dir = "data"
pin = "{PIN}"

[[rooms]]
name = "Room 1"
  [rooms.lights]
  kind = "simulated"
  [rooms.audio]
  kind = "simulated"
""")
    return cfg


class Serve:
    def __init__(self, config: Path, port: int) -> None:
        self.config, self.port = config, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, wait: bool = True) -> subprocess.Popen[str]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roomctl.cli", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.config.parent)
        if wait:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
                try:
                    if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return self.proc
                except httpx.TransportError:
                    time.sleep(0.05)
            raise AssertionError("serve did not come up")
        return self.proc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
            if self.proc.stdout:
                self.proc.stdout.close()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self.kill()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    port = free_port()
    s = Serve(write_config(tmp_path, port), port)
    try:
        yield s
    finally:
        s.stop()


def test_sigkill_in_the_journey_then_restart_resumes_in_place(serve: Serve) -> None:
    serve.start()
    token = httpx.post(serve.url + "/api/pair", json={"pin": PIN}).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    room = serve.url + "/api/rooms/room-1"
    acknowledged: list[str] = []

    def cmd(path: str, body: dict[str, Any] | None = None, kind: str | None = None) -> dict[str, Any]:
        r = httpx.post(f"{room}/{path}", json=body if body is not None else {}, headers=h)
        assert r.status_code in (200, 201), r.text
        if kind:
            acknowledged.append(kind)
        answer: dict[str, Any] = r.json()
        return answer

    session_id = cmd("session", {"preset": "kap-sublingual", "label": "recovery test"},
                     "started")["state"]["session"]["id"]
    cmd("session/next", kind="advanced")
    cmd("session/jump", {"phase": "journey"}, "jumped")
    cmd("lights", {"brightness": 20, "transition": 0}, "lights_set")
    cmd("music", {"volume": 30}, "music_set")
    before = cmd("session/extend", {"seconds": 120}, "extended")
    assert before["session"]["phase"]["id"] == "journey"
    remaining_before = before["session"]["remaining_s"]
    t_before = before["t"]

    serve.kill()  # SIGKILL: no shutdown code runs
    time.sleep(0.5)
    serve.start()
    t0 = time.monotonic()
    after = httpx.get(f"{room}/state", headers=h).json()  # the token survived too
    session = after["session"]
    assert session["id"] == session_id
    assert session["phase"]["id"] == "journey"
    assert session["recovered_at"] is not None
    assert session["preset_id"] == "kap-sublingual"  # known after a restart too
    expected = remaining_before - (after["t"] - t_before)
    assert abs(session["remaining_s"] - expected) < 1.0
    # the room was put back as it should be (lights within 2 s of the start)
    while time.monotonic() - t0 < 2:
        lights = httpx.get(f"{room}/state", headers=h).json()["lights"]
        if {light["brightness"] for light in lights["lights"]} == {20}:
            break
        time.sleep(0.1)
    assert {light["brightness"] for light in lights["lights"]} == {20}
    assert after["music"]["target_volume"] == 30
    # every command the API acknowledged is in the record, in order
    record = httpx.get(f"{serve.url}/api/sessions/{session_id}", headers=h).json()
    assert [e["kind"] for e in record["events"]] == acknowledged
    assert record["label"] == "recovery test" and record["ended_at"] is None


def test_a_second_service_on_the_same_data_is_refused(serve: Serve) -> None:
    serve.start()
    second = Serve(serve.config, free_port())  # same config, same data dir: the record is locked
    proc = second.start(wait=False)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "sessions.db" in out and "another" in out.lower()


def test_a_corrupt_record_stops_start_up_and_is_left_untouched(serve: Serve) -> None:
    db = serve.config.parent / "data" / "sessions.db"
    db.parent.mkdir(parents=True)
    garbage = os.urandom(8192)
    db.write_bytes(garbage)
    proc = serve.start(wait=False)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "sessions.db" in out
    assert db.read_bytes() == garbage


# --- files that must be left as they are -----------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crash_with_records(serve: Serve, commands: int = 30) -> tuple[Path, Path]:
    """A session with ``commands`` acknowledged commands, then SIGKILL: the latest records
    live only in the write-ahead log beside the database."""
    serve.start()
    token = httpx.post(serve.url + "/api/pair", json={"pin": PIN}).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    room = serve.url + "/api/rooms/room-1"
    assert httpx.post(f"{room}/session", json={"preset": "kap-sublingual"}, headers=h).status_code == 201
    for i in range(commands):
        r = httpx.post(f"{room}/lights", json={"brightness": 10 + i % 50, "transition": 0}, headers=h)
        assert r.status_code == 200, r.text
    serve.kill()
    db = serve.config.parent / "data" / "sessions.db"
    wal = db.with_name("sessions.db-wal")
    assert wal.stat().st_size > 0, "the records were expected in the log"
    return db, wal


def refused(serve: Serve) -> str:
    proc = serve.start(wait=False)
    out, _ = proc.communicate(timeout=20)
    serve.proc = None
    assert proc.returncode == 2, f"roomctl serve started: {out}"
    return out


def test_an_empty_database_beside_its_log_is_refused_and_both_are_left_as_they_are(serve: Serve) -> None:
    db, wal = crash_with_records(serve)
    db.write_bytes(b"")  # the file cut to 0 bytes (a full disk at the wrong moment, a bad copy)
    before = digest(db), digest(wal)
    out = refused(serve)
    assert "sessions.db is empty" in out and "sessions.db-wal" in out
    assert (digest(db), digest(wal)) == before


def test_a_damaged_database_beside_its_log_is_refused_and_both_are_left_as_they_are(serve: Serve) -> None:
    data = serve.config.parent / "data"
    with SessionStore.open(data / "sessions.db") as store:  # an older record, folded into the file
        preset = load_preset(Path(__file__).resolve().parent.parent / "roomctl" / "presets" / "tour.yaml")
        for i in range(20):
            session = Session(f"old-{i}", preset, [])
            sink = store.sink("room-1")
            for event in (Event(kind=EventKind.STARTED, at=1_700_000_000.0 + i * 3600),
                          Event(kind=EventKind.ENDED, at=1_700_000_600.0 + i * 3600)):
                sink(session, event)
                session.events.append(event)
    db, wal = crash_with_records(serve)
    page = 4096
    data_bytes = bytearray(db.read_bytes())
    victim = len(data_bytes) // page // 2  # a page of the older sessions, which the log does not hold
    data_bytes[victim * page: victim * page + 200] = b"\xa5" * 200
    db.write_bytes(bytes(data_bytes))
    before = digest(db), digest(wal)
    out = refused(serve)
    assert "sessions.db is damaged" in out and "roomctl has not changed it" in out
    assert (digest(db), digest(wal)) == before


def test_a_database_moved_aside_from_its_log_is_refused_and_the_log_left_as_it_is(serve: Serve) -> None:
    db, wal = crash_with_records(serve)
    aside = db.with_name("sessions.db.aside")
    db.rename(aside)  # as a message once advised, to start afresh
    before = digest(wal)
    out = refused(serve)
    assert "sessions.db is missing" in out and "sessions.db-wal" in out
    assert digest(wal) == before and not db.exists()
    aside.rename(db)  # put back together, nothing is lost
    serve.start()
    token = httpx.post(serve.url + "/api/pair", json={"pin": PIN}).json()["token"]
    sessions = httpx.get(serve.url + "/api/sessions", headers={"Authorization": f"Bearer {token}"}).json()
    assert [s["event_count"] for s in sessions] == [31]
