"""The session runner: commands become timestamped events; one task per session sleeps until
the next phase boundary or cue and hands the timeline's targets to the room's drivers.

Deadlines are computed from event times by the pure timeline, never by chaining sleeps, so
lateness does not accumulate. Overrides and Lights up are applied at once, outside the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomctl.clock import Clock
from roomctl.drivers.base import Audio, Lights
from roomctl.events import Event, EventKind, LightsChange, MusicChange
from roomctl.preset import Advance, Preset
from roomctl.room import LightLook, MusicTarget, Safety
from roomctl.timeline import Replay, Status

log = logging.getLogger(__name__)


class CommandRejected(Exception):
    """A command that does not fit the session's state (the API answers 409)."""


class UnknownPhase(KeyError):
    """A phase id that is not in the session's preset (the API answers 404)."""


@dataclass
class Room:
    name: str
    lights: Lights
    audio: Audio
    safety: Safety = field(default_factory=Safety)


@dataclass
class Session:
    """A preset snapshot plus its append-only events: the whole session."""

    id: str
    preset: Preset
    events: list[Event]
    label: str | None = None
    _replay: Replay | None = field(default=None, repr=False, compare=False)

    def status(self, t: float, safety: Safety) -> Status:
        if self._replay is None or self._replay.safety != safety:
            self._replay = Replay(self.preset, safety)
        return self._replay.status(self.events, t)


EventSink = Callable[[Session, Event], None]
Listener = Callable[["SessionRunner"], None]


