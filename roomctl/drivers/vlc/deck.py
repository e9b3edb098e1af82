"""One libvlc player (a "deck"): a track decoded into the deck's `Feed`, and its events.

libvlc opens no output stream of its own: each deck's player decodes into its `Feed`
(libvlc's ``amem`` callbacks, float32 at 48 kHz, libvlc's own volume left at 100), and the
room's `PcmOut` mixes both feeds into the one stream it keeps open. So a track can open
while another plays, wait for its cue, and start exactly when it should (`feed.Cue`), and
nothing the deck does can be heard before the output's gain reaches it.

A deck does what it is told (which entry, how loud: the transport decides) and says what
libvlc reports of its media. Every method runs on the room's worker thread; the media's
event callback runs on a libvlc thread and only hands a `MediaEvent` on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from roomctl import curves
from roomctl import playlists as pl
from roomctl.drivers.vlc import feed as feeds
from roomctl.drivers.vlc.output import AudioUnavailable, load_vlc
from roomctl.room import NowPlaying

FILE_START_TIMEOUT_S = 5.0
STREAM_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Engine:
    """The room's libvlc: the module and one instance. Both decks share it."""

    vlc: ModuleType
    instance: Any

    @classmethod
    def open(cls, vlc_args: Sequence[str]) -> Engine:
        vlc = load_vlc()
        instance = vlc.Instance(vlc_args)
        if instance is None:
            raise AudioUnavailable(f"libvlc refused its options {vlc_args}")
        return cls(vlc, instance)

    @property
    def version(self) -> str:
        return str(self.vlc.libvlc_get_version().decode("utf-8", "replace"))

    def new_player(self) -> Any:
        return self.instance.media_player_new()

    def release(self) -> None:
        self.instance.release()


