"""A deck's decoded audio on its way to the room's one output stream.

libvlc decodes each deck's track into a `Feed` through its ``amem`` callbacks (on libvlc's
threads) instead of opening an output stream of its own: an output stream opened per track
is what let the first 40-90 ms of every track out at full level on PulseAudio, before any
volume reached it. The room's `PcmOut` thread takes the feeds' samples, applies every gain
itself (volume, the track's loudness gain, the cap) and writes one stream that stays open.

A feed is a FIFO of float32 stereo blocks at `RATE`, plus what the mix needs to know of it:
its cue (mix as soon as audio is there, or right after another feed's last sample, or that
many seconds before it), its level (a volume percent, or a `curves.Ramp` of one), its
loudness gain, and whether the track has ended. Every field is read and written under the
feed's lock; the worker thread (the transport) sets cues and levels, libvlc's threads add
samples, the output thread takes them.
"""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from roomctl import curves

RATE = 48000  # the room's one sample rate; libvlc resamples every track to it
CHANNELS = 2
FloatBlock = npt.NDArray[np.float32]  # (frames, CHANNELS)


@dataclass(frozen=True)
class Cue:
    """When a feed starts being mixed. ``after`` None: as soon as it has audio. Otherwise
    right after ``after``'s last sample (``overlap_s`` 0: gapless), or ``overlap_s`` before
    it, crossfading (the new track rises to the old one's level as the old one falls).
    ``replaces``: a feed that starts to fade out (equal-gain, over ``replace_s``) on the very
    sample this one starts to fade in (a phase crossfade, a skip)."""

    after: Feed | None = None
    overlap_s: float = 0.0
    replaces: Feed | None = None
    replace_s: float = 0.0


IMMEDIATE = Cue()


@dataclass
class Start:
    """What the output did when a feed started: the ramps it set, for the transport to adopt."""

    at: float  # monotonic time of the feed's first mixed sample
    ramp: curves.Ramp | None  # the new track's level (None: held at `volume`)
    volume: float
    other_ramp: curves.Ramp | None = None  # the track it follows, fading out over the overlap


