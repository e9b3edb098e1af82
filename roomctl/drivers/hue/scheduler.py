"""When and how often commands go to one Hue bridge.

A bridge takes about 10 light commands and 1 group command a second and misbehaves when
flooded, while the room asks for changes whenever it likes (a slider dragged at 60 updates
a second). One `CommandScheduler` per bridge sits between them:

- bridge calls run one at a time: blocking ones (phue) on ONE worker thread, never on the
  loop; coroutines (aiohue) in the scheduler's own task (`OnTheLoop`);
- the latest wanted state wins: nothing queues, so nothing stale is ever sent, and the last
  value of a burst is always delivered;
- light and group commands are spaced to stay under the bridge's limits, and a group
  command is used when it delivers sooner than one command per light;
- a failing bridge is retried with back-off (1, 2, 4 ... 30 s) on the injected clock.

*What* to send is the bridge link's business (`roomctl.drivers.hue.link`): the scheduler
asks it for the pending `Work` and for a `Job` per command, and hands back the answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from roomctl.clock import Clock

Target = tuple[Literal["light", "group"], str]


@dataclass(frozen=True)
class RateLimits:
    """Commands per second a bridge is given. ``slack`` widens the spacing a little, so that
    a bridge counting by its own clock never sees one command too many in a second."""

    light_commands_per_s: float = 10.0
    group_commands_per_s: float = 1.0
    slack: float = 0.05

    @property
    def light_interval_s(self) -> float:
        return (1 + self.slack) / self.light_commands_per_s

    @property
    def group_interval_s(self) -> float:
        return (1 + self.slack) / self.group_commands_per_s


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait before retrying a failing bridge: first_s, doubling, at most max_s."""

    first_s: float = 1.0
    max_s: float = 30.0

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * 2.0 ** max(0, failures - 1)))


class Spacing:
    """Evenly spaced commands: each at least ``interval_s`` after the previous one.

    Even spacing (rather than a burst allowance) keeps the wait for the next free slot short
    at all times, which is what bounds the delay of a burst's final value."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def next_free(self, now: float) -> float:
        return now if self._last is None else max(now, self._last + self.interval_s)

    def done_by(self, count: int, now: float) -> float:
        """When the last of ``count`` sends starting now could go out."""
        return self.next_free(now) + (count - 1) * self.interval_s

    def note(self, at: float) -> None:
        self._last = at


@dataclass(frozen=True)
class Work:
    """What the bridge link has not delivered yet."""

    lights: tuple[str, ...]  # lights whose wanted command is undelivered, longest unserved first
    # group id -> the undelivered lights one group command would deliver (the link offers a
    # group only when all its lights want the very same command)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """A blocking bridge call for the worker thread, and what to do with its answer (on the
    loop, with the clock time the answer came back)."""

    call: Callable[[], Any]
    done: Callable[[Any, float], None]


class Plant(Protocol):
    """The bridge as the scheduler drives it (implemented by the Hue bridge link)."""

    @property
    def ready(self) -> bool:
        """True once the bridge's lights and groups are known."""
        ...

    def survey(self) -> Job:
        """Read the bridge's lights and groups (first contact, then now and then)."""
        ...

    def probe(self) -> Job:
        """A cheap read that shows whether the bridge still answers (an idle bridge)."""
        ...

    def work(self, now: float) -> Work: ...

    def next_change(self, now: float) -> float | None:
        """When a wanted command changes by itself (a chained fade's next step, a switch-off
        at the end of a fade to 0 %)."""
        ...

    def command(self, target: Target, now: float) -> Job:
        """The command that delivers what ``target`` wants at ``now``."""
        ...

    def describe(self, exc: BaseException) -> str | None:
        """A sentence for a therapist about an expected failure; None for a bug."""
        ...


