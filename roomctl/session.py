"""The session runner: commands become timestamped events; one task per session sleeps until
the next phase boundary or cue and hands the timeline's targets to the room's drivers.

Deadlines are computed from event times by the pure timeline, never by chaining sleeps, so
lateness does not accumulate, and they run on the clock's session time, which a step of the
wall clock does not move (`roomctl.clock`).

Nothing here waits for hardware: a command is recorded, the room's new targets are computed
under the room's lock and handed to the drivers' gates (`roomctl.gate`), and the command
returns. A command waits at most `ANSWER_GRACE_S` (outside the lock) for the gates to hand
its targets over, so that its answer usually says what the drivers did with them.

Lights up needs no timeline: the room's emergency look goes to the lights gate first, ahead
of anything queued, and the event is recorded even when the timeline cannot be evaluated.
The session task is watched: if it fails it is started again, and an evaluation that fails
leaves the room degraded (with the reason) rather than stopped.

What is durable when (the record is the ``event_sink``, `roomctl.store`):

- A therapist's command is on disk before it is carried out or answered. When the record
  cannot write it (a full disk, a store deleted under roomctl), the command is refused with
  `RecordFailing`, carrying the record's own message, and nothing changes in the room.
- Lights up, its release, and a session's end when its last phase runs out are carried out
  whatever the record says: when they cannot be written they are kept in memory, in order,
  in the session's events (the room and its state follow them at once), and written before
  any later event, as soon as the record can write: at the next command, or by a retry
  every `RETRY_RECORD_S`. Until then a crash of the service loses them, and the room's state
  says so (`unwritten`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from roomctl.clock import Clock
from roomctl.drivers.base import Audio, Lights, SeesOutsideChanges
from roomctl.events import DeviceRef, Dose, Event, EventKind, LightsChange, MusicChange, Vitals
from roomctl.gate import DEFAULT_TIME_LIMIT_S, Backoff, DriverGate
from roomctl.preset import Advance, Preset
from roomctl.room import LightLook, MusicTarget, OutsideChange, Safety
from roomctl.timeline import SKIPPED, Replay, Status

log = logging.getLogger(__name__)

ANSWER_GRACE_S = 0.25  # at most this long, a command waits for its targets to reach the drivers
RETRY_EVALUATION_S = 1.0  # a timeline that failed to evaluate is tried again this often
RESTART_TASK_S = 0.5  # a session task that failed is started again after this long
WALL_STEP_NOTE_S = 1.0  # a wall clock this far from session time is noted in each event
UNDO_WINDOW_S = 10.0  # a phase change can be taken back this long (the tablet offers 5 s)
DOSE_BACKDATE_S = 2 * 3600.0  # a dose may be recorded as given up to this long before the session began
FUTURE_SLACK_S = 60.0  # a tablet's clock may be this far ahead
RETRY_RECORD_S = 1.0  # events kept in memory are offered to the record this often


class CommandRejected(Exception):
    """A command that does not fit the session's state (the API answers 409)."""


class UnknownPhase(KeyError):
    """A phase id that is not in the session's preset (the API answers 404)."""


class BadValue(CommandRejected):
    """A value that cannot be right for this session (the API answers 422 naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RecordFailing(Exception):
    """The record cannot write the command, so it was not carried out; the message is the
    record's own (the API answers 503). Lights up and its release still work."""


class TimelineUnavailable(CommandRejected):
    """The command was recorded, but the session's timeline cannot be evaluated to say what
    the room does now (the room is degraded; Lights up and End still work)."""


@dataclass
class Room:
    name: str
    lights: Lights
    audio: Audio
    safety: Safety = field(default_factory=Safety)


@dataclass(frozen=True)
class LightsTarget:
    """What the lights gate sends: a look, reached at ``end_t`` (session time). The fade's
    length is worked out when the command really goes out, so a late send stays on time.
    ``take_back``: a new phase or Lights up, so lamps changed outside roomctl and left alone
    are driven again too."""

    look: LightLook
    end_t: float
    take_back: bool = False


