import asyncio
import contextlib
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import Event, EventKind, LightsChange, MusicChange
from roomctl.preset import Preset, load_preset, parse_preset
from roomctl.records.export import session_csv, session_json
from roomctl.room import Safety
from roomctl.session import CommandRejected, RecordFailing, Room, Session, SessionRunner
from roomctl.store import SCHEMA_VERSION, AuditEntry, SessionStore, StoreError
from roomctl.timeline import evaluate

PRESETS = Path(__file__).resolve().parent.parent / "roomctl" / "presets"
START = 1_700_000_000.0
DAY = 86400.0


@pytest.fixture
def tour() -> Preset:
    return load_preset(PRESETS / "tour.yaml")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "roomctl.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SessionStore]:
    s = SessionStore.open(db_path)
    yield s
    s.close()


def make_runner(store: SessionStore, clock: VirtualClock, room: str = "Room 1") -> SessionRunner:
    return SessionRunner(Room(room, SimulatedLights(clock), SimulatedAudio(clock)), clock,
                         event_sink=store.sink(room))


def raw_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def record_session(store: SessionStore, preset: Preset, session_id: str, start: float,
                   events: int, *, room: str = "Room 1", label: str | None = None,
                   ended: bool = True) -> Session:
    """A session written straight through the sink, as a runner would."""
    session = Session(session_id, preset, [], label)
    sink = store.sink(room)
    kinds = [EventKind.STARTED] + [EventKind.LIGHTS_SET] * events + [EventKind.ENDED] * ended
    for n, kind in enumerate(kinds):
        lights = LightsChange(brightness=n % 100) if kind is EventKind.LIGHTS_SET else None
        e = Event(kind=kind, at=start + n, lights=lights)
        sink(session, e)
        session.events.append(e)
    return session


async def run_busy_session(runner: SessionRunner, clock: VirtualClock, preset: Preset) -> None:
    """Every kind of therapist command, in the tour preset."""
    await runner.start(preset, label="Client A, session 3")
    await clock.advance(12)
    await runner.acknowledge("preparation/0", note="BP 118/76")
    await runner.set_lights(LightsChange(brightness=55, color_temp=2400, transition=2))
    await runner.set_music(MusicChange(volume=30))
    await runner.back_to_preset()
    await runner.next()  # -> dosing
    await clock.advance(5)
    await runner.hold()
    await clock.advance(10)
    await runner.resume()
    await runner.extend(20)
    await runner.jump("journey")
    await clock.advance(3)
    await runner.emergency_on()
    await clock.advance(30)
    await runner.emergency_off()
    await runner.set_music(MusicChange(skip="next"))


# --- recording -----------------------------------------------------------------------------


async def test_a_session_is_recorded_event_by_event(store: SessionStore, db_path: Path,
                                                    tour: Preset) -> None:
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await run_busy_session(runner, clock, tour)
    with pytest.raises(CommandRejected):
        await runner.resume()  # refused commands leave no trace
    session = runner.session
    assert session is not None
    # Durable before the command returned: a separate reader sees every event already.
    assert raw_rows(db_path, "SELECT count(*) FROM events")[0][0] == len(session.events)
    await runner.end("client ready to leave")
    await runner.close()

    stored = store.get(session.id)
    assert stored is not None
    assert stored.room == "Room 1"
    assert stored.session.preset == tour
    assert stored.session.label == "Client A, session 3"
    assert stored.session.events == session.events
    assert [e.kind for e in stored.session.events] == [
        EventKind.STARTED, EventKind.CUE_ACKNOWLEDGED, EventKind.LIGHTS_SET, EventKind.MUSIC_SET,
        EventKind.OVERRIDE_CLEARED, EventKind.ADVANCED, EventKind.HELD, EventKind.RESUMED,
        EventKind.EXTENDED, EventKind.JUMPED, EventKind.EMERGENCY_ON, EventKind.EMERGENCY_OFF,
        EventKind.MUSIC_SET, EventKind.ENDED,
    ]
    assert stored.started_at == START
    assert stored.ended_at == session.events[-1].at
    assert stored.end_reason == "client ready to leave"
    seqs = raw_rows(db_path, f"SELECT seq FROM events WHERE session_id = '{session.id}' ORDER BY seq")
    assert [s for (s,) in seqs] == list(range(len(session.events)))


