"""The room's music policy: which deck plays what, and how the music moves between them.

A playlist change opens the new playlist on the other deck and crossfades; half a second
before a track ends the next one opens on the other deck, so the ending track's tail plays
out; a skip is a short crossfade; a pause fades out and a resume fades back in. A file
that will not play is skipped; a playlist with nothing playable keeps the music that was
playing, or goes silent and is retried with back-off. The decks and their ramps are the
`Mixer`'s; the policy only says which ramp, on which deck, and what follows it.

Threads: the `Transport` is the worker's `Job`: every method runs on the worker thread,
libvlc's events included (the decks' callbacks post them). Other threads read only
`published` and `output`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

from roomctl import playlists as pl
from roomctl.curves import Shape
from roomctl.drivers.vlc.deck import (
    POSITION_READ_S,
    Arming,
    Deck,
    DeckState,
    FadeIn,
    MediaEvent,
    MediaOutcome,
    VolumeRamp,
)
from roomctl.drivers.vlc.mixer import MIN_FADE_S, Mixer
from roomctl.drivers.vlc.output import AudioUnavailable, OutputChoice, OutputHook
from roomctl.drivers.vlc.scans import PlaylistScans
from roomctl.drivers.vlc.status import Problems, Published
from roomctl.drivers.vlc.worker import Worker
from roomctl.room import AudioSnapshot, DriverHealth, MusicTarget, NowPlaying

QUICK_FADE_S = 0.5  # a deck still fading out, hurried to make room for the next change
PRELOAD_S = 0.5  # open the next track this long (by libvlc's clock) before the end


@dataclass
class _Switch:
    """A playlist change waiting for a deck to come free."""

    playlist: str
    index: int | None
    level: float
    crossfade_s: float
    fade_in_s: float
    entries: list[str] | None


@dataclass(frozen=True)
class Fades:
    """Seconds of the fades the room makes on its own (each at least `MIN_FADE_S`)."""

    track_fade_in_s: float
    pause_fade_s: float
    skip_crossfade_s: float
    close_fade_s: float


class Transport:
    """One room's music (the worker's `Job`). Commands (`apply`, `skip`, `begin_close`)
    are submitted to ``worker``."""

    def __init__(
        self,
        playlists: Mapping[str, pl.PlaylistSpec],
        *,
        scans: PlaylistScans,
        worker: Worker,
        log: logging.Logger,
        output: OutputChoice,
        output_hook: OutputHook | None,
        vlc_args: list[str],
        max_volume: float,
        fades: Fades,
    ) -> None:
        self._playlists = playlists
        self._scans = scans
        self._log = log
        self._worker = worker
        self._max_volume = max_volume
        self._fades = fades
        self._problems = Problems(log)
        self._mixer = Mixer(
            worker=worker,
            log=log,
            problems=self._problems,
            output=output,
            output_hook=output_hook,
            vlc_args=vlc_args,
            max_volume=max_volume,
        )
        self._active: Deck | None = None
        self._want_playlist: str | None = None
        self._level = 0.0
        self._playing = False
        self._last_target = MusicTarget(playlist=None, volume=0.0)
        self._dead: str | None = None  # why the wanted playlist plays nothing
        self._queued: _Switch | None = None
        self._retries = 0
        self._closing = False
        self._published_at = 0.0
        # Read by other threads.
        self.published = Published(
            AudioSnapshot(playlist=None, volume=0.0, playing=False),
            DriverHealth(False, "starting"),
            time.monotonic(),
            False,
        )

    @property
    def _decks(self) -> list[Deck]:
        return self._mixer.decks

    @property
    def output(self) -> OutputChoice:
        return self._mixer.output

    def fade_steps_per_s(self) -> float | None:
        return self._mixer.fade_steps_per_s()

    # --- the worker's job ----------------------------------------------------------------

    def open(self) -> None:
        try:
            self._mixer.open(self._post_media_event)
        except Exception as exc:
            self._log.exception("libvlc did not start")
            if isinstance(exc, AudioUnavailable):
                raise
            raise AudioUnavailable(f"libvlc did not start: {exc}") from exc

    def close(self) -> None:
        self._mixer.close()

    def moving(self) -> bool:
        return self._mixer.moving()

    def tick(self, now: float) -> bool:
        return self._mixer.tick(now, self._check_armed)

    def ticker_stopped(self) -> None:
        self._mixer.ticker_stopped()

    def finished(self) -> bool:
        return self._closing and self._mixer.settled()

    def publish(self, now: float, changed: bool) -> None:
        # Mid-ramp volumes need no publishing (readers evaluate the ramp); the rest
        # is published when it changes, and the position now and then.
        if changed or now - self._published_at >= POSITION_READ_S:
            self._publish(now)

    def failed(self, exc: Exception) -> None:
        self._problem(f"audio driver error: {exc}")

    # --- publishing ----------------------------------------------------------------------

    def _problem(self, message: str, *, skipped: bool = False) -> None:
        self._problems.note(message, skipped=skipped)

    def _publish(self, now: float) -> None:
        act = self._active
        now_playing: NowPlaying | None = None
        running = False
        if act is not None:
            now_playing = act.now_playing(now)
            running = now_playing is not None and act.state is DeckState.PLAYING
        sounding = [d for d in self._decks if d.state in (DeckState.PLAYING, DeckState.ARMING)]
        snapshot = AudioSnapshot(
            playlist=act.playlist if act is not None and act.state is not DeckState.IDLE else None,
            volume=0.0,
            playing=self._playing and bool(sounding),
            now_playing=now_playing,
            problems=tuple(self._problems.recent),
        )
        levels = tuple((d.volume, d.ramp.curve if d.ramp is not None else None) for d in sounding)
        health = self._problems.health(now, self._mixer.output, self._dead)
        self.published = Published(snapshot, health, now, running, levels)
        self._published_at = now

    # --- libvlc's events (posted by the decks' callbacks) ---------------------------------

    def _post_media_event(self, event: MediaEvent) -> None:
        # Runs on a libvlc thread: enqueue and nothing else.
        self._worker.post(partial(self._on_event, event))

    def _on_event(self, event: MediaEvent) -> None:
        deck = self._decks[event.deck]
        outcome = deck.outcome(event)
        if outcome is MediaOutcome.ERROR:
            if deck.state is DeckState.ARMING:
                self._entry_failed(deck, "cannot be opened (missing, unreadable or not audio)")
            elif deck.state is DeckState.PLAYING:
                self._problem(f"{deck.entry} stopped with an error", skipped=True)
                self._track_ended(deck)
        elif outcome is MediaOutcome.ENDED:
            if deck.state is DeckState.ARMING:
                if deck.played_buffers() == 0:
                    self._entry_failed(deck, "unreadable or corrupt (no sound in it)")
                    return
                self._armed(deck, time.monotonic())
            if deck.state is DeckState.PLAYING:
                self._track_ended(deck)

    # --- starting tracks -----------------------------------------------------------------

    def _entries(self, playlist: str, *, quiet: bool = False) -> list[str]:
        """The playlist's entries as last scanned; never scans here (`scans`). A playlist
        not scanned yet is asked for, and has no entries until it is."""
        if playlist not in self._playlists:
            return []
        scan = self._scans.last(playlist)
        if scan is None:
            self._scans.refresh(playlist)
            return []
        if not quiet:
            for p in scan.problems:
                self._problem(f"playlist '{playlist}': {p}", skipped=True)
        return list(scan.entries)

    def _start(self, deck: Deck, playlist: str, entries: list[str], index: int, fade_in: FadeIn) -> None:
        deck.playlist = playlist
        deck.entries = list(entries)
        deck.fail_streak = 0
        deck.open(index, fade_in)

    def _check_armed(self, deck: Deck, now: float) -> bool:
        """Whether the track is heard yet; True if the deck moved on (armed or given up)."""
        arming = deck.arming(now, check_output=self._mixer.checks_output)
        if arming is Arming.HEARD:
            self._armed(deck, now)
        elif arming is Arming.OUTPUT_DEAD:
            self._output_failed(deck)
        elif arming is Arming.TIMED_OUT:
            self._entry_failed(deck, f"no sound after {deck.start_timeout_s:g} s")
        else:
            return False
        return True

    def _armed(self, deck: Deck, now: float) -> None:
        deck.lift()
        deck.fail_streak = 0
        if deck is self._active:
            self._dead = None
            self._retries = 0
        self._log.info("deck %s playing %s", deck.label, deck.entry)
        self._plan_next(deck)
        fade_in, deck.fade_in = deck.fade_in, None
        if fade_in is not None:
            deck.ramp = VolumeRamp.between(0.0, fade_in.level, now, fade_in.fade_s, fade_in.shape)
            if fade_in.on_armed is not None:
                fade_in.on_armed()

    def _entry_failed(self, deck: Deck, reason: str) -> None:
        self._problem(f"skipped {deck.entry}: {reason}", skipped=True)
        deck.fail_streak += 1
        if deck.fail_streak >= len(deck.entries):
            self._playlist_dead(deck)
            return
        deck.open(deck.index + 1, deck.fade_in or self._track_fade_in())

    def _playlist_dead(self, deck: Deck) -> None:
        name = deck.playlist or "?"
        was_active = deck is self._active
        deck.stop()
        message = f"nothing in playlist '{name}' could be played"
        self._problem(message)
        if not was_active:
            return
        other = self._mixer.other(deck)
        if other.state is DeckState.PLAYING:
            # The crossfade never began: the music that was playing goes on.
            self._active = other
            if abs(other.volume - self._level) > 0.5 or other.ramp is not None:
                other.ramp = VolumeRamp.between(other.volume, self._level, time.monotonic(), self._fades.pause_fade_s)
            self._dead = f"{message}; still playing '{other.playlist}'"
        else:
            self._dead = f"{message}; the music is silent"
        self._retry_later(name)

    def _retry_later(self, playlist: str) -> None:
        delay = min(60.0, 5.0 * 2**self._retries)
        self._retries += 1
        self._worker.schedule(delay, partial(self._retry, playlist))

    def _retry(self, name: str) -> None:
        if self._closing or self._want_playlist != name or not self._playing:
            return
        self._scans.refresh(name)  # seen at the retry after this one
        act = self._active
        if act is not None and act.playlist == name and act.state is not DeckState.IDLE:
            return
        t = self._last_target
        self._switch(name, None, self._level, t.crossfade_s, t.fade_in_s)

    def _output_failed(self, deck: Deck) -> None:
        self._mixer.output_plays_nothing()
        deck.open(deck.index, deck.fade_in)

    # --- ends of tracks ------------------------------------------------------------------

    def _track_fade_in(self) -> FadeIn:
        return FadeIn(self._level, self._fades.track_fade_in_s)

    def _next_entry(self, deck: Deck) -> tuple[list[str], int]:
        index = deck.index + 1
        if index < len(deck.entries):
            return deck.entries, index
        # The playlist ran out before its phase did: loop (a fresh scan, for the next loop,
        # sees any new files).
        if deck.playlist:
            self._scans.refresh(deck.playlist)
        return self._entries(deck.playlist or "", quiet=True) or deck.entries, 0

    def _plan_next(self, deck: Deck) -> None:
        """Schedule the next track to open on the other deck just before this one ends,
        so it is heard as this one finishes (opening a track takes about half a second)."""
        length_ms, time_ms = deck.length_and_time_ms()
        if not length_ms or length_ms <= 0:
            return
        remaining = (length_ms - max(0, time_ms or 0)) / 1000.0
        deck.plan += 1
        self._worker.schedule(max(0.0, remaining - PRELOAD_S), partial(self._preload, deck, deck.plan))

    def _preload(self, deck: Deck, plan: int) -> None:
        if plan != deck.plan or deck is not self._active or deck.state is not DeckState.PLAYING:
            return
        if not self._playing or self._closing:
            return
        length_ms, time_ms = deck.length_and_time_ms()
        remaining = (length_ms - time_ms) / 1000.0
        if remaining > PRELOAD_S + 0.25:
            self._plan_next(deck)
            return
        other = self._mixer.other(deck)
        if other.state is not DeckState.IDLE:
            return  # busy with a crossfade; the end of this track starts the next one
        entries, index = self._next_entry(deck)
        self._start(other, deck.playlist or "", entries, index, self._track_fade_in())
        self._active = other

    def _track_ended(self, deck: Deck) -> None:
        if deck is not self._active or not self._playing or self._closing:
            deck.finished()
            return
        entries, index = self._next_entry(deck)
        fade_in = self._track_fade_in()
        other = self._mixer.other(deck)
        if other.state is DeckState.IDLE:
            deck.finished()
            self._start(other, deck.playlist or "", entries, index, fade_in)
            self._active = other
        else:
            deck.entries = list(entries)
            deck.open(index, fade_in)

    # --- commands ------------------------------------------------------------------------

    def _cap(self, volume: float) -> float:
        return min(max(float(volume), 0.0), self._max_volume)

    def apply(self, target: MusicTarget) -> None:
        if self._closing:
            return
        level = self._cap(target.volume)
        if target.playlist is None:
            self._queued = None
            self._want_playlist, self._playing, self._level = None, target.playing, level
            self._last_target = target
            for d in self._decks:
                self._mixer.fade_out(d, target.crossfade_s, d.stop)
            self._active = None
            self._dead = None
            return
        if target.playlist not in self._playlists:
            self._problem(f"playlist '{target.playlist}' is not in this room's config")
            return
        act = self._active
        self._want_playlist, self._level, self._last_target = target.playlist, level, target
        queued, self._queued = self._queued, None
        if queued is not None and queued.playlist == target.playlist and target.playing:
            queued.level = level
            self._queued = queued  # still waiting for its deck
            return
        if act is not None and act.playlist == target.playlist:
            if not target.playing:
                if self._playing:
                    self._playing = False
                    self._pause(act)
                return
            if not self._playing:
                self._playing = True
                self._resume(act, target)
                return
            self._change_level(act, level, target.ramp_s)
            return
        self._playing = target.playing
        if not target.playing:
            for d in self._decks:
                self._mixer.fade_out(d, self._fades.pause_fade_s, d.stop)
            self._active = None
            return
        self._switch(target.playlist, None, level, target.crossfade_s, target.fade_in_s)

    def _switch(
        self,
        playlist: str,
        index: int | None,
        level: float,
        crossfade_s: float,
        fade_in_s: float,
        entries: list[str] | None = None,
    ) -> None:
        """Bring ``playlist`` in on the deck that is not active: a crossfade if music is
        heard now, else a fade-in from silence. ``index`` None: from its start."""
        now = time.monotonic()
        old = self._active
        if index is None:
            for d in self._decks:
                if d is not old and d.playlist == playlist and d.state is DeckState.PLAYING:
                    # Changed back while it was still fading out: turn it around.
                    d.ramp = VolumeRamp.between(d.volume, level, now, max(MIN_FADE_S, crossfade_s))
                    if old is not None:
                        self._mixer.fade_out(old, crossfade_s, old.stop)
                    self._active = d
                    return
        entries = entries if entries is not None else self._entries(playlist)
        if not entries:
            message = f"nothing in playlist '{playlist}' can be played"
            self._problem(message)
            if old is None or not old.audible():
                self._dead = f"{message}; the music is silent"
                self._retry_later(playlist)
            else:
                self._dead = f"{message}; still playing '{old.playlist}'"
            return
        start = 0 if index is None else index % len(entries)
        # Crossfade from the music that is heard and staying; a deck already fading out
        # just finishes its fade, and the new music starts from silence beside it.
        staying = [d for d in self._decks if d.audible() and not d.leaving()]
        outgoing = old if old in staying else (staying[0] if staying else None)
        if old is not None and not old.audible():
            old.stop()  # silent: paused, opening or idle
        if outgoing is not None:
            target = self._mixer.other(outgoing)
            fade = max(MIN_FADE_S, crossfade_s)
            leaving = outgoing

            def begin_fade_out() -> None:
                self._mixer.fade_out(leaving, fade, leaving.stop, Shape.EQUAL_GAIN)

            fade_in = FadeIn(level, fade, Shape.EQUAL_GAIN, begin_fade_out)
        else:
            target = min(self._decks, key=lambda d: (d.audible(), d.volume))
            fade_in = FadeIn(level, max(MIN_FADE_S, fade_in_s))
        if target.audible():
            # Both decks are heard (a crossfade is under way): let the leaving one finish
            # quickly, then bring the new music in.
            self._queued = _Switch(playlist, index, level, crossfade_s, fade_in_s, entries)
            self._mixer.fade_out(target, QUICK_FADE_S, partial(self._cleared, target))
            return
        target.stop()
        self._active = target
        self._start(target, playlist, entries, start, fade_in)

    def _cleared(self, deck: Deck) -> None:
        deck.stop()
        queued, self._queued = self._queued, None
        if queued is not None and self._playing and not self._closing:
            self._switch(
                queued.playlist,
                queued.index,
                queued.level,
                queued.crossfade_s,
                queued.fade_in_s,
                queued.entries,
            )

    def _pause(self, act: Deck) -> None:
        other = self._mixer.other(act)
        self._mixer.fade_out(other, self._fades.pause_fade_s, other.stop)
        if act.state is DeckState.PLAYING:
            self._mixer.fade_out(act, self._fades.pause_fade_s, act.pause)
        elif act.state is DeckState.ARMING:
            act.stop()

    def _resume(self, act: Deck, target: MusicTarget) -> None:
        now = time.monotonic()
        level = self._level
        if act.state is DeckState.PAUSED:
            act.resume()
            act.ramp = VolumeRamp.between(act.volume, level, now, self._fades.pause_fade_s)
            self._plan_next(act)
        elif act.state is DeckState.PLAYING:
            act.ramp = VolumeRamp.between(act.volume, level, now, self._fades.pause_fade_s)
        elif act.state is DeckState.ARMING and act.fade_in is not None:
            act.fade_in.level = level
        elif act.playlist is not None:
            entries = act.entries or self._entries(act.playlist)
            if entries:
                self._start(act, act.playlist, entries, act.index, FadeIn(level, max(MIN_FADE_S, target.fade_in_s)))
            else:
                self._switch(act.playlist, None, level, target.crossfade_s, target.fade_in_s)

    def _change_level(self, act: Deck, level: float, ramp_s: float) -> None:
        if act.state is DeckState.ARMING and act.fade_in is not None:
            act.fade_in.level = level
            return
        if act.state is not DeckState.PLAYING:
            return
        now = time.monotonic()
        heading = act.ramp.end if act.ramp is not None else act.volume
        if abs(heading - level) < 0.05:
            return
        duration = max(MIN_FADE_S, ramp_s)
        if act.ramp is not None:
            duration = max(duration, act.ramp.curve.end_t - now)
        act.ramp = VolumeRamp.between(act.volume, level, now, duration)

    def skip(self, direction: Literal["next", "previous"]) -> None:
        act = self._active
        step = 1 if direction == "next" else -1
        if self._queued is not None:
            self._queued.index = (self._queued.index or 0) + step
            return
        if self._closing or act is None or act.playlist is None or not act.entries:
            return
        index = act.index + step
        if not self._playing or act.state in (DeckState.PAUSED, DeckState.IDLE):
            act.stop()
            act.index = index % len(act.entries)
            return
        if act.state is DeckState.ARMING:
            act.open(index, act.fade_in or self._track_fade_in())
            return
        self._switch(act.playlist, index, self._level, self._fades.skip_crossfade_s, self._fades.track_fade_in_s,
                     act.entries)

    def begin_close(self) -> None:
        self._closing = True
        for d in self._decks:
            self._mixer.fade_out(d, self._fades.close_fade_s, d.stop)
