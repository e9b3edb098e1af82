"""The driver protocols and the values that cross them.

Drivers know nothing of sessions or presets: the runner hands them *what the room should
look and sound like* (declarative, idempotent), and they make it so. Every method must
return quickly: blocking hardware libraries (phue, libvlc) run in the driver's own worker
thread, never on the asyncio event loop.
"""

from __future__ import annotations

from typing import Literal, Protocol

from roomctl.room import AudioSnapshot, DriverHealth, LightLook, LightReading, MusicTarget, PlaylistReport


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
