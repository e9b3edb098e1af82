"""`VlcAudio`: a room's music through libvlc, as `roomctl.drivers.base.Audio`.

The facade the rest of roomctl sees. The constructor starts the room's worker thread
(`worker`) running the room's `Transport` (which starts the output thread, `pcmout`); the
asyncio side submits commands and awaits their futures; `snapshot()` and `health()` read
what the worker last published (a ramp is published as its curve, so readers see the
mid-ramp volume), with no libvlc call. Files are probed and measured for loudness in the
background (`roomctl.drivers.tracks`), never on the worker or the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

from roomctl import playlists as pl
from roomctl.drivers.tracks import TrackChecks, track_gain
from roomctl.drivers.vlc.mixer import MIN_FADE_S, TICK_S
from roomctl.drivers.vlc.output import (
    DEFAULT_VLC_ARGS,
    AudioUnavailable,
    OutputChoice,
    OutputHook,
    choose_output,
    hooked_output,
)
from roomctl.drivers.vlc.scans import PlaylistScans
from roomctl.drivers.vlc.transport import Fades, Transport
from roomctl.drivers.vlc.worker import Worker
from roomctl.room import AudioSnapshot, DriverHealth, MusicTarget, PlaylistReport

# One logger for the whole driver, named after the package (each room logs to a child).
logger = logging.getLogger("roomctl.drivers.vlc")

START_TIMEOUT_S = 30.0
STARTUP_SCAN_DELAY_S = 2.0
PREFLIGHT_PROBE_S = 3.0  # preflight waits this long for files to be probed (within the driver time limit)


class VlcAudio:
    """A room's music through libvlc (implements `roomctl.drivers.base.Audio`).

    ``playlists`` maps the names presets use to media (`roomctl.playlists`); ``max_volume``
    (percent) caps every volume; ``aout``/``device`` pick the output (default: the
    system's; on a machine with no working output, libvlc's dummy output, said in
    `health`). ``output_hook`` routes both decks into an `OutputHook` (such as a test's
    PCM capture) instead of a speaker.

    The constructor starts the room's worker thread and waits for libvlc to start (about
    0.1 s); it raises `AudioUnavailable` if libvlc cannot be loaded or refuses ``vlc_args``.
    """

    def __init__(
        self,
        playlists: Mapping[str, pl.PlaylistSpec],
        *,
        max_volume: float = 100.0,
        aout: str | None = None,
        device: str | None = None,
        vlc_args: Sequence[str] = DEFAULT_VLC_ARGS,
        output_hook: OutputHook | None = None,
        name: str = "room",
        track_fade_in_s: float = 1.0,
        pause_fade_s: float = 1.5,
        skip_crossfade_s: float = 2.5,
        close_fade_s: float = 1.0,
        track_crossfade_s: float = 3.0,
        loudness_target: float = -18.0,
        true_peak_ceiling: float = -1.0,
        unmeasured_gain: float = -6.0,
        normalise: bool = True,
        loudness_cache: Path | None = None,
    ) -> None:
        if not 0.0 <= max_volume <= 100.0:
            raise ValueError(f"max_volume must be 0-100 percent, not {max_volume!r}")
        self._playlists = dict(playlists)
        log = logger.getChild(name)
        output = hooked_output(output_hook) if output_hook is not None else choose_output(aout, device)
        if output.note and output_hook is None:
            log.warning("%s", output.note)
        self._worker = Worker(f"roomctl-audio-{name}", log, tick_s=TICK_S)
        self._tracks = TrackChecks(loudness_cache, log, loudness=normalise)
        self._scans = PlaylistScans(self._playlists, log, self._tracks)
        self._gains = partial(track_gain, target_lufs=loudness_target, ceiling_db=true_peak_ceiling,
                              unmeasured_db=unmeasured_gain)
        self._normalise = normalise
        self._transport = Transport(
            self._playlists,
            scans=self._scans,
            worker=self._worker,
            log=log,
            output=output,
            output_hook=output_hook,
            vlc_args=list(vlc_args),
            max_volume=float(max_volume),
            fades=Fades(
                track_fade_in_s=max(MIN_FADE_S, track_fade_in_s),
                pause_fade_s=max(MIN_FADE_S, pause_fade_s),
                skip_crossfade_s=max(MIN_FADE_S, skip_crossfade_s),
                close_fade_s=max(MIN_FADE_S, close_fade_s),
                track_crossfade_s=max(0.0, track_crossfade_s),
            ),
            gain_of=self._gain_of,
            ceiling_gain=10 ** (true_peak_ceiling / 20) if normalise else 1.0,
            name=name,
        )
        if not self._worker.start(self._transport, START_TIMEOUT_S):
            raise AudioUnavailable(f"libvlc did not start within {START_TIMEOUT_S:g} s")
        if self._worker.fatal is not None:
            self._worker.join()
            raise AudioUnavailable(self._worker.fatal)
        # Every playlist is listed, then its files probed and measured, in the background,
        # once the service has started (its recovery and first contacts go first).
        self._startup_scan = threading.Timer(STARTUP_SCAN_DELAY_S, self._scan_all)
        self._startup_scan.daemon = True
        self._startup_scan.start()

    def _scan_all(self) -> None:
        for playlist in self._playlists:
            if self._scans.last(playlist) is None:
                self._scans.refresh(playlist)

    # --- the Audio protocol (any thread / the event loop) ---------------------------------

    async def apply(self, target: MusicTarget) -> None:
        # Scanned first, on the scan threads: the worker never waits for a slow share.
        if target.playlist in self._playlists and self._scans.last(target.playlist) is None:
            # shielded: a caller that gives up (a time limit) must not cancel the scan itself
            await asyncio.shield(asyncio.wrap_future(self._scans.refresh(target.playlist)))
        await asyncio.wrap_future(self._worker.submit(partial(self._transport.apply, target)))

    async def skip(self, direction: Literal["next", "previous"]) -> None:
        await asyncio.wrap_future(self._worker.submit(partial(self._transport.skip, direction)))

    async def preflight(self, playlists: list[str]) -> list[PlaylistReport]:
        return await asyncio.to_thread(self._preflight, list(playlists))

    def snapshot(self) -> AudioSnapshot:
        pub = self._transport.published
        return pub.snapshot_at(time.monotonic())

    def health(self) -> DriverHealth:
        fatal = self._worker.fatal
        if fatal is not None:
            return DriverHealth(False, fatal)
        if not self._worker.alive:
            return DriverHealth(False, "audio driver is closed")
        return self._transport.published.health

    async def close(self) -> None:
        self._startup_scan.cancel()
        if self._worker.alive:
            with contextlib.suppress(AudioUnavailable):  # closed already
                await asyncio.wrap_future(self._worker.submit(self._transport.begin_close))
            await asyncio.to_thread(self._worker.join)
        self._tracks.close()

    def _gain_of(self, entry: str) -> float:
        """The loudness gain a file plays with (never waits: what is known now)."""
        if pl.is_stream(entry):
            return self._gains(None)
        state = self._tracks.state(entry)
        return self._gains(state.loudness if state is not None and self._normalise else None)

    # --- extras for the room check and the bench -----------------------------------------

    @property
    def scans(self) -> PlaylistScans:
        """The room's playlist scans (which run off the libvlc worker)."""
        return self._scans

    @property
    def output(self) -> OutputChoice:
        return self._transport.output

    @property
    def tracks(self) -> TrackChecks:
        """The room's file checks (probes and loudness), which run in the background."""
        return self._tracks

    def output_blocks(self) -> int:
        """Blocks the output thread has mixed (for the bench)."""
        pcm = self._transport.mixer.pcm
        return pcm.blocks if pcm is not None else 0

    @property
    def wakeups(self) -> int:
        """How often the worker has woken (commands, events, ticks, timers): a steady
        room, with nothing fading, should add next to none."""
        return self._worker.wakeups

    def fade_steps_per_s(self) -> float | None:
        """Volume steps per second measured while ramps ran (None before any ramp)."""
        return self._transport.fade_steps_per_s()

    # --- off the worker ------------------------------------------------------------------

    def _preflight(self, names: list[str]) -> list[PlaylistReport]:
        reports: list[PlaylistReport] = []
        scans = {name: self._scans.refresh(name) for name in names if name in self._playlists}
        deadline = time.monotonic() + PREFLIGHT_PROBE_S
        for name in names:
            if name not in self._playlists:
                problem = f"playlist '{name}' is not in this room's config"
                reports.append(PlaylistReport(name=name, playable=0, problems=(problem,)))
                continue
            scan = scans[name].result()  # fresh, and kept for the session
            probed = self._tracks.wait(scan.entries, max(0.0, deadline - time.monotonic()))
            broken = tuple(self._scans.broken(name))
            measured, files = self._scans.measured(name)
            problems = [*scan.problems, *broken]
            if not probed:
                problems.append("some files are still being checked")
            reports.append(PlaylistReport(name=name, playable=len(self._scans.playable(name, scan)),
                                          problems=tuple(problems), measured=measured if self._normalise else 0,
                                          files=files, broken=broken))
        return reports