def choose(work: Work, lights: Spacing, groups: Spacing, now: float
           ) -> tuple[Target | None, float | None]:
    """What to send now, or else when to look again (None: only when something changes).

    A group command is chosen when it delivers all of its pending lights no later than one
    command per light would (ties go to the group: one broadcast, all bulbs at once)."""
    covered: set[str] = set()
    wake: list[float] = []
    for group_id, pending in sorted(work.groups.items()):
        if not pending:
            continue
        by_group = groups.next_free(now)
        if by_group <= lights.done_by(len(pending), now):
            if by_group <= now:
                return ("group", group_id), None
            covered |= pending
            wake.append(by_group)
    for light_id in work.lights:
        if light_id in covered:
            continue
        at = lights.next_free(now)
        if at <= now:
            return ("light", light_id), None
        wake.append(at)
        break
    return None, min(wake) if wake else None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_Call = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]


class Calls(Protocol):
    """Where a scheduler's bridge calls run: a `Worker` thread for blocking ones (phue), or
    `OnTheLoop` for coroutines (aiohue)."""

    def run(self, call: Callable[[], Any]) -> Awaitable[Any]: ...

    async def stop(self) -> None: ...


class OnTheLoop:
    """Runs each call (a function returning an awaitable) right in the scheduler's own task,
    on the event loop: for an async library, which needs no thread. Closing the scheduler
    cancels a call in flight (the request is dropped, as a timeout would)."""

    def run(self, call: Callable[[], Any]) -> Awaitable[Any]:
        awaitable: Awaitable[Any] = call()
        return awaitable

    async def stop(self) -> None:
        return None


