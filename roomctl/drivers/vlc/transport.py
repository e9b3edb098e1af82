"""The room's music policy: which deck plays what, and how the music moves between them.

A playlist change opens the new playlist on the other deck and crossfades. Within a phase,
the next track is opened on the other deck `PREPARE_S` (plus the room's track crossfade)
before the current one ends, by the track's known length, and cued to follow it: its first
sample comes right after the last one of the current track (``track_crossfade_s`` 0:
gapless), or that many seconds before it, crossfading. The same at a playlist's loop. A
file that will not play is skipped while the current track still plays, so it costs no
playback time; a track that breaks while playing ends there and the prepared one follows.
A skip is a short crossfade; a pause fades out and a resume fades back in. A playlist with
nothing playable keeps the music that was playing, or goes silent and is retried with
back-off. The decks and their ramps are the `Mixer`'s, the mixing the output's; the policy
only says which ramp, on which deck, and what follows it.

Threads: the `Transport` is the worker's `Job`: every method runs on the worker thread,
libvlc's events and the output's starts and ends included (their callbacks post them).
Other threads read only `published` and `output`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

from roomctl import playlists as pl
from roomctl.curves import Shape
from roomctl.drivers.vlc.deck import (
    Deck,
    DeckState,
    FadeIn,
    MediaEvent,
    MediaOutcome,
    VolumeRamp,
)
from roomctl.drivers.vlc.feed import IMMEDIATE, Cue, Feed, Start
from roomctl.drivers.vlc.mixer import FADE_HOLD_S, MIN_FADE_S, Mixer
from roomctl.drivers.vlc.output import AudioUnavailable, OutputChoice, OutputHook
from roomctl.drivers.vlc.scans import PlaylistScans
from roomctl.drivers.vlc.status import Problems, Published
from roomctl.drivers.vlc.worker import Worker
from roomctl.room import AudioSnapshot, DriverHealth, MusicTarget, NowPlaying

QUICK_FADE_S = 0.5  # a deck still fading out, hurried to make room for the next change
PREPARE_S = 4.0  # open the next track this long (plus the track crossfade) before the end
PUBLISH_EVERY_S = 1.0  # the position is published this often while nothing else changes


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
    """Seconds of the fades the room makes on its own (each at least `MIN_FADE_S`, but the
    track crossfade, where 0 means gapless)."""

    track_fade_in_s: float
    pause_fade_s: float
    skip_crossfade_s: float
    close_fade_s: float
    track_crossfade_s: float = 0.0


class Transport:
    """One room's music (the worker's `Job`). Commands (`apply`, `skip`, `begin_close`)
    are submitted to ``worker``. ``gain_of`` says a file's loudness gain (linear; it must
    not wait: `scans` measures in the background)."""

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
        gain_of: Callable[[str], float] = lambda _entry: 1.0,
        ceiling_gain: float = 1.0,
        name: str = "room",
    ) -> None:
        self._playlists = playlists
        self._scans = scans
        self._log = log
        self._worker = worker
        self._max_volume = max_volume
        self._fades = fades
        self._gain_of = gain_of
        self._problems = Problems(log)
        self._mixer = Mixer(
            worker=worker,
            log=log,
            output=output,
            output_hook=output_hook,
            vlc_args=vlc_args,
            max_volume=max_volume,
            ceiling_gain=ceiling_gain,
            name=name,
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

    @property
    def mixer(self) -> Mixer:
        return self._mixer

    def fade_steps_per_s(self) -> float | None:
        return self._mixer.fade_steps_per_s()

    # --- the worker's job ----------------------------------------------------------------

    def open(self) -> None:
        try:
            self._mixer.open(self._post_media_event, self._post_start, self._post_finish, self._post_output)
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
        return self._mixer.tick(now)

    def ticker_stopped(self) -> None:
        self._mixer.ticker_stopped()

    def finished(self) -> bool:
        return self._closing and self._mixer.settled()

    def publish(self, now: float, changed: bool) -> None:
        # Mid-ramp volumes need no publishing (readers evaluate the ramp); the rest
        # is published when it changes, and the position now and then.
        if changed:
            self._mixer.sync()
        if changed or now - self._published_at >= PUBLISH_EVERY_S:
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
        sounding = [d for d in self._decks if d.state is DeckState.PLAYING]
        snapshot = AudioSnapshot(
            playlist=act.playlist if act is not None and act.state is not DeckState.IDLE else None,
            volume=0.0,
            playing=self._playing and any(d.state in (DeckState.PLAYING, DeckState.ARMING) for d in self._decks),
            now_playing=now_playing,
            problems=tuple(self._problems.recent),
        )
        levels = tuple((d.volume, d.ramp.curve if d.ramp is not None else None) for d in sounding)
        playing = None
        if act is not None and act.state is DeckState.PLAYING and now_playing is not None:
            playing = f"playing '{now_playing.title}' from '{act.playlist}'"
        health = self._problems.health(now, self._mixer.output, self._mixer.output_status(), self._dead, playing)
        self.published = Published(snapshot, health, now, running, levels)
        self._published_at = now

    # --- libvlc's events and the output's (posted by their callbacks) ---------------------

    def _post_media_event(self, event: MediaEvent) -> None:
        # Runs on a libvlc thread: enqueue and nothing else.
        self._worker.post(partial(self._on_event, event))

    def _post_start(self, feed: Feed, gen: int, start: Start) -> None:
        # Runs on the output thread: enqueue and nothing else.
        self._worker.post(partial(self._on_start, feed, gen, start))

    def _post_finish(self, feed: Feed, gen: int) -> None:
        self._worker.post(partial(self._on_finish, feed, gen))

    def _post_output(self) -> None:
        self._worker.post(lambda: None)  # a wake-up: health is published again

    def _deck_of(self, feed: Feed) -> Deck | None:
        return next((d for d in self._decks if d.feed is feed), None)

    def _on_event(self, event: MediaEvent) -> None:
        deck = self._decks[event.deck]
        outcome = deck.outcome(event)
        if outcome is None and deck.state is DeckState.PLAYING and deck is self._active and deck.plan == 0:
            self._plan_next(deck)  # the track's length is known now
        if outcome is MediaOutcome.ERROR:
            if deck.state is DeckState.ARMING and not deck.decoded_any():
                self._entry_failed(deck, "cannot be opened (missing, unreadable or not audio)")
            else:
                # It broke while playing: it ends here, and what was prepared follows it.
                self._problem(f"{deck.entry} stopped with an error", skipped=True)
                deck.feed.end()
        elif outcome is MediaOutcome.ENDED:
            if deck.state is DeckState.ARMING and not deck.decoded_any():
                self._entry_failed(deck, "unreadable or corrupt (no sound in it)")
                return
            deck.feed.end()  # the output plays out what is queued, then says it finished

    def _on_start(self, feed: Feed, gen: int, start: Start) -> None:
        deck = self._deck_of(feed)
        if deck is None or gen != deck.feed_gen or deck.state is not DeckState.ARMING:
            feed.adopted()
            return
        self._armed(deck, start)

    def _on_finish(self, feed: Feed, gen: int) -> None:
        deck = self._deck_of(feed)
        if deck is None or gen != deck.feed_gen:
            return
        if deck.state is DeckState.ARMING:
            # It ended before its cue came (a track shorter than the one before it began).
            deck.feed.adopted()
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
        return list(self._scans.playable(playlist, scan))

    def _start(self, deck: Deck, playlist: str, entries: list[str], index: int, fade_in: FadeIn,
               cue: Cue = IMMEDIATE, preset: float = 0.0) -> None:
        deck.playlist = playlist
        deck.entries = list(entries)
        deck.fail_streak = 0
        self._open(deck, index, fade_in, cue, preset)

    def _open(self, deck: Deck, index: int, fade_in: FadeIn, cue: Cue, preset: float) -> None:
        entry = deck.entries[index % len(deck.entries)]
        deck.plan = 0
        deck.open(index, fade_in, cue, gain=self._gain_of(entry), preset=preset,
                  duration_s=self._scans.duration(entry))
        self._worker.schedule(deck.start_timeout_s, partial(self._check_opening, deck, deck.gen))

    def _check_opening(self, deck: Deck, gen: int) -> None:
        if deck.gen == gen and deck.state is DeckState.ARMING and not deck.decoded_any():
            self._entry_failed(deck, f"no sound after {deck.start_timeout_s:g} s")

    def _armed(self, deck: Deck, start: Start) -> None:
        """The output has begun to mix the deck's track: adopt the ramps it began with."""
        now = time.monotonic()
        other = self._mixer.other(deck)
        followed = deck.cue is not None and deck.cue.after is not None
        deck.state = DeckState.PLAYING
        deck.fail_streak = 0
        deck.ramp = VolumeRamp(start.ramp) if start.ramp is not None and not start.ramp.done(now) else None
        deck.set_volume(start.ramp.value_at(now) if start.ramp is not None else start.volume)
        replaced = deck.cue is not None and deck.cue.replaces is other.feed
        if start.other_ramp is not None and other.state is DeckState.PLAYING:
            # It fades out as this one comes in: as it ends (a track crossfade), or to a stop.
            then, hold = (other.stop, FADE_HOLD_S) if replaced else (None, 0.0)
            other.ramp = VolumeRamp(start.other_ramp, then, hold)
            other.set_volume(start.other_ramp.value_at(now))
        deck.feed.adopted()
        other.feed.adopted()
        if followed and (self._active is None or self._active is other):
            self._active = deck  # the next track, on cue
        if deck is self._active:
            self._dead = None
            self._retries = 0
        self._log.info("deck %s playing %s", deck.label, deck.entry)
        fade_in, deck.fade_in, deck.cue = deck.fade_in, None, None
        if deck is self._active and abs((deck.ramp.end if deck.ramp else deck.volume) - self._level) > 0.5:
            self._change_level(deck, self._level, self._last_target.ramp_s)  # changed while it opened
        self._plan_next(deck)
        if fade_in is not None and fade_in.on_armed is not None and not followed and start.other_ramp is None:
            fade_in.on_armed()  # the output did not start the old music's fade itself

    def _entry_failed(self, deck: Deck, reason: str) -> None:
        self._problem(f"skipped {deck.entry}: {reason}", skipped=True)
        self._scans.mark_broken(deck.entry, reason)
        deck.fail_streak += 1
        if deck.fail_streak >= len(deck.entries):
            self._playlist_dead(deck)
            return
        fade_in = deck.fade_in or self._track_fade_in()
        cue = deck.cue or IMMEDIATE
        self._open(deck, deck.index + 1, fade_in, cue, self._level if cue.after is not None else 0.0)

    def _playlist_dead(self, deck: Deck) -> None:
        name = deck.playlist or "?"
        was_active = deck is self._active
        other = self._mixer.other(deck)
        deck.stop()
        if other.state is DeckState.PLAYING and other.playlist == name:
            # The track playing is the only one of the playlist left that plays: it goes on.
            message = f"no other file of playlist '{name}' can be played"
            self._problem(message)
            self._active = other
            self._dead = f"{message}; '{other.title}' plays on"
            return
        message = f"nothing in playlist '{name}' could be played"
        self._problem(message)
        if not was_active:
            return
        if other.state is DeckState.PLAYING:
            # The crossfade never began: the music that was playing goes on.
            self._active = other
            if abs(other.volume - self._level) > 0.5 or other.ramp is not None:
                other.ramp = VolumeRamp.between(other.volume, self._level, time.monotonic(), self._fades.pause_fade_s)
            self._dead = f"{message}; still playing '{other.title}' from '{other.playlist}'"
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
        """Schedule the next track to be prepared on the other deck, cued to follow this one,
        `PREPARE_S` (plus the track crossfade) before this one ends."""
        remaining = deck.remaining_s()
        if remaining is None or pl.is_stream(deck.entry):
            return
        deck.plan += 1
        lead = PREPARE_S + self._fades.track_crossfade_s
        self._worker.schedule(max(0.0, remaining - lead), partial(self._prepare, deck, deck.plan))

    def _prepare(self, deck: Deck, plan: int) -> None:
        if plan != deck.plan or deck is not self._active or deck.state is not DeckState.PLAYING:
            return
        if not self._playing or self._closing:
            return
        remaining = deck.remaining_s()
        lead = PREPARE_S + self._fades.track_crossfade_s
        if remaining is not None and remaining > lead + 0.5:
            self._plan_next(deck)  # it was paused for a while
            return
        other = self._mixer.other(deck)
        if other.state is not DeckState.IDLE:
            # Still busy (the last track fading out under this one): look again shortly.
            self._worker.schedule(0.25, partial(self._prepare, deck, plan))
            return
        entries, index = self._next_entry(deck)
        cue = Cue(after=deck.feed, overlap_s=self._fades.track_crossfade_s)
        self._start(other, deck.playlist or "", entries, index, self._track_fade_in(), cue, preset=self._level)

    def _track_ended(self, deck: Deck) -> None:
        other = self._mixer.other(deck)
        if deck is not self._active or not self._playing or self._closing:
            deck.finished()
            return
        if other.state in (DeckState.ARMING, DeckState.PLAYING) and other.playlist == deck.playlist and (
            other.state is DeckState.PLAYING or (other.cue is not None and other.cue.after is deck.feed)
        ):
            # The next track is cued (or already on): it follows by itself.
            deck.finished()
            self._active = other
            return
        entries, index = self._next_entry(deck)
        fade_in = self._track_fade_in()
        if other.state is DeckState.IDLE:
            deck.finished()
            self._start(other, deck.playlist or "", entries, index, fade_in)
            self._active = other
        else:
            deck.finished()
            deck.entries = list(entries)
            self._open(deck, index, fade_in, IMMEDIATE, 0.0)

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
                self._dead = f"{message}; still playing '{old.title}' from '{old.playlist}'"
            return
        start = 0 if index is None else index % len(entries)
        # Crossfade from the music that is heard and staying; a deck already fading out
        # just finishes its fade, and the new music starts from silence beside it.
        staying = [d for d in self._decks if d.audible() and not d.leaving()]
        outgoing = old if old in staying else (staying[0] if staying else None)
        if old is not None and not old.audible():
            old.stop()  # silent: paused, opening or idle
        for d in self._decks:
            if d.state is DeckState.ARMING:
                d.stop()  # a next track prepared for the music that is leaving
        cue = IMMEDIATE
        if outgoing is not None:
            target = self._mixer.other(outgoing)
            fade = max(MIN_FADE_S, crossfade_s)
            leaving = outgoing

            def begin_fade_out() -> None:
                self._mixer.fade_out(leaving, fade, leaving.stop, Shape.EQUAL_GAIN)

            fade_in = FadeIn(level, fade, Shape.EQUAL_GAIN, begin_fade_out)
            cue = Cue(replaces=leaving.feed, replace_s=fade)
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
        self._start(target, playlist, entries, start, fade_in, cue)

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
            self._retarget(act, level)
        elif act.playlist is not None:
            entries = act.entries or self._entries(act.playlist)
            if entries:
                self._start(act, act.playlist, entries, act.index, FadeIn(level, max(MIN_FADE_S, target.fade_in_s)))
            else:
                self._switch(act.playlist, None, level, target.crossfade_s, target.fade_in_s)

    def _retarget(self, deck: Deck, level: float) -> None:
        """A deck still opening comes in at ``level`` instead."""
        level = self._cap(level)
        if deck.fade_in is not None:
            deck.fade_in.level = level
        with deck.feed.lock:
            if deck.feed.fade_in is not None:
                _, seconds, shape = deck.feed.fade_in
                deck.feed.fade_in = (level, seconds, shape)
            if not deck.feed.mixing:
                deck.feed.volume = level if deck.cue is not None and deck.cue.after is not None else 0.0

    def _change_level(self, act: Deck, level: float, ramp_s: float) -> None:
        other = self._mixer.other(act)
        if other.state is DeckState.ARMING and other.cue is not None and other.cue.after is act.feed:
            self._retarget(other, level)  # the next track follows at the new level
        if act.state is DeckState.ARMING:
            self._retarget(act, level)
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
            self._open(act, index, act.fade_in or self._track_fade_in(), IMMEDIATE, 0.0)
            return
        self._switch(act.playlist, index, self._level, self._fades.skip_crossfade_s, self._fades.track_fade_in_s,
                     act.entries)

    def begin_close(self) -> None:
        self._closing = True
        for d in self._decks:
            self._mixer.fade_out(d, self._fades.close_fade_s, d.stop)