@dataclass
class Session:
    """A preset snapshot plus its append-only events: the whole session."""

    id: str
    preset: Preset
    events: list[Event]
    label: str | None = None
    _replay: Replay | None = field(default=None, repr=False, compare=False)
    _scanned: tuple[int, bool, bool] = field(default=(0, False, False), repr=False, compare=False)
    _last_scanned: Event | None = field(default=None, repr=False, compare=False)

    def status(self, t: float, safety: Safety) -> Status:
        if self._replay is None or self._replay.safety != safety:
            self._replay = Replay(self.preset, safety)
        return self._replay.status(self.events, t)

    @property
    def preset_id(self) -> str | None:
        return self.events[0].preset_id if self.events else None

    @property
    def ended_by_events(self) -> bool:
        """Whether an `ended` event is recorded (read without the timeline)."""
        return self._scan()[0]

    @property
    def emergency_by_events(self) -> bool:
        """Whether Lights up is on, read from the events alone (no timeline needed)."""
        return self._scan()[1]

    def _scan(self) -> tuple[bool, bool]:
        """(ended, Lights up on) from the events, reading only those appended since last time."""
        seen, ended, up = self._scanned
        events = self.events
        if len(events) < seen or (seen and events[seen - 1] is not self._last_scanned):
            seen, ended, up = 0, False, False  # not simply appended to: read them all again
        for e in events[seen:]:
            if e.kind is EventKind.ENDED:
                ended, up = True, False
            elif e.kind in (EventKind.EMERGENCY_ON, EventKind.EMERGENCY_OFF) and not ended:
                up = e.kind is EventKind.EMERGENCY_ON
        self._scanned = (len(events), ended, up)
        self._last_scanned = events[-1] if events else None
        return ended, up


EventSink = Callable[[Session, Event], None]
Listener = Callable[["SessionRunner"], None]