class Feed:
    """One deck's audio. ``on_start`` and ``on_finish`` are called on the output thread and
    must only enqueue (the transport posts them to its worker)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.lock = threading.Lock()
        self._blocks: deque[FloatBlock] = deque()
        self._raw: list[bytes] = []  # 16-bit PCM not converted yet (after _blocks)
        self._offset = 0  # frames of _blocks[0] already taken
        self.queued_frames = 0
        self.gen = 0  # which media the samples belong to (bumped by `reset`)
        self.cue: Cue | None = None  # None: not to be mixed (idle)
        self.mixing = False
        self.paused = False
        self.ended = False  # libvlc has handed over the track's last sample
        self.finished = False  # ... and it has been mixed
        self.started_at: float | None = None
        self.volume = 0.0  # percent
        self.ramp: curves.Ramp | None = None  # wins over `volume` while set
        self.adopting = False  # the output set the ramps; the worker has not taken them yet
        self.fade_in: tuple[float, float, curves.Shape] | None = None  # (level, seconds, shape) from 0 at start
        self.gain = 1.0  # the track's loudness gain (linear)
        self.length_frames: int | None = None  # the track's length, when known
        self.mixed_frames = 0  # frames of this track mixed so far (the play position)
        self.last_gain = 0.0  # the gain the last mixed sample had (the next block starts there)
        self.on_start: Callable[[Feed, int, Start], None] | None = None
        self.on_finish: Callable[[Feed, int], None] | None = None

    # --- the worker ------------------------------------------------------------------------

    def reset(self, cue: Cue | None, *, gain: float = 1.0, volume: float = 0.0,
              fade_in: tuple[float, float, curves.Shape] | None = None) -> int:
        """A new track (or none, ``cue`` None): drop what is queued, wait for the cue."""
        with self.lock:
            self.gen += 1
            self._blocks.clear()
            self._raw.clear()
            self._offset = self.queued_frames = 0
            self.cue = cue
            self.mixing = self.paused = self.ended = self.finished = self.adopting = False
            self.started_at = None
            self.volume, self.ramp, self.fade_in = volume, None, fade_in
            self.gain = gain
            self.length_frames = None
            self.mixed_frames = 0
            self.last_gain = 0.0
            return self.gen

    def set_level(self, volume: float, ramp: curves.Ramp | None) -> None:
        """The worker's view of the level; ignored while the output's own ramps wait to be adopted."""
        with self.lock:
            if not self.adopting:
                self.volume, self.ramp = volume, ramp

    def adopted(self) -> None:
        with self.lock:
            self.adopting = False

    def has_audio(self) -> bool:
        with self.lock:
            return self.queued_frames > 0 or self.mixed_frames > 0

    def position_s(self) -> float:
        with self.lock:
            return self.mixed_frames / RATE

    # --- libvlc's threads (amem callbacks) --------------------------------------------------

    def add(self, block: FloatBlock) -> None:
        with self.lock:
            if self.cue is None or self.ended:
                return
            self._blocks.append(block)
            self.queued_frames += len(block)

    def add_pcm16(self, data: bytes, frames: int) -> None:
        """16-bit interleaved frames as libvlc hands them over (converted when taken)."""
        with self.lock:
            if self.cue is None or self.ended:
                return
            self._raw.append(data)
            self.queued_frames += frames

    def flush(self) -> None:
        """A seek or a stop drops what is queued; after the track's end libvlc flushes too,
        and that must not drop the track's last half second."""
        with self.lock:
            if self.ended:
                return
            self._blocks.clear()
            self._raw.clear()
            self._offset = self.queued_frames = 0

    def end(self) -> None:
        with self.lock:
            if self.cue is not None:
                self.ended = True

    # --- the output thread (with `lock` held) -----------------------------------------------

    def take(self, frames: int) -> FloatBlock:
        """Up to ``frames`` frames from the front of the queue."""
        if self._raw:
            # Everything libvlc handed over since the last block, converted in one go.
            pcm = np.frombuffer(b"".join(self._raw), dtype=np.int16).reshape(-1, CHANNELS)
            self._raw.clear()
            self._blocks.append(np.multiply(pcm, np.float32(1.0 / 32768.0), dtype=np.float32))
        parts: list[FloatBlock] = []
        need = frames
        while need > 0 and self._blocks:
            head = self._blocks[0]
            avail = len(head) - self._offset
            n = min(avail, need)
            parts.append(head[self._offset : self._offset + n])
            need -= n
            if n == avail:
                self._blocks.popleft()
                self._offset = 0
            else:
                self._offset += n
        got = frames - need
        self.queued_frames -= got
        self.mixed_frames += got
        if not parts:
            return np.zeros((0, CHANNELS), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def remaining_frames(self) -> int | None:
        """Frames of the track still to mix: what is queued once it has ended, else from its length."""
        if self.ended:
            return self.queued_frames
        if self.length_frames is None:
            return None
        return max(self.queued_frames, self.length_frames - self.mixed_frames)

    def level_at(self, t: float) -> float:
        return self.ramp.value_at(t) if self.ramp is not None else self.volume


def attach(vlc: ModuleType, player: Any, feed: Feed) -> list[object]:
    """Route ``player``'s decoded audio into ``feed`` (libvlc's amem callbacks: 16-bit at
    `RATE`, the only format libvlc 3's amem hands over; turned into float32 here, before any
    gain). libvlc applies no volume of its own: the player's volume stays at 100, which
    leaves 16-bit samples exactly as decoded. Returns the ctypes callbacks, which must
    outlive the player. Worker thread (it calls libvlc)."""
    values_per_frame = CHANNELS

    bytes_per_frame = 2 * values_per_frame

    def play(_opaque: object, samples: int, count: int, _pts: int) -> None:
        # On libvlc's decoder thread: a copy and nothing more (the output converts).
        feed.add_pcm16(ctypes.string_at(samples, count * bytes_per_frame), count)

    def flush(_opaque: object, _pts: int) -> None:
        feed.flush()

    def drain(_opaque: object) -> None:
        feed.end()

    def nothing(_opaque: object, _date: int) -> None:
        pass

    cb = vlc.CallbackDecorators
    callbacks = (cb.AudioPlayCb(play), cb.AudioPauseCb(nothing), cb.AudioResumeCb(nothing),
                 cb.AudioFlushCb(flush), cb.AudioDrainCb(drain))
    player.audio_set_callbacks(*callbacks, None)
    player.audio_set_format("S16N", RATE, CHANNELS)
    return list(callbacks)
