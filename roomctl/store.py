"""The session store: every session's preset snapshot and events in one SQLite file.

The session log IS the session (see `roomctl.timeline`), so the store is the record for
clinical notes and the source of crash recovery. `SessionStore.sink(room)` is the runner's
durability hook: it is called before an event is appended or acknowledged, and it returns
only once the event is on disk (WAL, ``synchronous=FULL``: one fsync per event).

One connection, guarded by a lock, serves every thread. The sink runs on the event loop
thread: an insert is tens of microseconds, its fsync about 0.3 ms on the development machine's
disk (bench/store.py); on slow media (SD cards) an fsync can take tens of milliseconds.

An existing file that cannot be used (not a database, damaged, unreadable, or in use by
another roomctl) is refused with a `StoreError` that names the file and what to do. The
store never replaces or "repairs" a file it did not create: it holds clinical records.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from roomctl import units
from roomctl.events import Event, EventKind
from roomctl.preset import Preset
from roomctl.session import EventSink, Session

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x726F6F6D  # "room": marks the file as a roomctl store
_SQLITE_MAGIC = b"SQLite format 3\x00"
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
"""


class StoreError(Exception):
    """The session store cannot do what was asked; the message says which file and why."""


@dataclass(frozen=True)
class StoredSession:
    """A recorded session: the `Session` (preset snapshot, events in order, label) and its
    room. ``ended_at`` is None while the session has not ended (recovery at start-up)."""

    room: str
    session: Session
    started_at: float
    ended_at: float | None
    end_reason: str | None

    @property
    def id(self) -> str:
        return self.session.id


@dataclass(frozen=True)
class SessionSummary:
    """One line of the session list."""

    id: str
    room: str
    preset_name: str
    label: str | None
    started_at: float
    ended_at: float | None
    end_reason: str | None
    duration_s: float | None  # None while the session has not ended
    event_count: int


_SUMMARY_SQL = (
    "SELECT s.id, s.room, json_extract(s.preset_json, '$.name'), s.label, s.started_at,"
    " s.ended_at, s.end_reason, (SELECT count(*) FROM events e WHERE e.session_id = s.id)"
    " FROM sessions s"
)


def _summary(row: tuple[Any, ...]) -> SessionSummary:
    sid, room, name, label, started, ended, reason, count = row
    return SessionSummary(sid, room, name or "", label, started, ended, reason,
                          None if ended is None else max(0.0, ended - started), count)


def _event_payload(event: Event) -> str:
    # Python-mode dump: floats stay exact (the JSON-mode "1.23457s" form rounds to 6 digits).
    return json.dumps(event.model_dump(exclude_none=True, exclude={"kind", "at"}))


def _preset_json(preset: Preset) -> str:
    return json.dumps(preset.model_dump(), ensure_ascii=False)


