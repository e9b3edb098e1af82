"""The room's one worker thread: a command queue, a few timers and a ticker.

Every blocking library call of the driver runs here, one thing at a time. The thread
serves a queue of commands (with futures, for the asyncio side to await) and of posted
calls (libvlc's callbacks post and do nothing else), runs timers, and, only while its
`Job` says something moves, calls the job's `tick` every ``tick_s``; otherwise it sleeps
on the queue until woken. What the work *is* belongs to the job (the room's `Transport`):
the worker knows nothing of decks or libvlc.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from roomctl.drivers.vlc.output import AudioUnavailable


class Job(Protocol):
    """What the worker runs. Every method is called on the worker thread."""

    def open(self) -> None:
        """Start up; raising refuses to start (``str()`` of the exception says why)."""
        ...

    def close(self) -> None:
        """Release everything; also called after a failed `open`."""
        ...

    def moving(self) -> bool:
        """Whether the ticker must run (something changes with time)."""
        ...

    def tick(self, now: float) -> bool:
        """One step; True if more changed than what readers can follow with time."""
        ...

    def ticker_stopped(self) -> None:
        """The ticker stops: nothing moves until something wakes the worker."""
        ...

    def finished(self) -> bool:
        """Whether the worker should stop (after `publish`)."""
        ...

    def publish(self, now: float, changed: bool) -> None:
        """After every wake-up: make the state readable by other threads. ``changed``:
        a command, a posted call, a timer or a tick changed something."""
        ...

    def failed(self, exc: Exception) -> None:
        """A command, posted call, timer or step raised ``exc`` (logged already)."""
        ...


@dataclass(frozen=True)
class _Call:
    fn: Callable[[], object]
    future: concurrent.futures.Future[object]


class Worker:
    """One thread named ``name``; `start` it with its `Job`."""

    def __init__(self, name: str, log: logging.Logger, *, tick_s: float) -> None:
        self._name = name
        self._log = log
        self._tick_s = tick_s
        self._queue: queue.SimpleQueue[_Call | Callable[[], None]] = queue.SimpleQueue()
        self._accept_lock = threading.Lock()
        self._accepting = True
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        # Worker-owned (only the worker thread touches these after start).
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        # Written by the worker, read by anyone.
        self.fatal: str | None = None  # why the worker could not start, or stopped
        self.wakeups = 0  # how often the worker has woken (commands, posts, ticks, timers)

    # --- any thread ----------------------------------------------------------------------

    def start(self, job: Job, timeout_s: float) -> bool:
        """Start the thread and wait until ``job`` has opened (or failed to: see `fatal`).
        False if that took longer than ``timeout_s``."""
        self._thread = threading.Thread(target=self._run, args=(job,), name=self._name, daemon=True)
        self._thread.start()
        return self._ready.wait(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def submit(self, fn: Callable[[], object]) -> concurrent.futures.Future[object]:
        """Run ``fn`` on the worker; its future has the result. Raises `AudioUnavailable`
        once the worker no longer accepts work."""
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        with self._accept_lock:
            if not self._accepting:
                raise AudioUnavailable(self.fatal or "audio driver is closed")
            self._queue.put(_Call(fn, future))
        return future

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the worker, nobody waiting. Safe from any thread (libvlc's
        callbacks): it only enqueues."""
        self._queue.put(fn)

    # --- the worker thread ---------------------------------------------------------------

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the worker ``delay_s`` from now. Worker thread only."""
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_seq), fn))

    def _run(self, job: Job) -> None:
        try:
            job.open()
        except Exception as exc:
            self.fatal = str(exc)
            self._stop_accepting()
            job.close()
            self._ready.set()
            return
        job.publish(time.monotonic(), True)
        self._ready.set()
        try:
            self._serve(job)
        except BaseException as exc:
            self._log.exception("audio worker stopped")
            self.fatal = f"audio worker stopped: {exc!r}"
        finally:
            self._stop_accepting()
            job.close()

    def _stop_accepting(self) -> None:
        with self._accept_lock:
            self._accepting = False
        reason = self.fatal or "audio driver is closed"
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(AudioUnavailable(reason))

    def _serve(self, job: Job) -> None:
        get = self._queue.get
        next_tick: float | None = None  # None: nothing moving, sleep until woken
        done = False
        while not done:
            self.wakeups += 1
            now = time.monotonic()
            wake = self._timers[0][0] if self._timers else None
            if next_tick is not None and (wake is None or next_tick < wake):
                wake = next_tick
            try:
                item = get() if wake is None else get(timeout=max(0.0, wake - now))
            except queue.Empty:
                item = None
            changed = item is not None
            if item is not None:
                self._handle(job, item)
            now = time.monotonic()
            if self._timers and self._timers[0][0] <= now:
                self._run_timers(job, now)
                changed = True
            if next_tick is None and job.moving():
                next_tick = now  # something began to move: first step at once
            if next_tick is not None and now >= next_tick:
                try:
                    changed = job.tick(now) or changed
                except Exception as exc:
                    self._log.exception("audio step failed")
                    job.failed(exc)
                    changed = True
                next_tick = next_tick + self._tick_s if now - next_tick <= self._tick_s else now + self._tick_s
            if next_tick is not None and not job.moving():
                next_tick = None
                job.ticker_stopped()
            done = job.finished()
            self._guard(job, partial(job.publish, now, changed))

    def _guard(self, job: Job, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            self._log.exception("audio step failed")
            job.failed(exc)

    def _handle(self, job: Job, item: _Call | Callable[[], None]) -> None:
        if isinstance(item, _Call):
            if not item.future.set_running_or_notify_cancel():
                return
            try:
                result = item.fn()
            except Exception as exc:
                self._log.exception("audio command failed")
                job.failed(exc)
                item.future.set_exception(exc)
            else:
                item.future.set_result(result)
            return
        self._guard(job, item)

    def _run_timers(self, job: Job, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self._guard(job, fn)