class SessionRunner:
    """Runs at most one session at a time in one room. Commands are serialized.

    ``before_evaluate`` is a fault hook for tests: called with the time before every
    evaluation of the timeline, it may raise to play a timeline that cannot be evaluated.
    """

    def __init__(self, room: Room, clock: Clock, *, event_sink: EventSink | None = None,
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S, backoff: Backoff | None = None) -> None:
        self.room = room
        self.clock = clock
        self._sink = event_sink
        self.session: Session | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()
        self._listeners: list[Listener] = []
        self._sent_lights: LightsTarget | None = None
        self._sent_music: MusicTarget | None = None
        self._last_good: Status | None = None
        self.recovered_at: float | None = None
        self.recovered_last: Event | None = None  # the last event recorded before a restart
        self._written = 0  # how many of the session's events the record holds
        self._flusher: asyncio.Task[None] | None = None
        self.timeline_error: str | None = None  # why the timeline cannot be evaluated now
        self.task_error: str | None = None  # why the session task had to be started again
        self.before_evaluate: Callable[[float], None] | None = None
        self._sent_visit: tuple[int, float] | None = None  # the phase visit the lights were last sent for
        self._notes: set[asyncio.Task[None]] = set()  # outside changes being written to the record
        if isinstance(room.lights, SeesOutsideChanges):
            room.lights.runner_marks_phases()  # take_back() comes with each new phase and Lights up
            room.lights.subscribe_outside_changes(self._outside_change)
        self.lights_gate: DriverGate[LightsTarget] = DriverGate(
            "lights", self._send_lights, time_limit_s=time_limit_s, backoff=backoff,
            on_change=self._publish)
        self.audio_gate: DriverGate[MusicTarget] = DriverGate(
            "music", room.audio.apply, time_limit_s=time_limit_s, backoff=backoff,
            on_change=self._publish)

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
        """The timeline at ``t`` (default now); raises when it cannot be evaluated."""
        if self.session is None:
            return None
        t = self.clock.now() if t is None else t
        if self.before_evaluate is not None:
            self.before_evaluate(t)
        return self.session.status(t, self.room.safety)

    def current(self, t: float | None = None) -> Status | None:
        """`status`, never raising: when the timeline cannot be evaluated, the room is marked
        degraded (`timeline_error`) and the last status that could be is returned."""
        try:
            status = self.status(t)
        except Exception as err:
            problem = f"the session's timeline cannot be evaluated: {type(err).__name__}: {err}"
            if problem != self.timeline_error:
                log.exception("room %s: %s", self.room.name, problem)
                self.timeline_error = problem
            return self._last_good
        if self.timeline_error is not None:
            log.warning("room %s: the session's timeline can be evaluated again", self.room.name)
            self.timeline_error = None
        if status is not None and (t is None or self._last_good is None or status.t >= self._last_good.t):
            self._last_good = status
        return status

    @property
    def running(self) -> bool:
        if self.session is None or self.session.ended_by_events:
            return False
        s = self.current()
        return s is None or not s.ended or self.timeline_error is not None

    @property
    def unwritten(self) -> int:
        """Events carried out but not yet in the record (kept in memory until it can write)."""
        return 0 if self.session is None else len(self.session.events) - self._written

    @property
    def emergency(self) -> bool:
        """Lights up is on in this session (read from the events: no timeline needed)."""
        return self.session is not None and self.session.emergency_by_events

    @property
    def last_error(self) -> str | None:
        """The room's most pressing problem now, for a therapist to read (None: all well)."""
        for problem in (self.timeline_error, self.task_error, self.lights_gate.state.problem,
                        self.audio_gate.state.problem):
            if problem:
                return problem
        return None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, preset: Preset, *, session_id: str | None = None,
                    label: str | None = None, preset_id: str | None = None,
                    by: DeviceRef | None = None) -> Status:
        async with self._lock:
            if self.running:
                raise CommandRejected("a session is already running in this room; end it first")
            await self._stop_task()
            self._flush_or_refuse()  # the last session's kept events first, or nothing starts
            previous, written = self.session, self._written
            self.session = Session(session_id or uuid.uuid4().hex[:12], preset, [], label)
            self._written = 0
            try:
                await self._record(Event(kind=EventKind.STARTED, at=self.clock.now(),
                                         lights=self._room_look(), preset_id=preset_id, by=by))
            except BaseException:
                self.session, self._written = previous, written  # not started: nothing changes
                raise
            self._forget()
            status = self._update_drivers()
            self._start_task()
        await self._settle()
        return self._answer(status)

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

    async def recover(self, session: Session) -> Status | None:
        """Continue a session that was running when the service stopped: replay its events,
        evaluate at now and re-apply the room. None when its timeline cannot be evaluated
        (the room is then degraded, and Lights up and End still work)."""
        async with self._lock:
            await self._stop_task()
            self.session = session
            self._written = len(session.events)
            self._forget()
            self.recovered_at = self.clock.now()
            self.recovered_last = session.events[-1] if session.events else None
            status = self._update_drivers()
            if status is not None and status.ended:
                await self._record_completion(status)
            else:
                self._start_task()
        await self._settle()
        return status

    async def close(self) -> None:
        await self._stop_task()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if self.unwritten:
            try:
                self._flush()
            except Exception as err:
                assert self.session is not None
                log.error("room %s: closing with %d event(s) of session %s that the record could not "
                          "take (%s): %s", self.room.name, self.unwritten, self.session.id, err,
                          [e.model_dump(mode="json", exclude_none=True)
                           for e in self.session.events[self._written:]])
        for gate in (self.lights_gate, self.audio_gate):
            await gate.close()

    def _forget(self) -> None:
        self._sent_lights = self._sent_music = self._last_good = None
        self._sent_visit = None
        self.recovered_at = None
        self.recovered_last = None
        self.timeline_error = self.task_error = None

    def _start_task(self) -> None:
        assert self.session is not None
        self._task = asyncio.create_task(self._run(), name=f"session {self.session.id}")
        self._task.add_done_callback(self._task_ended)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """The session task's watchman: a task that failed is logged, named in the room state,
        and started again, so phases, reminders and fades keep coming."""
        if task.cancelled() or task is not self._task:
            return
        err = task.exception()
        if err is None:
            return
        self.task_error = f"the session clock failed ({type(err).__name__}: {err}); it was started again"
        log.error("room %s: the session task failed; starting it again", self.room.name,
                  exc_info=(type(err), err, err.__traceback__))
        self._publish()

        def restart() -> None:
            if self._task is task and self.session is not None and not self.session.ended_by_events:
                self._start_task()

        asyncio.get_running_loop().call_later(RESTART_TASK_S, restart)

    # --- commands -----------------------------------------------------------------------

    async def next(self, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.ADVANCED, by=by)

    async def hold(self, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.HELD, by=by)

    async def resume(self, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.RESUMED, by=by)

    async def extend(self, seconds: float, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.EXTENDED, seconds=seconds, by=by)

    async def jump(self, phase_id: str, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.JUMPED, phase=phase_id, by=by)

    async def end(self, reason: str | None = None, *, by: DeviceRef | None = None) -> Status:
        """End the session. Inside the preset's observation window a reason is required (and
        recorded); otherwise the reason defaults to "ended by the therapist"."""
        return await self._command(EventKind.ENDED, reason=reason, by=by)

    async def set_lights(self, change: LightsChange, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.LIGHTS_SET, lights=change, by=by)

    async def set_music(self, change: MusicChange, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.MUSIC_SET, music=change, by=by)

    async def back_to_preset(self, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.OVERRIDE_CLEARED, by=by)

    async def undo(self, *, by: DeviceRef | None = None) -> Status:
        """Take back the last Next or phase jump (pressed by mistake), as if it had never
        happened: the earlier phase goes on where it was, the dose clock with it."""
        return await self._command(EventKind.UNDONE, by=by)

    async def acknowledge(self, cue_id: str, note: str | None = None, *, skipped: bool = False,
                          by: DeviceRef | None = None) -> Status:
        """Acknowledge a reminder; a vitals check can be ``skipped`` (the note says why)."""
        return await self._command(EventKind.CUE_ACKNOWLEDGED, cue=cue_id, note=note,
                                   reason=SKIPPED if skipped else None, by=by)

    async def give_dose(self, dose: Dose, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.DOSE_GIVEN, dose=dose, by=by)

    async def record_vitals(self, vitals: Vitals, *, cue: str | None = None, note: str | None = None,
                            by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.VITALS_RECORDED, vitals=vitals, cue=cue, note=note, by=by)

    async def acknowledge_alert(self, alert: str, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.ALERT_ACKNOWLEDGED, alert=alert, by=by)

    async def emergency_on(self, *, by: DeviceRef | None = None) -> Status:
        """Lights up. The emergency look goes to the lights first, ahead of anything queued and
        without the timeline; then the event is recorded. A press that the session refuses (none
        running, already up, ended) leaves the bulbs alone. Raises `TimelineUnavailable` (after
        recording it) when the timeline cannot say the rest."""
        session = self.session
        if session is None:
            raise CommandRejected("no session in this room; start one first")
        if session.ended_by_events:
            raise CommandRejected("the session has ended")
        if session.emergency_by_events:
            raise CommandRejected("lights up is already on")
        status = self.current()
        if status is not None and status.ended and self.timeline_error is None:
            raise CommandRejected("the session has ended")
        at = self.clock.now()
        self.lights_up(at)
        return await self._command(EventKind.EMERGENCY_ON, at=at, keep=True, by=by)

    async def emergency_off(self, *, by: DeviceRef | None = None) -> Status:
        return await self._command(EventKind.EMERGENCY_OFF, keep=True, by=by)

    async def flush(self) -> bool:
        """Offer the events kept in memory to the record again; True once none are left."""
        async with self._lock:
            try:
                self._flush()
            except Exception:
                return False
        self._publish()
        return True

    def lights_up(self, at: float | None = None) -> None:
        """Send the room's emergency look now, ahead of anything queued. Needs neither the
        timeline nor a session."""
        s = self.room.safety
        at = self.clock.now() if at is None else at
        target = LightsTarget(s.emergency_look, at + s.emergency_fade_s, take_back=True)
        self._sent_lights = target
        self.lights_gate.submit(target, urgent=True)

    async def _command(self, kind: EventKind, *, at: float | None = None, keep: bool = False,
                       by: DeviceRef | None = None, **payload: Any) -> Status:
        payload = {k: v for k, v in payload.items() if v is not None}
        if by is not None:
            payload["by"] = by
        async with self._lock:
            session = self.session
            if session is None:
                raise CommandRejected("no session in this room; start one first")
            status = self.current()
            self._check(kind, session, status, payload)
            if kind is EventKind.UNDONE:
                payload["undoes"] = len(session.events) - 1
            if kind is EventKind.ENDED and "reason" not in payload:
                payload["reason"] = "ended by the therapist"
            await self._record(Event(kind=kind, at=self.clock.now() if at is None else at, **payload), keep=keep)
            if kind is EventKind.MUSIC_SET and payload["music"].skip is not None:
                direction: Literal["next", "previous"] = payload["music"].skip
                self.audio_gate.run("skip", lambda: self.room.audio.skip(direction))
            new = self._update_drivers()
            self._poke.set()
        await self._settle()
        return self._answer(new)

    def _check(self, kind: EventKind, session: Session, st: Status | None, payload: dict[str, Any]) -> None:
        if session.ended_by_events and kind is not EventKind.CUE_ACKNOWLEDGED:
            raise CommandRejected("the session has ended")
        if kind is EventKind.EMERGENCY_ON and session.emergency_by_events:
            raise CommandRejected("lights up is already on")
        if kind is EventKind.EMERGENCY_OFF and not session.emergency_by_events:
            raise CommandRejected("lights up is not on")
        if self.timeline_error is not None or st is None:
            # The timeline cannot say where the session is: only what needs no timeline.
            if kind not in (EventKind.ENDED, EventKind.EMERGENCY_ON, EventKind.EMERGENCY_OFF):
                raise CommandRejected(f"{self.timeline_error or 'the session cannot be evaluated'}; "
                                      "Lights up and End still work")
            return
        if st.ended and kind is not EventKind.CUE_ACKNOWLEDGED:
            raise CommandRejected("the session has ended")
        if kind is EventKind.HELD and st.held:
            raise CommandRejected("the phase is already on hold")
        if kind is EventKind.RESUMED and not st.held:
            raise CommandRejected("the phase is not on hold")
        if kind is EventKind.EXTENDED and st.phase.advance is Advance.MANUAL:
            raise CommandRejected(f"phase '{st.phase.id}' is manual: it has no countdown to extend")
        if kind is EventKind.OVERRIDE_CLEARED and st.lights_override is None and not st.music_overridden:
            raise CommandRejected("nothing to put back: the room already follows the preset")
        if kind is EventKind.ENDED and "reason" not in payload and st.observe_until is not None \
                and self.clock.now() < st.observe_until:
            until = time.strftime("%H:%M", time.localtime(st.observe_until))
            raise CommandRejected(f"observation runs until {until}: give a reason to end the session earlier")
        if kind is EventKind.DOSE_GIVEN:
            self._check_dose(session, payload["dose"])
        if kind is EventKind.VITALS_RECORDED:
            self._check_vitals(session, st, payload)
        if kind is EventKind.ALERT_ACKNOWLEDGED:
            alert = next((v for v in st.vitals if v.id == payload["alert"]), None)
            if alert is None or not alert.flagged:
                raise BadValue("alert", f"no highlighted vitals '{payload['alert']}'")
            if alert.acknowledged_at is not None:
                raise CommandRejected(f"'{alert.id}' is already acknowledged")
        if kind is EventKind.CUE_ACKNOWLEDGED and payload.get("reason") == SKIPPED and not payload.get("note"):
            raise BadValue("note", "say why the check is skipped")
        if kind is EventKind.UNDONE:
            last = session.events[-1]
            if last.kind not in (EventKind.ADVANCED, EventKind.JUMPED):
                raise CommandRejected("nothing to undo: only the last Next or phase change can be taken back")
            if self.clock.now() - last.at > UNDO_WINDOW_S:
                raise CommandRejected(f"too late to undo: a phase change can be taken back for "
                                      f"{UNDO_WINDOW_S:g} s")
        if kind is EventKind.JUMPED:
            try:
                session.preset.phase_index(payload["phase"])
            except KeyError:
                raise UnknownPhase(payload["phase"]) from None
        if kind is EventKind.CUE_ACKNOWLEDGED:
            due = {c.id for c in st.cues_due}
            done = {c.id for c in st.cues_acknowledged}
            if payload["cue"] in done:
                raise CommandRejected(f"reminder '{payload['cue']}' is already acknowledged")
            if payload["cue"] not in due:
                raise CommandRejected(f"reminder '{payload['cue']}' is not due")

    def _check_dose(self, session: Session, dose: Dose) -> None:
        if dose.given_at is None:
            return
        now, began = self.clock.now(), session.events[0].at
        if dose.given_at > now + FUTURE_SLACK_S:
            raise BadValue("given_at", "is in the future")
        if dose.given_at < began - DOSE_BACKDATE_S:
            raise BadValue("given_at", f"is more than {DOSE_BACKDATE_S / 3600:g} h before the session began")

    def _check_vitals(self, session: Session, st: Status, payload: dict[str, Any]) -> None:
        vitals: Vitals = payload["vitals"]
        monitoring = session.preset.monitoring
        known = {o.id: o for o in monitoring.observations} if monitoring is not None else {}
        for key, value in vitals.observations.items():
            obs = known.get(key)
            if obs is None:
                raise BadValue(f"observations.{key}", f"not an observation of this preset "
                                                      f"(known: {', '.join(known) or 'none'})")
            low, high = (0, 1) if obs.kind == "yes_no" else obs.scale
            if not low <= value <= high:
                raise BadValue(f"observations.{key}", f"{value} is outside {low}-{high}")
        cue = payload.get("cue")
        if cue is not None:
            due = {c.id: c for c in st.cues_due}
            if cue not in due:
                done = {c.id for c in st.cues_acknowledged}
                raise CommandRejected(f"reminder '{cue}' is already acknowledged" if cue in done
                                      else f"reminder '{cue}' is not due")

    def _answer(self, status: Status | None) -> Status:
        if status is None:
            raise TimelineUnavailable(f"recorded, but {self.timeline_error or 'the session cannot be evaluated'}")
        return status

    async def _record(self, event: Event, *, keep: bool = False) -> None:
        """Durable, then appended (see the module docstring): raises `RecordFailing` when the
        record cannot take it; with ``keep`` (Lights up, its release, a session running out) it
        is then kept in memory and written as soon as the record can."""
        assert self.session is not None
        events = self.session.events
        if events and event.at < events[-1].at:  # events stay in time order, whatever happens
            event = event.model_copy(update={"at": events[-1].at})
        wall = self.clock.wall()
        if abs(wall - event.at) > WALL_STEP_NOTE_S:  # the wall clock was stepped: keep it for the record
            event = event.model_copy(update={"wall": wall})
        if self._sink is None:
            events.append(event)
            self._written = len(events)
            return
        try:
            # Durable before anyone is told, and after every event kept in memory before it. The
            # write (one fsync, ~0.3 ms on an SSD) stays on the loop: handing it to a thread
            # measured slower than the write itself (bench/store.py).
            self._flush()
            self._sink(self.session, event)
        except Exception as err:
            if not keep:
                raise RecordFailing(f"not done: the session record cannot be written ({err}). "
                                    "Lights up still works.") from err
            events.append(event)
            log.error("room %s: %s carried out but not recorded (%s); kept in memory until the record "
                      "can take it", self.room.name, event.kind.value, err)
            self._keep_flushing()
            return
        events.append(event)
        self._written = len(events)

    def _flush_or_refuse(self) -> None:
        try:
            self._flush()
        except Exception as err:
            raise RecordFailing(f"not done: the session record cannot be written ({err}). "
                                "Lights up still works.") from err

    def _flush(self) -> None:
        """Write the events kept in memory, in order; raises when the record still cannot."""
        session = self.session
        if session is None or self._sink is None or self._written >= len(session.events):
            return
        while self._written < len(session.events):
            event = session.events[self._written]
            # The sink numbers events itself; it reads the session only for a start (never kept).
            self._sink(session, event)
            self._written += 1
        log.warning("room %s: the record took the events kept in memory", self.room.name)

    def _keep_flushing(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_until_written(), name=f"record {self.room.name}")

    async def _flush_until_written(self) -> None:
        while self.unwritten:
            await self.clock.sleep_until(self.clock.now() + RETRY_RECORD_S)
            await self.flush()

    async def _record_completion(self, status: Status) -> None:
        """Give a session that ran out on its own (its last phase's countdown, or Next on the
        last phase) an `ended` event, so that the record says when it ended. Replay-neutral:
        the timeline ignores events after the end."""
        assert self.session is not None and status.ended_at is not None
        if self.session.ended_by_events:
            return
        try:
            await self._record(Event(kind=EventKind.ENDED, at=status.ended_at, reason="completed"), keep=True)
        except Exception as err:
            log.exception("room %s: recording the end of session %s failed",
                          self.room.name, self.session.id)
            self.task_error = f"record: {err}"

    # --- the session task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._poke.clear()
            async with self._lock:
                status = self._update_drivers()
                if status is not None and status.ended:
                    await self._record_completion(status)
            if status is not None and status.ended:
                return
            await self._settle()  # the targets reach the drivers before the task sleeps again
            if self.timeline_error is not None or status is None:
                deadline: float | None = self.clock.now() + RETRY_EVALUATION_S
            else:
                deadline = status.next_change_at
            await self._wait(deadline)

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

    # --- the drivers --------------------------------------------------------------------

    def _update_drivers(self) -> Status | None:
        """Evaluate at now and hand the gates whatever changed. Never blocks, never raises."""
        status = self.current()
        if status is not None and self.timeline_error is None:
            fade = status.light_fade
            visit = (status.phase_index, status.phase_started_at)
            lights = LightsTarget(fade.end, fade.end_t,
                                  take_back=visit != self._sent_visit or status.emergency)
            if (lights.look, lights.end_t) != ((self._sent_lights.look, self._sent_lights.end_t)
                                               if self._sent_lights is not None else None):
                self._sent_visit = visit
                self._sent_lights = lights
                self.lights_gate.submit(lights, urgent=status.emergency)
            if status.music != self._sent_music:
                self._sent_music = status.music
                self.audio_gate.submit(status.music, urgent=status.emergency)
        elif self.emergency:
            self._music_down_without_timeline()
        self._publish()
        return status if self.timeline_error is None else self._last_good

    def _music_down_without_timeline(self) -> None:
        """Lights up while the timeline cannot say what the music should be: keep what plays,
        no louder than the emergency level."""
        s = self.room.safety
        snap = self.room.audio.snapshot()
        if snap.playlist is not None:
            target = s.emergency_music(MusicTarget(snap.playlist, snap.volume))
            if target != self._sent_music:
                self._sent_music = target
                self.audio_gate.submit(target, urgent=True)

    async def _send_lights(self, target: LightsTarget) -> None:
        lights = self.room.lights
        if target.take_back and isinstance(lights, SeesOutsideChanges):
            lights.take_back()
        await lights.apply(target.look, max(0.0, target.end_t - self.clock.now()))

    def _outside_change(self, change: OutsideChange) -> None:
        """A lamp changed outside roomctl: noted in the running session's record (the driver
        has already restored it or left it, by the room's policy) and shown on the tablet."""
        self._publish()
        if self.session is None or not self.running:
            return
        event = Event(kind=EventKind.OUTSIDE_CHANGE, at=self.clock.now(), outside=change.describe()[:300])

        async def note() -> None:
            async with self._lock:
                if self.session is not None and self.running:
                    try:
                        await self._record(event, keep=True)
                    except Exception:
                        log.exception("room %s: noting an outside change failed", self.room.name)
            self._publish()

        task = asyncio.get_running_loop().create_task(note(), name=f"room {self.room.name}: outside change")
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _settle(self) -> None:
        """Give the gates up to `ANSWER_GRACE_S` to hand this command's targets over."""
        deadline = time.monotonic() + ANSWER_GRACE_S
        for gate in (self.lights_gate, self.audio_gate):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await gate.idle(remaining):
                return
