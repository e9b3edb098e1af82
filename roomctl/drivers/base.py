"""The driver protocols and the values that cross them.

Drivers know nothing of sessions or presets: the runner hands them *what the room should
look and sound like* (declarative, idempotent), and they make it so. Every method must
return quickly: blocking hardware libraries (phue, libvlc) run in the driver's own worker
thread, never on the asyncio event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from roomctl import units


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
        return units.rgb_to_hex(units.kelvin_to_rgb(self.color_temp or 2700))


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

    @property
    def ok(self) -> bool:
        return self.playable > 0


class Lights(Protocol):
    """A room's lights, addressed as a whole."""

    async def apply(self, look: LightLook, transition_s: float) -> None:
        """Fade the whole room to ``look`` over ``transition_s`` seconds. Returns once the
        command is accepted (not delivered); a later call supersedes an earlier one."""
        ...

    def readings(self) -> list[LightReading]:
        """Each light's state now (mid-fade: the interpolated value)."""
        ...

    def health(self) -> DriverHealth: ...

    async def close(self) -> None: ...


class Audio(Protocol):
    """A room's music."""

    async def apply(self, target: MusicTarget) -> None:
        """Make the music be ``target`` (crossfade, fade in, ramp, pause); idempotent."""
        ...

    async def skip(self, direction: Literal["next", "previous"]) -> None: ...

    async def preflight(self, playlists: list[str]) -> list[PlaylistReport]: ...

    def snapshot(self) -> AudioSnapshot: ...

    def health(self) -> DriverHealth: ...

    async def close(self) -> None: ...