def test_the_store_is_wal_fsync_full_and_versioned(store: SessionStore, db_path: Path) -> None:
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert raw_rows(db_path, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    tables = {n for (n,) in raw_rows(db_path, "SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {"sessions", "events"} <= tables


async def test_preset_snapshot_keeps_exact_values(store: SessionStore) -> None:
    # A transition of 1.23456789 s is "1.23457s" in the preset's JSON form: the store must
    # not round what the session actually ran.
    preset = parse_preset({"name": "Odd numbers", "phases": [
        {"id": "only", "kind": "journey", "duration": 100.123456789,
         "lights": {"brightness": 33.3333333, "color_temp": 2700, "transition": 1.23456789}},
    ]})
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await runner.start(preset)
    await runner.set_lights(LightsChange(brightness=12.3456789, transition=0.123456789))
    await runner.close()
    assert runner.session is not None
    stored = store.get(runner.session.id)
    assert stored is not None
    assert stored.session.preset == preset
    assert stored.session.events == runner.session.events


async def test_a_refused_write_refuses_the_command(store: SessionStore, tour: Preset) -> None:
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await runner.start(tour)
    assert runner.session is not None
    before = list(runner.session.events)
    store.close()
    with pytest.raises(RecordFailing, match="closed"):
        await runner.set_lights(LightsChange(brightness=10))
    assert runner.session.events == before  # not acknowledged, not applied
    await runner.close()


async def test_a_duplicate_session_id_is_refused(store: SessionStore, tour: Preset) -> None:
    clock = VirtualClock(START)
    first, second = make_runner(store, clock), make_runner(store, clock, "Room 2")
    await first.start(tour, session_id="same-id")
    with pytest.raises(RecordFailing, match="same-id"):
        await second.start(tour, session_id="same-id")
    await first.close()
    await second.close()
    stored = store.get("same-id")
    assert stored is not None and stored.room == "Room 1"


def test_sinks_from_many_threads(store: SessionStore, tour: Preset) -> None:
    """One connection, many threads: the store's lock serializes them."""
    sessions = [Session(f"s{i}", tour, []) for i in range(4)]
    errors: list[BaseException] = []

    def work(s: Session) -> None:
        sink = store.sink(f"room {s.id}")
        try:
            for n in range(30):
                e = Event(kind=EventKind.STARTED if n == 0 else EventKind.HELD, at=START + n)
                sink(s, e)
                s.events.append(e)
                store.list_sessions()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s.event_count for s in store.list_sessions()) == [30, 30, 30, 30]


@pytest.mark.parametrize("yields", range(5))
async def test_runners_close_promptly_right_after_a_recorded_command(
        store: SessionStore, tour: Preset, yields: int) -> None:
    """Shutdown closes the runners, then the store. A close() landing while the session task
    was tidying up after a command used to be swallowed, and close() waited forever."""
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await runner.start(tour)
    await asyncio.sleep(0)
    await runner.set_lights(LightsChange(brightness=20))
    for _ in range(yields):
        await asyncio.sleep(0)
    # shield: close() swallows a cancel from wait_for's timeout and would pass anyway
    await asyncio.wait_for(asyncio.shield(runner.close()), timeout=2)


# --- recovery ------------------------------------------------------------------------------


async def test_reopening_gives_back_an_unfinished_session(db_path: Path, tour: Preset) -> None:
    clock = VirtualClock(START)
    store = SessionStore.open(db_path)
    runner = make_runner(store, clock)
    await run_busy_session(runner, clock, tour)
    assert runner.session is not None
    original = runner.session
    await runner.close()
    store.close()  # the service stops (or crashes) mid-session

    store = SessionStore.open(db_path)
    try:
        (found,) = store.unfinished()
        assert found.room == "Room 1"
        assert found.ended_at is None
        assert found.session.id == original.id
        assert found.session.events == original.events
        later = clock.now() + 25
        assert found.session.status(later, Safety()) == evaluate(tour, original.events, later)

        # Recovery on a fresh runner continues the same record.
        clock2 = VirtualClock(later)
        runner2 = make_runner(store, clock2)
        status = await runner2.recover(found.session)
        assert status == evaluate(tour, original.events, later)
        await runner2.set_lights(LightsChange(brightness=20))
        await runner2.end()
        await runner2.close()
        again = store.get(original.id)
        assert again is not None
        assert again.session.events[: len(original.events)] == original.events
        assert [e.kind for e in again.session.events[len(original.events):]] == [
            EventKind.LIGHTS_SET, EventKind.ENDED]
        assert store.unfinished() == []
    finally:
        store.close()


async def test_ended_sessions_are_not_unfinished(store: SessionStore, tour: Preset) -> None:
    clock = VirtualClock(START)
    ended_by_hand = make_runner(store, clock, "Room 1")
    runs_out = make_runner(store, clock, "Room 2")
    still_running = make_runner(store, clock, "Room 3")
    await ended_by_hand.start(tour)
    await runs_out.start(tour)
    await still_running.start(tour)
    await ended_by_hand.end()
    await runs_out.next()  # leave the manual preparation; the rest is automatic
    await clock.advance(30 + 50 + 40 + 30 + 1)
    assert runs_out.status() is not None and runs_out.status().ended  # type: ignore[union-attr]
    for r in (ended_by_hand, runs_out, still_running):
        await r.close()

    assert [s.room for s in store.unfinished()] == ["Room 3"]
    done = store.get(runs_out.session.id)  # type: ignore[union-attr]
    assert done is not None
    assert done.end_reason == "completed"
    assert done.ended_at == START + 150  # the true end, not when anyone looked


async def test_a_session_that_ran_out_while_the_service_was_down(store: SessionStore,
                                                                 tour: Preset) -> None:
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await runner.start(tour)
    await runner.next()
    await runner.close()
    (found,) = store.unfinished()
    runner2 = make_runner(store, VirtualClock(START + 3600))
    status = await runner2.recover(found.session)
    await runner2.close()
    assert status is not None and status.ended
    assert store.unfinished() == []
    stored = store.get(found.id)
    assert stored is not None and stored.ended_at == START + 150


def test_a_session_that_cannot_be_read_back(store: SessionStore, db_path: Path,
                                            tour: Preset, caplog: pytest.LogCaptureFixture) -> None:
    """A snapshot this version cannot read (say, from a newer roomctl) is named, not hidden."""
    record_session(store, tour, "odd", START, 2, ended=False)
    record_session(store, tour, "fine", START + 10, 2, ended=False)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE sessions SET preset_json = '{\"name\": \"x\"}' WHERE id = 'odd'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="session odd cannot be read back"):
        store.get("odd")
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM events WHERE session_id = 'fine' AND seq = 0")
    conn.commit()
    conn.close()
    fine = store.get("fine")  # its start is known from its own row: the rest still replays
    assert fine is not None and fine.session.events[0].kind is EventKind.STARTED
    assert fine.session.events[0].at == START + 10 and len(fine.session.events) == 3
    assert any("'started' event is missing" in d for d in fine.damaged)
    record_session(store, tour, "fine-too", START + 20, 2, ended=False)
    found = store.recoverable()
    assert [s.id for s in found.sessions] == ["fine", "fine-too"]
    assert [(room, sid) for room, sid, _ in found.damaged] == [("Room 1", "odd")]
    assert "session odd cannot be continued" in caplog.text
    assert [s.id for s in store.list_sessions()] == ["fine-too", "fine", "odd"]  # still there


# --- list, label, delete, purge ----------------------------------------------------------


async def _sessions(store: SessionStore, tour: Preset) -> list[str]:
    """Three sessions: Room 1 two days ago (ended), Room 2 yesterday (ended), Room 1 now."""
    ids = []
    for room, start, end in (("Room 1", START - 2 * DAY, True), ("Room 2", START - DAY, True),
                             ("Room 1", START, False)):
        clock = VirtualClock(start)
        runner = make_runner(store, clock, room)
        await runner.start(tour)
        await clock.advance(10)
        await runner.set_lights(LightsChange(brightness=20))
        if end:
            await clock.advance(50)
            await runner.end()
        await runner.close()
        assert runner.session is not None
        ids.append(runner.session.id)
    return ids


async def test_list_sessions(store: SessionStore, tour: Preset) -> None:
    old, yesterday, now = await _sessions(store, tour)
    listed = store.list_sessions()
    assert [s.id for s in listed] == [now, yesterday, old]  # most recent first
    assert [s.id for s in store.list_sessions(room="Room 1")] == [now, old]
    assert store.list_sessions(room="Room 9") == []
    assert [s.id for s in store.list_sessions(limit=1, offset=1)] == [yesterday]
    latest, middle, _ = listed
    assert middle.preset_name == "Tour"
    assert middle.room == "Room 2"
    assert middle.started_at == START - DAY
    assert middle.duration_s == 60.0
    assert middle.event_count == 3
    assert middle.end_reason == "ended by the therapist"
    assert latest.ended_at is None and latest.duration_s is None and latest.event_count == 2
    assert store.summary(yesterday) == middle
    assert store.summary("nope") is None


async def test_label_and_delete(store: SessionStore, db_path: Path, tour: Preset) -> None:
    old, yesterday, _now = await _sessions(store, tour)
    assert store.set_label(old, "Client B — integration") is True
    assert store.set_label("nope", "x") is False
    got = store.get(old)
    assert got is not None and got.session.label == "Client B — integration"
    assert store.set_label(old, None) is True
    assert store.get(old).session.label is None  # type: ignore[union-attr]

    assert store.delete(yesterday) is True
    assert store.delete(yesterday) is False
    assert store.get(yesterday) is None
    assert yesterday not in [s.id for s in store.list_sessions()]
    assert raw_rows(db_path, f"SELECT count(*) FROM events WHERE session_id = '{yesterday}'") == [(0,)]
    assert store.get("never-was") is None


async def test_purge_keeps_recent_and_unfinished_sessions(store: SessionStore, db_path: Path,
                                                          tour: Preset) -> None:
    old, yesterday, now = await _sessions(store, tour)
    assert store.purge_older_than(1.5, now=START) == 1
    assert store.get(old) is None
    assert {s.id for s in store.list_sessions()} == {yesterday, now}
    assert store.purge_older_than(0, now=START + 10 * DAY) == 1  # the unfinished one stays
    assert [s.id for s in store.list_sessions()] == [now]
    assert raw_rows(db_path, "SELECT count(*) FROM events") == [(2,)]
    with pytest.raises(ValueError):
        store.purge_older_than(-1, now=START)


def test_deleted_records_do_not_linger_in_the_file(db_path: Path, tour: Preset) -> None:
    with SessionStore.open(db_path) as store:
        for i in range(3):
            record_session(store, tour, f"s{i}", START + i, 5, label=f"Client-{i}-label")
        assert store.delete("s1")
        assert store.purge_older_than(0, now=START + DAY) == 2
        data = db_path.read_bytes() + db_path.with_name("roomctl.db-wal").read_bytes()
    assert b"Client-" not in data  # overwritten (secure_delete), WAL truncated
    assert b"Client-" not in db_path.read_bytes()


def test_deletions_and_retention_are_on_the_audit_list(db_path: Path, tour: Preset) -> None:
    with SessionStore.open(db_path) as store:
        for i in range(3):
            record_session(store, tour, f"s{i}", START + i, 5, label=f"Client-{i}-label")
        by = AuditEntry(at=START + DAY, session_id="", action="deleted", device_id="d1", device_name="Dr. A")
        assert store.delete("s1", by=by)
        assert not store.delete("s1", by=by)  # nothing deleted, nothing on the list
        assert store.purge_older_than(0.5, now=START + DAY) == 2  # the service's own retention
        audit = store.audit()
    assert [(e.session_id, e.action, e.device_name) for e in audit] == [
        ("s2", "purged", None), ("s0", "purged", None), ("s1", "deleted", "Dr. A")]
    assert audit[0].detail is not None and audit[0].detail.startswith(f"{tour.name}, started ")
    assert audit[0].detail.endswith("older than 0.5 days")
    assert all("Client-" not in (e.detail or "") for e in audit)  # the label went with the record


def test_a_store_from_before_the_audit_list_gets_one_and_keeps_its_records(db_path: Path, tour: Preset) -> None:
    with SessionStore.open(db_path) as store:
        record_session(store, tour, "old", START, 3)
    conn = sqlite3.connect(db_path)  # as the first roomctl left it: schema 1, no audit table
    conn.execute("DROP TABLE audit")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with SessionStore.open(db_path) as store:
        assert [s.id for s in store.list_sessions()] == ["old"]
        store.record_audit(AuditEntry(at=START + 10, session_id="old", action="export.csv", device_name="Dr. A"))
        assert [e.action for e in store.audit("old")] == ["export.csv"]
    assert raw_rows(db_path, "PRAGMA user_version")[0][0] == SCHEMA_VERSION == 2


# --- export --------------------------------------------------------------------------------


async def test_export_json(store: SessionStore, tour: Preset) -> None:
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await run_busy_session(runner, clock, tour)
    await runner.end()
    await runner.close()
    assert runner.session is not None
    stored = store.get(runner.session.id)
    assert stored is not None
    data = session_json(stored)
    assert json.loads(json.dumps(data)) == data  # plain JSON
    assert data["format"] == "roomctl.session/1"
    assert data["id"] == runner.session.id
    assert data["room"] == "Room 1"
    assert data["label"] == "Client A, session 3"
    assert data["started_at"] == START
    assert datetime.fromisoformat(data["started_at_iso"]).timestamp() == START
    assert data["ended_at"] == runner.session.events[-1].at
    assert Preset.model_validate(data["preset"]) == tour
    assert data["preset"]["phases"][1]["duration"] == "30s"  # human units, as clinics write
    assert [Event.model_validate(e) for e in data["events"]] == runner.session.events
    assert store.get("nope") is None


async def test_export_csv(store: SessionStore, tour: Preset) -> None:
    clock = VirtualClock(START)
    runner = make_runner(store, clock)
    await run_busy_session(runner, clock, tour)
    await runner.acknowledge("journey/0", note="=HYPERLINK(\"x\") looked fine")
    await runner.end()
    await runner.close()
    assert runner.session is not None
    events = runner.session.events
    stored = store.get(runner.session.id)
    assert stored is not None
    rows = list(csv.DictReader(io.StringIO(session_csv(stored))))
    assert list(rows[0]) == ["session_time", "wall_time", "kind", "phase", "details", "note"]
    assert [r["kind"] for r in rows] == [e.kind.value for e in events]
    assert [datetime.fromisoformat(r["wall_time"]).timestamp() for r in rows] == \
        [e.at for e in events]
    assert rows[0]["session_time"] == "0:00:00"
    by_kind = {r["kind"]: r for r in rows}
    ack = rows[1]
    assert ack["session_time"] == "0:00:12"
    assert ack["phase"] == "Preparation"
    assert "A reminder appears here" in ack["details"]
    assert ack["note"] == "BP 118/76"
    assert by_kind["lights_set"]["details"] == "brightness 55%, 2400K, over 2s"
    assert by_kind["advanced"]["phase"] == "Dosing"  # the phase after the event
    assert by_kind["held"]["phase"] == "Dosing"
    assert by_kind["extended"]["details"] == "by 20s"
    assert by_kind["jumped"]["phase"] == "Journey"
    assert by_kind["emergency_on"]["session_time"] == "0:00:30"
    assert by_kind["emergency_off"]["session_time"] == "0:01:00"
    assert rows[-2]["note"].startswith("'=HYPERLINK")  # not a formula in a spreadsheet
    assert rows[-1]["kind"] == "ended"


# --- files that must not be used ------------------------------------------------------------


def test_creates_folder_and_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "roomctl.db"
    with SessionStore.open(path) as s:
        assert s.list_sessions() == []
    assert path.is_file()
    with SessionStore.open(path) as s:  # and opens it again
        assert s.list_sessions() == []


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "roomctl.db"
    path.touch()  # nothing in it to lose
    with SessionStore.open(path) as s:
        assert s.list_sessions() == []


def test_a_corrupt_file_is_refused_and_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = os.urandom(8192)
    db_path.write_bytes(garbage)
    with pytest.raises(StoreError) as err:
        SessionStore.open(db_path)
    assert str(db_path) in str(err.value)
    assert "not an SQLite database" in str(err.value)
    assert db_path.read_bytes() == garbage
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["roomctl.db", "roomctl.db.lock"]
    # The lock was let go: once the file is moved aside, a fresh store opens.
    db_path.rename(db_path.with_suffix(".broken"))
    SessionStore.open(db_path).close()


def test_a_file_with_sqlite_magic_but_garbage_after_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    content = b"SQLite format 3\x00" + os.urandom(4096)
    db_path.write_bytes(content)
    with pytest.raises(StoreError, match=str(db_path)):
        SessionStore.open(db_path)
    assert db_path.read_bytes() == content


def _filled(path: Path, tour: Preset, sessions: int = 12) -> None:
    with SessionStore.open(path) as store:
        for i in range(sessions):
            record_session(store, tour, f"s{i}", START + i * DAY, 10,
                           label=f"session {i} " + "x" * 1500)


def test_a_damaged_page_is_detected(db_path: Path, tour: Preset) -> None:
    _filled(db_path, tour)
    page_size = raw_rows(db_path, "PRAGMA page_size")[0][0]
    assert isinstance(page_size, int)
    data = bytearray(db_path.read_bytes())
    pages = len(data) // page_size
    assert pages > 8
    victim = pages // 2  # a b-tree page in the middle of the events
    data[victim * page_size: victim * page_size + 200] = b"\xa5" * 200
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        SessionStore.open(db_path)
    assert str(db_path) in str(err.value) and "damaged" in str(err.value)
    assert db_path.read_bytes() == bytes(data)


def test_a_truncated_database_is_detected(db_path: Path, tour: Preset) -> None:
    _filled(db_path, tour)
    data = db_path.read_bytes()
    cut = data[: len(data) // 2]
    db_path.write_bytes(cut)
    with pytest.raises(StoreError, match="damaged"):
        SessionStore.open(db_path)
    assert db_path.read_bytes() == cut


def test_problems_reported_by_quick_check_are_refused(db_path: Path, tour: Preset) -> None:
    _filled(db_path, tour, sessions=2)
    page_size = raw_rows(db_path, "PRAGMA page_size")[0][0]
    assert isinstance(page_size, int)
    data = bytearray(db_path.read_bytes())
    pages = len(data) // page_size
    data[28:32] = (pages + 2).to_bytes(4, "big")  # the header claims two pages nothing uses
    data += bytes(2 * page_size)
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"quick_check: Page \d+ is never used"):
        SessionStore.open(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_another_applications_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="not roomctl's"):
        SessionStore.open(db_path)
    assert db_path.read_bytes() == before


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    SessionStore.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer roomctl"):
        SessionStore.open(db_path)


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a file"):
        SessionStore.open(tmp_path)


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(StoreError, match="cannot create its folder"):
        SessionStore.open(tmp_path / "data" / "roomctl.db")


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Permission checks as an ordinary user: root reads any file, so drop to 'nobody'."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.parametrize("mode", [0o000, 0o444])
def test_a_file_we_may_not_use_is_refused(mode: int) -> None:
    # Not tmp_path: its parents are private to root, and the unprivileged user must reach the
    # file for the test to be about the file's own permissions.
    folder = Path(tempfile.mkdtemp(prefix="roomctl-store-"))
    try:
        folder.chmod(0o777)
        path = folder / "roomctl.db"
        SessionStore.open(path).close()
        (folder / "roomctl.db.lock").chmod(0o666)
        path.chmod(mode)
        before = path.read_bytes()
        with unprivileged(), pytest.raises(StoreError) as err:
            SessionStore.open(path)
        assert str(path) in str(err.value)
        assert path.read_bytes() == before
    finally:
        shutil.rmtree(folder)


HOLDER = """
import sys
from roomctl.store import SessionStore
store = SessionStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""

FOREIGN_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("ready", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


@contextlib.contextmanager
def holding(script: str, path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_store_in_use_by_another_roomctl_is_refused(db_path: Path) -> None:
    SessionStore.open(db_path).close()
    with holding(HOLDER, db_path) as proc:
        with pytest.raises(StoreError) as err:
            SessionStore.open(db_path)
        assert str(db_path) in str(err.value)
        assert f"pid {proc.pid}" in str(err.value)
    SessionStore.open(db_path).close()  # free again once the other one has stopped


def test_a_second_open_in_the_same_process_is_refused(store: SessionStore, db_path: Path) -> None:
    with pytest.raises(StoreError, match="in use by another roomctl"):
        SessionStore.open(db_path)
    assert store.list_sessions() == []  # the first one is unaffected


def test_a_database_locked_by_another_program_is_refused(db_path: Path) -> None:
    SessionStore.open(db_path).close()
    with holding(FOREIGN_WRITER, db_path), pytest.raises(StoreError, match="locked"):
        SessionStore.open(db_path)
    SessionStore.open(db_path).close()
