"""The real output path: what reaches a PulseAudio sink, not only what the room computes.

The test starts a private PulseAudio server with a null sink (`testkit.pulse`; installed by
scripts/install-system-deps), points the room's output at it (PULSE_SERVER) and records the
sink's monitor: every sample that would have reached the speakers. Before the room mixed
its decks itself, 18 of 18 starts here began with 40-90 ms at full level, past the cap.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from roomctl.curves import volume_gain
from roomctl.drivers.vlc import VlcAudio, vlc_available
from roomctl.playlists import FilesPlaylist
from roomctl.room import MusicTarget
from testkit.media import tone
from testkit.pulse import PulseServer, Recorder

AMPLITUDE = 0.5
CAP = 30.0
CAPPED_PEAK = AMPLITUDE * volume_gain(CAP)


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseServer]:
    ok, reason = vlc_available()
    assert ok, f"libvlc is needed for these tests (run `make setup`): {reason}"
    with PulseServer() as server:
        for key, value in server.env().items():
            if key in ("PULSE_SERVER", "XDG_RUNTIME_DIR"):
                monkeypatch.setenv(key, value)
        yield server


def peak(rec: Recorder, start: float, end: float) -> float:
    x = rec.frames(start, end)
    return float(np.max(np.abs(x))) if len(x) else 0.0


async def heard(rec: Recorder, minimum: float, timeout_s: float) -> float:
    """Wait until the sink has received at least ``minimum`` peak for 100 ms; returns when."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.monotonic()
        if peak(rec, now - 0.15, now - 0.05) >= minimum:
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing reached the sink at {minimum:.4f} or more")


async def test_every_start_begins_at_silence_and_the_cap_holds(pulse: PulseServer, tmp_path: Path) -> None:
    a = [tone(tmp_path / f"a{i}.wav", 440 + 40 * i, 2.5, amplitude=AMPLITUDE) for i in range(3)]
    b = [tone(tmp_path / f"b{i}.flac", 330 + 30 * i, 6.0, amplitude=AMPLITUDE) for i in range(2)]
    rec = pulse.record()
    room = VlcAudio({"a": FilesPlaylist(files=tuple(a)), "b": FilesPlaylist(files=tuple(b))}, max_volume=CAP,
                    aout="pulse", normalise=False, unmeasured_gain=0.0, track_crossfade_s=0.0, close_fade_s=0.5)
    try:
        await asyncio.sleep(0.5)
        assert room.health().ok, room.health().detail
        assert pulse.sink_inputs() == 1, "the room keeps one stream open"
        events: list[tuple[str, float, float]] = []  # (what, when, the most the ramp allows in 200 ms)
        t = time.monotonic()
        await room.apply(MusicTarget("a", volume=100, fade_in_s=2.0))
        # A linear fade of the percent: 200 ms into 2 s the volume is a tenth of the cap.
        events.append(("start", t, AMPLITUDE * volume_gain(CAP * 0.2 / 2.0) * 1.3 + 2e-3))
        await heard(rec, 0.95 * CAPPED_PEAK, 6.0)
        await asyncio.sleep(3.5)  # two track changes (gapless) pass
        events.append(("track changes", t + 2.5, CAPPED_PEAK * 1.02))
        events.append(("track changes", t + 5.0, CAPPED_PEAK * 1.02))
        t = time.monotonic()
        await room.apply(MusicTarget("b", volume=100, crossfade_s=2.0))
        events.append(("crossfade", t, CAPPED_PEAK * 1.02))
        await asyncio.sleep(3.0)
        t = time.monotonic()
        await room.skip("next")
        events.append(("skip", t, CAPPED_PEAK * 1.02))
        await asyncio.sleep(3.0)
        await room.apply(MusicTarget(None, volume=0, crossfade_s=1.0))
        await asyncio.sleep(1.5)
        t = time.monotonic()
        await room.apply(MusicTarget("a", volume=100, fade_in_s=0.5))
        events.append(("restart", t, AMPLITUDE * volume_gain(CAP * 0.2 / 0.5) * 1.3 + 2e-3))
        await asyncio.sleep(2.0)
        end = time.monotonic() - 0.2
        overall = peak(rec, events[0][1], end)
        assert 0.9 * CAPPED_PEAK < overall <= CAPPED_PEAK * 1.02, f"peak {overall:.4f}, the cap is {CAPPED_PEAK:.4f}"
        for what, at, most in events:
            # From the command on: the first 200 ms of sound after it (the start may come later).
            x = rec.frames(at, at + 3.0)
            env = np.max(np.abs(x), axis=1)
            if what in ("start", "restart"):
                onset = int(np.argmax(env > 1e-4))
                first = env[onset : onset + int(0.2 * rec.rate)]
            else:
                first = env[: int(0.2 * rec.rate)]
            loudest = float(np.max(first))
            assert loudest <= most, f"{what}: {loudest:.4f} in its first 200 ms (the ramp allows {most:.4f})"
    finally:
        await room.close()


async def test_a_killed_sound_server_is_reported_and_played_on_when_back(pulse: PulseServer, tmp_path: Path) -> None:
    track = tone(tmp_path / "long.wav", 440, 30.0, amplitude=AMPLITUDE)
    rec = pulse.record()
    room = VlcAudio({"a": FilesPlaylist(files=(track,))}, max_volume=CAP, aout="pulse", normalise=False,
                    unmeasured_gain=0.0, close_fade_s=0.5)
    try:
        await room.apply(MusicTarget("a", volume=100, fade_in_s=0.5))
        await heard(rec, 0.95 * CAPPED_PEAK, 6.0)
        assert room.health().ok
        pulse.kill()
        killed = time.monotonic()
        while room.health().ok:
            assert time.monotonic() - killed < 2.0, "the dead output was not noticed within 2 s"
            await asyncio.sleep(0.05)
        detail = room.health().detail or ""
        assert "PulseAudio" in detail, detail
        position = room.snapshot().now_playing
        await asyncio.sleep(1.0)
        pulse.start()
        rec = pulse.record()
        back = time.monotonic()
        while not room.health().ok:
            assert time.monotonic() - back < 5.0, "the output was not opened again"
            await asyncio.sleep(0.05)
        await heard(rec, 0.9 * CAPPED_PEAK, 5.0)
        await asyncio.sleep(0.6)
        now = time.monotonic()
        level = float(np.sqrt(np.mean(rec.signal(now - 0.4, now - 0.1) ** 2)))
        assert level == pytest.approx(CAPPED_PEAK / math.sqrt(2), rel=0.1)
        later = room.snapshot().now_playing
        assert position is not None and later is not None and later.position_s > position.position_s
    finally:
        await room.close()


async def test_a_bogus_device_is_reported_before_any_music(pulse: PulseServer, tmp_path: Path) -> None:
    room = VlcAudio({"a": FilesPlaylist(files=(tone(tmp_path / "t.wav", 440, 2.0),))}, aout="pulse",
                    device="no-such-sink", normalise=False)
    try:
        # The output thread tries to open the sink at once; its answer is in health.
        await asyncio.sleep(1.0)
        health = room.health()
        assert not health.ok and health.detail is not None and "no-such-sink" in health.detail
    finally:
        await room.close()
