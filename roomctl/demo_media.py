"""Gentle synthesized music for the demo room, made on first run.

The bundled presets name six playlists (`DEMO_PLAYLISTS`). A machine with no music of
its own still gets something fitting for each: slow pads, drones and soft bells, two
tracks per playlist, written as mono 22.05 kHz WAV files (with title and artist in a
LIST/INFO chunk, so "now playing" reads "Slow tide - roomctl demo") under
``<data_dir>/demo-media/<playlist>/``.

Generation is idempotent: a playlist folder with a matching ``.complete.json`` and every
file at its recorded size is left alone. Files are written under a temporary name and
renamed, and the marker is written last, so an interrupted run is redone, not trusted.

Speed: every pad partial sits on a 0.05 Hz grid, so it repeats exactly every `LOOP_S`
seconds; each chord is synthesized once for that loop and tiled, and only the slow
envelopes, bells and the track's fades are computed over the whole length.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from roomctl.playlists import FolderPlaylist, PlaylistSpec

logger = logging.getLogger(__name__)

Signal = npt.NDArray[np.float32]

DEMO_PLAYLISTS: tuple[str, ...] = ("arrival", "dosing", "journey", "deep", "return", "integration")
DEMO_ARTIST = "roomctl demo"
RATE = 22050
TRACK_S = 120.0
LOOP_S = 20.0
FADE_IN_S = 4.0
FADE_OUT_S = 6.0
TARGET_RMS = 0.1  # -20 dBFS: quiet enough to leave headroom, loud enough to hear
PEAK_LIMIT = 0.8
MARKER = ".complete.json"
FORMAT_VERSION = 1
_TABLE_SIZE = 8192


# --- building blocks -------------------------------------------------------------------


def _hz(midi: float) -> float:
    """A MIDI note as a frequency on the loop's grid, so it repeats every LOOP_S."""
    return round(440.0 * 2 ** ((midi - 69) / 12) * LOOP_S) / LOOP_S


def _table(harmonics: Sequence[float]) -> Signal:
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE * 2 * np.pi
    wave = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(harmonics))
    return np.asarray(wave / sum(harmonics), dtype=np.float32)


def _oscillator(table: Signal, hz: float, n: int) -> Signal:
    cycles = np.arange(n, dtype=np.float64) * (hz / RATE)
    cycles -= np.floor(cycles)
    return table[(cycles * _TABLE_SIZE).astype(np.intp) % _TABLE_SIZE]


def _pad_loop(notes: Sequence[float], harmonics: Sequence[float], detune_hz: float) -> Signal:
    """One chord for one loop: each note as two slightly detuned voices that slowly beat."""
    n = round(LOOP_S * RATE)
    table = _table(harmonics)
    out = np.zeros(n, dtype=np.float32)
    for midi in notes:
        hz = _hz(midi)
        out += _oscillator(table, hz - detune_hz, n)
        out += _oscillator(table, hz + detune_hz, n)
    out /= 2 * len(notes)
    return out


def _tiled(loop: Signal, start: int, stop: int) -> Signal:
    return loop[np.arange(start, stop) % len(loop)]


def _lfo_loop(period_s: float, depth: float, phase: float = 0.0) -> Signal:
    """1 +- depth, with a period that divides LOOP_S so it tiles seamlessly."""
    n = round(LOOP_S * RATE)
    t = np.arange(n) / RATE
    return np.asarray(1.0 + depth * np.sin(2 * np.pi * t / period_s + phase), dtype=np.float32)


def _raised_cosine(n: int) -> Signal:
    return np.asarray(0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n)), dtype=np.float32)


