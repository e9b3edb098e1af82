"""Looking after a store file from outside the service: `roomctl store check | repair | backup`.

Nothing here ever writes to the store's own files, nor lets SQLite open them in a way that
could (a read-write connection checkpoints the log into the file when it closes, and deletes
a log whose database is empty or missing):

- `check` and `repair` work on a copy: the database and its log copied byte for byte into a
  temporary folder when no roomctl has the store open, or, while one runs, a consistent
  snapshot taken with SQLite's online backup API through a read-only connection.
- `repair` salvages into a NEW file: SQLite's own recovery (the ``.recover`` command of the
  ``sqlite3`` program, which reads every page it can, even of a damaged file) when that
  program is installed, else the rows SQLite can still read; then every session and event
  that reads back is written into a fresh roomctl store, and the rest is named.
- `backup` uses SQLite's online backup API: consistent while the service runs and records,
  unlike a copy of ``sessions.db`` (which misses what is still in its log).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from roomctl.store import (
    SQLITE_MAGIC,
    WAL_MAGICS,
    DamagedSession,
    StoredSession,
    StoreError,
    check_files,
    create_schema,
    event_payload,
    held_by_another,
    preset_json,
    read_session,
    reader_connection,
    wal_path,
)

SQLITE_PROGRAM = "sqlite3"
RECOVER_TIME_LIMIT_S = 600.0


@dataclass
class Findings:
    """What a look at a store found: file-level problems, and sessions read back row by row."""

    path: Path
    problems: list[str] = field(default_factory=list)
    sessions: int = 0
    events: int = 0
    damaged_sessions: list[str] = field(default_factory=list)  # "<id>: why"
    damaged_events: list[str] = field(default_factory=list)  # "<session id>: event n ..."
    reordered_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.damaged_sessions or self.damaged_events)

    def lines(self) -> list[str]:
        out = [*self.notes]
        out += [f"problem: {p}" for p in self.problems]
        out.append(f"{self.sessions} session(s) and {self.events} event(s) read back whole")
        out += [f"damaged session {d}" for d in self.damaged_sessions]
        out += [f"damaged record in session {d}" for d in self.damaged_events]
        if self.reordered_events:
            out.append(f"{self.reordered_events} event(s) were stored with a time before the event ahead of "
                       "them (a wall-clock step under an older roomctl); they are replayed in recorded order")
        out.append("ok" if self.ok else "the store has damaged parts: `roomctl store repair NEW-FILE` saves "
                   "what can be read into a new file")
        return out


@contextlib.contextmanager
def copy_of(path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A copy of the store (database and log) in a temporary folder, and notes on how it was
    taken. The store's own files are only read."""
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="roomctl-store-") as tmp:
        copy = Path(tmp) / "copy.db"
        if held_by_another(path):
            notes.append(f"{path} is in use by a running roomctl: looking at a consistent snapshot of it")
            src = reader_connection(path)
            try:
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
        else:
            if path.exists():
                shutil.copyfile(path, copy)
            else:
                copy.touch()
            wal = wal_path(path)
            if wal.exists() and wal.stat().st_size:
                shutil.copyfile(wal, wal_path(copy))
                notes.append(f"{wal} holds {wal.stat().st_size // 1024} KB of records not yet in {path.name}: "
                             "looked at together")
        yield copy, notes


def check(path: Path) -> Findings:
    """Everything that can be said about the store at ``path``, changing nothing."""
    found = Findings(path)
    if not path.exists() and not wal_path(path).exists():
        found.problems.append(f"{path} does not exist")
        return found
    try:
        check_files(path)
    except StoreError as err:
        found.problems.append(str(err))
    if _unreadable_pair(path, found):
        return found
    with copy_of(path) as (copy, notes):
        found.notes += notes
        try:
            conn = sqlite3.connect(copy, isolation_level=None)
            try:
                lines = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(50)")]
            finally:
                conn.close()
            if lines != ["ok"]:
                found.problems.append("SQLite's integrity check: " + "; ".join(
                    line for text in lines for line in text.splitlines() if not line.startswith("***"))[:600])
        except sqlite3.DatabaseError as err:
            found.problems.append(f"SQLite cannot read it as a database: {err}")
            return found
        _read_sessions(copy, found)
    return found


def _unreadable_pair(path: Path, found: Findings) -> bool:
    """A log whose database is missing or empty: SQLite cannot read either (nor should it
    try: it would throw the log away), but the log's pages may be salvaged (`repair`)."""
    wal = wal_path(path)
    main_size = path.stat().st_size if path.exists() else 0
    if main_size == 0 and wal.exists() and wal.stat().st_size:
        found.notes.append(f"{wal} ({wal.stat().st_size // 1024} KB) has no database to go with: "
                           "`roomctl store repair` tries to save what its pages hold")
        return True
    return False