class SessionRunner:
    """Runs at most one session at a time in one room. Commands are serialized."""

    def __init__(self, room: Room, clock: Clock, *, event_sink: EventSink | None = None) -> None:
        self.room = room
        self.clock = clock
        self._sink = event_sink
        self.session: Session | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()
        self._listeners: list[Listener] = []
        self._applied_fade: tuple[LightLook, float] | None = None
        self._applied_music: MusicTarget | None = None
        self.recovered_at: float | None = None
        self.last_error: str | None = None

    # --- observers ----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(self)`` after every change; returns its own unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _publish(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("room %s: a state listener failed", self.room.name)

    def status(self, t: float | None = None) -> Status | None:
        if self.session is None:
            return None
        return self.session.status(self.clock.now() if t is None else t, self.room.safety)

    @property
    def running(self) -> bool:
        s = self.status()
        return s is not None and not s.ended

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, preset: Preset, *, session_id: str | None = None,
                    label: str | None = None) -> Status:
        async with self._lock:
            if self.running:
                raise CommandRejected("a session is already running in this room; end it first")
            await self._stop_task()
            self.session = Session(session_id or uuid.uuid4().hex[:12], preset, [], label)
            self._applied_fade = self._applied_music = None
            self.recovered_at = None
            await self._record(Event(kind=EventKind.STARTED, at=self.clock.now(),
                                     lights=self._room_look()))
            status = await self._apply_now()
            self._task = asyncio.create_task(self._run(), name=f"session {self.session.id}")
            return status

    def _room_look(self) -> LightsChange | None:
        """How the room's lights look now (their average), recorded with `started` so the first
        fade is predicted from where the bulbs really are."""
        try:
            on = [r for r in self.room.lights.readings() if r.reachable]
        except Exception:
            log.exception("room %s: reading the lights failed", self.room.name)
            return None
        if not on:
            return None
        brightness = sum(r.brightness if r.on else 0.0 for r in on) / len(on)
        first = on[0]
        colour: dict[str, Any] = {}
        if first.color is not None:
            colour["color"] = first.color
        elif first.color_temp is not None and 2000 <= first.color_temp <= 6500:
            colour["color_temp"] = first.color_temp
        return LightsChange(brightness=round(min(100.0, max(0.0, brightness)), 1), transition=0, **colour)

    async def recover(self, session: Session) -> Status:
        """Continue a session that was running when the service stopped: replay its events,
        evaluate at now and re-apply the room."""
        async with self._lock:
            await self._stop_task()
            self.session = session
            self._applied_fade = self._applied_music = None
            self.recovered_at = self.clock.now()
            status = await self._apply_now()
            if status.ended:
                await self._record_completion(status)
            else:
                self._task = asyncio.create_task(self._run(), name=f"session {session.id}")
            return status

    async def close(self) -> None:
        await self._stop_task()

    async def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- commands -----------------------------------------------------------------------

    async def next(self) -> Status:
        return await self._command(EventKind.ADVANCED)

    async def hold(self) -> Status:
        return await self._command(EventKind.HELD)

    async def resume(self) -> Status:
        return await self._command(EventKind.RESUMED)

    async def extend(self, seconds: float) -> Status:
        return await self._command(EventKind.EXTENDED, seconds=seconds)

    async def jump(self, phase_id: str) -> Status:
        return await self._command(EventKind.JUMPED, phase=phase_id)

    async def end(self, reason: str | None = None) -> Status:
        return await self._command(EventKind.ENDED, reason=reason or "ended by the therapist")

    async def set_lights(self, change: LightsChange) -> Status:
        return await self._command(EventKind.LIGHTS_SET, lights=change)

    async def set_music(self, change: MusicChange) -> Status:
        return await self._command(EventKind.MUSIC_SET, music=change)

    async def back_to_preset(self) -> Status:
        return await self._command(EventKind.OVERRIDE_CLEARED)

    async def acknowledge(self, cue_id: str, note: str | None = None) -> Status:
        return await self._command(EventKind.CUE_ACKNOWLEDGED, cue=cue_id, note=note)

    async def emergency_on(self) -> Status:
        """Lights up. The drivers are told first, before anything else that could go wrong (a
        timeline that cannot be evaluated still gets the lights up); a press that the session
        refuses (none running, already up) leaves the bulbs alone."""
        s = self.room.safety
        try:
            status = self.status()
        except Exception:
            log.exception("room %s: the timeline failed; bringing the lights up anyway", self.room.name)
            status = None
        if status is not None and (status.ended or status.emergency):
            raise CommandRejected("the session has ended" if status.ended else "lights up is already on")
        if self.session is None:
            raise CommandRejected("no session in this room; start one first")
        try:
            await self.room.lights.apply(s.emergency_look, s.emergency_fade_s)
        except Exception as err:
            log.exception("room %s: lights up failed at the driver", self.room.name)
            self.last_error = f"lights up: {err}"
        return await self._command(EventKind.EMERGENCY_ON)

    async def emergency_off(self) -> Status:
        return await self._command(EventKind.EMERGENCY_OFF)

    async def _command(self, kind: EventKind, **payload: Any) -> Status:
        async with self._lock:
            session = self.session
            status = self.status()
            if session is None or status is None:
                raise CommandRejected("no session in this room; start one first")
            self._check(kind, status, payload)
            await self._record(Event(kind=kind, at=self.clock.now(), **payload))
            if kind is EventKind.MUSIC_SET and payload["music"].skip is not None:
                await self._guard("music skip", self.room.audio.skip(payload["music"].skip))
            new = await self._apply_now()
            self._poke.set()
            return new

    def _check(self, kind: EventKind, st: Status, payload: dict[str, Any]) -> None:
        if st.ended and kind is not EventKind.CUE_ACKNOWLEDGED:
            raise CommandRejected("the session has ended")
        if kind is EventKind.HELD and st.held:
            raise CommandRejected("the phase is already on hold")
        if kind is EventKind.RESUMED and not st.held:
            raise CommandRejected("the phase is not on hold")
        if kind is EventKind.EXTENDED and st.phase.advance is Advance.MANUAL:
            raise CommandRejected(f"phase '{st.phase.id}' is manual: it has no countdown to extend")
        if kind is EventKind.EMERGENCY_ON and st.emergency:
            raise CommandRejected("lights up is already on")
        if kind is EventKind.EMERGENCY_OFF and not st.emergency:
            raise CommandRejected("lights up is not on")
        if kind is EventKind.OVERRIDE_CLEARED and st.lights_override is None and not st.music_overridden:
            raise CommandRejected("nothing to put back: the room already follows the preset")
        if kind is EventKind.JUMPED:
            assert self.session is not None
            try:
                self.session.preset.phase_index(payload["phase"])
            except KeyError:
                raise UnknownPhase(payload["phase"]) from None
        if kind is EventKind.CUE_ACKNOWLEDGED:
            due = {c.id for c in st.cues_due}
            done = {c.id for c in st.cues_acknowledged}
            if payload["cue"] in done:
                raise CommandRejected(f"reminder '{payload['cue']}' is already acknowledged")
            if payload["cue"] not in due:
                raise CommandRejected(f"reminder '{payload['cue']}' is not due")

    async def _record(self, event: Event) -> None:
        assert self.session is not None
        if self._sink is not None:
            # Durable before anyone is told. The write (one fsync, ~0.3 ms on an SSD) stays on the
            # loop: handing it to a thread measured slower than the write itself (bench/store.py).
            self._sink(self.session, event)
        self.session.events.append(event)

    async def _record_completion(self, status: Status) -> None:
        """Give a session that ran out on its own (its last phase's countdown, or Next on the
        last phase) an `ended` event, so that the record says when it ended. Replay-neutral:
        the timeline ignores events after the end."""
        assert self.session is not None and status.ended_at is not None
        events = self.session.events
        if any(e.kind is EventKind.ENDED for e in events):
            return
        at = max(status.ended_at, events[-1].at)  # events stay in time order
        try:
            await self._record(Event(kind=EventKind.ENDED, at=at, reason="completed"))
        except Exception as err:
            log.exception("room %s: recording the end of session %s failed",
                          self.room.name, self.session.id)
            self.last_error = f"record: {err}"

    # --- the session task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._poke.clear()
            async with self._lock:
                status = await self._apply_now()
                if status.ended:
                    await self._record_completion(status)
            if status.ended:
                return
            await self._wait(status.next_change_at)

    async def _wait(self, deadline: float | None) -> None:
        poke = asyncio.create_task(self._poke.wait())
        tasks: set[asyncio.Task[Any]] = {poke}
        if deadline is not None:
            tasks.add(asyncio.create_task(self.clock.sleep_until(deadline)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            # gather, not `suppress(CancelledError): await t`: that would also swallow a
            # cancel of this task arriving meanwhile, and close() would wait forever.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _apply_now(self) -> Status:
        """Evaluate at now and send the drivers whatever changed. Never raises for a driver."""
        status = self.status()
        assert status is not None
        fade = status.light_fade
        key = (fade.end, fade.end_t)
        if key != self._applied_fade:
            self._applied_fade = key
            await self._guard("lights", self.room.lights.apply(fade.end, fade.remaining_s(status.t)))
        if status.music != self._applied_music:
            self._applied_music = status.music
            await self._guard("music", self.room.audio.apply(status.music))
        self._publish()
        return status

    async def _guard(self, what: str, call: Any) -> None:
        try:
            await call
        except Exception as err:
            log.exception("room %s: %s driver failed", self.room.name, what)
            self.last_error = f"{what}: {err}"
