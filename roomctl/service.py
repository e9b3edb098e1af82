"""The running service without the web: rooms (drivers + a session runner each), the preset
library, the session record (recovery at start, retention, a watch on its files), and
start-up/shut-down. The API builds one in its lifespan; `roomctl serve` opens the record and
hands it over.

When the record cannot be written (a full disk, its file deleted under the service), every
room says so (`RoomController.record_problem`, `/healthz`), commands are refused with the
record's message, and Lights up goes on working, kept in memory until the record can take
it (`roomctl.session`). The record is watched every `WATCH_RECORD_S`, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomctl.clock import Clock, RealClock
from roomctl.config import AudioKind, Config, ConfigError, HueBridgeConfig, LightsKind, RoomConfig
from roomctl.demo_media import demo_playlists, ensure_demo_media
from roomctl.drivers.base import Audio, Lights
from roomctl.drivers.hue import (
    BridgeTrust,
    HueBridges,
    HueError,
    HueLights,
    HueOptions,
    build_hue_lights,
)
from roomctl.drivers.hue.v2 import HueV2Bridges, HueV2Lights, V2Options
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.drivers.vlc import VlcAudio, vlc_available
from roomctl.events import DeviceRef, LightsChange, MusicChange
from roomctl.gate import GateState
from roomctl.library import PresetLibrary
from roomctl.playlists import parse_playlists
from roomctl.preset import Preset
from roomctl.records.worker import RecordRenderer
from roomctl.room import DriverHealth, LightLook, MusicTarget, PlaylistReport, Safety
from roomctl.session import CommandRejected, LightsTarget, Room, SessionRunner
from roomctl.store import SessionStore, StoreError
from roomctl.timeline import Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preflight:
    """Can this room play this preset? The therapist may start anyway."""

    lights: DriverHealth
    audio: DriverHealth
    playlists: list[PlaylistReport]

    @property
    def ok(self) -> bool:
        return self.lights.ok and self.audio.ok and all(p.ok for p in self.playlists)


@dataclass
class RoomController:
    """One room: its drivers, its runner, and Lights up even when no session runs."""

    id: str
    config: RoomConfig
    room: Room
    runner: SessionRunner
    audio_note: str | None = None  # e.g. why audio is simulated
    idle_emergency: bool = False
    store: SessionStore | None = None  # the record this room's sessions go to
    recovery_note: str | None = None  # what recovery could not bring back of this room's session
    # Set by hand while no session runs (before a start, after End); not part of any record.
    manual_look: LightLook | None = None
    manual_music: MusicTarget | None = None
    changing_until: float = 0.0  # a change by hand is under way (a fade) until then
    _look_before_up: LightLook | None = None
    _listeners: list[Callable[[RoomController], None]] = field(default_factory=list)

    def subscribe(self, listener: Callable[[RoomController], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        unsub_runner = self.runner.subscribe(lambda _r: listener(self))

        def unsubscribe() -> None:
            unsub_runner()
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("room %s: a listener failed", self.id)

    @property
    def emergency(self) -> bool:
        """Lights up is on: in the session, or in the room with no session running. Read from
        the session's events, so it needs no timeline."""
        return self.idle_emergency or (self.runner.running and self.runner.emergency)

    @property
    def preset_id(self) -> str | None:
        session = self.runner.session
        return session.preset_id if session is not None else None

    async def preflight(self, preset: Preset) -> Preflight:
        """Can this room play ``preset``? Answers within the driver time limit: a music share
        that does not answer is reported, not waited for."""
        limit = self.runner.audio_gate.time_limit_s
        names = preset.playlists()
        try:
            async with asyncio.timeout(limit):
                reports = await self.room.audio.preflight(names)
        except TimeoutError:
            reports = [PlaylistReport(name, 0, (f"not checked: the music did not answer within {limit:g} s "
                                                "(a slow or unreachable music share?)",)) for name in names]
        except Exception as err:
            log.exception("room %s: the music check failed", self.id)
            reports = [PlaylistReport(name, 0, (f"not checked: {err}",)) for name in names]
        return Preflight(self.lights_health(), self.audio_health(), reports)

    def record_problem(self) -> str | None:
        """Why this room's record is failing now, for a therapist to read (None: it is not)."""
        problem = self.store.problem if self.store is not None else None
        kept = self.runner.unwritten
        if kept:
            what = "event is" if kept == 1 else "events are"
            note = (f"{kept} {what} kept in memory until the record can take it "
                    "(lost if the service stops before)")
            return f"{problem}; {note}" if problem else f"the record: {note}"
        return problem

    def lights_health(self) -> DriverHealth:
        """The lights' health: the gate's verdict first (a driver that stopped answering), then the driver's."""
        return _gated(self.runner.lights_gate.state, self.room.lights.health)

    def audio_health(self) -> DriverHealth:
        health = _gated(self.runner.audio_gate.state, self.room.audio.health)
        if self.audio_note and health.ok:
            return DriverHealth(True, self.audio_note)
        return health

    async def start(self, preset_id: str, preset: Preset, label: str | None = None, *,
                    by: DeviceRef | None = None) -> Status:
        status = await self.runner.start(preset, label=label, preset_id=preset_id, by=by)
        self.idle_emergency = False
        self.manual_look = self.manual_music = self._look_before_up = None
        self.recovery_note = None  # about the session before this one
        return status

    async def emergency_on(self, *, by: DeviceRef | None = None) -> None:
        """Lights up, with or without a session: the same path to the lights either way."""
        if self.runner.running:
            await self.runner.emergency_on(by=by)
            return
        self.idle_emergency = True
        self._look_before_up = self.manual_look or self._look_now()
        self.runner.lights_up()
        snap = self.room.audio.snapshot()
        if snap.playlist is not None:
            music = self.room.safety.emergency_music(MusicTarget(snap.playlist, snap.volume))
            self.runner.audio_gate.submit(music, urgent=True)
        self.changed()

    async def emergency_off(self, *, by: DeviceRef | None = None) -> None:
        if self.runner.running:
            await self.runner.emergency_off(by=by)
            return
        self.idle_emergency = False
        back, self._look_before_up = self._look_before_up, None
        if back is not None:  # gently back to how the room looked before, as in a session
            at = self.runner.clock.now()
            self.runner.lights_gate.submit(LightsTarget(back, at + self.room.safety.emergency_fade_s))
            self.changing_until = max(self.changing_until, at + self.room.safety.emergency_fade_s + 1.0)
        self.changed()

    # --- the room by hand, while no session runs ---------------------------------------

    def _no_session(self) -> None:
        if self.runner.running:
            raise CommandRejected("a session is running: its own light and music controls apply")

    def set_lights_by_hand(self, change: LightsChange) -> None:
        """The lights as the therapist sets them with no session running (after End the bulbs
        would otherwise stay wherever the last phase left them)."""
        self._no_session()
        if self.emergency:
            raise CommandRejected("lights up is on: bring the lights down first")
        base = self.manual_look or self._look_now() or LightLook(0.0, 2700)
        colour_temp, colour = base.color_temp, base.color
        if change.color_temp is not None:
            colour_temp, colour = change.color_temp, None
        elif change.color is not None:
            colour_temp, colour = None, change.color
        look = LightLook(base.brightness if change.brightness is None else change.brightness,
                         color_temp=colour_temp, color=colour)
        self.manual_look = look
        at = self.runner.clock.now()
        self.runner.lights_gate.submit(LightsTarget(look, at + change.transition))
        self.changing_until = max(self.changing_until, at + change.transition + 1.0)
        self.changed()

    def set_music_by_hand(self, change: MusicChange) -> None:
        """The music with no session running: the playing playlist, or else the last one the
        room's session played, at the volume asked (no louder than while lights are up)."""
        self._no_session()
        snap = self.room.audio.snapshot()
        base = self.manual_music
        if base is None or base.playlist is None:
            playlist, volume = (snap.playlist, snap.volume) if snap.playlist else self._last_music()
            if playlist is None:
                raise CommandRejected("no music to play: no playlist has played in this room yet")
            base = MusicTarget(playlist, volume, playing=snap.playing if snap.playlist else False)
        target = MusicTarget(base.playlist, base.volume if change.volume is None else change.volume,
                             playing=base.playing if change.playing is None else change.playing)
        self.manual_music = target
        if self.emergency:
            target = self.room.safety.emergency_music(target)
        self.runner.audio_gate.submit(target)
        if change.skip is not None:
            direction = change.skip
            self.runner.audio_gate.run("skip", lambda: self.room.audio.skip(direction))
        fade_s = max(target.ramp_s, target.fade_in_s)
        self.changing_until = max(self.changing_until, self.runner.clock.now() + fade_s + 1.0)
        self.changed()

    def _last_music(self) -> tuple[str | None, float]:
        """The playlist (and volume) of the last phase with music the last session reached."""
        session = self.runner.session
        st = self.runner.current() if session is not None else None
        if session is None or st is None:
            return None, 0.0
        for phase in reversed(session.preset.phases[: st.phase_index + 1]):
            if phase.music is not None and phase.music.playlist:
                return phase.music.playlist, phase.music.volume
        return None, 0.0

    def _look_now(self) -> LightLook | None:
        """The reachable lights' average look now, or None when none answers."""
        try:
            lit = [r for r in self.room.lights.readings() if r.reachable]
        except Exception:
            log.exception("room %s: reading the lights failed", self.id)
            return None
        if not lit:
            return None
        brightness = sum(r.brightness if r.on else 0.0 for r in lit) / len(lit)
        first = lit[0]
        colour_temp = None if first.color else min(6500, max(2000, first.color_temp or 2700))
        return LightLook(round(brightness, 1), color_temp=colour_temp, color=first.color)


