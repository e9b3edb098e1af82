"""In-memory lights and music: the demo room, and the room the engine's tests run against.

State is readable at any moment and fades are interpolated in time on the given clock.
Misuse (a brightness outside 0-100, a negative transition, both colour forms) raises, so a
bug in the runner shows up here instead of being sent to real hardware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from roomctl.clock import Clock
from roomctl.curves import Fade, Ramp
from roomctl.room import (
    AudioSnapshot,
    DriverHealth,
    LightLook,
    LightReading,
    MusicTarget,
    NowPlaying,
    PlaylistReport,
)

LightsListener = Callable[[LightLook, float], None]
AudioListener = Callable[[str, MusicTarget], None]


class SimulatedLights:
    """A room of simulated bulbs that fade like Hue bulbs do (inside the bulb, in time)."""

    def __init__(self, clock: Clock, names: list[str] | None = None,
                 listener: LightsListener | None = None) -> None:
        self._clock = clock
        self._names = names or ["Ceiling", "Floor lamp", "Reading lamp", "Window strip"]
        self._fade = Fade(LightLook(0.0, 2700), LightLook(0.0, 2700), clock.now(), 0.0)
        self._listener = listener
        self.commands: list[tuple[float, LightLook, float]] = []

    async def apply(self, look: LightLook, transition_s: float) -> None:
        _check_look(look)
        if transition_s < 0:
            raise ValueError(f"negative transition {transition_s}")
        now = self._clock.now()
        self._fade = Fade(self._look_at(now), look, now, transition_s)
        self.commands.append((now, look, transition_s))
        if self._listener is not None:
            self._listener(look, transition_s)

    def _look_at(self, t: float) -> LightLook:
        return self._fade.value_at(t)  # the same curve the timeline predicts

    def readings(self) -> list[LightReading]:
        look = self._look_at(self._clock.now())
        return [
            LightReading(str(i + 1), name, look.brightness > 0, round(look.brightness, 1),
                         look.color_temp, look.color)
            for i, name in enumerate(self._names)
        ]

    def health(self) -> DriverHealth:
        return DriverHealth(True, "simulated lights")

    async def close(self) -> None:
        return None


def _check_look(look: LightLook) -> None:
    if not 0 <= look.brightness <= 100:
        raise ValueError(f"brightness {look.brightness} outside 0-100")
    if look.color is not None and look.color_temp is not None:
        raise ValueError("both color and color_temp set")


class SimulatedAudio:
    """Simulated playlists: every name plays a few imaginary 4-minute tracks, looping."""

    TRACK_S = 240.0

    def __init__(self, clock: Clock, *, max_volume: float = 100.0,
                 playlists: dict[str, list[str]] | None = None,
                 listener: AudioListener | None = None) -> None:
        self._clock = clock
        self._max_volume = max_volume
        self._playlists = playlists
        self._listener = listener
        self._target = MusicTarget(None, 0.0, playing=False)
        self._ramp = Ramp(0.0, 0.0, clock.now(), 0.0)
        self._track = 0
        self._track_started = clock.now()
        self._paused_at: float | None = None
        self.commands: list[tuple[float, str, MusicTarget]] = []

    def _tracks(self, playlist: str) -> list[str]:
        if self._playlists is not None:
            return self._playlists.get(playlist, [])
        return [f"{playlist} {n}" for n in ("I", "II", "III")]

    async def apply(self, target: MusicTarget) -> None:
        if not 0 <= target.volume <= 100:
            raise ValueError(f"volume {target.volume} outside 0-100")
        if min(target.fade_in_s, target.crossfade_s, target.ramp_s) < 0:
            raise ValueError("negative fade")
        if target == self._target:
            return
        now = self._clock.now()
        old = self._target
        level = min(target.volume, self._max_volume) if target.playlist and target.playing else 0.0
        if target.playlist != old.playlist:
            how = "crossfade" if old.playlist and target.playlist else ("fade in" if target.playlist else "fade out")
            one_sided = target.fade_in_s if target.playlist else target.ramp_s
            span = target.crossfade_s if how == "crossfade" else one_sided
            self._ramp = Ramp(0.0 if how != "fade out" else self._ramp.value_at(now), level, now, span)
            self._track, self._track_started, self._paused_at = 0, now, None
        else:
            how = "volume" if target.playing == old.playing else ("play" if target.playing else "pause")
            self._ramp = Ramp(self._ramp.value_at(now), level, now, target.ramp_s)
            if how == "pause":
                self._paused_at = now
            elif how == "play" and self._paused_at is not None:
                self._track_started += now - self._paused_at
                self._paused_at = None
        self._target = target
        self.commands.append((now, how, target))
        if self._listener is not None:
            self._listener(how, replace(target, volume=min(target.volume, self._max_volume)))

    async def skip(self, direction: Literal["next", "previous"]) -> None:
        tracks = self._tracks(self._target.playlist) if self._target.playlist else []
        if tracks:
            self._sync_track()
            step = 1 if direction == "next" else -1
            self._track = (self._track + step) % len(tracks)
            self._track_started = self._clock.now()

    def _sync_track(self) -> None:
        now = self._paused_at if self._paused_at is not None else self._clock.now()
        while now - self._track_started >= self.TRACK_S:
            self._track_started += self.TRACK_S
            self._track += 1

    async def preflight(self, playlists: list[str]) -> list[PlaylistReport]:
        reports = []
        for name in playlists:
            n = len(self._tracks(name))
            problems = () if n else (f"playlist '{name}' is not in this room's config",)
            reports.append(PlaylistReport(name, n, problems))
        return reports

    def snapshot(self) -> AudioSnapshot:
        t = self._target
        now_playing = None
        tracks = self._tracks(t.playlist) if t.playlist else []
        if tracks:
            self._sync_track()
            ref = self._paused_at if self._paused_at is not None else self._clock.now()
            now_playing = NowPlaying(tracks[self._track % len(tracks)], "roomctl demo",
                                     f"sim://{t.playlist}/{self._track % len(tracks)}",
                                     round(ref - self._track_started, 1), self.TRACK_S)
        volume = round(self._ramp.value_at(self._clock.now()), 1)
        return AudioSnapshot(t.playlist, volume, t.playing and t.playlist is not None, now_playing)

    def health(self) -> DriverHealth:
        return DriverHealth(True, "simulated audio")

    async def close(self) -> None:
        return None
