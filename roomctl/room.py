"""The value types every layer shares: what a room should look and sound like, what its
drivers report back, and the room's safety settings.

Nothing here knows of sessions, drivers or the web; everything above imports from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roomctl import units

DEFAULT_KELVIN = 2700  # a look that names no colour is this warm white


@dataclass(frozen=True)
class LightLook:
    """What a light should look like. Exactly one of ``color_temp`` (Kelvin) or ``color``
    ("#rrggbb") may be set; neither means "keep the colour"."""

    brightness: float  # percent, 0-100; 0 means off
    color_temp: int | None = None  # Kelvin
    color: str | None = None  # "#rrggbb"

    def display_rgb(self) -> str:
        """The colour as "#rrggbb" for pictures of the room (brightness not applied)."""
        if self.color is not None:
            return self.color
        return units.rgb_to_hex(units.kelvin_to_rgb(self.color_temp or DEFAULT_KELVIN))


@dataclass(frozen=True)
class LightReading:
    """One light as the driver last knows it (for the room picture and the room state)."""

    id: str
    name: str
    on: bool
    brightness: float  # percent, 0-100
    color_temp: int | None  # Kelvin, when in colour-temperature mode
    color: str | None  # "#rrggbb", when in colour mode
    reachable: bool = True

    def display_rgb(self) -> str:
        return LightLook(self.brightness, self.color_temp, self.color).display_rgb()


@dataclass(frozen=True)
class OutsideChange:
    """A lamp changed by something other than roomctl (the Hue app, a wall switch, an
    automation) while its room was being driven, as a driver noticed it."""

    light_id: str
    name: str
    what: str  # in plain words, e.g. "brightness 40 % -> 80 %, colour temperature 2700 K -> 4000 K"
    at: float  # clock time it was noticed
    action: str  # what the driver does about it: "restored" (put back on course) or "followed"

    def describe(self) -> str:
        done = ("put back on the session's course" if self.action == "restored"
                else "left as it is until the next phase")
        return f"{self.name} was changed outside roomctl ({self.what}): {done}"


@dataclass(frozen=True)
class DriverHealth:
    """Whether a driver is doing its job; ``detail`` says why not, for a therapist to read."""

    ok: bool
    detail: str | None = None


@dataclass(frozen=True)
class MusicTarget:
    """What the music should be. ``playlist`` None means silence (fade out and stop)."""

    playlist: str | None
    volume: float  # percent, 0-100, before the room's cap
    playing: bool = True  # False: paused
    fade_in_s: float = 5.0  # used when starting from silence
    crossfade_s: float = 8.0  # used when switching from one playlist to another
    ramp_s: float = 2.0  # used for a volume change on the same playlist


@dataclass(frozen=True)
class NowPlaying:
    title: str
    artist: str | None
    file: str
    position_s: float
    duration_s: float | None


@dataclass(frozen=True)
class AudioSnapshot:
    playlist: str | None
    volume: float  # percent, what is being output now (mid-ramp value), after the cap
    playing: bool
    now_playing: NowPlaying | None = None
    problems: tuple[str, ...] = ()  # e.g. skipped files, most recent last


@dataclass(frozen=True)
class PlaylistReport:
    """Preflight of one playlist name: can it play?"""

    name: str
    playable: int  # number of playable entries found
    problems: tuple[str, ...] = field(default_factory=tuple)
    measured: int = 0  # playable files whose loudness is known (measured or from their tags)
    files: int = 0  # playable files (streams are not measured)
    broken: tuple[str, ...] = field(default_factory=tuple)  # "<file>: <why>", left out of the play order

    @property
    def ok(self) -> bool:
        return self.playable > 0


@dataclass(frozen=True)
class Safety:
    """The room's safety settings (from its config)."""

    max_volume: float = 85.0  # percent; nothing exceeds it
    emergency_brightness: float = 100.0
    emergency_color_temp: int = 4000  # bright neutral white
    emergency_fade_s: float = 3.0
    emergency_volume: float = 10.0
    release_fade_s: float = 20.0  # back from emergency / back to preset
    end_fade_s: float = 15.0  # music fade-out when a session ends

    @property
    def emergency_look(self) -> LightLook:
        """The room's Lights-up look: the one definition, needing no timeline."""
        return LightLook(self.emergency_brightness, color_temp=self.emergency_color_temp)

    def emergency_music(self, music: MusicTarget) -> MusicTarget:
        """``music`` as it plays while the lights are up: no louder than the emergency level."""
        return MusicTarget(music.playlist, min(music.volume, self.emergency_volume, self.max_volume),
                           playing=music.playing, fade_in_s=music.fade_in_s,
                           crossfade_s=music.crossfade_s, ramp_s=self.emergency_fade_s)