class SessionStore:
    """Sessions and their events in SQLite. Open with `SessionStore.open(path)`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_file: IO[str]) -> None:
        self.path = path
        self._conn = conn
        self._lock_file = lock_file
        self._lock = threading.Lock()
        self._closed = False

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> SessionStore:
        """Open the store at ``path``, creating its folder and the database when the file does
        not exist. Raises StoreError (never replaces the file) when it exists but cannot be
        used, or when another roomctl process has it open."""
        p = Path(path)
        if p.exists() and not p.is_file():
            raise StoreError(f"session store {p}: this is not a file (a folder?). "
                             "Give the path of a database file, e.g. <data dir>/roomctl.db.")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"session store {p}: cannot create its folder {p.parent}: "
                             f"{err.strerror or err}. Check the data directory setting.") from None
        lock_file = _acquire_lock(p)
        try:
            existed = _check_existing(p)
            conn = _connect(p, existed)
        except BaseException:
            _release_lock(lock_file)
            raise
        log.info("session store %s open (%s)", p, "existing" if existed else "new")
        return cls(p, conn, lock_file)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()  # the last connection checkpoints and removes the WAL
            finally:
                _release_lock(self._lock_file)

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- recording --------------------------------------------------------------------------

    def sink(self, room: str) -> EventSink:
        """The SessionRunner's ``event_sink`` for ``room``: returns once the event is durable,
        raises StoreError (and the runner refuses the command) when it cannot be written."""

        def record(session: Session, event: Event) -> None:
            self._record(room, session, event)

        return record

    def _record(self, room: str, session: Session, event: Event) -> None:
        seq = len(session.events)  # called before the runner appends the event
        with self._write(f"record {event.kind} of session {session.id}") as db:
            if event.kind is EventKind.STARTED:
                db.execute(
                    "INSERT INTO sessions (id, room, preset_json, label, started_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (session.id, room, _preset_json(session.preset), session.label, event.at),
                )
            db.execute(
                "INSERT INTO events (session_id, seq, at, kind, payload_json) VALUES (?, ?, ?, ?, ?)",
                (session.id, seq, event.at, event.kind.value, _event_payload(event)),
            )
            if event.kind is EventKind.ENDED:
                db.execute(
                    "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                    (event.at, event.reason, session.id),
                )

    # --- reading ----------------------------------------------------------------------------

    def unfinished(self) -> list[StoredSession]:
        """Sessions that have not ended, oldest first: to recover at start-up. A session whose
        record cannot be read back is logged and left out (it stays in the store)."""
        with self._read() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY started_at, id")]
        out: list[StoredSession] = []
        for sid in ids:
            try:
                stored = self.get(sid)
            except StoreError:
                log.exception("session %s cannot be recovered", sid)
                continue
            if stored is not None:
                out.append(stored)
        return out

    def get(self, session_id: str) -> StoredSession | None:
        with self._read() as db:
            row = db.execute(
                "SELECT room, preset_json, label, started_at, ended_at, end_reason"
                " FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            rows = db.execute(
                "SELECT seq, at, kind, payload_json FROM events WHERE session_id = ? ORDER BY seq",
                (session_id,)).fetchall()
        room, preset_json, label, started_at, ended_at, end_reason = row
        try:
            preset = Preset.model_validate(json.loads(preset_json))
            events = [Event.model_validate({**json.loads(payload), "kind": kind, "at": at})
                      for _seq, at, kind, payload in rows]
            if not events or events[0].kind is not EventKind.STARTED:
                raise ValueError("its events do not begin with 'started'")
            if any(b.at < a.at for a, b in itertools.pairwise(events)):
                raise ValueError("its events are not in time order")
        except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
            raise StoreError(f"session store {self.path}: session {session_id} cannot be read "
                             f"back: {err}") from None
        return StoredSession(room, Session(session_id, preset, events, label),
                             started_at, ended_at, end_reason)

    def list_sessions(self, room: str | None = None, limit: int = 50,
                      offset: int = 0) -> list[SessionSummary]:
        """Most recent first."""
        where, args = ("WHERE s.room = ?", [room]) if room is not None else ("", [])
        with self._read() as db:
            rows = db.execute(
                f"{_SUMMARY_SQL} {where} ORDER BY s.started_at DESC, s.id LIMIT ? OFFSET ?",
                (*args, max(0, limit), max(0, offset))).fetchall()
        return [_summary(row) for row in rows]

    def summary(self, session_id: str) -> SessionSummary | None:
        """One session's line of the list, or None."""
        with self._read() as db:
            row = db.execute(f"{_SUMMARY_SQL} WHERE s.id = ?", (session_id,)).fetchone()
        return None if row is None else _summary(row)

    # --- editing ----------------------------------------------------------------------------

    def set_label(self, session_id: str, label: str | None) -> bool:
        """Name a session ("Client A, 3rd session"); False when there is no such session."""
        with self._write(f"label session {session_id}") as db:
            cur = db.execute("UPDATE sessions SET label = ? WHERE id = ?", (label, session_id))
            return cur.rowcount > 0

    def delete(self, session_id: str) -> bool:
        """Delete a session and its events; False when there is no such session. The caller
        must not delete a session a runner is still recording."""
        with self._write(f"delete session {session_id}") as db:
            cur = db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            found = cur.rowcount > 0
        if found:
            self._checkpoint()
        return found

    def purge_older_than(self, days: float, now: float) -> int:
        """Retention: delete sessions that ENDED more than ``days`` before ``now``; returns
        how many. Sessions that have not ended are kept (they may be running or waiting for
        recovery). Deleted content is overwritten (``secure_delete``) and the WAL truncated."""
        if days < 0:
            raise ValueError("days must not be negative")
        cutoff = now - days * 86400.0
        with self._write("purge old sessions") as db:
            n = db.execute("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?",
                           (cutoff,)).rowcount
        if n:
            self._checkpoint()
            log.info("purged %d session(s) that ended before %s", n, units.format_iso(cutoff))
        return n

    # --- internals --------------------------------------------------------------------------

    def _require(self, session_id: str) -> StoredSession:
        stored = self.get(session_id)
        if stored is None:
            raise KeyError(session_id)
        return stored

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as err:
                raise StoreError(f"session store {self.path}: read failed: {err}") from err

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction, committed (and fsynced) before the block's caller goes on."""
        with self._lock:
            self._check_open()
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as err:
                raise StoreError(f"session store {self.path}: cannot {what}: {err}") from err
            except sqlite3.Error as err:
                log.error("session store %s: cannot %s: %s", self.path, what, err)
                raise StoreError(f"session store {self.path}: cannot {what}: {err}. "
                                 "Check the disk (space, permissions).") from err

    def _checkpoint(self) -> None:
        """Move deleted pages out of the WAL so removed records do not linger in it."""
        with self._read() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"session store {self.path} is closed")