def _gated(gate: GateState, driver_health: Callable[[], DriverHealth]) -> DriverHealth:
    if not gate.ok:
        return DriverHealth(False, gate.problem)
    try:
        return driver_health()
    except Exception as err:  # a driver that cannot even say how it is
        log.exception("a driver's health check failed")
        return DriverHealth(False, f"no answer: {err}")


SOFT_WARM = LightLook(20, color_temp=2200)  # what Hue lamps come back at after a power cut


@dataclass
class _HuePools:
    """The service's Hue bridges: one connection (and rate limits) per bridge, shared by the
    rooms on it, for each API version."""

    v1: HueBridges
    v2: HueV2Bridges


def _hue_trust(host: str, bridge: HueBridgeConfig) -> BridgeTrust | None:
    if bridge.plain_http:
        return None
    return BridgeTrust(host, pin=bridge.certificate_sha256, bridge_id=bridge.bridge_id)


def _build_lights(cfg: Config, room: RoomConfig, clock: Clock, hue: _HuePools | None) -> Lights:
    if room.lights.kind is LightsKind.HUE:
        assert room.lights.bridge is not None and hue is not None
        host = room.lights.bridge
        username = cfg.hue_username(room)
        bridge = cfg.hue_bridge(room)
        if not username or bridge is None:
            raise ConfigError(f"rooms '{room.name}': lights: Hue bridge {host} is not paired: "
                              f"run `roomctl hue pair --bridge {host}`")
        lights = None if room.lights.group else room.lights.lights
        trust = _hue_trust(host, bridge)
        if bridge.api == "v2":
            if trust is None:
                raise ConfigError(f'hue_bridges."{host}": plain_http: API v2 is HTTPS only')
            return hue.v2.lights(host, username, trust=trust, group=room.lights.group,
                                 lights=lights, policy=room.lights.outside_changes,
                                 powerup=SOFT_WARM if room.lights.powerup == "soft-warm"
                                 else None)
        return build_hue_lights(host, username, room.lights.group, lights, clock,
                                bridges=hue.v1, trust=trust)
    return SimulatedLights(clock, room.lights.names)


