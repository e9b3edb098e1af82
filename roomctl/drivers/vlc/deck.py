"""One libvlc player (a "deck"): opening a track from silence and knowing when it is heard.

How a track starts from silence (the start-blip trap): libvlc makes a fresh volume stage
at full volume for every new media, a moment *after* ``play()``, and a volume set before
that stage exists is lost. So a deck opens each track behind an equalizer with the preamp
and every band at -20 dB (about -35..-45 dB in all: near silence), sets volume 0 on every
tick, and only when libvlc reports the first audio buffer played (the stage exists, so
volume 0 has stuck) lifts the equalizer, goes back to the top of the track and fades in
from 0. The first ~0.45 s of every track (what libvlc hands over at once after opening)
is heard at volume 0; the fade-in follows.

A deck does what it is told (which entry, how loud: the transport decides) and says what
libvlc reports of its media. Every method runs on the room's worker thread; the media's
event callback runs on a libvlc thread and only hands a `MediaEvent` on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from roomctl import curves
from roomctl import playlists as pl
from roomctl.drivers.vlc.output import AudioUnavailable, load_vlc
from roomctl.room import NowPlaying

QUIET_EQ_DB = -20.0  # libvlc's floor for the preamp and for each band
FILE_START_TIMEOUT_S = 5.0
STREAM_START_TIMEOUT_S = 20.0
OUTPUT_CHECK_S = 2.0  # decoded but nothing played for this long: the output is dead
POSITION_READ_S = 1.0  # in between, the published position runs on the clock


@dataclass(frozen=True)
class Engine:
    """The room's libvlc: the module, one instance, and the quiet equalizer every track
    opens behind. Both decks share it."""

    vlc: ModuleType
    instance: Any
    quiet_eq: Any

    @classmethod
    def open(cls, vlc_args: Sequence[str]) -> Engine:
        vlc = load_vlc()
        instance = vlc.Instance(vlc_args)
        if instance is None:
            raise AudioUnavailable(f"libvlc refused its options {vlc_args}")
        try:
            eq = vlc.AudioEqualizer()
            eq.set_preamp(QUIET_EQ_DB)
            for band in range(vlc.libvlc_audio_equalizer_get_band_count()):
                eq.set_amp_at_index(QUIET_EQ_DB, band)
        except BaseException:
            instance.release()
            raise
        return cls(vlc, instance, eq)

    @property
    def version(self) -> str:
        return str(self.vlc.libvlc_get_version().decode("utf-8", "replace"))

    def new_player(self) -> Any:
        return self.instance.media_player_new()

    def release(self) -> None:
        self.quiet_eq.release()
        self.instance.release()


class DeckState(StrEnum):
    IDLE = "idle"
    ARMING = "arming"  # track opened behind the quiet equalizer, not heard yet
    PLAYING = "playing"
    PAUSED = "paused"


class Arming(Enum):
    """How an opening track is doing (`Deck.arming`)."""

    WAITING = "waiting"
    HEARD = "heard"  # the first buffer played: `lift` the equalizer
    OUTPUT_DEAD = "output dead"  # decoded for a while, nothing played
    TIMED_OUT = "timed out"  # no sound within `Deck.start_timeout_s`


class MediaOutcome(Enum):
    """What a libvlc media event means for the track, when it needs more than the deck."""

    ERROR = "error"
    ENDED = "ended"


@dataclass(frozen=True)
class MediaEvent:
    deck: int  # `Deck.index_in_room`
    gen: int  # which media of the deck (`Deck.gen`) it is about
    state: int  # libvlc's media state


@dataclass
class VolumeRamp:
    """A deck's volume on its way somewhere (a `curves.Ramp`), and what follows it."""

    curve: curves.Ramp
    then: Callable[[], None] | None = None  # run once, when the ramp completes
    hold_s: float = 0.0  # stay at the end this long before `then` (a timer, not ticks)
    holding: bool = False

    @classmethod
    def between(
        cls, start: float, end: float, start_t: float, duration_s: float, shape: curves.Shape = curves.Shape.LINEAR
    ) -> VolumeRamp:
        return cls(curves.Ramp(start, end, start_t, duration_s, shape))

    @property
    def end(self) -> float:
        return self.curve.end

    def value_at(self, now: float) -> float:
        return self.curve.value_at(now)

    def done(self, now: float) -> bool:
        return self.curve.done(now)


@dataclass
class FadeIn:
    """What a deck does once its new track is heard: fade to ``level``, then `on_armed`."""

    level: float
    fade_s: float
    shape: curves.Shape = curves.Shape.LINEAR
    on_armed: Callable[[], None] | None = None


def title_from(entry: str) -> str:
    return entry if pl.is_stream(entry) else Path(entry).stem


