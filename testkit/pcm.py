"""Capture the PCM that libvlc really outputs, with volume applied, for tests and benches.

libvlc's ``amem`` output hands every decoded, volume-scaled block to callbacks instead of
a sound card. A `PcmCapture` installs those callbacks on each deck of a `VlcAudio` (no
volume callback, so libvlc applies the volume itself, exactly as it would for a speaker)
and files each block at the time it would be heard: libvlc passes the block's play date
on its own monotonic clock, which is ``time.monotonic()``'s clock. Both decks are mixed on
one timeline, so a crossfade can be measured as the room hears it.

Where libvlc relies on the output's behaviour, the capture behaves like a speaker: a flush
or a stop drops the audio queued but not yet heard, a pause holds it until the resume,
and a drain (the end of a track) returns only once the queued audio has been heard.

Only `attach` touches libvlc, and it must run on the thread that owns the player (the
driver's worker does this). The callbacks run on libvlc's threads and only copy samples.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
TimeArray = npt.NDArray[np.float64]


@dataclass
class _Chunk:
    deck: str
    start: float  # monotonic seconds at which the first sample is heard
    samples: FloatArray  # mono, -1..1


class PcmCapture:
    """Records both decks' output; query it with `signal`, `rms` and `covered`.

    An output hook for the driver (`roomctl.drivers.vlc.OutputHook`): pass it as
    ``VlcAudio(..., output_hook=capture)``."""

    description = "capturing PCM for measurement"  # what the room's health says of its output
    measuring = True  # a measurement sink, not a speaker

    def __init__(self, rate: int = 44100, channels: int = 2) -> None:
        self.rate = rate
        self.channels = channels
        self._lock = threading.Lock()
        self._chunks: list[_Chunk] = []
        self._paused_at: dict[str, float] = {}
        # ctypes callback objects must outlive the player, or libvlc calls freed memory.
        self._keep: list[object] = []

    def attach(self, player: Any, deck: str) -> None:
        """Route ``player``'s audio into this capture. Call before the first ``play()``."""
        import vlc  # only tests and benches capture; the driver has already loaded libvlc

        # libvlc dates are microseconds on CLOCK_MONOTONIC, as is time.monotonic();
        # measure the offset once rather than trusting they share an origin.
        offset = time.monotonic() - vlc.libvlc_clock() / 1e6
        frame_bytes = 2 * self.channels

        def play(_opaque: object, samples: int, count: int, pts: int) -> None:
            raw = np.frombuffer(ctypes.string_at(samples, count * frame_bytes), dtype=np.int16)
            mono = raw.reshape(-1, self.channels).mean(axis=1, dtype=np.float32) / 32768.0
            with self._lock:
                self._chunks.append(_Chunk(deck, pts / 1e6 + offset, mono))

        def pause(_opaque: object, _date: int) -> None:
            with self._lock:
                self._paused_at[deck] = time.monotonic()

        def resume(_opaque: object, _date: int) -> None:
            now = time.monotonic()
            with self._lock:
                since = self._paused_at.pop(deck, None)
                if since is None:
                    return
                # A speaker holds the blocks queued at the pause and plays them on resume.
                for c in self._chunks:
                    if c.deck == deck and c.start >= since:
                        c.start += now - since

        def flush(_opaque: object, _pts: int) -> None:
            self._drop_queued(deck)

        def drain(_opaque: object) -> None:
            # A speaker's drain returns once the queued audio has been heard; libvlc then
            # flushes, and only after that reports the end of the track.
            with self._lock:
                ends = [c.start + len(c.samples) / self.rate for c in self._chunks if c.deck == deck]
            wait = max(ends, default=0.0) - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 10.0))

        cb = vlc.CallbackDecorators
        callbacks = (
            cb.AudioPlayCb(play),
            cb.AudioPauseCb(pause),
            cb.AudioResumeCb(resume),
            cb.AudioFlushCb(flush),
            cb.AudioDrainCb(drain),
        )
        # A speaker also drops its queue when the player stops (amem is told nothing).
        # The callback runs on a libvlc thread and touches no libvlc.
        events = player.event_manager()
        events.event_attach(vlc.EventType.MediaPlayerStopped, lambda _event: self._drop_queued(deck))
        self._keep.extend((callbacks, events))
        player.audio_set_callbacks(*callbacks, None)
        player.audio_set_format("S16N", self.rate, self.channels)

    def _drop_queued(self, deck: str) -> None:
        """What a speaker does on a flush or a stop: drop what is queued but not yet heard."""
        now = time.monotonic()
        with self._lock:
            kept: list[_Chunk] = []
            for c in self._chunks:
                if c.deck != deck or c.start + len(c.samples) / self.rate <= now:
                    kept.append(c)
                elif c.start < now:
                    c.samples = c.samples[: int((now - c.start) * self.rate)]
                    kept.append(c)
            self._chunks = kept

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def covered(self) -> tuple[float, float] | None:
        """(first, last) monotonic times that any deck has output, or None."""
        with self._lock:
            if not self._chunks:
                return None
            first = min(c.start for c in self._chunks)
            last = max(c.start + len(c.samples) / self.rate for c in self._chunks)
        return first, last

    def signal(self, start: float, end: float, deck: str | None = None) -> FloatArray:
        """The mono mix heard from ``start`` to ``end`` (monotonic seconds); zeros where
        nothing was output. ``deck`` limits it to one deck."""
        n = max(0, round((end - start) * self.rate))
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            chunks = [c for c in self._chunks if deck is None or c.deck == deck]
        for c in chunks:
            i0 = round((c.start - start) * self.rate)
            i1 = i0 + len(c.samples)
            if i1 <= 0 or i0 >= n:
                continue
            s0, s1 = max(0, -i0), len(c.samples) - max(0, i1 - n)
            out[max(0, i0) : min(n, i1)] += c.samples[s0:s1]
        return out

    def rms(
        self, start: float, end: float, window_s: float = 0.05, deck: str | None = None
    ) -> tuple[TimeArray, FloatArray]:
        """(window start times, RMS of each window) from ``start`` to ``end``."""
        x = self.signal(start, end, deck)
        w = max(1, round(window_s * self.rate))
        k = len(x) // w
        blocks = x[: k * w].reshape(k, w).astype(np.float64)
        levels = np.sqrt(np.mean(blocks**2, axis=1)).astype(np.float32)
        times = start + np.arange(k, dtype=np.float64) * window_s
        return times, levels


def dominant_hz(x: FloatArray, rate: int) -> float:
    """The strongest frequency in ``x`` (Hz), to tell test tones apart."""
    if len(x) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))
