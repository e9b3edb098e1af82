"""The driver gate: between the session runner and one driver, so that no driver can stop a
command, Lights up or the session clock.

The runner records an event, computes what the room should do and hands the target to the
gate; it never waits for the hardware. The gate's own task sends only the latest target
(latest wins), each call under a time limit. A call that times out or raises marks the
driver degraded with the reason, and the gate retries with back-off, sending whatever the
target is by then, once the driver answers again. An urgent target (Lights up) jumps the
queue: it interrupts a call in flight or a back-off wait and goes out at once.

One-off actions (a track skip) go through the same task and the same time limit, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIME_LIMIT_S = 5.0
CONFIRM_POLL_S = 0.05
CONFIRM_WITHIN_S = 30.0


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait before the n-th retry (n = 1, 2, ...)."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * self.factor ** max(0, failures - 1)))


class _Outcome(Enum):
    OK = "ok"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # an urgent target interrupted the call


@dataclass(frozen=True)
class GateState:
    """What the gate knows of its driver, for the room state."""

    ok: bool
    problem: str | None  # why the driver is degraded, for a therapist to read
    problem_since: float | None  # time.time() when it began
    failures: int  # calls that failed in a row


class DriverGate(Generic[T]):
    """Hands targets of type ``T`` to ``send`` on the gate's own task (see the module doc).

    ``confirmed``, when given, says whether the last target sent has really arrived (a
    bridge's answer): after an urgent target the gate notes when it first did.
    ``on_change`` is called (on the event loop) whenever the gate's state changes.
    """

    def __init__(self, name: str, send: Callable[[T], Awaitable[None]], *,
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S, backoff: Backoff | None = None,
                 confirmed: Callable[[], bool] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.name = name
        self._send = send
        self.time_limit_s = time_limit_s
        self._backoff = backoff or Backoff()
        self._confirmed = confirmed
        self._on_change = on_change
        self._pending: T | None = None
        self._has_pending = False
        self._pending_ticket = 0
        self._urgent = False
        self._actions: deque[tuple[int, str, Callable[[], Awaitable[None]]]] = deque()
        self._ticket = 0  # each submit or run gets the next number
        self._handled = 0  # the highest number whose call has finished (well or not)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (ticket, resolved when handled)
        self._inflight: asyncio.Future[None] | None = None  # the driver call under way
        self._cancelled_because: _Outcome | None = None  # why the gate cancelled that call
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._calling = False
        self.sent: T | None = None  # the last target the driver accepted
        self.sent_at: float | None = None  # time.time() of that
        self.urgent_target: T | None = None  # the last urgent target submitted
        self.urgent_sent_at: float | None = None
        self.urgent_confirmed_at: float | None = None
        self._problem: str | None = None
        self._problem_since: float | None = None
        self._failures = 0
        self._log = log.getChild(name.replace(" ", "_"))

    # --- the runner's side (never blocks) -------------------------------------------------

    def submit(self, target: T, *, urgent: bool = False) -> int:
        """Make ``target`` the one to send; an urgent one goes out before anything else.
        Returns a ticket for `handed_over`."""
        if self._closed:
            return self._ticket
        self._ticket += 1
        self._pending, self._has_pending, self._pending_ticket = target, True, self._ticket
        if urgent:
            self._urgent = True
            self.urgent_target, self.urgent_sent_at, self.urgent_confirmed_at = target, None, None
            self._interrupt.set()  # ends a back-off wait
            if self._inflight is not None and not self._inflight.done():
                self._cancel_call(_Outcome.SUPERSEDED)  # a call in flight gives way
        self._ensure_task()
        self._wake.set()
        return self._ticket

    def run(self, what: str, action: Callable[[], Awaitable[None]]) -> int:
        """Run a one-off ``action`` (e.g. a track skip) on the gate's task, under its time
        limit. Returns a ticket for `handed_over`."""
        if self._closed:
            return self._ticket
        self._ticket += 1
        self._actions.append((self._ticket, what, action))
        self._ensure_task()
        self._wake.set()
        return self._ticket

    @property
    def state(self) -> GateState:
        return GateState(self._problem is None, self._problem, self._problem_since, self._failures)

    @property
    def busy(self) -> bool:
        """Something is still to be sent."""
        return self._has_pending or bool(self._actions)

    async def handed_over(self, ticket: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until the call for ``ticket`` (or a later one) has finished,
        well or not; False when it has not by then."""
        if self._handled >= ticket or self._closed:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (ticket, waiter)
        self._waiters.append(entry)
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel of the caller
            # that arrives as the waiter is resolved, and a stopping session would hang.
            async with asyncio.timeout(timeout_s):
                await waiter
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    async def idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far has been tried (for tests)."""
        return await self.handed_over(self._ticket, timeout_s)

    async def close(self) -> None:
        self._closed = True
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- the gate's task --------------------------------------------------------------------

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"gate {self.name}")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        err = task.exception()
        if err is not None:  # a bug in the gate itself: say so, and start again
            self._log.error("%s: the gate stopped: %r; starting it again", self.name, err)
            self._fail(f"{self.name}: internal error {err!r}")
            if self.busy:
                asyncio.get_running_loop().call_soon(self._ensure_task)

    async def _run(self) -> None:
        while True:
            if not self.busy:
                self._wake.clear()
                await self._wake.wait()
            if self._actions and not self._urgent:
                ticket, what, action = self._actions.popleft()
                outcome = await self._call(what, action)
            else:
                target, urgent, ticket = self._pending, self._urgent, self._pending_ticket
                self._pending, self._has_pending, self._urgent = None, False, False
                assert target is not None
                outcome = await self._call("apply", partial(self._send, target))
                if outcome is _Outcome.OK:
                    self.sent, self.sent_at = target, time.time()
                    if urgent:
                        self.urgent_sent_at = self.sent_at
                        self._watch_confirmation(target)
                elif outcome is _Outcome.FAILED and not self._has_pending:
                    # Not delivered: keep it, unless something newer came meanwhile.
                    self._pending, self._has_pending, self._pending_ticket = target, True, ticket
                    self._urgent = self._urgent or urgent
            self._finished(ticket)
            if outcome is _Outcome.FAILED:
                await self._pause(self._backoff.delay_s(self._failures))

    def _finished(self, ticket: int) -> None:
        self._handled = max(self._handled, ticket)
        for t, waiter in self._waiters:
            if t <= self._handled and not waiter.done():
                waiter.set_result(None)

    async def _call(self, what: str, make: Callable[[], Awaitable[None]]) -> _Outcome:
        """One call to the driver under the time limit; an urgent target interrupts it."""
        self._calling = True
        self._cancelled_because = None
        call = asyncio.ensure_future(make())
        self._inflight = call
        timer = asyncio.get_running_loop().call_later(self.time_limit_s, self._cancel_call, _Outcome.FAILED)
        doing = self.name if what == "apply" else f"{self.name} {what}"
        try:
            await call
        except asyncio.CancelledError:
            why = self._cancelled_because
            if why is None or self._closed:
                raise  # the gate itself is stopping
            call.add_done_callback(_swallow)
            if why is _Outcome.SUPERSEDED:
                return _Outcome.SUPERSEDED  # not the driver's fault: something more urgent
            self._fail(f"{doing}: no answer within {self.time_limit_s:g} s")
            return _Outcome.FAILED
        except Exception as err:
            self._log.warning("%s failed: %s", doing, err)
            self._fail(f"{doing}: {err}")
            return _Outcome.FAILED
        finally:
            timer.cancel()
            self._inflight = None
            self._calling = False
        self._recovered()
        return _Outcome.OK

    def _cancel_call(self, why: _Outcome) -> None:
        if self._inflight is not None and not self._inflight.done():
            self._cancelled_because = why
            self._inflight.cancel()

    async def _pause(self, seconds: float) -> None:
        """Back-off before a retry; an urgent target ends it at once."""
        if self._urgent:
            return
        self._interrupt.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._interrupt.wait()

    def _watch_confirmation(self, target: T) -> None:
        if self._confirmed is None:
            self.urgent_confirmed_at = self.urgent_sent_at
            self._changed()
            return

        async def watch() -> None:
            deadline = time.monotonic() + CONFIRM_WITHIN_S
            while self.urgent_target is target and time.monotonic() < deadline:
                assert self._confirmed is not None
                try:
                    if self._confirmed():
                        self.urgent_confirmed_at = time.time()
                        self._changed()
                        return
                except Exception:
                    self._log.exception("%s: checking delivery failed", self.name)
                    return
                await asyncio.sleep(CONFIRM_POLL_S)

        task = asyncio.create_task(watch(), name=f"gate {self.name} confirm")
        task.add_done_callback(_swallow)

    def _fail(self, problem: str) -> None:
        self._failures += 1
        if self._problem is None:
            self._problem_since = time.time()
            self._log.warning("%s", problem)
        self._problem = problem
        self._changed()

    def _recovered(self) -> None:
        if self._problem is not None:
            self._log.warning("%s answers again", self.name)
        changed = self._problem is not None
        self._problem, self._problem_since, self._failures = None, None, 0
        if changed:
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                self._log.exception("%s: a listener failed", self.name)


def _swallow(task: asyncio.Future[None]) -> None:
    """A superseded or timed-out call ends on its own; its outcome no longer matters."""
    if not task.cancelled():
        task.exception()