class Worker:
    """One thread running blocking calls one at a time, in order. Every result and every
    exception goes back to the caller's future on the event loop: nothing is lost."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._stopped: asyncio.Future[None] | None = None

    def run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if not self._thread.is_alive() and self._stopped is None:
            self._stopped = loop.create_future()
            self._thread.start()
        future: asyncio.Future[Any] = loop.create_future()
        self._calls.put((loop, future, call))
        return future

    async def stop(self) -> None:
        """Finish the call in flight (if any), then end the thread."""
        if self._stopped is None:
            return
        self._calls.put(None)
        await self._stopped
        self._thread.join()

    def _serve(self) -> None:
        loop: asyncio.AbstractEventLoop | None = None
        while (item := self._calls.get()) is not None:
            loop, future, call = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # handed to the caller, who logs and surfaces it
                error = exc
            loop.call_soon_threadsafe(_settle, future, result, error)
        if loop is not None and self._stopped is not None:
            loop.call_soon_threadsafe(_settle, self._stopped, None, None)


class CommandScheduler:
    """Drives one bridge through one worker thread (see the module docstring)."""

    def __init__(
        self,
        plant: Plant,
        clock: Clock,
        *,
        name: str,
        limits: RateLimits | None = None,
        backoff: Backoff | None = None,
        refresh_s: float = 30.0,
        probe_s: float = 5.0,
        log: logging.Logger | None = None,
        worker: Calls | None = None,
    ) -> None:
        self._plant = plant
        self._clock = clock
        self._name = name
        limits = limits or RateLimits()
        self._lights = Spacing(limits.light_interval_s)
        self._groups = Spacing(limits.group_interval_s)
        self._backoff = backoff or Backoff()
        self._refresh_s = refresh_s
        self._probe_s = probe_s
        self._log = log or logging.getLogger(__name__)
        self._worker: Calls = worker if worker is not None else Worker(f"hue {name}")
        self._last_answer = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._waiting = False
        self._idle = asyncio.Event()
        self._failures = 0
        self._retry_at = -math.inf
        self._last_survey = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.nan
        self._closed = False
        self.problem: str | None = None  # why the bridge is not doing its job, for health()
        self.failure: BaseException | None = None  # the exception behind ``problem``
        self.crashed: BaseException | None = None  # set if the scheduler itself died

    # control (all on the event loop)

    def start(self) -> None:
        """Start the dispatcher (idempotent); needs a running event loop."""
        if self._closed:
            raise RuntimeError(f"the command scheduler for Hue bridge {self._name} is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"hue scheduler {self._name}")
            self._task.add_done_callback(self._ended)

    def notify(self) -> None:
        """Something is wanted: look again now."""
        self._idle.clear()
        if self._wake is not None:
            _resolve(self._wake)

    def resurvey(self) -> None:
        """Read the whole bridge again as soon as nothing more urgent is due (once, however
        often this is asked before it happens)."""
        self._last_survey = -math.inf
        self.notify()

    async def drain(self) -> None:
        """Return when nothing can be done right now: every call answered, and the scheduler
        waiting for the clock (a rate limit, a back-off, a chained fade) or for new work."""
        self.start()
        assert self._task is not None
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            if self._task.done():
                if self.crashed is not None:
                    raise RuntimeError(f"the command scheduler for Hue bridge {self._name} "
                                       "stopped") from self.crashed
                return
            if self._waiting and self._wake is not None and not self._wake.done():
                return
            await self._idle.wait()

    async def close(self) -> None:
        """Stop; an in-flight call is let finish (at most one request timeout)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)  # a crash is logged already
        await self._worker.stop()

    # the dispatcher

    async def _run(self) -> None:
        while True:
            now = self._clock.now()
            if now < self._retry_at:
                await self._wait(self._retry_at)
                continue
            if not self._plant.ready:
                await self._survey()
                continue
            target, wake_at = choose(self._plant.work(now), self._lights, self._groups, now)
            if target is not None:
                await self._do(self._plant.command(target, now))
                # Spaced from the answer, not the sending: the bridge has surely seen the
                # command by then, so delays on the way can never bunch two commands up.
                (self._groups if target[0] == "group" else self._lights).note(self._clock.now())
                continue
            refresh_at = self._last_survey + self._refresh_s
            if now >= refresh_at or self.problem is not None:
                await self._survey()  # now and then, and as the probe of a failing bridge
                continue
            probe_at = self._last_answer + self._probe_s
            if now >= probe_at:
                await self._do(self._plant.probe())  # an idle bridge that died is seen soon
                continue
            deadlines = [t for t in (wake_at, self._plant.next_change(now)) if t is not None]
            await self._wait(min([refresh_at, probe_at, *deadlines]))

    async def _survey(self) -> None:
        if await self._do(self._plant.survey()):
            self._last_survey = self._clock.now()

    async def _do(self, job: Job) -> bool:
        try:
            answer = await self._worker.run(job.call)
        except Exception as exc:  # every failure of a bridge call lands here, none is lost
            self._failed(exc)
            return False
        now = self._clock.now()
        self._last_answer = now
        self._answered()
        job.done(answer, now)
        return True

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        delay = self._backoff.delay_s(self._failures)
        self._retry_at = self._clock.now() + delay
        message = self._plant.describe(exc)
        if message is None:
            message = f"Hue bridge {self._name}: unexpected error ({exc!r})"
            self._log.error("%s; retrying in %g s", message, delay, exc_info=exc)
        elif message != self.problem:
            self._log.warning("%s; retrying in %g s", message, delay)
        else:
            self._log.debug("%s; retrying in %g s", message, delay)
        self.problem, self.failure = message, exc

    def _answered(self) -> None:
        if self.problem is not None:
            self._log.info("Hue bridge %s answers again", self._name)
        self._failures = 0
        self._retry_at = -math.inf
        self.problem = self.failure = None

    async def _wait(self, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        if deadline is not None and math.isfinite(deadline) and (
                self._timer is None or self._timer.done() or deadline != self._timer_at):
            # One timer at a time, kept across wake-ups while its deadline stands: a wake-up
            # by new work then costs no task churn on the loop.
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = loop.create_task(self._clock.sleep_until(deadline))
            self._timer.add_done_callback(self._timer_fired)
        self._waiting = True
        self._idle.set()
        try:
            await wake
        finally:
            self._waiting = False
            self._idle.clear()

    def _timer_fired(self, timer: asyncio.Task[None]) -> None:
        if timer.cancelled():
            return
        if timer.exception() is not None:
            self._log.error("the clock failed under the Hue scheduler for %s", self._name,
                            exc_info=timer.exception())
        if self._wake is not None:
            _resolve(self._wake)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._idle.set()  # lets drain() see the end
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.crashed = exc
            self._log.error("the command scheduler for Hue bridge %s stopped", self._name,
                            exc_info=exc)