def _sequence(out: Signal, chords: Sequence[Signal], segment_s: float, overlap_s: float) -> None:
    """Add the chords one after another, each swelling in and out over ``overlap_s``."""
    total = len(out)
    seg, ov = round(segment_s * RATE), round(overlap_s * RATE)
    rise = _raised_cosine(ov)
    start, i = -ov // 2, 0
    while start < total:
        stop = min(total, start + seg + ov)
        lo = max(0, start)
        env = np.ones(stop - lo, dtype=np.float32)
        head = rise[lo - start :]
        env[: len(head)] = head[: len(env)]
        if start + seg + ov <= total:
            env[-ov:] *= rise[::-1]
        out[lo:stop] += _tiled(chords[i % len(chords)], lo, stop) * env
        start += seg
        i += 1


def _noise_loop(rng: np.random.Generator, cutoff_hz: float, level: float) -> Signal:
    """Soft filtered noise (air, surf, rumble); filtered in the frequency domain, which is
    circular, so the loop joins without a seam."""
    n = round(LOOP_S * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum *= 1.0 / (1.0 + (freqs / cutoff_hz) ** 4)
    noise = np.fft.irfft(spectrum, n)
    return np.asarray(noise / np.sqrt(np.mean(noise**2)) * level, dtype=np.float32)


def _bells(
    out: Signal, rng: np.random.Generator, notes: Sequence[float], every_s: tuple[float, float], level: float
) -> None:
    """Soft struck tones: a 60 ms rise (no click), a slow decay, a smooth end."""
    ratios, weights = (1.0, 2.76, 5.4), (1.0, 0.3, 0.1)
    length = round(5.0 * RATE)
    t = np.arange(length) / RATE
    env = np.exp(-t / 1.2).astype(np.float32)
    env[: round(0.06 * RATE)] *= _raised_cosine(round(0.06 * RATE))
    env[-round(0.5 * RATE) :] *= _raised_cosine(round(0.5 * RATE))[::-1]
    at = rng.uniform(*every_s)
    while (start := round(at * RATE)) + length < len(out):
        hz = 440.0 * 2 ** ((float(rng.choice(notes)) - 69) / 12)
        tone = sum(w * np.sin(2 * np.pi * hz * r * t) for r, w in zip(ratios, weights, strict=True))
        out[start : start + length] += (tone * env * level * rng.uniform(0.6, 1.0)).astype(np.float32)
        at += rng.uniform(*every_s)


# --- the tracks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    chords: tuple[tuple[float, ...], ...]  # MIDI notes
    harmonics: tuple[float, ...]
    segment_s: float
    overlap_s: float
    detune_hz: float = 0.1
    breath_s: float = 10.0  # swell period (divides LOOP_S)
    breath_depth: float = 0.15
    noise_cutoff_hz: float | None = None
    noise_level: float = 0.0
    noise_swell_depth: float = 0.0
    bells: tuple[float, ...] = ()
    bell_level: float = 0.0


@dataclass(frozen=True)
class DemoTrack:
    playlist: str
    number: int
    title: str
    recipe: Recipe

    @property
    def filename(self) -> str:
        return f"{self.number:02d}-{self.title.lower().replace(' ', '-')}.wav"


def _transpose(chords: tuple[tuple[float, ...], ...], by: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(n + by for n in chord) for chord in chords)


_WARM = (1.0, 0.35, 0.12, 0.05)
_ARRIVAL = ((48, 52, 55, 62), (48, 53, 57, 64), (45, 52, 55, 60), (43, 50, 55, 57))
_JOURNEY = ((50, 53, 57, 64), (46, 50, 53, 57), (41, 48, 52, 57), (48, 53, 55, 60))
_RETURN = ((50, 54, 57, 64), (50, 52, 56, 59), (47, 54, 57, 62), (45, 52, 57, 61))
_SHORE = ((43, 50, 54, 59), (48, 55, 59, 62), (40, 47, 55, 59), (50, 55, 57, 62))

DEMO_TRACKS: tuple[DemoTrack, ...] = (
    DemoTrack(
        "arrival", 1, "Soft arrival", Recipe(_ARRIVAL, _WARM, 24, 8, noise_cutoff_hz=1500, noise_level=0.03)
    ),
    DemoTrack(
        "arrival",
        2,
        "Settling in",
        Recipe(
            _transpose(_ARRIVAL[::-1], -2),
            _WARM,
            26,
            10,
            breath_s=20,
            noise_cutoff_hz=1200,
            noise_level=0.025,
        ),
    ),
    DemoTrack(
        "dosing",
        1,
        "Still point",
        Recipe(((45, 52, 57),), (1.0, 0.5, 0.25, 0.12, 0.06), 60, 10, breath_s=20, breath_depth=0.1),
    ),
    DemoTrack(
        "dosing",
        2,
        "Open hands",
        Recipe(((50, 57, 62), (50, 57, 64)), (1.0, 0.45, 0.2, 0.1), 40, 14, breath_depth=0.1),
    ),
    DemoTrack(
        "journey",
        1,
        "Slow tide",
        Recipe(_JOURNEY, (1.0, 0.3, 0.15, 0.08, 0.04), 28, 12, breath_s=20, breath_depth=0.25),
    ),
    DemoTrack(
        "journey",
        2,
        "Inner sky",
        Recipe(
            _transpose(_JOURNEY, 2)[1:] + _transpose(_JOURNEY, 2)[:1],
            (1.0, 0.25, 0.1, 0.05),
            30,
            14,
            breath_depth=0.2,
        ),
    ),
    DemoTrack(
        "deep",
        1,
        "Deep water",
        Recipe(
            ((38, 45, 50),),
            (1.0, 0.6, 0.3, 0.15),
            60,
            10,
            detune_hz=0.25,
            breath_s=20,
            breath_depth=0.3,
            noise_cutoff_hz=300,
            noise_level=0.04,
        ),
    ),
    DemoTrack(
        "deep",
        2,
        "Night field",
        Recipe(
            ((36, 43, 51), (36, 43, 48)),
            (1.0, 0.5, 0.2),
            45,
            15,
            detune_hz=0.2,
            breath_s=20,
            breath_depth=0.25,
            noise_cutoff_hz=250,
            noise_level=0.04,
        ),
    ),
    DemoTrack(
        "return",
        1,
        "First light",
        Recipe(_RETURN, (1.0, 0.5, 0.3, 0.2, 0.1), 22, 8, bells=(74, 76, 78, 81, 83), bell_level=0.12),
    ),
    DemoTrack(
        "return",
        2,
        "Coming home",
        Recipe(
            _transpose(_RETURN, -5), (1.0, 0.4, 0.25, 0.1), 24, 8, bells=(69, 71, 73, 76, 78), bell_level=0.1
        ),
    ),
    DemoTrack(
        "integration",
        1,
        "Quiet shore",
        Recipe(_SHORE, _WARM, 26, 10, noise_cutoff_hz=800, noise_level=0.08, noise_swell_depth=0.8),
    ),
    DemoTrack(
        "integration",
        2,
        "Gathering",
        Recipe(
            _transpose(_SHORE, -2)[::-1],
            _WARM,
            28,
            12,
            breath_s=20,
            noise_cutoff_hz=700,
            noise_level=0.06,
            noise_swell_depth=0.7,
        ),
    ),
)


def render(track: DemoTrack, track_s: float = TRACK_S) -> Signal:
    """The track's samples, mono float in -1..1 at `RATE`."""
    r = track.recipe
    seed = sum(ord(c) for c in track.playlist) * 100 + track.number
    rng = np.random.default_rng(seed)
    n = round(track_s * RATE)
    out = np.zeros(n, dtype=np.float32)
    chords = [_pad_loop(c, r.harmonics, r.detune_hz) for c in r.chords]
    _sequence(out, chords, r.segment_s, r.overlap_s)
    out *= _tiled(_lfo_loop(r.breath_s, r.breath_depth), 0, n)
    if r.noise_cutoff_hz is not None:
        noise = _tiled(_noise_loop(rng, r.noise_cutoff_hz, r.noise_level), 0, n)
        if r.noise_swell_depth:
            noise *= _tiled(_lfo_loop(10.0, r.noise_swell_depth, phase=1.0), 0, n)
        out += noise
    if r.bells:
        _bells(out, rng, r.bells, (4.0, 8.0), r.bell_level)
    out -= float(np.mean(out))
    out *= TARGET_RMS / max(1e-9, float(np.sqrt(np.mean(out.astype(np.float64) ** 2))))
    peak = float(np.max(np.abs(out)))
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    fade_in, fade_out = round(FADE_IN_S * RATE), round(FADE_OUT_S * RATE)
    out[:fade_in] *= _raised_cosine(fade_in)
    out[-fade_out:] *= _raised_cosine(fade_out)[::-1]
    return out


# --- files ----------------------------------------------------------------------------


def _info_chunk(tags: Sequence[tuple[bytes, str]]) -> bytes:
    body = b"INFO"
    for tag, text in tags:
        data = text.encode("utf-8") + b"\x00"
        body += tag + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def wav_bytes(samples: Signal, *, title: str, artist: str, album: str) -> bytes:
    """16-bit mono PCM WAV with a LIST/INFO chunk (INAM title, IART artist, IPRD album)."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    info = _info_chunk(((b"INAM", title), (b"IART", artist), (b"IPRD", album)))
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + info + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _album(playlist: str) -> str:
    return f"roomctl demo: {playlist}"


def _marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(folder: Path, tracks: Sequence[DemoTrack], track_s: float) -> bool:
    marker = _marker(folder)
    if marker is None or marker.get("version") != FORMAT_VERSION or marker.get("track_s") != track_s:
        return False
    sizes = marker.get("files")
    if not isinstance(sizes, dict) or set(sizes) != {t.filename for t in tracks}:
        return False
    for name, size in sizes.items():
        try:
            if (folder / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _write(track: DemoTrack, folder: Path, track_s: float) -> int:
    data = wav_bytes(
        render(track, track_s), title=track.title, artist=DEMO_ARTIST, album=_album(track.playlist)
    )
    final = folder / track.filename
    part = folder / f".{track.filename}.{os.getpid()}.part"
    part.write_bytes(data)
    os.replace(part, final)
    return len(data)


def ensure_demo_media(data_dir: Path, *, track_s: float = TRACK_S, workers: int | None = None) -> Path:
    """Make sure every demo playlist's files are there and whole; returns the demo folder."""
    root = Path(data_dir) / "demo-media"
    todo: dict[str, list[DemoTrack]] = {}
    for name in DEMO_PLAYLISTS:
        tracks = [t for t in DEMO_TRACKS if t.playlist == name]
        if not _complete(root / name, tracks, track_s):
            todo[name] = tracks
    if not todo:
        return root
    started = time.monotonic()
    for name in todo:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / MARKER).unlink(missing_ok=True)
    jobs = [(t, root / t.playlist) for tracks in todo.values() for t in tracks]
    # numpy drops the GIL in its array loops, so threads do run in parallel here.
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        sizes = list(pool.map(lambda job: _write(job[0], job[1], track_s), jobs))
    written = {t.filename: size for (t, _), size in zip(jobs, sizes, strict=True)}
    for name, tracks in todo.items():
        marker = {
            "version": FORMAT_VERSION,
            "track_s": track_s,
            "files": {t.filename: written[t.filename] for t in tracks},
        }
        (root / name / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    logger.info(
        "made demo music for %s in %.1f s under %s", ", ".join(todo), time.monotonic() - started, root
    )
    return root


def demo_playlists(data_dir: Path, *, generate: bool = True) -> dict[str, PlaylistSpec]:
    """The demo room's playlist mapping; makes the music first unless ``generate`` is False."""
    root = ensure_demo_media(data_dir) if generate else Path(data_dir) / "demo-media"
    return {name: FolderPlaylist(folder=root / name) for name in DEMO_PLAYLISTS}