class DeckState(StrEnum):
    IDLE = "idle"
    ARMING = "arming"  # track opened, decoding into the feed, waiting for its cue
    PLAYING = "playing"
    PAUSED = "paused"


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
    """How a deck's new track comes in once its first sample is mixed: from 0 to ``level``
    over ``fade_s``, then `on_armed` (e.g. the old music starts to leave)."""

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
    feed: feeds.Feed
    state: DeckState = DeckState.IDLE
    # Where in which playlist it is (the transport chooses).
    playlist: str | None = None
    entries: list[str] = field(default_factory=list)
    index: int = 0
    gen: int = 0  # which media libvlc events are about
    feed_gen: int = 0  # which track of the feed (`Feed.gen`) is this deck's current one
    media: Any = None
    media_events: Any = None
    volume: float = 0.0  # percent, as last set
    ramp: VolumeRamp | None = None
    fade_in: FadeIn | None = None  # while arming: how the track comes in
    cue: feeds.Cue | None = None  # while arming: when it comes in
    arm_started: float = 0.0
    callbacks: list[object] = field(default_factory=list)  # libvlc's amem callbacks, kept alive
    # The transport's bookkeeping for this deck.
    fail_streak: int = 0  # entries in a row that could not be played
    plan: int = 0  # which scheduled look at the track's end is current
    # What is playing, as last read.
    title: str = ""
    artist: str | None = None
    duration_s: float | None = None

    @property
    def entry(self) -> str:
        return self.entries[self.index] if self.entries else ""

    @property
    def start_timeout_s(self) -> float:
        """How long an opening track may give no audio before it counts as broken."""
        return STREAM_START_TIMEOUT_S if pl.is_stream(self.entry) else FILE_START_TIMEOUT_S

    def audible(self) -> bool:
        """Heard now or soon: playing above 0, or ramping (a fade-out's tail is still
        queued in the output until its hold ends)."""
        return self.state is DeckState.PLAYING and (self.volume > 0.0 or self.ramp is not None)

    def leaving(self) -> bool:
        """Fading out (or holding at 0 before a stop or pause)."""
        return self.ramp is not None and self.ramp.end == 0.0

    def attach_feed(self) -> None:
        self.callbacks = feeds.attach(self.engine.vlc, self.player, self.feed)

    def set_volume(self, volume: float) -> None:
        self.volume = min(max(volume, 0.0), self.max_volume)

    def sync_feed(self) -> None:
        """Hand the deck's level (its volume, or its ramp) to the output."""
        ramp = self.ramp
        curve = ramp.curve if ramp is not None and not ramp.holding else None
        if curve is not None and max(curve.start, curve.end) > self.max_volume:
            curve = None  # never handed a ramp beyond the cap (the output also holds the cap)
        self.feed.set_level(self.volume, curve)

    # --- opening a track -----------------------------------------------------------------

    def open(self, index: int, fade_in: FadeIn, cue: feeds.Cue = feeds.IMMEDIATE, *, gain: float = 1.0,
             preset: float = 0.0, duration_s: float | None = None) -> None:
        """Open entry ``index`` and let libvlc decode it into the feed, to be mixed at
        ``cue``: from silence, fading in as ``fade_in`` says, or (cued after another track)
        straight on at the level that track had. ``gain``: the track's loudness gain."""
        instance = self.engine.instance
        if self.media is not None:
            self.player.stop()  # nothing of the last track may reach the feed after its reset
        self.release_media()
        self.index = index % len(self.entries)
        self.gen += 1
        entry = self.entry
        stream = pl.is_stream(entry)
        self.title, self.artist, self.duration_s = title_from(entry), None, duration_s
        self.state = DeckState.ARMING
        self.ramp = None
        self.fade_in, self.cue = fade_in, cue
        self.arm_started = time.monotonic()
        self.volume = 0.0
        level = min(fade_in.level, self.max_volume)
        self.feed_gen = self.feed.reset(cue, gain=gain, volume=min(preset, self.max_volume),
                                        fade_in=(level, fade_in.fade_s, fade_in.shape))
        if duration_s is not None:
            self.set_length(duration_s)
        media = instance.media_new_location(entry) if stream else instance.media_new_path(entry)
        if media is None:
            self._report_error()
            return
        self.media = media
        self.media_events = self._watch(media)
        player = self.player
        player.set_media(media)
        if player.play() != 0:
            self._report_error()

    def set_length(self, seconds: float) -> None:
        with self.feed.lock:
            if self.feed.gen == self.feed_gen:
                self.feed.length_frames = int(seconds * feeds.RATE)

    def decoded_any(self) -> bool:
        return self.feed.has_audio()

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
        more (the track has begun: its meta and length are read)."""
        if event.gen != self.gen:
            return None
        states = self.engine.vlc.State
        if event.state == states.Playing.value:
            self.read_meta()
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
        if duration_ms and duration_ms > 0:
            self.duration_s = duration_ms / 1000.0
            self.set_length(self.duration_s)

    # --- playing -------------------------------------------------------------------------

    def position_s(self) -> float:
        """How far into the track the room is (what has been mixed, exactly)."""
        return self.feed.position_s()

    def remaining_s(self) -> float | None:
        if self.duration_s is None:
            return None
        return max(0.0, self.duration_s - self.position_s())

    def now_playing(self, now: float) -> NowPlaying | None:
        """What it plays (None: nothing)."""
        if self.media is None or self.state is DeckState.IDLE:
            return None
        return NowPlaying(
            title=self.title,
            artist=self.artist,
            file=self.entry,
            position_s=round(self.position_s(), 2),
            duration_s=self.duration_s,
        )

    def pause(self) -> None:
        with self.feed.lock:
            self.feed.paused = True
        self.player.set_pause(1)
        self.state = DeckState.PAUSED

    def resume(self) -> None:
        self.player.set_pause(0)
        with self.feed.lock:
            self.feed.paused = False
        self.state = DeckState.PLAYING

    def stop(self) -> None:
        """Stop now; only for a deck that is silent. Keeps its playlist and place."""
        self.ramp = None
        self.fade_in = None
        self.cue = None
        self.feed_gen = self.feed.reset(None)
        if self.media is not None:
            self.player.stop()
            self.release_media()
        self.state = DeckState.IDLE
        self.volume = 0.0

    def finished(self) -> None:
        """The track's last sample has been mixed."""
        self.state = DeckState.IDLE
        self.ramp = None
        self.fade_in = None
        self.cue = None
        self.volume = 0.0
        self.feed_gen = self.feed.reset(None)
        if self.media is not None:
            self.player.stop()
            self.release_media()

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
