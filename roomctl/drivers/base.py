"""The driver protocols and the values that cross them.

Drivers know nothing of sessions or presets: the runner hands them *what the room should
look and sound like* (declarative, idempotent), and they make it so. Every method must
return quickly: blocking hardware libraries (phue, libvlc) run in the driver's own worker
thread, never on the asyncio event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from roomctl.room import (
    AudioSnapshot,
    DriverHealth,
    LightLook,
    LightReading,
    MusicTarget,
    OutsideChange,
    PlaylistReport,
)


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


@runtime_checkable
class SeesOutsideChanges(Protocol):
    """Lights that notice changes made outside roomctl (the Hue app, a wall switch) and either
    put the lamp back on the session's course or leave it until the next phase."""

    def subscribe_outside_changes(self, callback: Callable[[OutsideChange], None]) -> Callable[[], None]:
        ...

    def outside_changes(self) -> tuple[OutsideChange, ...]:
        """Those noticed since the last `take_back`, newest last."""
        ...

    def take_back(self) -> None:
        """Drive every lamp again (those left alone too): before a new phase's or Lights up's apply."""
        ...

    def runner_marks_phases(self) -> None:
        """The caller promises to call `take_back` at each new phase and for Lights up."""
        ...
