"""Reports and CSV exports drawn in a process of their own.

Both replay a whole session through the timeline: pure Python work that takes seconds for a
long session (the report of a 12,600-event session: about 2 s). In a thread of the service
that work holds the interpreter lock against the event loop that runs the rooms, and Lights
up pressed meanwhile answered in up to a quarter of a second (bench/store.py measures it).
In a separate process it holds nothing of the service's: the process reads the session from
the store file itself, through a read-only connection, and hands back the text.

One process, started on first use and kept; a render that takes longer than its time limit
is given up (the process is replaced), so no request waits on it without end.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Literal

from roomctl.records.export import session_csv
from roomctl.records.report import session_report_svg
from roomctl.room import Safety
from roomctl.store import StoreError, read_session, reader_connection

log = logging.getLogger(__name__)

RENDER_TIME_LIMIT_S = 60.0
WORKER_NICENESS = 10
Kind = Literal["report.svg", "export.csv"]


class RenderTooSlow(StoreError):
    """A report or export did not finish within its time limit."""


def render(path: str, kind: Kind, session_id: str, safety: Safety | None, end_t: float | None) -> str | None:
    """In the worker process: the report (SVG) or the CSV export of a session; None when the
    store has no such session. Raises DamagedSession when it cannot be read back."""
    try:
        db = reader_connection(Path(path))
    except sqlite3.Error as err:
        raise StoreError(f"session store {path}: cannot read it: {err}") from None
    try:
        stored = read_session(db, session_id, Path(path))
    except sqlite3.Error as err:
        raise StoreError(f"session store {path}: read failed: {err}. "
                         "`roomctl store check` says whether the file is damaged.") from None
    finally:
        db.close()
    if stored is None:
        return None
    if kind == "export.csv":
        return session_csv(stored)
    end = None if stored.ended_at is not None else end_t
    # Sized to whatever shows it, dark to every edge (the tablet's <img>, or a window of its own).
    return session_report_svg(stored.session.preset, stored.session.events, safety, end_t=end, fit=True)


class RecordRenderer:
    """Renders reports and exports of the store at ``path`` in a worker process."""

    def __init__(self, path: Path, time_limit_s: float = RENDER_TIME_LIMIT_S) -> None:
        self.path = path
        self.time_limit_s = time_limit_s
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, kind: Kind, session_id: str, safety: Safety | None = None,
               end_t: float | None = None) -> str | None:
        """Blocking (call it from a thread): the text, None for an unknown session."""
        pool = self._get_pool()
        future = pool.submit(render, str(self.path), kind, session_id, safety, end_t)
        try:
            return future.result(timeout=self.time_limit_s)
        except concurrent.futures.TimeoutError:
            log.error("the %s of session %s took longer than %g s: given up", kind, session_id,
                      self.time_limit_s)
            self._replace(pool)
            raise RenderTooSlow(f"the {kind} of session {session_id} takes longer than "
                                f"{self.time_limit_s:g} s; try again later") from None
        except concurrent.futures.process.BrokenProcessPool:
            self._replace(pool)
            raise StoreError(f"the {kind} of session {session_id} could not be drawn: the worker "
                             "process stopped; try again") from None

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the service has threads (uvicorn, drivers) that a fork would copy
                # in whatever state they are in.
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_background)
            return self._pool

    def _replace(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _stop(pool)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)


def _background() -> None:
    """In the worker process: yield the processor to the service on a busy machine (a report
    can wait a moment; Lights up cannot)."""
    os.nice(WORKER_NICENESS)


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    # A render still running is not waited for: its process is ended (the executor itself has
    # no way to end a task that has begun, so its processes are looked up).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
