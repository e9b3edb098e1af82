"""`roomctl store check | backup | repair` as a clinic runs them: the real command on real
SQLite files, the store's own files unchanged by hash whatever they hold."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from roomctl.events import Event, EventKind, LightsChange
from roomctl.preset import Preset, load_preset
from roomctl.session import Session
from roomctl.store import AuditEntry, SessionStore
from testkit.servers import demo_test_config, running_app

PRESETS = Path(__file__).resolve().parent.parent / "roomctl" / "presets"
START = 1_700_000_000.0


@pytest.fixture
def tour() -> Preset:
    return load_preset(PRESETS / "tour.yaml")


def roomctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roomctl.cli", "store", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def digests(*paths: Path) -> list[str | None]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths]


def fill(path: Path, tour: Preset, sessions: int = 12, events: int = 20) -> None:
    with SessionStore.open(path) as store:
        sink = store.sink("Room 1")
        for i in range(sessions):
            session = Session(f"s{i:02d}", tour, [], f"session {i} " + "x" * 300)
            for n in range(events + 2):
                kind = EventKind.STARTED if n == 0 else EventKind.ENDED if n == events + 1 else EventKind.LIGHTS_SET
                e = Event(kind=kind, at=START + i * 86400 + n,
                          lights=LightsChange(brightness=n % 100) if kind is EventKind.LIGHTS_SET else None)
                sink(session, e)
                session.events.append(e)
        store.record_audit(AuditEntry(at=START, session_id="s00", action="export.csv", device_name="Dr. A"))


def with_log(path: Path) -> Path:
    """The store as a crash leaves it: the latest records only in its write-ahead log."""
    frozen = path.with_name("frozen")
    frozen.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE sessions SET label = 'relabelled after the last checkpoint' WHERE id = 's00'")
    for p in (path, path.with_name(path.name + "-wal")):
        shutil.copyfile(p, frozen / p.name)  # copied while open: no checkpoint has run
    conn.close()
    return frozen / path.name


def test_check_of_a_sound_store(tmp_path: Path, tour: Preset) -> None:
    db = tmp_path / "sessions.db"
    fill(db, tour)
    db = with_log(db)
    wal = db.with_name("sessions.db-wal")
    before = digests(db, wal)
    done = roomctl("check", "--file", str(db))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 session(s) and 264 event(s) read back whole" in done.stdout
    assert "sessions.db-wal holds" in done.stdout and done.stdout.strip().endswith("ok")
    assert digests(db, wal) == before


def test_check_and_repair_of_a_damaged_store_change_nothing_and_save_the_rest(tmp_path: Path, tour: Preset) -> None:
    db = tmp_path / "sessions.db"
    fill(db, tour)
    db = with_log(db)
    wal = db.with_name("sessions.db-wal")
    data = bytearray(db.read_bytes())
    at = data.index(b"session 5 ")  # one session's row, damaged where SQLite's checks do not look
    data[at + 20: at + 84] = os.urandom(64)
    page = 4096
    victim = len(data) // page - 3  # and a page of events near the end of the file
    data[victim * page: victim * page + 300] = b"\xa5" * 300
    db.write_bytes(bytes(data))
    before = digests(db, wal)

    checked = roomctl("check", "--file", str(db))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "damaged" in checked.stdout
    assert digests(db, wal) == before  # not even a checkpoint

    new = tmp_path / "repaired" / "sessions.db"
    repaired = roomctl("repair", str(new), "--file", str(db))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"into {new}" in repaired.stdout
    assert "damaged session s" in repaired.stdout  # what could not be saved is named
    assert digests(db, wal) == before
    with SessionStore.open(new) as store:  # a roomctl store, usable as it is
        listed = store.list_sessions(limit=100)
        assert len(listed) >= 10, [s.id for s in listed]
        assert all(s.damaged is None for s in listed)
        s00 = store.get("s00")
        assert s00 is not None and s00.session.label == "relabelled after the last checkpoint"  # from the log
        assert [(e.session_id, e.action, e.device_name) for e in store.audit()] == [("s00", "export.csv", "Dr. A")]
    again = roomctl("check", "--file", str(new))
    assert again.returncode == 0, again.stdout


def test_backup_while_the_service_records(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "sessions.db"
    copy = tmp_path / "backup" / "sessions.db"
    with SessionStore.open(db) as store, running_app(demo_test_config(data), store=store) as srv, \
            srv.client(srv.pair()) as client:
        client.post("/api/rooms/room-1/session", json={"preset": "tour"}).raise_for_status()
        stop = threading.Event()
        sent: list[int] = []

        def record() -> None:
            with httpx.Client(base_url=srv.url, headers=client.headers) as c:
                while not stop.is_set():
                    r = c.post("/api/rooms/room-1/lights", json={"brightness": 10 + len(sent) % 80})
                    assert r.status_code == 200, r.text
                    sent.append(r.status_code)

        writer = threading.Thread(target=record)
        writer.start()
        try:
            time.sleep(0.5)
            done = roomctl("backup", str(copy), "--file", str(db))
            n_after = len(sent)
        finally:
            stop.set()
            writer.join()
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 session(s)" in done.stdout and done.stdout.strip().endswith("ok")
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    assert 1 + 10 <= count <= 1 + n_after + 1  # the records up to that moment, log included
    assert not copy.with_name("sessions.db-wal").exists()  # one self-contained file
    refused = roomctl("backup", str(copy), "--file", str(db))
    assert refused.returncode == 1 and "exists already" in refused.stderr
