"""Capture the PCM the room really outputs, with every gain applied, for tests and benches.

The room mixes both decks itself and writes one stream to its sink (`roomctl.drivers.vlc.sink`);
a `PcmCapture` takes the sink's place (an `OutputHook`) and files each block at the time
it would be heard, so fades, crossfades and gaps can be measured as the room hears them.
It keeps time like a sound card (the output thread paces it by the clock) but plays nothing.

For the real output path, `testkit.pulse` records a PulseAudio null sink's monitor instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
TimeArray = npt.NDArray[np.float64]
RATE = 48000  # the room's output rate


@dataclass
class _Chunk:
    start: float  # monotonic seconds at which the first sample is heard
    samples: FloatArray  # mono, -1..1


class PcmCapture:
    """Records the room's output; query it with `signal`, `rms` and `covered`.

    An output hook for the driver (`roomctl.drivers.vlc.OutputHook`): pass it as
    ``VlcAudio(..., output_hook=capture)``."""

    description = "capturing PCM for measurement"  # what the room's health says of its output
    measuring = True  # a measurement sink, not a speaker
    paced = False  # the output thread keeps time
    silent = False

    def __init__(self, rate: int = RATE) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._chunks: list[_Chunk] = []
        self.peak = 0.0  # the largest sample magnitude ever written, on either channel

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, block: FloatArray, at: float) -> None:
        peak = float(np.max(np.abs(block))) if len(block) else 0.0
        mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block.astype(np.float32)
        with self._lock:
            self.peak = max(self.peak, peak)
            if self._chunks and not np.any(mono) and not np.any(self._chunks[-1].samples[-1:]):
                # Long silences are kept as silence: nothing is filed where nothing plays.
                return
            self._chunks.append(_Chunk(at, mono))

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self.peak = 0.0

    def covered(self) -> tuple[float, float] | None:
        """(first, last) monotonic times that any sound was output, or None."""
        with self._lock:
            sounding = [c for c in self._chunks if np.any(c.samples)]
            if not sounding:
                return None
            first = min(c.start for c in sounding)
            last = max(c.start + len(c.samples) / self.rate for c in sounding)
        return first, last

    def signal(self, start: float, end: float) -> FloatArray:
        """The mono mix heard from ``start`` to ``end`` (monotonic seconds); zeros where
        nothing was output."""
        n = max(0, round((end - start) * self.rate))
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            chunks = list(self._chunks)
        for c in chunks:
            i0 = round((c.start - start) * self.rate)
            i1 = i0 + len(c.samples)
            if i1 <= 0 or i0 >= n:
                continue
            s0, s1 = max(0, -i0), len(c.samples) - max(0, i1 - n)
            out[max(0, i0) : min(n, i1)] = c.samples[s0:s1]
        return out

    def rms(self, start: float, end: float, window_s: float = 0.05) -> tuple[TimeArray, FloatArray]:
        """(window start times, RMS of each window) from ``start`` to ``end``."""
        return rms_windows(self.signal(start, end), self.rate, start, window_s)


def rms_windows(x: FloatArray, rate: int, start: float, window_s: float) -> tuple[TimeArray, FloatArray]:
    """(window start times, RMS of each window of ``x``)."""
    w = max(1, round(window_s * rate))
    k = len(x) // w
    blocks = x[: k * w].reshape(k, w).astype(np.float64)
    levels = np.sqrt(np.mean(blocks**2, axis=1)).astype(np.float32)
    times = start + np.arange(k, dtype=np.float64) * window_s
    return times, levels


def longest_run(mask: npt.NDArray[np.bool_]) -> int:
    """The longest run of True in ``mask``."""
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


def dominant_hz(x: FloatArray, rate: int) -> float:
    """The strongest frequency in ``x`` (Hz), to tell test tones apart."""
    if len(x) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))
