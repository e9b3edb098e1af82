"""What the room's music says about itself: the published snapshot and health, the problems.

The worker publishes a `Published` whenever something changes (and the play position now
and then); `snapshot()` and `health()` read the last one from any thread, with no libvlc
call. A ramp is published as its curve, so a reader sees the volume mid-ramp.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace

from roomctl import curves
from roomctl.drivers.vlc.output import OutputChoice
from roomctl.drivers.vlc.pcmout import OutputStatus
from roomctl.room import AudioSnapshot, DriverHealth

SKIP_MEMORY_S = 15 * 60.0  # skipped files are mentioned in health() this long
PROBLEMS_KEPT = 20


@dataclass(frozen=True)
class Published:
    snapshot: AudioSnapshot  # its volume is filled in when read, from `levels`
    health: DriverHealth
    at: float  # monotonic time of now_playing.position_s
    running: bool  # the position advances with time
    levels: tuple[tuple[float, curves.Ramp | None], ...] = ()  # each sounding deck: volume, ramp

    def volume(self, now: float) -> float:
        # Ramps are pure functions of time, so a reader can follow one between ticks.
        return max((r.value_at(now) if r is not None else v for v, r in self.levels), default=0.0)

    def snapshot_at(self, now: float) -> AudioSnapshot:
        """The snapshot as of ``now``: the volume on its ramp, the position on the clock."""
        snap = replace(self.snapshot, volume=round(self.volume(now), 1))
        now_playing = snap.now_playing
        if now_playing is not None and self.running:
            pos = now_playing.position_s + (now - self.at)
            if now_playing.duration_s:
                pos = min(pos, now_playing.duration_s)
            snap = replace(snap, now_playing=replace(now_playing, position_s=round(pos, 2)))
        return snap


class Problems:
    """The last few problems (shown in the snapshot) and the files skipped lately (health)."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.recent: deque[str] = deque(maxlen=PROBLEMS_KEPT)
        self._skips: deque[tuple[float, str]] = deque(maxlen=PROBLEMS_KEPT)

    def note(self, message: str, *, skipped: bool = False) -> None:
        self._log.warning("%s", message)
        self.recent.append(message)
        if skipped:
            self._skips.append((time.monotonic(), message))

    def health(self, now: float, output: OutputChoice, status: OutputStatus | None, dead: str | None,
               playing: str | None) -> DriverHealth:
        """``status``: the output stream's; ``dead``: why the wanted playlist plays nothing,
        if it does not; ``playing``: what is heard ("playing 'x' from 'y'")."""
        if output.silent:
            return DriverHealth(False, output.note)
        if status is not None and not status.ok:
            detail = status.detail or "the audio output is not working"
            return DriverHealth(False, f"{detail}; the music goes on silently until it is back"
                                if playing else detail)
        if dead is not None:
            return DriverHealth(False, dead)
        recent = [m for t, m in self._skips if now - t < SKIP_MEMORY_S]
        parts = [p for p in (playing, output.note) if p]
        if recent:
            minutes = round(SKIP_MEMORY_S / 60)
            parts.append(f"{len(recent)} skipped in the last {minutes} min; last: {recent[-1]}")
        return DriverHealth(True, "; ".join(parts) or None)
