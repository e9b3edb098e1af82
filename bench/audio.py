"""What a room's music costs in CPU next to libvlc playing the same file alone.

Two child processes play the same WAV file through the same output (the one roomctl picks
on this machine) over the same 14 seconds, side by side so that whatever else the machine
is doing weighs on both alike. One is bare libvlc at a fixed volume; the other is a
roomctl room that fades in, ramps the volume down and back up, pauses and resumes with
fades, and holds steady in between, so its ramp ticker both runs and sleeps. Each child
reports the process CPU time (all threads, libvlc's included) it spent while playing;
imports and libvlc's start-up are outside the measured window.

Run: .venv/bin/python bench/audio.py   (about 17 s). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roomctl.drivers.vlc import DEFAULT_VLC_ARGS, VlcAudio, choose_output, vlc_available
from roomctl.playlists import FilesPlaylist
from roomctl.room import MusicTarget

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
    audio = VlcAudio({"bench": FilesPlaylist(files=(track,))}, aout=aout)
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


def main() -> None:
    ok, reason = vlc_available()
    if not ok:
        raise SystemExit(f"bench/audio.py needs libvlc: {reason}")
    output = choose_output(None, None)
    note = f" ({output.note})" if output.note else ""
    print(f"{reason}; output: {output.aout or 'system default'}{note}")
    with tempfile.TemporaryDirectory() as tmp:
        track = make_track(Path(tmp) / "bench.wav", SECONDS + 5)
        start_at = time.monotonic() + 2.0  # both children ready by then
        args = [str(track), output.aout or "", repr(start_at)]
        procs = {
            side: subprocess.Popen([sys.executable, __file__, "--side", side, *args], stdout=subprocess.PIPE, text=True)
            for side in ("bare", "room")
        }
        results = {}
        for side, proc in procs.items():
            out, _ = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
            results[side] = json.loads(out.strip().splitlines()[-1])
    bare, ours = results["bare"], results["room"]
    ratio = ours["cpu_s"] / bare["cpu_s"] if bare["cpu_s"] > 0 else float("inf")
    print(f"{SECONDS:g} s side by side: bare libvlc {bare['cpu_s']:.3f} CPU s, roomctl room {ours['cpu_s']:.3f} CPU s")
    print(f"worker wake-ups while holding steady for {STEADY[1] - STEADY[0]:g} s: {ours['steady_wakeups']:g}")
    print(
        json.dumps(
            {
                "cpu_ratio_vs_bare_libvlc": round(ratio, 3),
                "fade_steps_per_s": round(ours["fade_steps_per_s"], 1),
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
