"""The running service without the web: rooms (drivers + a session runner each), the preset
library, and start-up/shut-down. The API builds one in its lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomctl.clock import Clock, RealClock
from roomctl.config import AudioKind, Config, ConfigError, LightsKind, RoomConfig
from roomctl.drivers.base import Audio, Lights
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.library import PresetLibrary
from roomctl.preset import Preset
from roomctl.room import AudioSnapshot, DriverHealth, MusicTarget, PlaylistReport, Safety
from roomctl.session import EventSink, Room, SessionRunner
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
    preset_id: str | None = None
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
        st = self.runner.status()
        return self.idle_emergency or bool(st and not st.ended and st.emergency)

    async def preflight(self, preset: Preset) -> Preflight:
        reports = await self.room.audio.preflight(preset.playlists())
        return Preflight(self.room.lights.health(), self.room.audio.health(), reports)

    async def start(self, preset_id: str, preset: Preset, label: str | None = None) -> Status:
        if self.idle_emergency:
            self.idle_emergency = False
        status = await self.runner.start(preset, label=label)
        self.preset_id = preset_id
        return status

    async def emergency_on(self) -> None:
        if self.runner.running:
            await self.runner.emergency_on()
            return
        s = self.room.safety
        self.idle_emergency = True
        await self.room.lights.apply(s.emergency_look, s.emergency_fade_s)
        snap = self.room.audio.snapshot()
        if snap.playlist is not None:
            await self.room.audio.apply(s.emergency_music(MusicTarget(snap.playlist, snap.volume)))
        self.changed()

    async def emergency_off(self) -> None:
        if self.runner.running:
            await self.runner.emergency_off()
            return
        self.idle_emergency = False
        self.changed()


def _build_lights(cfg: Config, room: RoomConfig, clock: Clock, hue: Any) -> Lights:
    if room.lights.kind is LightsKind.HUE:
        from roomctl.drivers.hue import build_hue_lights

        username = cfg.hue_username(room)
        if not username:
            raise ConfigError(f"rooms '{room.name}': lights: no username for Hue bridge "
                              f"{room.lights.bridge}: run `roomctl hue pair --bridge {room.lights.bridge}`")
        assert room.lights.bridge is not None
        return build_hue_lights(room.lights.bridge, username, room.lights.group,
                                None if room.lights.group else room.lights.lights, clock, bridges=hue)
    return SimulatedLights(clock, room.lights.names)


def _build_audio(cfg: Config, room: RoomConfig, clock: Clock, safety: Safety) -> tuple[Audio, str | None]:
    kind = room.audio.kind
    if kind is AudioKind.SIMULATED:
        return SimulatedAudio(clock, max_volume=safety.max_volume), None
    try:
        from roomctl.drivers.vlc import vlc_available
        ok, reason = vlc_available()
    except ImportError as err:  # the vlc driver module itself could not load
        ok, reason = False, str(err)
    if not ok:
        if kind is AudioKind.VLC:
            log.error("room %s: libvlc is not available (%s); audio is SIMULATED", room.name, reason)
        else:
            log.warning("room %s: libvlc not found (%s): audio is simulated, the room is silent",
                        room.name, reason)
        note = f"audio is simulated: libvlc is not available ({reason})"
        return SimulatedAudio(clock, max_volume=safety.max_volume), note
    from roomctl.drivers.vlc import VlcAudio
    from roomctl.playlists import parse_playlists

    playlists = parse_playlists(room.audio.playlists, base_dir=cfg.config_dir)
    if room.audio.demo_media:
        from roomctl.demo_media import demo_playlists, ensure_demo_media

        ensure_demo_media(cfg.data_dir)
        playlists = {**demo_playlists(cfg.data_dir), **playlists}
    audio = VlcAudio(playlists, max_volume=safety.max_volume, aout=room.audio.output,
                     device=room.audio.device)
    return audio, None


class Service:
    def __init__(self, config: Config, *, clock: Clock | None = None,
                 event_sink_for: Callable[[str], EventSink] | None = None) -> None:
        self.config = config
        self.clock = clock or RealClock()
        self.library = PresetLibrary(config.bundled_presets, config.clinic_presets)
        self.rooms: dict[str, RoomController] = {}
        self._sink_for = event_sink_for

    async def start(self) -> None:
        cfg = self.config
        hue = None
        if any(rc.lights.kind is LightsKind.HUE for rc in cfg.rooms):
            from roomctl.drivers.hue import HueBridges, HueOptions

            timeout = min(rc.lights.timeout for rc in cfg.rooms if rc.lights.kind is LightsKind.HUE)
            hue = HueBridges(self.clock, HueOptions(request_timeout_s=timeout))
        for rc in cfg.rooms:
            safety = cfg.safety.to_safety(rc.audio.max_volume)
            lights = _build_lights(cfg, rc, self.clock, hue)
            audio, note = await asyncio.to_thread(_build_audio, cfg, rc, self.clock, safety)
            if rc.lights.kind is LightsKind.HUE:
                await self._first_contact(rc, lights)
            room = Room(rc.name, lights, audio, safety)
            sink = self._sink_for(rc.id) if self._sink_for else None
            runner = SessionRunner(room, self.clock, event_sink=sink)
            self.rooms[rc.id] = RoomController(rc.id, rc, room, runner, note)
            log.info("room %s ready: lights %s, audio %s", rc.name, lights.health().detail,
                     note or audio.health().detail)

    @staticmethod
    async def _first_contact(rc: RoomConfig, lights: Lights) -> None:
        """Reach the bridge once at start, so the room state says at once whether it answers.
        A bridge that does not answer is no reason not to start: the driver keeps trying."""
        from roomctl.drivers.hue import HueError, HueLights

        assert isinstance(lights, HueLights)
        try:
            await lights.connect()
        except HueError as err:
            log.warning("room %s: %s", rc.name, err)

    async def stop(self) -> None:
        for ctl in self.rooms.values():
            await ctl.runner.close()
            for closer in (ctl.room.lights.close, ctl.room.audio.close):
                try:
                    await closer()
                except Exception:
                    log.exception("room %s: closing a driver failed", ctl.id)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rid, ctl in self.rooms.items():
            lh, ah = ctl.room.lights.health(), ctl.room.audio.health()
            out[rid] = {"lights": {"ok": lh.ok, "detail": lh.detail},
                        "audio": {"ok": ah.ok, "detail": ctl.audio_note or ah.detail}}
        return out


def audio_snapshot(ctl: RoomController) -> AudioSnapshot:
    return ctl.room.audio.snapshot()
