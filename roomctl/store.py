"""The session store: every session's preset snapshot and events in one SQLite file.

The session log IS the session (see `roomctl.timeline`), so the store is the record for
clinical notes and the source of crash recovery. `SessionStore.sink(room)` is the runner's
durability hook: it is called before an event is appended or acknowledged, and it returns
only once the event is on disk (WAL, ``synchronous=FULL``: one fsync per event).

One writing connection, guarded by a lock, takes every write; it runs on the event loop
thread: an insert is tens of microseconds, its fsync about 0.3 ms on the development
machine's disk (bench/store.py). Reads (history, exports) use read-only connections of their
own, one per thread, so a long read never holds the writer's lock while a session records.

The store never destroys what it cannot read:

- Before SQLite touches anything, the files are looked at: a missing or empty main file
  beside a write-ahead log (``-wal``) is refused (SQLite would delete the log, and with it
  the latest records), as is a main file that is not a database or a log that is not one.
- An existing store is checked through a read-only connection (`quick_check`), which can
  never checkpoint the log into a file that turns out damaged.
- A guard connection is held open while the store is, so closing the writer never
  checkpoints on its own: `close` checkpoints explicitly, and only while the files are
  still the ones roomctl opened and no write has failed.
- The files are watched (`watch`, and before every write): a store deleted, moved or
  replaced while roomctl runs is noticed, every write is refused from then on (nothing is
  written into a file nobody will see, nothing new is created in its place), and when it
  was deleted, what roomctl still holds open is saved beside it as ``<name>.rescued-<time>``.
- A failed write (a full disk, an I/O error) is refused with the store's own message and
  remembered in `problem` until a write goes through again (`watch` probes every second).
- Reading is row by row: a damaged event is named and left out, a session whose preset
  snapshot cannot be read is listed as damaged; neither hides the other sessions.

`roomctl store check | repair | backup` (`roomctl.salvage`) examine a store on a copy,
salvage what can be read into a new file, and take consistent online backups.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, get_args

from pydantic import ValidationError

from roomctl import units
from roomctl.events import Event, EventKind
from roomctl.preset import Preset
from roomctl.session import EventSink, Session

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: the audit list
APPLICATION_ID = 0x726F6F6D  # "room": marks the file as a roomctl store
SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")  # the two byte orders of a WAL header
RESCUED = ".rescued-"  # <name>.rescued-<time>: what roomctl saved of a store deleted under it
_OPEN_BUSY_MS = 300  # a foreign writer holding the file at open: refuse quickly
_BUSY_MS = 2000  # we hold the lock file, so only a foreign reader's checkpoint can be in the way

_SCHEMA = """
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    room        TEXT NOT NULL,
    preset_json TEXT NOT NULL,
    label       TEXT,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    end_reason  TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_room_started ON sessions (room, started_at);
CREATE TABLE events (
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
""" + """
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    session_id  TEXT NOT NULL,
    action      TEXT NOT NULL,
    device_id   TEXT,
    device_name TEXT,
    detail      TEXT
);
CREATE INDEX audit_session ON audit (session_id, seq);
"""
# The audit list has no reference to `sessions` on purpose: the line saying who deleted a
# record outlives the record.
_AUDIT_SCHEMA = _SCHEMA[_SCHEMA.index("CREATE TABLE audit"):]

AuditAction = Literal["export.json", "export.csv", "monitoring.html", "monitoring.csv", "label", "deleted",
                      "purged"]
AUDIT_ACTIONS: tuple[AuditAction, ...] = get_args(AuditAction)


class StoreError(Exception):
    """The session store cannot do what was asked; the message says which file and why."""


class DamagedSession(StoreError):
    """A session whose record cannot be read back (its preset snapshot is damaged)."""


@dataclass(frozen=True)
class StoredSession:
    """A recorded session: the `Session` (preset snapshot, events in order, label) and its
    room. ``ended_at`` is None while the session has not ended (recovery at start-up).
    ``damaged`` names the events that could not be read back (left out of ``session``), and
    ``reordered`` counts the events whose stored time went back (an older roomctl recorded
    the wall clock, which can step back): they are replayed in the order recorded, at the
    time of the event before them, with the stored time kept as their ``wall`` time."""

    room: str
    session: Session
    started_at: float
    ended_at: float | None
    end_reason: str | None
    damaged: tuple[str, ...] = ()
    reordered: int = 0

    @property
    def id(self) -> str:
        return self.session.id


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit list: a record exported, printed, renamed or deleted, by whom."""

    at: float
    session_id: str
    action: AuditAction
    device_id: str | None = None
    device_name: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SessionSummary:
    """One line of the session list. ``damaged`` says why the session cannot be read back
    (None: as far as the list can tell, it can)."""

    id: str
    room: str
    preset_name: str
    label: str | None
    started_at: float
    ended_at: float | None
    end_reason: str | None
    duration_s: float | None  # None while the session has not ended
    event_count: int
    damaged: str | None = None


