"""Test media made on the spot, in the formats clinics have: WAV, FLAC, Ogg Vorbis, Opus,
MP3 and M4A (AAC), at any rate, mono or stereo, encoded with PyAV (FFmpeg, in its wheel).

A tone is a steady sine with 5 ms ramps at its ends (so a gap or a click is the room's,
not the file's); `silence` writes real silence, at -60 dBFS noise or as digital zero.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

CODECS = {".wav": ("pcm_s16le",), ".flac": ("flac",), ".ogg": ("libvorbis", "vorbis"), ".opus": ("libopus", "opus"),
          ".mp3": ("libmp3lame",), ".m4a": ("aac",)}
OPUS_RATE = 48000  # Opus encodes at 48 kHz only


def write(path: Path, samples: npt.NDArray[np.float32], rate: int) -> Path:
    """Encode ``samples`` ((frames, channels), -1..1) at ``rate`` into ``path`` (its suffix
    says the format)."""
    codec = next(c for c in CODECS[path.suffix] if c in av.codecs_available)
    channels = samples.shape[1]
    if codec == "vorbis" and channels == 1:
        samples, channels = np.repeat(samples, 2, axis=1), 2  # FFmpeg's own Vorbis encoder is stereo only
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options={"strict": "experimental"})
        assert isinstance(stream, av.AudioStream)
        formats = stream.codec_context.codec.audio_formats or ()
        fmt = formats[0].name if formats else "fltp"
        if codec != "flac" and not codec.startswith("pcm"):
            stream.bit_rate = 160_000
        frame_size = stream.codec_context.frame_size or 1024
        data = samples.astype(np.float32)
        for i in range(0, len(data), frame_size):
            part = np.ascontiguousarray(data[i : i + frame_size].T)  # planar float
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            if fmt not in ("fltp",):
                frame = _convert(frame, fmt, layout, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _convert(frame: av.AudioFrame, fmt: str, layout: str, rate: int) -> av.AudioFrame:
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    converted = resampler.resample(frame)
    return converted[0]


def tone(path: Path, hz: float, seconds: float, *, rate: int = 44100, channels: int = 2,
         amplitude: float = 0.5) -> Path:
    """A steady sine of ``amplitude`` (peak), ``seconds`` long."""
    rate = OPUS_RATE if path.suffix == ".opus" else rate
    t = np.arange(int(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * hz * t)
    edge = int(0.005 * rate)
    x[:edge] *= np.linspace(0, 1, edge)
    x[-edge:] *= np.linspace(1, 0, edge)
    return write(path, np.repeat(x[:, None], channels, axis=1).astype(np.float32), rate)


def silence(path: Path, seconds: float, *, rate: int = 44100, channels: int = 2, dbfs: float | None = None,
            seed: int = 1) -> Path:
    """Silence: digital zero (``dbfs`` None) or white noise at ``dbfs`` RMS."""
    rate = OPUS_RATE if path.suffix == ".opus" else rate
    n = int(seconds * rate)
    if dbfs is None:
        x = np.zeros((n, channels), dtype=np.float32)
    else:
        x = np.random.default_rng(seed).normal(0, 10 ** (dbfs / 20), (n, channels)).astype(np.float32)
    return write(path, x, rate)