def _build_audio(cfg: Config, room: RoomConfig, clock: Clock, safety: Safety) -> tuple[Audio, str | None]:
    kind = room.audio.kind
    if kind is AudioKind.SIMULATED:
        return SimulatedAudio(clock, max_volume=safety.max_volume), None
    ok, reason = vlc_available()
    if not ok:
        if kind is AudioKind.VLC:
            log.error("room %s: libvlc is not available (%s); audio is SIMULATED", room.name, reason)
        else:
            log.warning("room %s: libvlc not found (%s): audio is simulated, the room is silent",
                        room.name, reason)
        note = f"audio is simulated: libvlc is not available ({reason})"
        return SimulatedAudio(clock, max_volume=safety.max_volume), note
    playlists = parse_playlists(room.audio.playlists, base_dir=cfg.config_dir)
    if room.audio.demo_media:
        ensure_demo_media(cfg.data_dir)
        playlists = {**demo_playlists(cfg.data_dir), **playlists}
    a = room.audio
    audio = VlcAudio(playlists, max_volume=safety.max_volume, aout=a.output, device=a.device, name=room.id,
                     track_crossfade_s=a.track_crossfade, loudness_target=a.loudness_target,
                     true_peak_ceiling=a.true_peak_ceiling,
                     unmeasured_gain=a.unmeasured_gain if a.loudness_normalise else 0.0,
                     normalise=a.loudness_normalise, loudness_cache=cfg.data_dir / "loudness-cache.json")
    return audio, None