# --- opening, step by step ---------------------------------------------------------------------


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _acquire_lock(path: Path) -> IO[str]:
    """An advisory lock beside the database, so two roomctl processes never share one store
    (the second would record a room twice and recover sessions already running)."""
    lock_path = _lock_path(path)
    try:
        f = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
    except OSError as err:
        raise StoreError(f"session store {path}: cannot create the lock file {lock_path}: "
                         f"{err.strerror or err}. Check the data directory's permissions.") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise StoreError(f"session store {path} is in use by another roomctl process "
                         f"(pid {holder}). Stop that process first, or give this one its own "
                         "data directory.") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _release_lock(f: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    f.close()


def _check_existing(path: Path) -> bool:
    """Whether ``path`` holds a database already; refuses a file that is not one."""
    try:
        with open(path, "r+b") as f:  # read and write access; nothing is written
            header = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return False
    except OSError as err:
        raise StoreError(f"session store {path}: cannot read and write it: {err.strerror or err}. "
                         "Give the roomctl user read and write access to the file and its "
                         "folder.") from None
    if not header:
        return False  # an empty file holds nothing to lose: SQLite starts a database in it
    if header != _SQLITE_MAGIC:
        raise StoreError(f"session store {path} is not an SQLite database (damaged, or another "
                         "kind of file). roomctl has not changed it. Move it aside to start "
                         "with an empty store, or restore it from a backup.")
    return True


def _connect(path: Path, existed: bool) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=_OPEN_BUSY_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"session store {path}: cannot open it: {err}. Check the file's and "
                         "its folder's permissions.") from None
    try:
        _prepare(conn, path, existed)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, existed: bool) -> None:
    damaged = ("roomctl has not changed it. Move it aside (and keep it: it holds session "
               "records) to start with an empty store, or restore it from a backup.")
    try:
        if existed:  # look before changing anything (even the journal mode)
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(20)")]
            if problems != ["ok"]:
                found = "; ".join(line for p in problems for line in str(p).splitlines()
                                  if not line.startswith("***"))
                raise StoreError(f"session store {path} is damaged (quick_check: "
                                 f"{found[:300]}). {damaged}")
            _check_identity(conn, path)
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
        raise StoreError(f"session store {path} is damaged ({err}). {damaged}") from None


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
                         f"(tables: {', '.join(tables) or 'none'}). roomctl has not changed it. "
                         "Check the data directory setting.")
    if version > SCHEMA_VERSION:
        raise StoreError(f"session store {path} was written by a newer roomctl (schema "
                         f"{version}, this one knows {SCHEMA_VERSION}). Upgrade roomctl; the "
                         "file has not been changed.")
    return False


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Set up a new store; later schema versions migrate here, one step per version, inside
    the open transaction."""
    if _check_identity(conn, path):
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _statements(script: str) -> Sequence[str]:
    # Not executescript(): it would COMMIT the open transaction first.
    return [s.strip() for s in script.split(";") if s.strip()]


__all__ = [
    "SCHEMA_VERSION",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "StoredSession",
]
