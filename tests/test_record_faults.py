"""The record cannot be lost or locked out: faults played on a real SQLite file under the
real service (uvicorn on loopback, real HTTP), each checked by what a clinic relies on:

- a wall clock that steps never costs a phase, a reminder, a command or the session itself;
- a full disk or a store deleted under the service refuses commands with the record's own
  message (503), says so in /healthz and the room's state, and never stops Lights up, whose
  events are written as soon as the record can take them;
- one damaged record never hides the others;
- a long report never holds up Lights up;
- nothing answers 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomctl import units
from roomctl.clock import RealClock
from roomctl.config import Config, parse_config
from roomctl.events import Event, EventKind, LightsChange, MusicChange
from roomctl.preset import load_preset
from roomctl.session import Session
from roomctl.store import RESCUED, SessionStore, StoreError
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator, RecordedRequest
from testkit.servers import PIN, Running, running_app

PRESETS = Path(__file__).resolve().parent.parent / "roomctl" / "presets"
LATE_S = 1.0  # how late a phase boundary may come (a loaded 2-core machine)
LIGHTS_UP_ANSWER_S = 0.2

DRILL: dict[str, Any] = {
    "name": "Record drill",
    "phases": [
        {"id": "preparation", "kind": "preparation", "duration": "4s",
         "lights": {"brightness": 60, "color_temp": "2700K", "transition": "0s"},
         "cues": [{"at": "2s", "text": "Baseline blood pressure"}]},
        {"id": "journey", "kind": "journey", "duration": "10m",
         "lights": {"brightness": 20, "color_temp": "2200K", "transition": "0s"},
         "cues": [{"at": "3s", "text": "Check on the client"}]},
    ],
}


def config(data: Path) -> Config:
    return parse_config({"rooms": [{"name": "A", "audio": {"kind": "simulated"}}],
                         "data_dir": str(data), "pin": PIN})


class Tablet:
    """A paired tablet: no answer may be a 5xx other than the record's own 503."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = self.client.request(method, path, **kwargs)
        assert r.status_code < 500 or r.status_code == 503, f"{method} {path} answered {r.status_code}: {r.text}"
        return r

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.call(method, path, **kwargs)
        assert r.status_code in (200, 201), f"{method} {path} answered {r.status_code}: {r.text}"
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    def state(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.ok("GET", "/api/rooms/a/state")
        return answer

    def wait_state(self, check: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state()
            if check(state):
                return state
            assert time.monotonic() < deadline, f"the room never got there: {state}"
            time.sleep(0.05)

    def lights_up(self, on: bool) -> float:
        t = time.monotonic()
        r = self.call("POST", "/api/rooms/a/emergency", json={"on": on})
        took = time.monotonic() - t
        assert r.status_code == 200, r.text
        assert r.json()["emergency"] is on, r.json()
        return took


@contextlib.contextmanager
def service(data: Path, store: SessionStore, clock: RealClock | None = None) -> Iterator[tuple[Running, Tablet]]:
    with running_app(config(data), store=store, clock=clock) as srv, srv.client(srv.pair()) as client:
        tablet = Tablet(client)
        presets = tablet.call("GET", "/api/presets").json()
        if not any(p["id"] == "drill" for p in presets):
            assert tablet.call("POST", "/api/presets", params={"id": "drill"}, json=DRILL).status_code == 201
        yield srv, tablet


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- a wall clock that steps -------------------------------------------------------------------


class SteppingWall:
    """The wall clock as the service reads it, stepped by the test (an NTP correction, a clock
    set by hand); it stays stepped across the restart, as a hardware clock that is behind."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("step_s", [-600.0, 45.0])
def test_a_wall_clock_step_mid_phase_costs_nothing(step_s: float, tmp_path: Path) -> None:
    data = tmp_path / "data"
    wall = SteppingWall()
    with SessionStore.open(data / "sessions.db") as store, \
            service(data, store, RealClock(wall=wall)) as (_srv, tablet):
        started = time.monotonic()
        session = tablet.ok("POST", "/api/rooms/a/session", json={"preset": "drill"})["state"]["session"]
        session_id = session["id"]
        time.sleep(1.0)
        wall.offset = step_s  # mid-phase
        # a command a second after the step is accepted and stays in force
        answer = tablet.ok("POST", "/api/rooms/a/lights", json={"brightness": 45, "transition": 0})
        assert answer["lights"]["overridden"]
        time.sleep(0.3)
        state = tablet.state()
        assert state["lights"]["overridden"] and state["session"]["session_time_s"] >= 1.0, state["session"]
        # the reminder comes due on its session time, and can be acknowledged
        state = tablet.wait_state(lambda s: bool(s["session"]["cues_due"]), timeout_s=3)
        assert time.monotonic() - started == pytest.approx(2.0, abs=LATE_S)
        cue = state["session"]["cues_due"][0]
        tablet.ok("POST", "/api/rooms/a/cues/ack", json={"cue": cue["id"], "note": "BP 120/80"})
        # the phase ends on its monotonic time: neither skipped nor run backwards
        tablet.wait_state(lambda s: s["session"]["phase"]["id"] == "journey", timeout_s=5)
        assert time.monotonic() - started == pytest.approx(4.0, abs=LATE_S)
        journey_at = time.monotonic()
        time.sleep(0.5)
    # the service stops (or crashes) and starts again with the wall clock still stepped
    with SessionStore.open(data / "sessions.db") as store, \
            service(data, store, RealClock(wall=wall)) as (_srv, tablet):
        state = tablet.state()
        session = state["session"]
        assert session is not None and session["id"] == session_id and session["recovered_at"] is not None
        assert session["phase"]["id"] == "journey", session  # not replayed into its past
        # Across a restart the wall clock is all there is to tell how long the service was down:
        # a clock ahead counts as time gone by; one behind as none (never as going back).
        in_journey = time.monotonic() - journey_at + max(0.0, step_s)
        assert session["time_in_phase_s"] == pytest.approx(in_journey, abs=LATE_S), in_journey
        assert state["lights"]["target"]["brightness"] == 20  # the journey's lights, not the preparation's
        assert {light["brightness"] for light in state["lights"]["lights"]} == {20}
        tablet.ok("POST", "/api/rooms/a/session/end")
        # the record: every event in order, the wall time kept where it differed, history and exports
        detail = tablet.ok("GET", f"/api/sessions/{session_id}")
        events = detail["events"]
        assert [e["kind"] for e in events] == ["started", "lights_set", "cue_acknowledged", "ended"]
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)
        ack = events[2]
        assert ack["note"] == "BP 120/80" and ack["wall"] == pytest.approx(ack["at"] + step_s, abs=1.5)
        csv = tablet.ok("GET", f"/api/sessions/{session_id}/export.csv")
        assert "BP 120/80" in csv and units.format_iso(ack["wall"]) in csv
        assert tablet.ok("GET", "/api/sessions")[0]["id"] == session_id
        assert tablet.ok("GET", f"/api/sessions/{session_id}/report.svg").startswith("<svg")


def test_a_record_whose_times_went_back_is_continued(tmp_path: Path) -> None:
    """An older roomctl stamped events with the wall clock: a step back stored them out of time
    order. Such a session is continued, replayed in the order recorded, and its history and
    exports answer."""
    data = tmp_path / "data"
    now = time.time()
    preset = load_preset(PRESETS / "tour.yaml")
    with SessionStore.open(data / "sessions.db") as store:
        sink = store.sink("a")
        session = Session("stepped", preset, [], "Client A")
        for event in (Event(kind=EventKind.STARTED, at=now - 30, preset_id="tour"),
                      Event(kind=EventKind.ADVANCED, at=now - 20),
                      Event(kind=EventKind.LIGHTS_SET, at=now - 620, lights=LightsChange(brightness=35)),
                      Event(kind=EventKind.CUE_ACKNOWLEDGED, at=now - 615, cue="dosing/0", note="BP 118/76")):
            sink(session, event)  # as stored before time stayed in order: the wall clock stepped back 10 min
            session.events.append(event)
    with SessionStore.open(data / "sessions.db") as store, service(data, store) as (_srv, tablet):
        session_out = tablet.state()["session"]
        assert session_out is not None and session_out["id"] == "stepped", "the session was not continued"
        assert session_out["phase"]["id"] == "dosing"
        assert tablet.state()["lights"]["target"]["brightness"] == 35
        detail = tablet.ok("GET", "/api/sessions/stepped")
        assert [e["kind"] for e in detail["events"]] == ["started", "advanced", "lights_set", "cue_acknowledged"]
        assert detail["events"][3]["wall"] == pytest.approx(now - 615)  # the stored time, kept
        assert "BP 118/76" in tablet.ok("GET", "/api/sessions/stepped/export.csv")
        assert tablet.ok("GET", "/api/sessions/stepped/report.svg").startswith("<svg")
        tablet.ok("POST", "/api/rooms/a/lights", json={"brightness": 40})  # and it records on


# --- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: a real disk that really fills up (ENOSPC), mounted for the test (root)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs to fill it, which needs root: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def test_a_full_disk_refuses_commands_and_keeps_lights_up(small_disk: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = small_disk / "sessions.db"
    with SessionStore.open(db) as store, service(data, store) as (_srv, tablet):
        session_id = tablet.ok("POST", "/api/rooms/a/session", json={"preset": "drill"})["state"]["session"]["id"]
        tablet.ok("POST", "/api/rooms/a/lights", json={"brightness": 30})
        filler = fill(small_disk)
        refused = tablet.call("POST", "/api/rooms/a/lights", json={"brightness": 25})
        assert refused.status_code == 503, refused.text
        assert f"the disk is full: free space on {small_disk}" in refused.json()["detail"]
        assert "Lights up still works" in refused.json()["detail"]
        health = tablet.ok("GET", "/healthz")
        assert health["ok"] is False and "the disk is full" in health["rooms"]["a"]["record"]["detail"]
        state = tablet.state()
        assert state["record"]["ok"] is False and any("the disk is full" in d for d in state["degraded"])
        assert state["lights"]["target"]["brightness"] == 30  # the refused command changed nothing
        # Lights up, on and off, works as ever, and the room follows it
        assert tablet.lights_up(True) <= 1.0
        state = tablet.state()
        assert state["emergency"] and state["session"]["emergency"]
        assert "kept in memory" in state["record"]["detail"]
        assert tablet.lights_up(False) <= 1.0
        assert not tablet.state()["emergency"]
        assert [k for (k,) in rows(db, "SELECT kind FROM events WHERE session_id = ? ORDER BY seq", session_id)] == \
            ["started", "lights_set"]
        # an export that cannot be put on the audit list is not handed out
        export = tablet.call("GET", f"/api/sessions/{session_id}/export.json")
        assert export.status_code == 503 and "cannot record export.json" in export.json()["detail"], export.text
        # space comes back: the kept events are written, in order, without a command
        filler.unlink()
        tablet.wait_state(lambda s: s["record"]["ok"], timeout_s=5)
        assert [k for (k,) in rows(db, "SELECT kind FROM events WHERE session_id = ? ORDER BY seq", session_id)] == \
            ["started", "lights_set", "emergency_on", "emergency_off"]
        assert tablet.ok("GET", "/healthz")["ok"] is True
        tablet.ok("POST", "/api/rooms/a/lights", json={"brightness": 25})
        assert tablet.call("GET", f"/api/sessions/{session_id}/export.json").status_code == 200
        assert [a for (a,) in rows(db, "SELECT action FROM audit WHERE session_id = ?", session_id)] == ["export.json"]


# --- a store deleted while running -------------------------------------------------------------


def test_a_store_deleted_while_running_is_noticed_and_never_recreated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "sessions.db"
    with SessionStore.open(db) as store, service(data, store) as (_srv, tablet):
        session_id = tablet.ok("POST", "/api/rooms/a/session", json={"preset": "drill"})["state"]["session"]["id"]
        tablet.ok("POST", "/api/rooms/a/lights", json={"brightness": 30})
        db.unlink()
        # noticed at once, by the watch, without a command
        state = tablet.wait_state(lambda s: not s["record"]["ok"], timeout_s=3)
        assert any("was deleted" in d for d in state["degraded"])
        refused = tablet.call("POST", "/api/rooms/a/lights", json={"brightness": 25})
        assert refused.status_code == 503 and "was deleted" in refused.json()["detail"]
        assert tablet.ok("GET", "/healthz")["ok"] is False
        assert tablet.lights_up(True) <= 1.0 and tablet.lights_up(False) <= 1.0
        assert tablet.call("GET", "/api/sessions").status_code == 503
        assert not db.exists(), "a new store was made in place of the deleted one"
        (rescued,) = data.glob(f"sessions.db{RESCUED}*")
    assert not db.exists()
    # what the service held is saved beside it, and a restart never starts an empty store instead
    kinds = [k for (k,) in rows(rescued, "SELECT kind FROM events WHERE session_id = ? ORDER BY seq", session_id)]
    assert kinds[0] == "started" and kinds[-1] == "lights_set"
    with pytest.raises(StoreError, match="rescued"):
        SessionStore.open(db)
    assert not db.exists()


# --- one damaged record ------------------------------------------------------------------------


def damage_inside(path: Path, marker: bytes, length: int = 64) -> None:
    """64 random bytes inside one record's text (after ``marker``), where quick_check does not look."""
    data = bytearray(path.read_bytes())
    at = data.index(marker) + len(marker)
    data[at: at + length] = os.urandom(length)
    path.write_bytes(bytes(data))


def test_one_damaged_record_hides_nothing_else(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "sessions.db"
    preset = load_preset(PRESETS / "tour.yaml")
    now = time.time()
    with SessionStore.open(db) as store:
        sink = store.sink("a")
        for i in range(4):
            name = f"Tour {i} " + "z" * 40
            session = Session(f"s{i}", preset.model_copy(update={"name": name}), [])
            ended = i < 3
            for event in [Event(kind=EventKind.STARTED, at=now - 4000 + i * 600),
                          *(Event(kind=EventKind.MUSIC_SET, at=now - 3990 + i * 600 + n,
                                  music=MusicChange(volume=10 + n)) for n in range(5)),
                          Event(kind=EventKind.CUE_ACKNOWLEDGED, at=now - 3900 + i * 600,
                                cue="preparation/0", note=f"note of session {i} " + "n" * 100),
                          *([Event(kind=EventKind.ENDED, at=now - 3800 + i * 600)] if ended else [])]:
                sink(session, event)
                session.events.append(event)
    damage_inside(db, b'"name": "Tour 1 ')  # one ended session's preset snapshot
    damage_inside(db, b"note of session 3 ")  # one event of the session that never ended
    assert rows(db, "PRAGMA quick_check") == [("ok",)]  # missed by SQLite's own check
    with SessionStore.open(db) as store, service(data, store) as (_srv, tablet):
        listed = tablet.ok("GET", "/api/sessions")
        assert [s["id"] for s in listed] == ["s3", "s2", "s1", "s0"]
        assert [s["id"] for s in listed if s["damaged"]] == ["s1"]
        for sid in ("s0", "s2"):
            assert tablet.ok("GET", f"/api/sessions/{sid}")["damaged_events"] == []
            assert "note of session" in tablet.ok("GET", f"/api/sessions/{sid}/export.csv")
        damaged = tablet.call("GET", "/api/sessions/s1")
        assert damaged.status_code == 409 and "cannot be read back" in damaged.text
        assert tablet.call("GET", "/api/sessions/s1/export.csv").status_code == 409
        # the session that never ended is continued without its damaged event, and says so
        state = tablet.state()
        assert state["session"] is not None and state["session"]["id"] == "s3"
        assert any("damaged" in d for d in state["degraded"])
        detail = tablet.ok("GET", "/api/sessions/s3")
        assert len(detail["damaged_events"]) == 1 and "event 6" in detail["damaged_events"][0]
        tablet.ok("POST", "/api/rooms/a/session/end")  # and it records on, after every stored row
        assert [k for (k,) in rows(db, "SELECT kind FROM events WHERE session_id = 's3' ORDER BY seq")][-1] == "ended"


# --- a long report -----------------------------------------------------------------------------


def long_session(db: Path, events: int = 12_600) -> str:
    """A 7-hour session with a command every two seconds, written straight into the file."""
    preset = load_preset(PRESETS / "psilocybin-long.yaml")
    start = time.time() - 2.0 * events - 60
    SessionStore.open(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO sessions (id, room, preset_json, started_at, ended_at, end_reason) "
                     "VALUES ('long', 'a', ?, ?, ?, 'completed')",
                     (json.dumps(preset.model_dump()), start, start + 2.0 * (events + 1)))
        conn.execute("INSERT INTO events VALUES ('long', 0, ?, 'started', '{}')", (start,))
        conn.executemany("INSERT INTO events VALUES ('long', ?, ?, ?, ?)", [
            (i, start + 2.0 * i, *(("lights_set", json.dumps({"lights": {"brightness": i % 100, "transition": 1}}))
                                   if i % 2 else ("music_set", json.dumps({"music": {"volume": i % 60}}))))
            for i in range(1, events + 1)])
        conn.execute("INSERT INTO events VALUES ('long', ?, ?, 'ended', '{\"reason\": \"completed\"}')",
                     (events + 1, start + 2.0 * (events + 1)))
    conn.close()
    return "long"


def test_lights_up_answers_at_once_while_a_long_report_is_drawn(tmp_path: Path) -> None:
    data = tmp_path / "data"
    session_id = long_session(data / "sessions.db")
    with SessionStore.open(data / "sessions.db") as store, service(data, store) as (srv, tablet):
        tablet.ok("POST", "/api/rooms/a/session", json={"preset": "drill"})
        drawn: list[float] = []
        stop = threading.Event()

        def draw() -> None:
            with srv.client(srv.pair()) as other:
                while not stop.is_set():
                    t = time.monotonic()
                    r = other.get(f"/api/sessions/{session_id}/report.svg", timeout=120)
                    assert r.status_code == 200 and r.text.startswith("<svg"), r.text[:200]
                    drawn.append(time.monotonic() - t)

        drawer = threading.Thread(target=draw)
        drawer.start()
        try:
            time.sleep(0.5)
            took: list[float] = []
            while len(drawn) < 2 or len(took) < 40:
                took.append(tablet.lights_up(len(took) % 2 == 0))
                time.sleep(0.05)
                assert len(took) < 400, "the reports never finished"
        finally:
            stop.set()
            drawer.join(timeout=120)
        ordered = sorted(took)
        p95 = ordered[int(len(ordered) * 0.95)]
        print(f"reports of 12,600 events took {', '.join(f'{d:.2f}' for d in drawn)} s; over {len(took)} presses "
              f"meanwhile Lights up answered in {1000 * ordered[len(ordered) // 2]:.0f} ms (median), "
              f"{1000 * p95:.0f} ms (95th percentile), {1000 * ordered[-1]:.0f} ms at most")
        # The 95th percentile, not the slowest press: on a 2-core machine shared with other work the
        # scheduler alone can hold any one answer up; the report must not hold up the rest.
        assert p95 < LIGHTS_UP_ANSWER_S, f"Lights up answered after {p95 * 1000:.0f} ms (95th percentile)"
        assert ordered[-1] < 1.0, f"Lights up answered after {ordered[-1] * 1000:.0f} ms"


# --- Lights up on a Hue bridge while the wall clock is stepped ----------------------------------


def test_lights_up_reaches_a_hue_bridge_while_the_wall_clock_is_stepped_back(tmp_path: Path) -> None:
    """The Hue pacing runs on session time: a wall clock put back 10 minutes holds nothing up."""
    data = tmp_path / "data"
    wall = SteppingWall()
    lights_up = units.percent_to_bri(100)

    def bri(value: int) -> Callable[[RecordedRequest], bool]:
        return lambda r: r.method == "PUT" and isinstance(r.body, dict) and r.body.get("bri") == value

    with HueBridgeEmulator() as bridge, SessionStore.open(data / "sessions.db") as store:
        cfg = parse_config({
            "rooms": [{"name": "A", "lights": {"kind": "hue", "bridge": bridge.host, "group": "1", "timeout": "1s"},
                       "audio": {"kind": "simulated"}}],
            "data_dir": str(data), "pin": PIN,
            "hue_bridges": {bridge.host: {"username": DEFAULT_USER, "plain_http": True}}})
        with running_app(cfg, store=store, clock=RealClock(wall=wall)) as srv, srv.client(srv.pair()) as client:
            tablet = Tablet(client)
            assert tablet.call("POST", "/api/presets", params={"id": "drill"}, json=DRILL).status_code == 201
            tablet.ok("POST", "/api/rooms/a/session", json={"preset": "drill"})
            assert bridge.wait_for(bri(units.percent_to_bri(60)), timeout_s=5) is not None
            wall.offset = -600.0
            before = len(bridge.requests)
            pressed = time.monotonic()
            assert tablet.lights_up(True) <= 1.0
            assert tablet.state()["emergency"] is True
            up = bridge.wait_for(bri(lights_up), timeout_s=3, after=before)
            assert up is not None, "the bridge never got Lights up"
            assert up.arrival_s - pressed <= LATE_S
            wall.offset = 0.0
            before = len(bridge.requests)
            assert tablet.lights_up(False) <= 1.0
            assert bridge.wait_for(lambda r: r.method == "PUT", timeout_s=3, after=before) is not None