RETENTION_EVERY_S = 3600.0
WATCH_RECORD_S = 1.0  # the record's files are looked at this often (and before every write)
WATCH_TIME_LIMIT_S = 5.0  # a disk that does not answer a look in this time is failing
CLOSE_TIME_LIMIT_S = 10.0  # a driver that does not close in this time is left behind


class Service:
    """Every room of one roomctl, with the record when one is kept (``store``)."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 store: SessionStore | None = None) -> None:
        self.config = config
        self.clock = clock or RealClock()
        self.store = store
        self.library = PresetLibrary(config.bundled_presets, config.clinic_presets)
        self.rooms: dict[str, RoomController] = {}
        # Reports and CSV exports of the record, drawn in a process of their own.
        self.records = RecordRenderer(store.path) if store is not None else None
        self._retention: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Build the rooms, continue the sessions the record says never ended, and start
        deleting old records when the clinic keeps them for a limited time."""
        cfg = self.config
        hue = None
        if any(rc.lights.kind is LightsKind.HUE for rc in cfg.rooms):
            timeout = min(rc.lights.timeout for rc in cfg.rooms if rc.lights.kind is LightsKind.HUE)
            hue = _HuePools(HueBridges(self.clock, HueOptions(request_timeout_s=timeout)),
                            HueV2Bridges(self.clock, V2Options(request_timeout_s=timeout)))
        for rc in cfg.rooms:
            safety = cfg.safety.to_safety(rc.audio.max_volume)
            lights = _build_lights(cfg, rc, self.clock, hue)
            audio, note = await asyncio.to_thread(_build_audio, cfg, rc, self.clock, safety)
            if isinstance(lights, HueLights | HueV2Lights):
                await self._first_contact(rc, lights)
            room = Room(rc.name, lights, audio, safety)
            sink = self.store.sink(rc.id) if self.store is not None else None
            runner = SessionRunner(room, self.clock, event_sink=sink, time_limit_s=cfg.driver_time_limit)
            self.rooms[rc.id] = RoomController(rc.id, rc, room, runner, note, store=self.store)
            log.info("room %s ready: lights %s, audio %s", rc.name, lights.health().detail,
                     note or audio.health().detail)
        if self.store is not None:
            await self.recover_sessions()
            self._watch = asyncio.create_task(self._watch_record(), name="record watch")
            if cfg.retention_days is not None:
                self._retention = asyncio.create_task(self._keep_retention(cfg.retention_days),
                                                      name="retention")

    async def recover_sessions(self) -> list[str]:
        """Continue every session the record says never ended, newest first per room. A
        session that cannot be read back stays in the record, and its room says so.

        Session time is moved on, if need be, to the last recorded event, or the last time the
        service before this one was seen running (`SessionStore.last_alive`): a clock that was
        behind at start (a hardware clock that lost time) must not replay a session into its
        past. The time the service was down is then unknown, and counted as none."""
        assert self.store is not None
        found = await asyncio.to_thread(self.store.recoverable)
        for room_id, session_id, why in found.damaged:
            ctl = self.rooms.get(room_id)
            if ctl is not None:
                ctl.recovery_note = f"session {session_id} could not be continued: {why}"
        last = [s.session.events[-1].at for s in found.sessions if s.session.events]
        if last and self.store.last_alive is not None:
            last.append(self.store.last_alive)  # it ran on after its last event, at least until then
        if last and max(last) > self.clock.now():
            behind = max(last) - self.clock.now()
            log.warning("the clock is %.0f s behind the last recorded event: session time continues "
                        "from the record (the wall time is kept beside each event)", behind)
            self.clock.not_before(max(last))
        recovered = []
        for stored in reversed(found.sessions):  # newest first
            ctl = self.rooms.get(stored.room)
            if stored.damaged:
                note = (f"session {stored.id} continues without {len(stored.damaged)} damaged record(s) "
                        f"that could not be read back: {'; '.join(stored.damaged[:3])}")
                log.error("%s", note)
                if ctl is not None:
                    ctl.recovery_note = note
            if ctl is None:
                log.error("session %s belongs to room '%s', which is not in the config; left as it is",
                          stored.session.id, stored.room)
                continue
            if ctl.runner.running:
                log.error("room %s has two unfinished sessions; continuing only the newest", stored.room)
                continue
            status = await ctl.runner.recover(stored.session)
            log.warning("room %s: recovered session %s in phase '%s' (%d events)", stored.room,
                        stored.session.id, status.phase.id if status else "?", len(stored.session.events))
            recovered.append(stored.session.id)
        return recovered

    async def _watch_record(self) -> None:
        """Look at the record's files every second (deleted, moved, replaced?), probe a disk
        that failed a write, and when it can write again hand it the events kept in memory."""
        assert self.store is not None
        store = self.store
        while True:
            await asyncio.sleep(WATCH_RECORD_S)
            try:
                changed = await asyncio.wait_for(asyncio.to_thread(store.watch, self.clock.now()),
                                                 WATCH_TIME_LIMIT_S)
                stalled = None
            except TimeoutError:
                changed, stalled = False, (f"session store {store.path}: its disk did not answer within "
                                           f"{WATCH_TIME_LIMIT_S:g} s")
            except Exception:
                log.exception("watching the record failed")
                continue
            if stalled != store.stalled:
                store.stalled, changed = stalled, True
            for ctl in self.rooms.values():
                if ctl.runner.unwritten and store.problem is None:
                    changed = await ctl.runner.flush() or changed
                if changed:
                    ctl.changed()

    async def _keep_retention(self, days: float) -> None:
        """Delete records older than the clinic's retention setting: at start, then hourly."""
        assert self.store is not None
        while True:
            try:
                await asyncio.to_thread(self.store.purge_older_than, days, self.clock.now())
            except StoreError as err:
                log.error("deleting old session records failed: %s", err)
            except Exception:
                log.exception("deleting old session records failed")
            await asyncio.sleep(RETENTION_EVERY_S)

    @staticmethod
    async def _first_contact(rc: RoomConfig, lights: HueLights | HueV2Lights) -> None:
        """Reach the bridge once at start, so the room state says at once whether it answers.
        A bridge that does not answer is no reason not to start: the driver keeps trying."""
        try:
            await lights.connect()
        except HueError as err:
            log.warning("room %s: %s", rc.name, err)

    async def stop(self) -> None:
        for task in (self._retention, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._retention = self._watch = None
        if self.records is not None:
            self.records.close()
        if self.store is not None:
            self.store.note_alive(self.clock.now())
        for ctl in self.rooms.values():  # one room's failure never keeps the others open
            for what, closer in (("session", ctl.runner.close), ("lights", ctl.room.lights.close),
                                 ("audio", ctl.room.audio.close)):
                try:
                    async with asyncio.timeout(CLOSE_TIME_LIMIT_S):
                        await closer()
                except Exception:
                    log.exception("room %s: closing the %s failed", ctl.id, what)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rid, ctl in self.rooms.items():
            lh, ah = ctl.lights_health(), ctl.audio_health()
            problems = [p for p in (ctl.runner.timeline_error, ctl.runner.task_error, ctl.recovery_note) if p]
            record = ctl.record_problem()
            out[rid] = {"lights": {"ok": lh.ok, "detail": lh.detail},
                        "audio": {"ok": ah.ok, "detail": ctl.audio_note or ah.detail},
                        "session": {"ok": not problems, "detail": "; ".join(problems) or None},
                        "record": {"ok": record is None, "detail": record}}
        return out
