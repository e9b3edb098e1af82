"""The room state every client sees: one JSON document per room, pushed on every change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from roomctl.drivers.base import SeesOutsideChanges
from roomctl.preset import Preset
from roomctl.records.report import event_text
from roomctl.room import AudioSnapshot, LightLook, LightReading, OutsideChange
from roomctl.service import RoomController
from roomctl.timeline import CueState, Status, VitalsState

log = logging.getLogger(__name__)
T = TypeVar("T")


class Health(BaseModel):
    ok: bool
    detail: str | None = None


class Look(BaseModel):
    brightness: float
    color_temp: int | None = None
    color: str | None = None
    rgb: str

    @classmethod
    def of(cls, look: LightLook) -> Look:
        return cls(brightness=round(look.brightness, 1), color_temp=look.color_temp, color=look.color,
                   rgb=look.display_rgb())


class LightOut(BaseModel):
    id: str
    name: str
    on: bool
    brightness: float
    color_temp: int | None = None
    color: str | None = None
    rgb: str
    reachable: bool


class LightsOut(BaseModel):
    outside_changes: list[str] = []  # lamps changed outside roomctl in this phase, and what was done
    target: Look | None = None
    fade_remaining_s: float = 0.0
    overridden: bool = False
    lights: list[LightOut]
    health: Health


class NowPlayingOut(BaseModel):
    title: str
    artist: str | None = None
    position_s: float
    duration_s: float | None = None


class MusicOut(BaseModel):
    playlist: str | None = None
    target_volume: float | None = None
    volume: float
    playing: bool
    overridden: bool = False
    now_playing: NowPlayingOut | None = None
    problems: list[str]
    health: Health


class PhaseOut(BaseModel):
    index: int
    id: str
    title: str
    kind: str
    advance: Literal["auto", "manual"]
    planned_s: float | None = None


class CueOut(BaseModel):
    id: str
    phase: str
    text: str
    due_at: float
    acknowledged_at: float | None = None
    note: str | None = None
    check: str | None = None  # "vitals": this reminder asks for a vitals check
    skipped: bool = False
    vitals: str | None = None  # the vitals record that answered it

    @classmethod
    def of(cls, c: CueState) -> CueOut:
        return cls(id=c.id, phase=c.phase, text=c.text, due_at=c.due_at,
                   acknowledged_at=c.acknowledged_at, note=c.note, check=c.check, skipped=c.skipped,
                   vitals=c.vitals)


class DoseOut(BaseModel):
    n: int
    given_at: float
    recorded_at: float
    route: str | None = None
    amount: str | None = None
    by: str | None = None


class VitalsOut(BaseModel):
    id: str
    at: float
    values: dict[str, int]
    cue: str | None = None
    note: str | None = None
    flagged: list[str]
    by: str | None = None
    acknowledged_at: float | None = None

    @classmethod
    def of(cls, v: VitalsState) -> VitalsOut:
        return cls(id=v.id, at=v.at, values=v.values, cue=v.cue, note=v.note, flagged=list(v.flagged),
                   by=v.by, acknowledged_at=v.acknowledged_at)


class RecordedEventOut(BaseModel):
    """An event as the record holds it: after a restart, the last one recorded before it (the
    command a tablet may not have heard back about was recorded when it is this one)."""

    kind: str
    at: float
    text: str


class SessionOut(BaseModel):
    id: str
    preset_id: str | None = None
    preset_name: str
    label: str | None = None
    started_at: float
    ended: bool
    ended_at: float | None = None
    session_time_s: float
    phase: PhaseOut
    next_phase: PhaseOut | None = None
    phases: list[PhaseOut]
    time_in_phase_s: float
    remaining_s: float | None = None
    countdown_s: float | None = None  # remaining time of an auto phase, frozen while held
    held: bool
    time_since_dose_s: float | None = None  # since the first dose (or the dosing phase's start)
    time_since_last_dose_s: float | None = None
    doses: list[DoseOut] = []
    observe_until: float | None = None  # the observation window ends (epoch seconds)
    vitals: list[VitalsOut] = []
    alerts: list[VitalsOut] = []  # highlighted values nobody has acknowledged yet
    check_active: bool = False  # the room shows the gentle check look
    monitoring: dict[str, Any] | None = None  # the preset's monitoring settings (fields, ranges)
    emergency: bool
    cues_due: list[CueOut]
    cues_acknowledged: list[CueOut]
    next_cue: CueOut | None = None  # the next reminder to come due
    recovered_at: float | None = None
    recovered_last: RecordedEventOut | None = None


class LightsUpOut(BaseModel):
    """Lights up, as the lights have taken it: sent (the driver accepted the command) and
    confirmed (the lights reported it done; a Hue bridge's answer). Times are epoch seconds."""

    sent_at: float | None = None
    confirmed_at: float | None = None
    confirmed: bool = False


class RoomState(BaseModel):
    seq: int = 0
    room: str
    name: str
    t: float
    session: SessionOut | None = None
    emergency: bool
    lights_up: LightsUpOut | None = None  # while Lights up is on
    lights: LightsOut
    music: MusicOut
    record: Health = Health(ok=True)  # the session record: can it be written now?
    degraded: list[str]


def session_out(ctl: RoomController, st: Status) -> SessionOut:
    session = ctl.runner.session
    assert session is not None
    phases = [PhaseOut(index=i, id=p.id, title=p.display_title, kind=str(p.kind),
                       advance=p.advance.value, planned_s=p.planned_s)
              for i, p in enumerate(session.preset.phases)]
    return SessionOut(
        id=session.id, preset_id=ctl.preset_id, preset_name=session.preset.name, label=session.label,
        started_at=st.started_at, ended=st.ended, ended_at=st.ended_at,
        session_time_s=round((st.ended_at or st.t) - st.started_at, 3),
        phase=phases[st.phase_index],
        next_phase=phases[st.phase_index + 1] if st.phase_index + 1 < len(phases) and not st.ended else None,
        phases=phases,
        time_in_phase_s=round(st.time_in_phase_s, 3),
        remaining_s=None if st.remaining_s is None else round(st.remaining_s, 3),
        countdown_s=None if st.countdown_s is None else round(st.countdown_s, 3),
        held=st.held,
        time_since_dose_s=None if st.time_since_dose_s is None else round(st.time_since_dose_s, 3),
        time_since_last_dose_s=None if st.time_since_last_dose_s is None else round(st.time_since_last_dose_s, 3),
        doses=[DoseOut(n=d.n, given_at=d.given_at, recorded_at=d.recorded_at, route=d.route, amount=d.amount,
                       by=d.by) for d in st.doses],
        observe_until=st.observe_until,
        vitals=[VitalsOut.of(v) for v in st.vitals],
        alerts=[VitalsOut.of(v) for v in st.alerts],
        check_active=st.check_active,
        monitoring=(session.preset.monitoring.model_dump(mode="json", exclude_none=True)
                    if session.preset.monitoring is not None else None),
        emergency=ctl.runner.emergency,
        cues_due=[CueOut.of(c) for c in st.cues_due],
        cues_acknowledged=[CueOut.of(c) for c in st.cues_acknowledged],
        next_cue=CueOut.of(st.next_cue) if st.next_cue is not None else None,
        recovered_at=ctl.runner.recovered_at,
        recovered_last=_recorded(ctl, session.preset),
    )


def _recorded(ctl: RoomController, preset: Preset) -> RecordedEventOut | None:
    last = ctl.runner.recovered_last
    if last is None:
        return None
    return RecordedEventOut(kind=last.kind.value, at=last.at, text=event_text(last, preset))


def _safe(what: str, read: Callable[[], T], fallback: T) -> T:
    """A driver's health, readings or snapshot; a driver that raises never breaks the state."""
    try:
        return read()
    except Exception:
        log.exception("reading the %s failed", what)
        return fallback


def _outside_changes(ctl: RoomController) -> list[str]:
    lights = ctl.room.lights
    if not isinstance(lights, SeesOutsideChanges):
        return []
    none: tuple[OutsideChange, ...] = ()
    return [c.describe() for c in _safe("outside changes", lights.outside_changes, none)][-5:]


def room_state(ctl: RoomController, seq: int, now: float) -> RoomState:
    runner = ctl.runner
    st = runner.current(now)
    lh, ah = ctl.lights_health(), ctl.audio_health()
    lights_health, audio_health = Health(ok=lh.ok, detail=lh.detail), Health(ok=ah.ok, detail=ah.detail)
    snap = _safe("music", ctl.room.audio.snapshot, AudioSnapshot(None, 0.0, False))
    readings: list[LightReading] = _safe("lights", ctl.room.lights.readings, [])
    degraded = []
    for part, health, silent in (("lights", lights_health, "not answering"), ("music", audio_health, "not playing")):
        if not health.ok:
            detail = health.detail or silent
            degraded.append(detail if detail.startswith(part) else f"{part}: {detail}")
    if ctl.audio_note:
        degraded.append(ctl.audio_note)
    record = ctl.record_problem()
    for problem in (runner.timeline_error, runner.task_error, ctl.recovery_note, record):
        if problem:
            degraded.append(problem)
    active = st is not None and not st.ended and runner.timeline_error is None
    now_playing = None
    if snap.now_playing is not None:
        np = snap.now_playing
        now_playing = NowPlayingOut(title=np.title, artist=np.artist, position_s=round(np.position_s, 1),
                                    duration_s=np.duration_s)
    gate = runner.lights_gate
    lights_up = None
    if ctl.emergency:
        lights_up = LightsUpOut(sent_at=gate.urgent_sent_at, confirmed_at=gate.urgent_confirmed_at,
                                confirmed=gate.urgent_confirmed_at is not None)
    return RoomState(
        seq=seq, room=ctl.id, name=ctl.config.name, t=now,
        session=session_out(ctl, st) if st is not None else None,
        emergency=ctl.emergency,
        lights_up=lights_up,
        lights=LightsOut(
            outside_changes=_outside_changes(ctl),
            target=Look.of(st.light_target) if active and st else None,
            fade_remaining_s=round(st.light_fade.remaining_s(now), 2) if active and st else 0.0,
            overridden=bool(active and st and st.lights_override is not None),
            lights=[LightOut(id=r.id, name=r.name, on=r.on, brightness=r.brightness, color_temp=r.color_temp,
                             color=r.color, rgb=r.display_rgb(), reachable=r.reachable) for r in readings],
            health=lights_health,
        ),
        music=MusicOut(
            playlist=snap.playlist,
            target_volume=st.music.volume if active and st else None,
            volume=snap.volume, playing=snap.playing,
            overridden=bool(active and st and st.music_overridden),
            now_playing=now_playing, problems=list(snap.problems),
            health=Health(ok=audio_health.ok, detail=ctl.audio_note or audio_health.detail),
        ),
        record=Health(ok=record is None, detail=record),
        degraded=degraded,
    )