def _read_sessions(db_file: Path, found: Findings, into: list[StoredSession] | None = None) -> None:
    """Read back every session of ``db_file`` row by row, counting what reads and naming what
    does not; with ``into``, keep what reads."""
    try:
        conn = reader_connection(db_file)
    except sqlite3.Error as err:
        found.problems.append(f"cannot read the sessions: {err}")
        return
    try:
        ids = _session_ids(conn, found)
        for raw in ids:
            sid = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
            try:
                stored = read_session(conn, sid, db_file)
            except DamagedSession as err:
                found.damaged_sessions.append(f"{sid}: {str(err).split(': ', 2)[-1]}")
                continue
            except sqlite3.DatabaseError as err:
                stored = _read_session_by_rows(conn, sid, db_file, found, err)
                if stored is None:
                    continue
            if stored is None:
                continue
            found.sessions += 1
            found.events += len(stored.session.events)
            found.reordered_events += stored.reordered
            found.damaged_events += [f"{sid}: {d}" for d in stored.damaged]
            if into is not None:
                into.append(stored)
    finally:
        conn.close()


def _session_ids(conn: sqlite3.Connection, found: Findings) -> list[object]:
    """Every session id that can be read: through the index, else by a scan of the table, else
    row by row (a damaged page then costs only the rows on it)."""
    for sql in ("SELECT id FROM sessions ORDER BY started_at, id", "SELECT id FROM sessions"):
        try:
            return [row[0] for row in conn.execute(sql)]
        except sqlite3.DatabaseError:
            continue
    try:
        (last,) = conn.execute("SELECT max(rowid) FROM sessions").fetchone()
    except sqlite3.DatabaseError as err:
        found.problems.append(f"the list of sessions cannot be read: {err}")
        return []
    ids: list[object] = []
    lost = 0
    for rowid in range(1, int(last or 0) + 1):
        try:
            row = conn.execute("SELECT id FROM sessions WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            lost += 1
            continue
        if row is not None:
            ids.append(row[0])
    found.problems.append(f"the list of sessions is damaged: read row by row, {lost} row(s) could not be")
    return ids


def _read_session_by_rows(conn: sqlite3.Connection, sid: str, db_file: Path, found: Findings,
                          err: sqlite3.DatabaseError) -> StoredSession | None:
    """A session whose events cannot be read in one go: each event on its own, so that a
    damaged page costs only the events on it."""
    try:
        (count,) = conn.execute("SELECT max(seq) FROM events WHERE session_id = ?", (sid,)).fetchone()
    except sqlite3.DatabaseError:
        count = None
    scratch = sqlite3.connect(":memory:")
    scratch.text_factory = bytes
    try:
        for statement in ("CREATE TABLE sessions (id, room, preset_json, label, started_at, ended_at, end_reason)",
                          "CREATE TABLE events (session_id, seq, at, kind, payload_json)"):
            scratch.execute(statement)
        try:
            row = conn.execute("SELECT id, room, preset_json, label, started_at, ended_at, end_reason"
                               " FROM sessions WHERE id = ?", (sid,)).fetchone()
        except sqlite3.DatabaseError as row_err:
            found.damaged_sessions.append(f"{sid}: its row cannot be read ({row_err})")
            return None
        scratch.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        lost = 0
        for seq in range(int(count if count is not None else 100_000) + 1):
            try:
                event = conn.execute("SELECT session_id, seq, at, kind, payload_json FROM events"
                                     " WHERE session_id = ? AND seq = ?", (sid, seq)).fetchone()
            except sqlite3.DatabaseError:
                lost += 1
                continue
            if event is not None:
                scratch.execute("INSERT INTO events VALUES (CAST(? AS TEXT), ?, ?, CAST(? AS TEXT), CAST(? AS TEXT))",
                                event)
            elif count is None:
                break
        try:
            stored = read_session(scratch, sid, db_file)
        except DamagedSession as damaged:
            found.damaged_sessions.append(f"{sid}: {str(damaged).split(': ', 2)[-1]}")
            return None
        if stored is not None and lost:
            found.damaged_events.append(f"{sid}: {lost} event(s) on damaged pages cannot be read ({err})")
        return stored
    finally:
        scratch.close()


def repair(path: Path, dest: Path) -> Findings:
    """Save what can be read of the store at ``path`` into a new store at ``dest`` (which must
    not exist). The store's own files are left as they are."""
    if dest.exists() or wal_path(dest).exists():
        raise StoreError(f"{dest} exists already: give the name of a new file")
    found = Findings(path)
    with copy_of(path) as (copy, notes):
        found.notes += notes
        _restore_header(copy, found)
        source = _recovered(copy, found)
        saved: list[StoredSession] = []
        _read_sessions(source, found, saved)
        audit = _read_audit(source, found)
    _write_store(dest, saved, audit)
    found.notes.append(f"saved {found.sessions} session(s) with {found.events} event(s) and "
                       f"{len(audit)} audit line(s) into {dest}")
    return found


def _restore_header(copy: Path, found: Findings) -> None:
    """A copy whose database was cut to nothing, beside its log: give it a database header,
    so that SQLite reads the log's pages instead of deleting it (this copy only)."""
    wal = wal_path(copy)
    if copy.stat().st_size or not (wal.exists() and wal.stat().st_size):
        return
    with open(wal, "rb") as f:
        head = f.read(32)
    if head[:4] not in WAL_MAGICS:
        return
    page_size = int.from_bytes(head[8:12], "big") or 65536
    header = bytearray(page_size)
    header[:16] = SQLITE_MAGIC
    header[16:18] = (page_size if page_size < 65536 else 1).to_bytes(2, "big")
    header[18:20] = b"\x02\x02"  # WAL mode
    header[21:24] = b"\x40\x20\x20"
    header[28:32] = (1).to_bytes(4, "big")
    header[44:48] = (4).to_bytes(4, "big")
    header[56:60] = (1).to_bytes(4, "big")  # UTF-8
    header[100] = 0x0D  # an empty table leaf: the log brings the real first page
    header[105:107] = page_size.to_bytes(2, "big") if page_size < 65536 else b"\x00\x00"
    copy.write_bytes(bytes(header))
    found.notes.append("the database was empty: read what its log holds")


def _recovered(copy: Path, found: Findings) -> Path:
    """The copy as SQLite's ``.recover`` rebuilds it (every page it can read), or the copy
    itself when the sqlite3 program is not installed."""
    program = shutil.which(SQLITE_PROGRAM)
    if program is None:
        found.notes.append(f"the {SQLITE_PROGRAM} program is not installed (Debian: apt-get install sqlite3): "
                           "saving the rows SQLite can still read, without its page-by-page recovery")
        return copy
    rebuilt = copy.with_name("recovered.db")
    try:
        dump = subprocess.run([program, str(copy), ".recover"], capture_output=True, check=False,
                              timeout=RECOVER_TIME_LIMIT_S)
        load = subprocess.run([program, str(rebuilt)], input=dump.stdout, capture_output=True, check=False,
                              timeout=RECOVER_TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        found.notes.append(f"SQLite's recovery took longer than {RECOVER_TIME_LIMIT_S:g} s: saving the rows "
                           "SQLite can still read")
        return copy
    if dump.returncode != 0 or load.returncode != 0 or not rebuilt.exists():
        why = (dump.stderr or load.stderr).decode("utf-8", errors="replace").strip()
        found.notes.append(f"SQLite's recovery did not finish ({why[:200]}): saving the rows SQLite can still read")
        return copy
    found.notes.append("read through SQLite's recovery (.recover): every page it could read")
    return rebuilt


def _read_audit(db_file: Path, found: Findings) -> list[tuple[object, ...]]:
    """The audit list's rows as far as they read (a store from before the audit list has none)."""
    try:
        conn = reader_connection(db_file)
    except sqlite3.Error:
        return []
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT at, session_id, action, device_id, device_name, detail FROM audit ORDER BY seq")]
    except sqlite3.DatabaseError as err:
        if "no such table" not in str(err):
            found.problems.append(f"cannot read the audit list: {err}")
        return []
    finally:
        conn.close()


def _write_store(dest: Path, sessions: list[StoredSession], audit: Sequence[tuple[object, ...]] = ()) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(dest, isolation_level=None)
    try:
        conn.execute("BEGIN")
        create_schema(conn)
        for stored in sessions:
            s = stored.session
            conn.execute("INSERT INTO sessions (id, room, preset_json, label, started_at, ended_at, end_reason)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (s.id, stored.room, preset_json(s.preset), s.label, stored.started_at,
                          stored.ended_at, stored.end_reason))
            conn.executemany("INSERT INTO events (session_id, seq, at, kind, payload_json) VALUES (?, ?, ?, ?, ?)",
                             [(s.id, seq, e.at, e.kind.value, event_payload(e)) for seq, e in enumerate(s.events)])
        conn.executemany("INSERT INTO audit (at, session_id, action, device_id, device_name, detail)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         [tuple(v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in row)
                          for row in audit])
        conn.execute("COMMIT")
    finally:
        conn.close()


def backup(path: Path, dest: Path) -> Findings:
    """A consistent copy of the store at ``path`` in a new file ``dest``, taken with SQLite's
    online backup API (the service may go on recording meanwhile), then checked."""
    if dest.exists() or wal_path(dest).exists():
        raise StoreError(f"{dest} exists already: give the name of a new file")
    check_files(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        src = reader_connection(path)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # one step: a single read of one moment of the store
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, dest)
    except (sqlite3.Error, OSError) as err:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise StoreError(f"backup of {path} to {dest} failed: {err}") from None
    found = Findings(dest)
    _read_sessions(dest, found)
    found.notes.append(f"backed up {path} to {dest}")
    return found


__all__ = ["Findings", "backup", "check", "copy_of", "repair"]
