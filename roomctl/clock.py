"""Clocks: the runner and drivers take one, so tests and simulations never really sleep.

Times are seconds as floats. `now()` is *session time*: epoch seconds read from the wall
clock once, when the clock is made, and moved on by the monotonic clock from then on. So a
session's event times survive a restart of the service (they are wall times), yet a step of
the wall clock while it runs (an NTP correction, a clock set by hand) moves no deadline:
phases, reminders and fades keep their schedule. `wall()` is the wall clock as it is now,
for the record. Sleeping always targets an absolute deadline, so lateness never accumulates.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Session time in seconds: never steps, never goes back."""
        ...

    def wall(self) -> float:
        """The wall clock now (epoch seconds), which may step: for the record only."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at (or just after) ``deadline``; at once if it has passed."""
        ...

    def not_before(self, t: float) -> None:
        """Move session time on to ``t`` if it is behind it, never back: a session recovered
        from the record continues after its last event even when the wall clock read at start
        was behind (a hardware clock that lost time, an NTP step while the service was down)."""
        ...


class RealClock:
    """Session time anchored to the wall clock once, moved on by the monotonic clock, sleeping
    on the event loop (whose clock is monotonic too). ``wall`` is where wall time comes from
    (tests step it to play an NTP correction)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._anchor = wall() - time.monotonic()

    def now(self) -> float:
        return self._anchor + time.monotonic()

    def wall(self) -> float:
        return self._wall()

    def not_before(self, t: float) -> None:
        behind = t - self.now()
        if behind > 0:
            self._anchor += behind

    async def sleep_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - self.now()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)


class VirtualClock:
    """Time that moves only when told to (`advance`, `advance_to`, `run_until_idle`).

    Sleepers wake in deadline order, each seeing ``now()`` equal to its deadline, so a
    simulation observes exactly the times a real run would aim for.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.wall_offset = 0.0  # how far the (pretend) wall clock has been stepped
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self.wall_offset

    def not_before(self, t: float) -> None:
        self._now = max(self._now, t)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock (not session time), as an NTP correction would."""
        self.wall_offset += seconds

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance_to(self, t: float) -> None:
        """Move time to ``t``, waking every sleeper due on the way, in order."""
        await _settle()
        while True:
            nxt = self.next_deadline()
            if nxt is None or nxt > t:
                break
            self._now = max(self._now, nxt)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            await _settle()
        self._now = max(self._now, t)
        await _settle()

    async def advance(self, dt: float) -> None:
        await self.advance_to(self._now + dt)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


async def _settle(rounds: int = 50) -> None:
    """Let woken tasks run until they block again (a few loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
