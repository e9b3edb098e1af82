"""What a room's music costs and how it sounds, measured.

(a) CPU: two child processes play the same WAV file through the same output over the same
    14 seconds, side by side so that whatever else the machine is doing weighs on both
    alike. One is bare libvlc at a fixed volume; the other is a roomctl room that fades in,
    ramps the volume down and back up, pauses and resumes with fades, and holds steady in
    between. Each child reports the process CPU time (all threads, libvlc's and the
    output's included) it spent while playing; start-up is outside the measured window.
    The output is a private PulseAudio server with a null sink per side when pulseaudio is
    installed (a real output path), and each side's server's CPU counts as its own: bare
    libvlc leaves resampling to its server, the room resamples to its mix rate itself.
    Without pulseaudio, whatever this machine has (and process CPU only).
(b) Gaps: the room's captured output across gapless track changes (six formats, rates and
    channel counts) and across a one-track playlist's loop point: the longest run of 10 ms
    windows below -50 dBFS, in ms.
(c) Loudness: five test tracks from "different sources" (about 15 LU apart); their spread
    as files (what reached the room before it normalised) and as played, measured on the
    captured output with the same BS.1770 meter.
(d) Scanning: the time to probe and measure 12 minutes of audio (FLAC, MP3, Ogg) in the
    room's checking process, given per hour of audio.

Run: .venv/bin/python bench/audio.py   (about a minute). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test kit lives in the project root

from roomctl.drivers.tracks import TrackChecks, measure
from roomctl.drivers.vlc import DEFAULT_VLC_ARGS, VlcAudio, choose_output, vlc_available
from roomctl.playlists import FilesPlaylist
from roomctl.room import MusicTarget
from testkit.media import tone
from testkit.pcm import PcmCapture, longest_run, rms_windows
from testkit.pulse import PulseServer, PulseUnavailable

SECONDS = 14.0
RATE = 44100
# (seconds into the run, what the room is told)
SCHEDULE = (
    (0.0, MusicTarget("bench", volume=60, fade_in_s=2.0)),
    (4.0, MusicTarget("bench", volume=35, ramp_s=1.5)),
    (7.0, MusicTarget("bench", volume=60, ramp_s=1.5)),
    (9.5, MusicTarget("bench", volume=60, playing=False)),
    (11.5, MusicTarget("bench", volume=60, playing=True)),
)
STEADY = (3.0, 4.0)  # fade-in long over, next change not yet: the worker should sleep


def make_track(path: Path, seconds: float) -> Path:
    """A soft stereo chord, 44.1 kHz 16-bit: the commonest kind of file a clinic has."""
    t = np.arange(int(seconds * RATE)) / RATE
    left = sum(0.12 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63))
    right = sum(0.12 * np.sin(2 * np.pi * f * t + 0.3) for f in (220.0, 277.18, 329.63))
    frames = np.round(np.stack([left, right], axis=1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames.tobytes())
    return path


def bare_libvlc(track: Path, aout: str | None, start_at: float) -> dict[str, float]:
    import vlc

    instance = vlc.Instance([*DEFAULT_VLC_ARGS, *([f"--aout={aout}"] if aout else [])])
    player = instance.media_player_new()
    media = instance.media_new_path(str(track))
    player.set_media(media)
    player.audio_set_volume(60)
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu0 = time.process_time()
    player.play()
    time.sleep(max(0.0, start_at + SECONDS - time.monotonic()))
    cpu = time.process_time() - cpu0
    player.stop()
    media.release()
    player.release()
    instance.release()
    return {"cpu_s": cpu}


async def room(track: Path, aout: str | None, start_at: float) -> dict[str, float]:
    # Playback alone: the file's loudness check (a child process, once per file) is (d)'s business.
    audio = VlcAudio({"bench": FilesPlaylist(files=(track,))}, aout=aout, normalise=False)
    try:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu0 = time.process_time()
        # Steady marks first, so one falling on a change is read before the change.
        moments = sorted([*((at, None) for at in STEADY), *SCHEDULE], key=lambda m: m[0])
        wakeups: list[int] = []
        for at, target in moments:
            await asyncio.sleep(max(0.0, start_at + at - time.monotonic()))
            if target is None:
                wakeups.append(audio.wakeups)
            else:
                await audio.apply(target)
        await asyncio.sleep(max(0.0, start_at + SECONDS - time.monotonic()))
        cpu = time.process_time() - cpu0
        steps = audio.fade_steps_per_s()
        return {
            "cpu_s": cpu,
            "fade_steps_per_s": steps if steps is not None else 0.0,
            "steady_wakeups": float(wakeups[1] - wakeups[0]),
        }
    finally:
        await audio.close()


def child(side: str, track: Path, aout: str | None, start_at: float) -> None:
    result = bare_libvlc(track, aout, start_at) if side == "bare" else asyncio.run(room(track, aout, start_at))
    print(json.dumps(result))


def cpu_side_by_side() -> tuple[dict[str, float], dict[str, float], str]:
    """Each side plays to a sound server of its own, so each side's cost includes the
    work its server does for it (bare libvlc leaves resampling to the server; the room
    resamples to its mix rate itself)."""
    servers: dict[str, PulseServer] = {}
    try:
        for side in ("bare", "room"):
            servers[side] = PulseServer()
            servers[side].start()
    except PulseUnavailable as exc:
        for srv in servers.values():
            srv.close()
        servers = {}
        where = f"{choose_output(None, None).aout} ({exc})"
    else:
        where = "a private PulseAudio null sink per side (its CPU counted)"
    aout = "pulse" if servers else choose_output(None, None).aout
    try:
        with tempfile.TemporaryDirectory() as tmp:
            track = make_track(Path(tmp) / "bench.wav", SECONDS + 5)
            start_at = time.monotonic() + 2.5  # both children ready by then
            args = [str(track), aout or "", repr(start_at)]
            procs = {}
            for side in ("bare", "room"):
                env = dict(os.environ)
                if side in servers:
                    env.update({k: v for k, v in servers[side].env().items()
                                if k in ("PULSE_SERVER", "XDG_RUNTIME_DIR")})
                procs[side] = subprocess.Popen([sys.executable, __file__, "--side", side, *args], env=env,
                                               stdout=subprocess.PIPE, text=True)
            time.sleep(max(0.0, start_at - time.monotonic()))
            server0 = {side: srv.cpu_s() for side, srv in servers.items()}
            time.sleep(max(0.0, start_at + SECONDS - time.monotonic()))
            server_cpu = {side: srv.cpu_s() - server0[side] for side, srv in servers.items()}
            results = {}
            for side, proc in procs.items():
                out, _ = proc.communicate(timeout=60)
                if proc.returncode != 0:
                    raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
                results[side] = json.loads(out.strip().splitlines()[-1])
                results[side]["server_cpu_s"] = server_cpu.get(side, 0.0)
    finally:
        for srv in servers.values():
            srv.close()
    return results["bare"], results["room"], where


async def until(done: Callable[[], bool], timeout_s: float) -> None:
    """Wait until ``done()`` (the room's background checks), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        await asyncio.sleep(0.1)


def longest_gap_ms(cap: PcmCapture, start: float, end: float) -> float:
    x = cap.signal(start, end)
    _, levels = rms_windows(x, cap.rate, 0.0, 0.01)
    first = int(np.argmax(levels > 0.5 * np.max(levels)))
    return longest_run(levels[first:] < 10 ** (-50 / 20)) * 10.0


async def gaps(tmp: Path) -> dict[str, float]:
    formats = ((".wav", 22050, 1), (".flac", 44100, 2), (".ogg", 48000, 1), (".opus", 48000, 2), (".mp3", 44100, 2),
               (".m4a", 22050, 1))
    album = [tone(tmp / f"g{i}{suffix}", 330 + 110 * i, 2.0, rate=rate, channels=ch, amplitude=0.3)
             for i, (suffix, rate, ch) in enumerate(formats)]
    loop = tone(tmp / "loop.ogg", 550, 2.0, amplitude=0.3)
    out: dict[str, float] = {}
    for name, files, seconds in (("track_change", album, 2.0 * len(album) - 0.5), ("loop", [loop], 7.0)):
        cap = PcmCapture()
        room = VlcAudio({"p": FilesPlaylist(files=tuple(files))}, output_hook=cap, track_crossfade_s=0.0,
                        normalise=False, unmeasured_gain=0.0)
        try:
            await until(lambda r=room, fs=files: all(  # type: ignore[misc]  # defaults bind this loop's room
                (st := r.tracks.state(str(f))) is not None and st.checked for f in fs), 30.0)
            t0 = time.monotonic()
            await room.apply(MusicTarget("p", volume=80, fade_in_s=0.5))
            await asyncio.sleep(seconds)
            out[name] = longest_gap_ms(cap, t0, time.monotonic() - 0.2)
        finally:
            await room.close()
    return out


async def loudness(tmp: Path) -> dict[str, float]:
    # 997 Hz tones from "different sources": about -6, -11, -15, -19 and -21 LUFS as files.
    specs = ((".mp3", 0.5), (".flac", 0.28), (".ogg", 0.18), (".wav", 0.11), (".opus", 0.089))
    files = [tone(tmp / f"l{i}{suffix}", 997, 4.0, amplitude=amp) for i, (suffix, amp) in enumerate(specs)]
    as_files = [measure(str(f)).lufs for f in files]
    cap = PcmCapture()
    room = VlcAudio({"p": FilesPlaylist(files=tuple(files))}, output_hook=cap, track_crossfade_s=0.0,
                    loudness_cache=tmp / "cache.json")
    played: list[float] = []
    try:
        await until(lambda: all(
            (st := room.tracks.state(str(f))) is not None and st.loudness is not None for f in files), 60.0)
        t0 = time.monotonic()
        await room.apply(MusicTarget("p", volume=100, fade_in_s=0.5))
        await asyncio.sleep(4.0 * len(files) + 0.3)
        for i in range(len(files)):
            x = cap.signal(t0 + 4.0 * i + 1.0, t0 + 4.0 * i + 3.0)
            path = tmp / f"played{i}.wav"
            frames = np.round(np.clip(np.repeat(x[:, None], 2, axis=1), -1, 1) * 32767).astype("<i2")
            with wave.open(str(path), "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(2)
                w.setframerate(cap.rate)
                w.writeframes(frames.tobytes())
            played.append(measure(str(path)).lufs)
    finally:
        await room.close()
    return {"before_lu": max(as_files) - min(as_files), "after_lu": max(played) - min(played)}


def scan_time(tmp: Path) -> float:
    """Seconds to probe and measure one hour of audio (12 minutes measured)."""
    files = [tone(tmp / f"s{i}{suffix}", 220 + 50 * i, 180.0, amplitude=0.2)
             for i, suffix in enumerate((".flac", ".mp3", ".ogg", ".flac"))]
    import logging

    checks = TrackChecks(None, logging.getLogger("bench"))
    try:
        t0 = time.monotonic()
        checks.check([str(f) for f in files])
        while not all((st := checks.state(str(f))) is not None and st.loudness is not None for f in files):
            time.sleep(0.05)
        seconds = time.monotonic() - t0
    finally:
        checks.close()
    return seconds * 60.0 / 12.0


def main() -> None:
    ok, reason = vlc_available()
    if not ok:
        raise SystemExit(f"bench/audio.py needs libvlc: {reason}")
    bare, ours, where = cpu_side_by_side()
    print(f"{reason}; output: {where}")
    bare_total = bare["cpu_s"] + bare["server_cpu_s"]
    ours_total = ours["cpu_s"] + ours["server_cpu_s"]
    ratio = ours_total / bare_total if bare_total > 0 else float("inf")
    print(f"{SECONDS:g} s side by side: bare libvlc {bare['cpu_s']:.3f} CPU s (+ {bare['server_cpu_s']:.3f} in its "
          f"sound server), roomctl room {ours['cpu_s']:.3f} CPU s (+ {ours['server_cpu_s']:.3f})")
    print(f"worker wake-ups while holding steady for {STEADY[1] - STEADY[0]:g} s: {ours['steady_wakeups']:g}")
    with tempfile.TemporaryDirectory() as tmp:
        found_gaps = asyncio.run(gaps(Path(tmp)))
        print(f"longest gap at gapless track changes: {found_gaps['track_change']:.0f} ms; "
              f"at a loop: {found_gaps['loop']:.0f} ms")
        loud = asyncio.run(loudness(Path(tmp)))
        print(f"loudness spread across 5 tracks: {loud['before_lu']:.1f} LU as files, {loud['after_lu']:.1f} LU played")
        per_hour = scan_time(Path(tmp))
        print(f"probing and measuring 1 h of audio: {per_hour:.1f} s")
    print(
        json.dumps(
            {
                "cpu_ratio_vs_bare_libvlc": round(ratio, 3),
                "cpu_ratio_process_only": round(ours["cpu_s"] / bare["cpu_s"], 3) if bare["cpu_s"] > 0 else None,
                "fade_steps_per_s": round(ours["fade_steps_per_s"], 1),
                "gap_at_track_change_ms": round(found_gaps["track_change"], 1),
                "gap_at_loop_ms": round(found_gaps["loop"], 1),
                "loudness_spread_before_lu": round(loud["before_lu"], 2),
                "loudness_spread_after_lu": round(loud["after_lu"], 2),
                "scan_s_per_hour_of_audio": round(per_hour, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("bare", "room"))
    parser.add_argument("track", nargs="?", type=Path)
    parser.add_argument("aout", nargs="?")
    parser.add_argument("start_at", nargs="?", type=float)
    ns = parser.parse_args()
    if ns.side:
        child(ns.side, ns.track, ns.aout or None, ns.start_at)
    else:
        main()