@dataclass(eq=False)
class Deck:
    """One libvlc player, what it plays and how loud. Worker thread only."""

    index_in_room: int
    label: str
    player: Any
    engine: Engine
    notify: Callable[[MediaEvent], None]  # called on a libvlc thread: must only enqueue
    max_volume: float  # percent; no volume is ever set above it
    state: DeckState = DeckState.IDLE
    # Where in which playlist it is (the transport chooses).
    playlist: str | None = None
    entries: list[str] = field(default_factory=list)
    index: int = 0
    gen: int = 0  # which media libvlc events are about
    media: Any = None
    media_events: Any = None
    volume: float = 0.0  # percent, as last set
    sent_percent: int | None = None  # what libvlc was last told
    ramp: VolumeRamp | None = None
    fade_in: FadeIn | None = None  # while arming: what follows once the track is heard
    arm_started: float = 0.0
    # The transport's bookkeeping for this deck.
    fail_streak: int = 0  # entries in a row that could not be played
    plan: int = 0  # which scheduled look at the track's end is current
    # What is playing, as last read.
    title: str = ""
    artist: str | None = None
    duration_s: float | None = None
    position_s: float = 0.0
    position_at: float | None = None  # monotonic time position_s was read; None: read it

    @property
    def entry(self) -> str:
        return self.entries[self.index] if self.entries else ""

    @property
    def start_timeout_s(self) -> float:
        """How long an opening track may stay unheard before it counts as broken."""
        return STREAM_START_TIMEOUT_S if pl.is_stream(self.entry) else FILE_START_TIMEOUT_S

    def audible(self) -> bool:
        """Heard now or soon: playing above 0, or ramping (a fade-out's tail is still
        queued in the output until its hold ends)."""
        return self.state is DeckState.PLAYING and (self.volume > 0.0 or self.ramp is not None)

    def leaving(self) -> bool:
        """Fading out (or holding at 0 before a stop or pause)."""
        return self.ramp is not None and self.ramp.end == 0.0

    # --- output --------------------------------------------------------------------------

    def set_output(self, aout: str) -> bool:
        """Use libvlc output module ``aout``; False if libvlc refuses it."""
        return bool(self.player.audio_output_set(aout) == 0)

    def set_output_device(self, device: str) -> None:
        self.player.audio_output_device_set(None, device)

    def set_volume(self, volume: float, *, force: bool = False) -> None:
        volume = min(max(volume, 0.0), self.max_volume)
        self.volume = volume
        percent = round(volume)
        if percent > self.max_volume:
            percent = math.floor(self.max_volume)
        # libvlc takes whole percents; a step that rounds to the same one needs no call.
        if force or percent != self.sent_percent:
            self.player.audio_set_volume(percent)
            self.sent_percent = percent

    # --- opening a track -----------------------------------------------------------------

    def open(self, index: int, fade_in: FadeIn | None) -> None:
        """Open entry ``index`` behind the quiet equalizer, at volume 0 (`ARMING`); once
        `arming` says it is heard, `lift` it and fade in as ``fade_in`` says."""
        instance = self.engine.instance
        self.release_media()
        self.index = index % len(self.entries)
        self.gen += 1
        entry = self.entry
        stream = pl.is_stream(entry)
        media = instance.media_new_location(entry) if stream else instance.media_new_path(entry)
        self.title, self.artist, self.duration_s = title_from(entry), None, None
        self.position_s, self.position_at, self.sent_percent = 0.0, None, None
        self.state = DeckState.ARMING
        self.ramp = None
        self.fade_in = fade_in
        self.arm_started = time.monotonic()
        self.volume = 0.0
        if media is None:
            self._report_error()
            return
        self.media = media
        self.media_events = self._watch(media)
        player = self.player
        player.set_equalizer(self.engine.quiet_eq)
        player.audio_set_volume(0)
        player.set_media(media)
        if player.play() != 0:
            self._report_error()
        player.audio_set_volume(0)

    def arming(self, now: float, *, check_output: bool) -> Arming:
        """Whether the opening track is heard yet. ``check_output``: also say so when the
        output takes audio but plays none."""
        stats = self._stats()
        if stats is None:
            return Arming.WAITING
        if stats.played_abuffers > 0:
            return Arming.HEARD
        waited = now - self.arm_started
        if stats.decoded_audio > 0 and waited > OUTPUT_CHECK_S and check_output:
            return Arming.OUTPUT_DEAD
        if waited > self.start_timeout_s:
            return Arming.TIMED_OUT
        return Arming.WAITING

    def lift(self) -> None:
        """The track is heard: take the quiet equalizer away and play from the top at 0."""
        # The track's own volume stage exists now: volume 0 sticks, the equalizer can go.
        self.player.audio_set_volume(0)
        self.sent_percent, self.position_at = 0, None
        self.player.set_equalizer(None)
        if not pl.is_stream(self.entry) and self.player.is_seekable():
            # Back to the top, so the fade-in starts at the track's first note rather than
            # wherever the half second of opening got to (the output drops that audio).
            self.player.set_time(0)
        self.state = DeckState.PLAYING
        self.volume = 0.0
        self.read_meta()

    def played_buffers(self) -> int:
        stats = self._stats()
        return int(stats.played_abuffers) if stats is not None else 0

    def _stats(self) -> Any:
        if self.media is None:
            return None
        stats = self.engine.vlc.MediaStats()
        self.media.get_stats(stats)
        return stats

    # --- libvlc's events -----------------------------------------------------------------

    def _watch(self, media: Any) -> Any:
        notify = self.notify
        i, gen = self.index_in_room, self.gen

        # Runs on a libvlc thread: enqueue and nothing else.
        def on_state(event: Any) -> None:
            notify(MediaEvent(i, gen, int(event.u.new_state)))

        events = media.event_manager()
        events.event_attach(self.engine.vlc.EventType.MediaStateChanged, on_state)
        return events

    def _report_error(self) -> None:
        """Say (through the queue, as libvlc would) that the media failed."""
        self.notify(MediaEvent(self.index_in_room, self.gen, self.engine.vlc.State.Error.value))

    def outcome(self, event: MediaEvent) -> MediaOutcome | None:
        """What ``event`` means: None if it is about an earlier media or needs nothing
        more (the track has begun: its meta is read and, while arming, volume 0 set again)."""
        if event.gen != self.gen:
            return None
        states = self.engine.vlc.State
        if event.state == states.Playing.value:
            self.read_meta()
            if self.state is DeckState.ARMING:
                self.set_volume(0.0, force=True)
        elif event.state == states.Error.value:
            return MediaOutcome.ERROR
        elif event.state == states.Ended.value:
            return MediaOutcome.ENDED
        return None

    # Title, artist and length come with playback (taglib reads them as the file opens),
    # which spares a separate parse racing the player for the same file.
    def read_meta(self) -> None:
        vlc, media = self.engine.vlc, self.media
        if media is None:
            return
        title = media.get_meta(vlc.Meta.Title)
        artist = media.get_meta(vlc.Meta.Artist)
        duration_ms = media.get_duration()
        self.title = title or title_from(self.entry)
        self.artist = artist or None
        self.duration_s = duration_ms / 1000.0 if duration_ms and duration_ms > 0 else None

    # --- playing -------------------------------------------------------------------------

    def length_and_time_ms(self) -> tuple[int, int]:
        """The track's length and the play position by libvlc's clock (-1: not known)."""
        return int(self.player.get_length()), int(self.player.get_time())

    def now_playing(self, now: float) -> NowPlaying | None:
        """What it plays (None: nothing); the position is read from libvlc now and then,
        and runs on the clock in between."""
        if self.media is None or self.state is DeckState.IDLE:
            return None
        position = self.position_s
        if self.state is DeckState.PLAYING:
            if self.position_at is None or now - self.position_at > POSITION_READ_S:
                ms = self.player.get_time()
                if ms is not None and ms >= 0:
                    self.position_s, self.position_at = ms / 1000.0, now
            if self.position_at is not None:
                position = self.position_s + (now - self.position_at)
        return NowPlaying(
            title=self.title,
            artist=self.artist,
            file=self.entry,
            position_s=round(position, 2),
            duration_s=self.duration_s,
        )

    def pause(self) -> None:
        self.player.set_pause(1)
        self.state = DeckState.PAUSED
        self.position_at = None

    def resume(self) -> None:
        self.player.set_pause(0)
        self.state = DeckState.PLAYING
        self.position_at = None

    def stop(self) -> None:
        """Stop now; only for a deck that is silent. Keeps its playlist and place."""
        self.ramp = None
        self.fade_in = None
        if self.media is not None:
            self.player.stop()
            self.release_media()
        self.state = DeckState.IDLE
        self.volume = 0.0

    def finished(self) -> None:
        """The track played to its end. No stop(): that would drop audio still queued."""
        self.state = DeckState.IDLE
        self.ramp = None
        self.fade_in = None
        self.volume = 0.0

    def release_media(self) -> None:
        if self.media_events is not None:
            self.media_events.event_detach(self.engine.vlc.EventType.MediaStateChanged)
        if self.media is not None:
            self.media.release()
        self.media = None
        self.media_events = None

    def release(self) -> None:
        """Stop and let go of the player (the room is closing)."""
        self.player.stop()
        self.release_media()
        self.player.release()