@dataclass
class Recoverable:
    """What start-up finds unfinished: sessions to continue, and those that cannot be read
    back (room, session id, why), which stay in the store untouched."""

    sessions: list[StoredSession] = field(default_factory=list)
    damaged: list[tuple[str, str, str]] = field(default_factory=list)


# --- reading rows one by one ------------------------------------------------------------------
# Reading connections return text as bytes, so that a damaged value fails in our hands, for its
# own row, rather than inside the query for every row.


def _text(value: object, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"its {what} holds bytes that are not text") from None
    if isinstance(value, str):
        return value
    raise ValueError(f"its {what} is a {type(value).__name__}, not text")


def _opt_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _shown(value: object) -> str:
    """A value for a message or a list, readable even when damaged."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"its {what} is not a number")
    return float(value)


def read_event(at: object, kind: object, payload: object) -> Event:
    """One stored event row as an `Event`; raises ValueError or ValidationError when damaged."""
    data = json.loads(_text(payload, "event data"))
    if not isinstance(data, dict):
        raise ValueError("its event data is not an object")
    return Event.model_validate({**data, "kind": _text(kind, "kind"), "at": _number(at, "time")})


def read_preset(preset_json: object) -> Preset:
    return Preset.model_validate(json.loads(_text(preset_json, "preset snapshot")))


def in_time_order(events: list[Event]) -> tuple[list[Event], int]:
    """The events as the timeline needs them, never going back in time: an event stored with a
    time before the one recorded ahead of it is replayed at that earlier event's time, and its
    stored time is kept as the wall time it was. Returns the events and how many moved."""
    out: list[Event] = []
    moved = 0
    for e in events:
        if out and e.at < out[-1].at:
            e = e.model_copy(update={"at": out[-1].at, "wall": e.wall if e.wall is not None else e.at})
            moved += 1
        out.append(e)
    return out, moved


def read_session(db: sqlite3.Connection, session_id: str, path: Path) -> StoredSession | None:
    """A session read back row by row from a reading connection (text as bytes), or None.
    Raises DamagedSession when its preset snapshot cannot be read; damaged events are left
    out and named in ``damaged``."""
    row = db.execute("SELECT room, preset_json, label, started_at, ended_at, end_reason"
                     " FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        return None
    room_v, preset_v, label_v, started_v, ended_v, reason_v = row
    try:
        preset = read_preset(preset_v)
        room = _text(room_v, "room")
        started_at = _number(started_v, "start time")
        ended_at = None if ended_v is None else _number(ended_v, "end time")
    except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
        raise DamagedSession(f"session store {path}: session {session_id} cannot be read back: "
                             f"{_first_line(err)}. It is left as it is in the store; "
                             "`roomctl store check` says more.") from None
    damaged: list[str] = []
    label = _readable(label_v, "label", damaged)
    end_reason = _readable(reason_v, "end reason", damaged)
    events: list[Event] = []
    for seq, at, kind, payload in db.execute(
            "SELECT seq, at, kind, payload_json FROM events WHERE session_id = ? ORDER BY seq",
            (session_id,)):
        try:
            events.append(read_event(at, kind, payload))
        except (ValueError, ValidationError) as err:
            damaged.append(f"event {seq} ({_shown(kind)[:20] or '?'}) cannot be read: {_first_line(err)}")
    if not events or events[0].kind is not EventKind.STARTED:
        # The start is known from the session's own row: the rest still replays from it.
        damaged.append("its 'started' event is missing or damaged: the session starts at its recorded start time")
        events.insert(0, Event(kind=EventKind.STARTED, at=started_at))
    events, moved = in_time_order(events)
    return StoredSession(room, Session(session_id, preset, events, label), started_at, ended_at,
                         end_reason, tuple(damaged), moved)


def _readable(value: object, what: str, damaged: list[str]) -> str | None:
    try:
        return _opt_text(value, what)
    except ValueError as err:
        damaged.append(str(err))
        return _shown(value)


def _first_line(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        e = err.errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ()))
        return f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid"))
    return str(err).splitlines()[0] if str(err) else type(err).__name__


_SUMMARY_SQL = (
    "SELECT s.id, s.room, CASE WHEN json_valid(s.preset_json) THEN json_extract(s.preset_json, '$.name')"
    " ELSE NULL END, json_valid(s.preset_json), s.label, s.started_at, s.ended_at, s.end_reason FROM sessions s"
)


def _summary(db: sqlite3.Connection, row: tuple[Any, ...]) -> SessionSummary:
    sid_v, room_v, name_v, json_ok, label_v, started_v, ended_v, reason_v = row
    problems: list[str] = []
    if not json_ok:
        problems.append("its preset snapshot is not readable JSON")
    values: dict[str, Any] = {}
    for key, value, what in (("id", sid_v, "id"), ("room", room_v, "room"), ("name", name_v, "preset name"),
                             ("label", label_v, "label"), ("reason", reason_v, "end reason")):
        try:
            values[key] = _opt_text(value, what)
        except ValueError as err:
            problems.append(str(err))
            values[key] = _shown(value)
    try:
        started = _number(started_v, "start time")
        ended = None if ended_v is None else _number(ended_v, "end time")
    except ValueError as err:
        problems.append(str(err))
        started, ended = 0.0, None
    try:
        count = int(db.execute("SELECT count(*) FROM events WHERE session_id = CAST(? AS TEXT)",
                               (sid_v,)).fetchone()[0])
    except sqlite3.DatabaseError as err:
        problems.append(f"its events cannot be counted ({err})")
        count = 0
    return SessionSummary(values["id"] or "", values["room"] or "", values["name"] or "", values["label"],
                          started, ended, values["reason"],
                          None if ended is None else max(0.0, ended - started), count,
                          "; ".join(problems) or None)


def event_payload(event: Event) -> str:
    # Python-mode dump: floats stay exact (the JSON-mode "1.23457s" form rounds to 6 digits).
    return json.dumps(event.model_dump(exclude_none=True, exclude={"kind", "at"}))


def preset_json(preset: Preset) -> str:
    return json.dumps(preset.model_dump(), ensure_ascii=False)


# --- the store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """Which file is at a path (device and inode), to notice it deleted, moved or replaced."""

    dev: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Identity:
        return cls(st.st_dev, st.st_ino)


class SessionStore:
    """Sessions and their events in SQLite. Open with `SessionStore.open(path)`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, guard: sqlite3.Connection,
                 lock_file: IO[str]) -> None:
        self.path = path
        self._conn = conn
        self._guard = guard  # read-only, held open: closing the writer never checkpoints by itself
        self._lock_file = lock_file
        self._lock = threading.Lock()
        self._closed = False
        self._main_fd = os.open(path, os.O_RDONLY)  # to tell a deleted file from a moved one
        self._main = _Identity.of(os.fstat(self._main_fd))
        self._wal = _identity(_wal_path(path))
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self.missing: str | None = None  # the files are not where roomctl opened them
        self.write_error: str | None = None  # the last write failed, and none has gone through since
        self.stalled: str | None = None  # set by the service when a look at the files did not come back
        self.rescued: Path | None = None
        # The session time up to which the last roomctl on this store is known to have run (it
        # notes it in the lock file every second): recovery continues from there at the earliest.
        self.last_alive = _last_alive(lock_file)

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> SessionStore:
        """Open the store at ``path``, creating its folder and the database when neither the
        file nor a log of it exists. Raises StoreError, changing nothing, when the files are
        there but cannot be used, or when another roomctl process has them open."""
        p = Path(path)
        if p.exists() and not p.is_file():
            raise StoreError(f"session store {p}: this is not a file (a folder?). "
                             "Give the path of a database file, e.g. <data dir>/sessions.db.")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"session store {p}: cannot create its folder {p.parent}: "
                             f"{err.strerror or err}. Check the data directory setting.") from None
        lock_file = _acquire_lock(p)
        try:
            existed = check_files(p)
            if existed:
                check_read_only(p)
            conn = _connect(p, existed)
            try:
                guard = reader_connection(p)
                store = cls(p, conn, guard, lock_file)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            _release_lock(lock_file)
            raise
        log.info("session store %s open (%s)", p, "existing" if existed else "new")
        return store

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self.missing is None and self.write_error is None and self._identity_problem() is None:
                    # The files are ours and sound: fold the log into the database. Otherwise the
                    # log is left exactly as it is, for `roomctl store check` to look at.
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                with self._readers_lock:
                    readers, self._readers = list(self._readers.values()), {}
                for conn in (*readers, self._conn, self._guard):
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
            finally:
                os.close(self._main_fd)
                _release_lock(self._lock_file)

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- health -----------------------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why the record cannot be written now (None: it can)."""
        return self.missing or self.write_error or self.stalled

    def watch(self, now: float | None = None) -> bool:
        """Look at the files, and when a write has failed, try one (a probe that changes no
        record); note ``now`` (session time) as the time this roomctl was last seen running.
        Called every second by the service, off the event loop. Returns whether `problem`
        changed."""
        before = self.problem
        with self._lock:
            if self._closed:
                return False
            if now is not None:
                _note_alive(self._lock_file, now)
            self._check_files_in_place()
            if self.missing is None and self.write_error is not None:
                with contextlib.suppress(StoreError):
                    self._write_locked("write (a test)", _probe)
        return self.problem != before

    def note_alive(self, now: float) -> None:
        """Note ``now`` (session time) as the time this roomctl was last seen running."""
        with self._lock:
            if not self._closed:
                _note_alive(self._lock_file, now)

    def _check_files_in_place(self) -> None:
        problem = self._identity_problem()
        if problem is None:
            if self.missing is not None:
                log.warning("session store %s is back where it was: recording again", self.path)
            self.missing = None
            return
        if self.missing is None:
            log.error("%s", problem)
            if os.fstat(self._main_fd).st_nlink == 0:
                self._rescue()
                if self.rescued is not None:
                    problem += (f" roomctl saved every record it held to {self.rescued}: rename it to "
                                f"{self.path.name} (roomctl stopped) to go on with them.")
        self.missing = problem

    def _identity_problem(self) -> str | None:
        if self._wal is None:  # the log appears with the first write
            self._wal = _identity(_wal_path(self.path))
        here = None
        for what, p, ours in (("its database file", self.path, self._main),
                              ("its write-ahead log", _wal_path(self.path), self._wal)):
            if ours is None:
                continue
            try:
                now = _Identity.of(os.stat(p))
            except FileNotFoundError:
                here = f"{what} {p} was deleted or moved away"
                break
            except OSError as err:
                here = f"{what} {p} cannot be looked at ({err.strerror or err})"
                break
            if now != ours:
                here = f"{what} {p} was replaced by another file"
                break
        if here is None:
            return None
        return (f"session store {self.path}: {here} while roomctl was running. Nothing is recorded "
                "until the same file is back in its place (a restart never makes an empty store in "
                "its place on its own).")

    def _rescue(self) -> None:
        """Save what the open connection still sees of a database deleted under it."""
        target = self.path.with_name(f"{self.path.name}{RESCUED}{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            dst = sqlite3.connect(target)
            try:
                self._conn.backup(dst)
            finally:
                dst.close()
        except (sqlite3.Error, OSError) as err:
            log.error("session store %s: saving the deleted store's records to %s failed: %s",
                      self.path, target, err)
            with contextlib.suppress(OSError):
                target.unlink()
            return
        self.rescued = target
        log.error("session store %s was deleted while roomctl ran: its records are saved in %s",
                  self.path, target)

    # --- recording --------------------------------------------------------------------------

    def sink(self, room: str) -> EventSink:
        """The SessionRunner's ``event_sink`` for ``room``: returns once the event is durable,
        raises StoreError (and the runner refuses the command) when it cannot be written."""

        def record(session: Session, event: Event) -> None:
            self._record(room, session, event)

        return record

    def _record(self, room: str, session: Session, event: Event) -> None:
        def write(db: sqlite3.Connection) -> None:
            if event.kind is EventKind.STARTED:
                db.execute(
                    "INSERT INTO sessions (id, room, preset_json, label, started_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (session.id, room, preset_json(session.preset), session.label, event.at),
                )
            # The next number after the last stored one: a session continued after some of its
            # rows were found damaged still numbers its new events after all of them.
            db.execute(
                "INSERT INTO events (session_id, seq, at, kind, payload_json) VALUES"
                " (?, (SELECT coalesce(max(seq), -1) + 1 FROM events WHERE session_id = ?), ?, ?, ?)",
                (session.id, session.id, event.at, event.kind.value, event_payload(event)),
            )
            if event.kind is EventKind.ENDED:
                db.execute(
                    "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                    (event.at, event.reason, session.id),
                )

        self._write(f"record {event.kind} of session {session.id}", write)

    # --- reading ----------------------------------------------------------------------------

    def recoverable(self) -> Recoverable:
        """Sessions that have not ended, oldest first: to continue at start-up. A session that
        cannot be read back is named in ``damaged`` (it stays in the store)."""
        with self._read() as db:
            ids = [_shown(r[0]) for r in db.execute(
                "SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY started_at, id")]
        out = Recoverable()
        for sid in ids:
            try:
                stored = self.get(sid)
            except DamagedSession as err:
                log.error("session %s cannot be continued: %s", sid, err)
                summary = self.summary(sid)
                out.damaged.append((summary.room if summary else "?", sid, str(err)))
                continue
            if stored is not None:
                out.sessions.append(stored)
        return out

    def unfinished(self) -> list[StoredSession]:
        """`recoverable` without the damaged ones."""
        return self.recoverable().sessions

    def get(self, session_id: str) -> StoredSession | None:
        """A session, or None; raises DamagedSession when it cannot be read back."""
        with self._read() as db:
            stored = read_session(db, session_id, self.path)
        if stored is not None and (stored.damaged or stored.reordered):
            log.warning("session %s read back with %d damaged record(s) left out and %d event(s) "
                        "whose stored time went back: %s", session_id, len(stored.damaged),
                        stored.reordered, "; ".join(stored.damaged[:3]))
        return stored

    def list_sessions(self, room: str | None = None, limit: int = 50,
                      offset: int = 0) -> list[SessionSummary]:
        """Most recent first; a session that cannot be read back is listed with ``damaged``."""
        where, args = ("WHERE s.room = ?", [room]) if room is not None else ("", [])
        with self._read() as db:
            rows = db.execute(
                f"{_SUMMARY_SQL} {where} ORDER BY s.started_at DESC, s.id LIMIT ? OFFSET ?",
                (*args, max(0, limit), max(0, offset))).fetchall()
            return [_summary(db, row) for row in rows]

    def summary(self, session_id: str) -> SessionSummary | None:
        """One session's line of the list, or None."""
        with self._read() as db:
            row = db.execute(f"{_SUMMARY_SQL} WHERE s.id = ?", (session_id,)).fetchone()
            return None if row is None else _summary(db, row)

    # --- editing ----------------------------------------------------------------------------

    def set_label(self, session_id: str, label: str | None, *, by: AuditEntry | None = None) -> bool:
        """Name a session ("Client A, 3rd session"); False when there is no such session.
        ``by`` (its ``at`` and device) is added to the audit list in the same transaction."""
        def work(db: sqlite3.Connection) -> bool:
            found = db.execute("UPDATE sessions SET label = ? WHERE id = ?", (label, session_id)).rowcount > 0
            if found and by is not None:
                _audit(db, replace(by, session_id=session_id, action="label", detail=label or "(cleared)"))
            return found
        return bool(self._write(f"label session {session_id}", work))

    def delete(self, session_id: str, *, by: AuditEntry | None = None) -> bool:
        """Delete a session and its events; False when there is no such session. The caller
        must not delete a session a runner is still recording. ``by`` is added to the audit
        list in the same transaction, with what the record was (it is gone afterwards)."""
        def work(db: sqlite3.Connection) -> bool:
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                return False
            if by is not None:
                _audit(db, replace(by, session_id=session_id, action="deleted", detail=_what(db, session_id)))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            return True
        found = bool(self._write(f"delete session {session_id}", work))
        if found:
            self._checkpoint()
        return found

    def purge_older_than(self, days: float, now: float, *, by: AuditEntry | None = None) -> int:
        """Retention: delete sessions that ENDED more than ``days`` before ``now``; returns
        how many. Sessions that have not ended are kept (they may be running or waiting for
        recovery). Deleted content is overwritten (``secure_delete``) and the WAL truncated.
        Each deleted session gets a line in the audit list (``by``'s device, or none: the
        service's own retention), in the same transaction."""
        if days < 0:
            raise ValueError("days must not be negative")
        cutoff = now - days * 86400.0
        line = by if by is not None else AuditEntry(at=now, session_id="", action="purged")

        def work(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,))]
            why = f"older than {days:g} days"
            for sid in ids:
                _audit(db, replace(line, session_id=sid, action="purged", detail=f"{_what(db, sid)}; {why}"))
            db.execute("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,))
            return len(ids)

        n = int(self._write("purge old sessions", work))
        if n:
            self._checkpoint()
            log.info("purged %d session(s) that ended before %s", n, units.format_iso(cutoff))
        return n

    # --- the audit list ---------------------------------------------------------------------

    def record_audit(self, entry: AuditEntry) -> None:
        """Add a line to the audit list (an export or a printout of a record): durable before
        the caller hands the record out."""
        self._write(f"record {entry.action} of session {entry.session_id}", lambda db: _audit(db, entry))

    def audit(self, session_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The audit list, newest first: of one session, or of every session (deleted ones too)."""
        where, args = ("WHERE session_id = ?", [session_id]) if session_id is not None else ("", [])
        with self._read() as db:
            rows = db.execute("SELECT at, session_id, action, device_id, device_name, detail FROM audit "
                              f"{where} ORDER BY seq DESC LIMIT ?", (*args, max(0, limit))).fetchall()
        return [AuditEntry(at=float(r[0]), session_id=_loose(r[1]), action=_action(r[2]),
                           device_id=_text_or_none(r[3]), device_name=_text_or_none(r[4]),
                           detail=_text_or_none(r[5])) for r in rows]

    # --- internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """This thread's reading connection (read-only, text as bytes), never the writer's lock."""
        if self._closed:
            raise StoreError(f"session store {self.path} is closed")
        if self.missing is not None:
            raise StoreError(self.missing)
        key = threading.get_ident()
        with self._readers_lock:
            db = self._readers.get(key)
        if db is None:
            try:
                db = reader_connection(self.path)
            except sqlite3.Error as err:
                raise StoreError(f"session store {self.path}: cannot read it: {err}") from None
            with self._readers_lock:
                if self._closed:
                    db.close()
                    raise StoreError(f"session store {self.path} is closed")
                self._readers[key] = db
        try:
            yield db
        except sqlite3.Error as err:
            raise StoreError(f"session store {self.path}: read failed: {err}. "
                             "`roomctl store check` says whether the file is damaged.") from err
        finally:
            if db.in_transaction:
                db.rollback()

    def _write(self, what: str, work: Any) -> Any:
        with self._lock:
            if self._closed:
                raise StoreError(f"session store {self.path} is closed")
            self._check_files_in_place()
            if self.missing is not None:
                raise StoreError(self.missing)
            return self._write_locked(what, work)

    def _write_locked(self, what: str, work: Any) -> Any:
        """One transaction, committed (and fsynced) before the caller goes on."""
        db = self._conn
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as err:  # a wrong request, not a failing store
            raise StoreError(f"session store {self.path}: cannot {what}: {err}") from err
        except sqlite3.Error as err:
            why = self._explain(err)
            problem = f"session store {self.path} cannot be written: {why}"
            if problem != self.write_error:
                log.error("%s", problem)
            self.write_error = problem
            raise StoreError(f"session store {self.path}: cannot {what}: {why}") from err
        if self.write_error is not None:
            log.warning("session store %s can be written again", self.path)
            self.write_error = None
        return result

    def _explain(self, err: sqlite3.Error) -> str:
        name = getattr(err, "sqlite_errorname", "") or ""
        folder = self.path.parent
        if name == "SQLITE_FULL" or _errno_is(err, errno.ENOSPC):
            try:
                usage = shutil.disk_usage(folder)
                free = f" ({usage.free // 1024} KB free of {usage.total // 1024 // 1024} MB)"
            except OSError:
                free = ""
            return f"the disk is full: free space on {_mount_of(folder)}{free}"
        if name.startswith("SQLITE_READONLY"):
            return f"the file cannot be written ({err}): check its and {folder}'s permissions"
        if name.startswith("SQLITE_IOERR"):
            return f"the disk failed a write ({name}: {err}): check the disk, then `roomctl store check`"
        if name.startswith("SQLITE_CORRUPT") or "malformed" in str(err):
            return f"the file is damaged ({err}): `roomctl store check` says what can be saved"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return f"another program holds the file ({err}): close it (an sqlite3 shell?)"
        return f"{err}. Check the disk (space, permissions)"

    def _checkpoint(self) -> None:
        """Move deleted pages out of the WAL so removed records do not linger in it."""
        with self._lock:
            if self.missing is None and not self._closed:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _probe(db: sqlite3.Connection) -> None:
    # Rewrites the schema version with its own value: one page through the log and an fsync,
    # no record changed.
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _errno_is(err: BaseException, code: int) -> bool:
    return any(isinstance(e, OSError) and e.errno == code for e in (err, err.__cause__, err.__context__))


def _mount_of(folder: Path) -> str:
    """The folder, and the mount it lives on when that is not the root file system."""
    p = folder.resolve()
    mount = p
    while not mount.is_mount() and mount != mount.parent:
        mount = mount.parent
    return f"{p}" if str(mount) in ("/", str(p)) else f"{p} (the disk mounted at {mount})"


# --- opening, step by step ---------------------------------------------------------------------


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _identity(path: Path) -> _Identity | None:
    try:
        return _Identity.of(os.stat(path))
    except OSError:
        return None


def _uri(path: Path, **params: str) -> str:
    query = urllib.parse.urlencode(params)
    return f"file:{urllib.parse.quote(str(path.resolve()))}" + (f"?{query}" if query else "")


def reader_connection(path: Path) -> sqlite3.Connection:
    """A read-only connection: it can never write, nor checkpoint the log on close."""
    conn = sqlite3.connect(_uri(path, mode="ro"), uri=True, timeout=_BUSY_MS / 1000,
                           isolation_level=None, check_same_thread=False)
    conn.text_factory = bytes
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()  # takes its share of the file now
    except BaseException:
        conn.close()
        raise
    return conn


def _acquire_lock(path: Path) -> IO[str]:
    """An advisory lock beside the database, so two roomctl processes never share one store
    (the second would record a room twice and recover sessions already running)."""
    lock_path = _lock_path(path)
    try:
        # Read and write, not append: the file is rewritten in place (`_note_alive`).
        f = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8")
    except OSError as err:
        raise StoreError(f"session store {path}: cannot create the lock file {lock_path}: "
                         f"{err.strerror or err}. Check the data directory's permissions.") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = (_lock_lines(f) or ["unknown"])[0].strip() or "unknown"
        f.close()
        raise StoreError(f"session store {path} is in use by another roomctl process "
                         f"(pid {holder}). Stop that process first, or give this one its own "
                         "data directory.") from None
    previous = _lock_lines(f)[1:2]  # the last roomctl's time, kept until this one notes its own
    f.seek(0)
    f.truncate()
    f.write("\n".join([str(os.getpid()), *previous]) + "\n")
    f.flush()
    return f


def held_by_another(path: Path) -> bool:
    """Whether a roomctl process has the store at ``path`` open now (its lock is taken)."""
    try:
        with open(_lock_path(path), encoding="utf-8") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def _last_alive(f: IO[str]) -> float | None:
    lines = _lock_lines(f)
    try:
        return float(lines[1]) if len(lines) > 1 else None
    except ValueError:
        return None


def _lock_lines(f: IO[str]) -> list[str]:
    f.seek(0)
    return f.read().splitlines()


def _note_alive(f: IO[str], now: float) -> None:
    """The lock file says who holds the store, and until when (session time) it surely ran. No
    fsync: after a power cut, a time a second or two old is as good."""
    with contextlib.suppress(OSError):
        f.seek(0)
        f.write(f"{os.getpid()}\n{now!r}\n")
        f.truncate()
        f.flush()


def _release_lock(f: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    f.close()


def _size_kb(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1024 / 1024:.0f} MB"


def check_files(path: Path) -> bool:
    """Whether ``path`` holds a database already, looked at before SQLite may touch anything.
    Refuses files that are not what they should be, and every case where SQLite would quietly
    throw records away (it deletes a log whose database is missing or empty)."""
    keep = ("roomctl has not changed either file. Keep both together: the log holds the latest "
            "records. `roomctl store check` says what they hold.")
    wal = _wal_path(path)
    try:
        wal_size = wal.stat().st_size
    except FileNotFoundError:
        wal_size = 0
    except OSError as err:
        raise StoreError(f"session store {path}: cannot look at its log {wal}: {err.strerror or err}.") from None
    if wal_size:
        try:
            with open(wal, "rb") as f:
                wal_head = f.read(4)
        except OSError as err:
            raise StoreError(f"session store {path}: cannot read its log {wal}: {err.strerror or err}. "
                             "Give the roomctl user read and write access to it.") from None
        if wal_head not in WAL_MAGICS:
            raise StoreError(f"session store {path}: its log {wal} ({_size_kb(wal_size)}) is not an SQLite "
                             "write-ahead log (damaged, or another kind of file). roomctl has not changed "
                             "it. Move it aside only if you are sure it holds no records.")
    try:
        with open(path, "r+b") as f:  # read and write access; nothing is written
            header = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        rescued = sorted(path.parent.glob(f"{path.name}{RESCUED}*"))
        if rescued:
            old_log = (f" (its old log {wal.name} is in it too: move that aside first)" if wal_size else "")
            raise StoreError(f"session store {path} is missing; {rescued[-1]} holds every record roomctl "
                             f"had when it was deleted while running. Rename that file to {path.name} to "
                             f"go on with them{old_log}, or move it elsewhere to start with an empty "
                             "store.") from None
        if wal_size:
            raise StoreError(f"session store {path} is missing, but its write-ahead log {wal} "
                             f"({_size_kb(wal_size)}) is there: it holds the latest records of that "
                             f"store and is of no use without it. Put {path.name} back beside it. "
                             f"{keep}") from None
        return False
    except OSError as err:
        raise StoreError(f"session store {path}: cannot read and write it: {err.strerror or err}. "
                         "Give the roomctl user read and write access to the file and its "
                         "folder.") from None
    if not header:
        if wal_size:
            raise StoreError(f"session store {path} is empty (0 bytes), but its write-ahead log {wal} "
                             f"({_size_kb(wal_size)}) is there: the file was cut short, and the "
                             f"records are lost to SQLite unless it is restored. {keep} Restore "
                             f"{path.name} from a backup, or `roomctl store repair` to save what "
                             "the log holds.")
        return False  # an empty file with no log holds nothing to lose: SQLite starts a database in it
    if header != SQLITE_MAGIC:
        raise StoreError(f"session store {path} is not an SQLite database (damaged, or another "
                         "kind of file). roomctl has not changed it. Move it aside to start "
                         "with an empty store, or restore it from a backup.")
    return True


def check_read_only(path: Path) -> None:
    """The quick check of an existing store, through a read-only connection: whatever it finds,
    neither the file nor its log is changed (a read-only connection never checkpoints)."""
    damaged = ("roomctl has not changed it (nor its log). Keep it: it holds session records. "
               "`roomctl store check` says what can be saved, `roomctl store repair` saves it "
               "into a new file; or restore it from a backup.")
    try:
        conn = sqlite3.connect(_uri(path, mode="ro"), uri=True, timeout=_OPEN_BUSY_MS / 1000,
                               isolation_level=None)
    except sqlite3.Error as err:
        raise StoreError(f"session store {path}: cannot open it: {err}. Check the file's and "
                         "its folder's permissions.") from None
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(20)")]
        if problems != ["ok"]:
            found = "; ".join(line for p in problems for line in str(p).splitlines()
                              if not line.startswith("***"))
            raise StoreError(f"session store {path} is damaged (quick_check: {found[:300]}). {damaged}")
        _check_identity(conn, path)
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            raise StoreError(f"session store {path} is locked by another process ({err}). "
                             "Close whatever has it open (another roomctl, an sqlite3 shell) "
                             "and start again.") from None
        raise StoreError(f"session store {path}: cannot use it: {err}. {damaged}") from None
    except sqlite3.DatabaseError as err:
        raise StoreError(f"session store {path} is damaged ({err}). {damaged}") from None
    finally:
        conn.close()


def _connect(path: Path, existed: bool) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=_OPEN_BUSY_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"session store {path}: cannot open it: {err}. Check the file's and "
                         "its folder's permissions.") from None
    try:
        _prepare(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"session store {path}: cannot use write-ahead logging there "
                             f"(journal mode {mode}). Put the data directory on a local disk.")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")  # fails fast when another process is writing
        try:
            _migrate(conn, path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            raise StoreError(f"session store {path} is locked by another process ({err}). "
                             "Close whatever has it open (another roomctl, an sqlite3 shell) "
                             "and start again.") from None
        raise StoreError(f"session store {path}: cannot use it: {err}. Check the file's and "
                         "its folder's permissions and free disk space.") from None
    except sqlite3.DatabaseError as err:
        raise StoreError(f"session store {path} is damaged ({err}). roomctl has not changed "
                         "it.") from None


def _audit(db: sqlite3.Connection, e: AuditEntry) -> None:
    db.execute("INSERT INTO audit (at, session_id, action, device_id, device_name, detail) VALUES (?, ?, ?, ?, ?, ?)",
               (e.at, e.session_id, e.action, e.device_id, e.device_name, e.detail))


def _what(db: sqlite3.Connection, session_id: str) -> str:
    """What a record was, for the audit line that outlives it: its preset and start (not its
    label: a client reference goes with the record)."""
    row = db.execute("SELECT preset_json, started_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        return ""
    try:
        name = str(json.loads(row[0]).get("name") or "?")
    except (ValueError, AttributeError, TypeError):
        name = "?"
    return f"{name}, started {units.format_iso(float(row[1]))}"


def _loose(value: object) -> str:
    """Audit text as far as it can be read (a damaged byte does not hide the line)."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _text_or_none(value: object) -> str | None:
    return None if value is None else _loose(value)


def _action(value: object) -> AuditAction:
    text = _loose(value)
    for a in AUDIT_ACTIONS:
        if a == text:
            return a
    raise StoreError(f"the audit list holds an unknown action {text!r}")


def _check_identity(conn: sqlite3.Connection, path: Path) -> bool:
    """True for an empty database (to be set up), False for a roomctl store this version can
    use; refuses anything else."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    if version == 0 and app_id == 0 and not tables:
        return True
    if app_id != APPLICATION_ID:
        raise StoreError(f"session store {path} is an SQLite database, but not roomctl's "
                         f"(tables: {', '.join(map(_shown, tables)) or 'none'}). roomctl has not "
                         "changed it. Check the data directory setting.")
    if version > SCHEMA_VERSION:
        raise StoreError(f"session store {path} was written by a newer roomctl (schema "
                         f"{version}, this one knows {SCHEMA_VERSION}). Upgrade roomctl; the "
                         "file has not been changed.")
    return False


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Set up a new store; later schema versions migrate here, one step per version, inside
    the open transaction."""
    if _check_identity(conn, path):
        for statement in statements(_SCHEMA):
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < 2:  # 1 -> 2: the audit list
        for statement in statements(_AUDIT_SCHEMA):
            conn.execute(statement)
        conn.execute("PRAGMA user_version=2")


def create_schema(conn: sqlite3.Connection) -> None:
    """The roomctl schema in an empty database (a repair's new file), inside a transaction."""
    for statement in statements(_SCHEMA):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def statements(script: str) -> Sequence[str]:
    # Not executescript(): it would COMMIT the open transaction first.
    return [s.strip() for s in script.split(";") if s.strip()]


def wal_path(path: Path) -> Path:
    """Where SQLite keeps the write-ahead log of the database at ``path``."""
    return _wal_path(path)


__all__ = [
    "SCHEMA_VERSION",
    "DamagedSession",
    "Recoverable",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "StoredSession",
]
