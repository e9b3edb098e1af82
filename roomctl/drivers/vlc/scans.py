"""Playlist scans, off the libvlc worker thread.

Listing a folder or reading an m3u can take seconds or hang (a clinic's NAS). The worker
thread that drives libvlc (and the volume ramps) must never wait for that, so scans run on a
thread of their own (one per playlist at a time; a daemon, so a share that never answers
cannot keep roomctl from stopping) and the worker only reads their last result. `VlcAudio.apply`
makes sure a playlist has been scanned before it hands the command to the worker (behind the
runner's gate, with its time limit); at a loop the worker asks for a fresh scan and goes on
with what it has.

Each scan hands its files to the room's `TrackChecks`, which probes them (does the file
decode?) and finds their loudness in the background; a file found broken is left out of
what the worker plays (`playable`), so it costs no playback time.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from roomctl import playlists as pl
from roomctl.drivers.tracks import TrackChecks


@dataclass(frozen=True)
class Scan:
    entries: tuple[str, ...]  # playable, in play order
    problems: tuple[str, ...]


class PlaylistScans:
    """The last scan of each playlist name, and at most one scan of it under way.

    ``scan`` reads one playlist (`roomctl.playlists.scan`); tests put a slow one in its place
    to play a share that does not answer."""

    def __init__(self, playlists: Mapping[str, pl.PlaylistSpec], log: logging.Logger,
                 tracks: TrackChecks | None = None) -> None:
        self.scan: Callable[[pl.PlaylistSpec], tuple[list[str], list[str]]] = pl.scan
        self._playlists = playlists
        self._log = log
        self.tracks = tracks if tracks is not None else TrackChecks(None, log, loudness=False)
        self._lock = threading.Lock()
        self._done: dict[str, Scan] = {}
        self._running: dict[str, concurrent.futures.Future[Scan]] = {}

    def last(self, name: str) -> Scan | None:
        """The last finished scan of ``name`` (None: not scanned yet). Any thread; never waits."""
        with self._lock:
            return self._done.get(name)

    def refresh(self, name: str) -> concurrent.futures.Future[Scan]:
        """Scan ``name`` again in the background (or join the scan under way)."""
        with self._lock:
            running = self._running.get(name)
            if running is not None:
                return running
            future: concurrent.futures.Future[Scan] = concurrent.futures.Future()
            self._running[name] = future
        threading.Thread(target=self._scan, args=(name, future), name=f"roomctl-scan-{name}",
                         daemon=True).start()
        return future

    def _scan(self, name: str, future: concurrent.futures.Future[Scan]) -> None:
        spec = self._playlists.get(name)
        try:
            entries, problems = self.scan(spec) if spec is not None else ([], [])
            result = Scan(tuple(entries), tuple(problems))
        except Exception as exc:  # an unreadable share: say so, keep what was known
            self._log.warning("playlist '%s' could not be scanned: %s", name, exc)
            result = Scan((), (f"could not be read: {exc}",))
        with self._lock:
            self._done[name] = result
            self._running.pop(name, None)
        self.tracks.check(result.entries)
        future.set_result(result)

    # --- what the checks found (any thread; never waits) ------------------------------------

    def playable(self, name: str, scan: Scan | None = None) -> tuple[str, ...]:
        """The scan's entries less the files found broken."""
        scan = scan if scan is not None else self.last(name)
        if scan is None:
            return ()
        kept = []
        for entry in scan.entries:
            state = self.tracks.state(entry)
            if state is None or state.problem is None:
                kept.append(entry)
        return tuple(kept)

    def broken(self, name: str) -> list[str]:
        """"<file>: <why>" for each file of the playlist found broken."""
        scan = self.last(name)
        out = []
        for entry in scan.entries if scan is not None else ():
            state = self.tracks.state(entry)
            if state is not None and state.problem is not None:
                out.append(f"{entry}: {state.problem}")
        return out

    def measured(self, name: str) -> tuple[int, int]:
        """(files whose loudness is known, files) of the playlist's playable files."""
        entries = [e for e in self.playable(name) if not pl.is_stream(e)]
        known = 0
        for entry in entries:
            state = self.tracks.state(entry)
            if state is not None and state.loudness is not None:
                known += 1
        return known, len(entries)

    def duration(self, entry: str) -> float | None:
        state = self.tracks.state(entry)
        return state.duration_s if state is not None else None

    def mark_broken(self, entry: str, reason: str) -> None:
        if not pl.is_stream(entry):
            self.tracks.mark_broken(entry, reason)
