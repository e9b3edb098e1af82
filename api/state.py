"""The room state every client sees: one JSON document per room, pushed on every change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from roomctl.room import LightLook
from roomctl.service import RoomController
from roomctl.timeline import CueState, Status


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

    @classmethod
    def of(cls, c: CueState) -> CueOut:
        return cls(id=c.id, phase=c.phase, text=c.text, due_at=c.due_at,
                   acknowledged_at=c.acknowledged_at, note=c.note)


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
    time_since_dose_s: float | None = None
    emergency: bool
    cues_due: list[CueOut]
    cues_acknowledged: list[CueOut]
    recovered_at: float | None = None


class RoomState(BaseModel):
    seq: int = 0
    room: str
    name: str
    t: float
    session: SessionOut | None = None
    emergency: bool
    lights: LightsOut
    music: MusicOut
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
        emergency=st.emergency,
        cues_due=[CueOut.of(c) for c in st.cues_due],
        cues_acknowledged=[CueOut.of(c) for c in st.cues_acknowledged],
        recovered_at=ctl.runner.recovered_at,
    )


def room_state(ctl: RoomController, seq: int, now: float) -> RoomState:
    st = ctl.runner.status(now)
    lights_health = ctl.room.lights.health()
    audio_health = ctl.room.audio.health()
    snap = ctl.room.audio.snapshot()
    readings = ctl.room.lights.readings()
    degraded = []
    if not lights_health.ok:
        degraded.append(f"lights: {lights_health.detail or 'not answering'}")
    if not audio_health.ok:
        degraded.append(f"music: {audio_health.detail or 'not playing'}")
    if ctl.audio_note:
        degraded.append(ctl.audio_note)
    if ctl.runner.last_error:
        degraded.append(ctl.runner.last_error)
    active = st is not None and not st.ended
    now_playing = None
    if snap.now_playing is not None:
        np = snap.now_playing
        now_playing = NowPlayingOut(title=np.title, artist=np.artist, position_s=round(np.position_s, 1),
                                    duration_s=np.duration_s)
    return RoomState(
        seq=seq, room=ctl.id, name=ctl.config.name, t=now,
        session=session_out(ctl, st) if st is not None else None,
        emergency=ctl.emergency,
        lights=LightsOut(
            target=Look.of(st.light_target) if active and st else None,
            fade_remaining_s=round(st.light_fade.remaining_s(now), 2) if active and st else 0.0,
            overridden=bool(active and st and st.lights_override is not None),
            lights=[LightOut(id=r.id, name=r.name, on=r.on, brightness=r.brightness, color_temp=r.color_temp,
                             color=r.color, rgb=r.display_rgb(), reachable=r.reachable) for r in readings],
            health=Health(ok=lights_health.ok, detail=lights_health.detail),
        ),
        music=MusicOut(
            playlist=snap.playlist,
            target_volume=st.music.volume if active and st else None,
            volume=snap.volume, playing=snap.playing,
            overridden=bool(active and st and st.music_overridden),
            now_playing=now_playing, problems=list(snap.problems),
            health=Health(ok=audio_health.ok, detail=ctl.audio_note or audio_health.detail),
        ),
        degraded=degraded,
    )
