"""Music as a client hears it through a long session: no hole at a track change, at a loop
or across broken files; a track crossfade that keeps the power up; every track brought to
the room's loudness, the cap and the true-peak ceiling holding.

Real libvlc plays media the test makes in several formats, rates and channel counts
(`testkit.media`, PyAV); the room's output is captured sample by sample (`PcmCapture`, in
the sink's place). A gap is any run of 10 ms windows below -50 dBFS: digital zero and
-60 dBFS noise alike (`test_the_gap_meter_sees_both_kinds_of_silence` checks the meter).
"""

from __future__ import annotations

import asyncio
import math
import time
import wave
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from roomctl.curves import volume_gain
from roomctl.drivers.tracks import measure
from roomctl.drivers.vlc import VlcAudio, vlc_available
from roomctl.playlists import FilesPlaylist, PlaylistSpec
from roomctl.room import MusicTarget
from testkit.media import silence, tone, write
from testkit.pcm import PcmCapture, longest_run, rms_windows

GAP_DBFS = -50.0
GAP_WINDOW_S = 0.01
MAX_GAP_S = 0.05

RoomFactory = Callable[..., VlcAudio]
FORMATS = ((".wav", 22050, 1), (".flac", 44100, 2), (".ogg", 48000, 1), (".opus", 48000, 2), (".mp3", 44100, 2),
           (".m4a", 22050, 1))


def longest_gap_s(x: np.ndarray, rate: int) -> float:
    _, levels = rms_windows(x, rate, 0.0, GAP_WINDOW_S)
    return longest_run(levels < 10 ** (GAP_DBFS / 20)) * GAP_WINDOW_S


def heard_span(cap: PcmCapture, start: float, end: float) -> np.ndarray:
    """The capture from the first window at full level to ``end``."""
    x = cap.signal(start, end)
    _, levels = rms_windows(x, cap.rate, 0.0, GAP_WINDOW_S)
    first = int(np.argmax(levels > 0.5 * np.max(levels)))
    return x[int(first * GAP_WINDOW_S * cap.rate) :]


def lufs_of(cap: PcmCapture, start: float, end: float, path: Path) -> float:
    """The loudness of what the room played, by the same BS.1770 meter, from a WAV of it."""
    x = cap.signal(start, end)
    frames = np.round(np.clip(np.repeat(x[:, None], 2, axis=1), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(cap.rate)
        w.writeframes(frames.tobytes())
    return measure(str(path)).lufs


@pytest.fixture
async def make_room() -> AsyncIterator[RoomFactory]:
    ok, reason = vlc_available()
    assert ok, f"libvlc is needed for these tests (run `make setup`): {reason}"
    made: list[VlcAudio] = []

    def make(playlists: Mapping[str, PlaylistSpec], capture: PcmCapture, **kwargs: object) -> VlcAudio:
        room = VlcAudio(playlists, output_hook=capture, close_fade_s=0.5, **kwargs)  # type: ignore[arg-type]
        made.append(room)
        return room

    yield make
    await asyncio.gather(*(room.close() for room in made))


async def checked(room: VlcAudio, paths: list[Path], timeout_s: float = 30.0, *, measured: bool = False) -> None:
    """Wait until the room has probed every file (and, with ``measured``, found its loudness)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [room.tracks.state(str(p)) for p in paths]
        if all(s is not None and s.checked and (s.loudness is not None or not measured) for s in states):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the files were never checked")


def test_the_gap_meter_sees_both_kinds_of_silence(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(rate) / rate
    music = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    hole = int(0.06 * rate)
    zero = np.concatenate([music, np.zeros(hole, np.float32), music])
    noise = np.concatenate([music, np.random.default_rng(1).normal(0, 1e-3, hole).astype(np.float32), music])
    assert longest_gap_s(zero, rate) >= MAX_GAP_S
    assert longest_gap_s(noise, rate) >= MAX_GAP_S
    assert longest_gap_s(np.concatenate([music, music]), rate) < MAX_GAP_S
    # And the files the test makes hold what they say: measured silence, measured tone.
    quiet = silence(tmp_path / "quiet.flac", 1.0, dbfs=-60)
    assert measure(str(tone(tmp_path / "ref.wav", 997, 2.0, amplitude=0.1))).lufs == pytest.approx(-20, abs=0.2)
    assert measure(str(quiet)).lufs < -50  # white noise at -60 dBFS: K-weighting lifts its highs


async def test_no_gap_at_track_changes_or_loops_in_any_format(make_room: RoomFactory, tmp_path: Path) -> None:
    paths = [tone(tmp_path / f"t{i}{suffix}", 330 + 110 * i, 2.0, rate=rate, channels=channels, amplitude=0.3)
             for i, (suffix, rate, channels) in enumerate(FORMATS)]
    cap = PcmCapture()
    room = make_room({"album": FilesPlaylist(files=tuple(paths))}, cap, track_crossfade_s=0.0, normalise=False,
                     unmeasured_gain=0.0)
    await checked(room, paths)
    t0 = time.monotonic()
    await room.apply(MusicTarget("album", volume=80, fade_in_s=0.5))
    await asyncio.sleep(2.0 * len(paths) + 3.0)  # every format, the loop point, and into the second round
    x = heard_span(cap, t0, time.monotonic() - 0.2)
    assert len(x) > cap.rate * 2.0 * len(paths), "the music did not play through"
    gap = longest_gap_s(x, cap.rate)
    assert gap < MAX_GAP_S, f"a gap of {gap * 1000:.0f} ms"
    assert room.health().ok and room.snapshot().problems == ()


async def test_broken_files_between_good_ones_cost_no_time(make_room: RoomFactory, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 4)
    not_audio = tmp_path / "notes.mp3"
    not_audio.write_text("the playlist for Tuesday\n" * 50)
    first = tone(tmp_path / "first.flac", 440, 2.5, amplitude=0.3)
    last = tone(tmp_path / "last.ogg", 660, 2.5, amplitude=0.3)
    missing = tmp_path / "deleted.wav"
    cap = PcmCapture()
    room = make_room({"d": FilesPlaylist(files=(first, corrupt, missing, not_audio, last))}, cap,
                     track_crossfade_s=0.0, normalise=False, unmeasured_gain=0.0)
    t0 = time.monotonic()
    await room.apply(MusicTarget("d", volume=80, fade_in_s=0.5))
    await asyncio.sleep(5.5)
    x = heard_span(cap, t0, time.monotonic() - 0.2)
    gap = longest_gap_s(x, cap.rate)
    assert gap < MAX_GAP_S, f"a gap of {gap * 1000:.0f} ms across the broken files"
    reports = await room.preflight(["d"])
    broken = " ".join(reports[0].broken) + " ".join(reports[0].problems)
    assert "corrupt.wav" in broken and "notes.mp3" in broken and "deleted.wav" in broken
    assert reports[0].playable == 2
    health = room.health()
    assert health.ok and health.detail is not None and "playing" in health.detail


async def test_a_list_that_starts_with_broken_files_starts_quickly(make_room: RoomFactory, tmp_path: Path) -> None:
    bad = [tmp_path / f"bad{i}.wav" for i in range(3)]
    for p in bad:
        p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    good = tone(tmp_path / "good.wav", 440, 3.0, amplitude=0.3)
    cap = PcmCapture()
    room = make_room({"d": FilesPlaylist(files=(*bad, good))}, cap, normalise=False, unmeasured_gain=0.0)
    t0 = time.monotonic()
    await room.apply(MusicTarget("d", volume=80, fade_in_s=0.5))
    await asyncio.sleep(2.5)
    covered = cap.covered()
    assert covered is not None and covered[0] - t0 < 1.5, "the first sound took too long"


async def test_track_crossfade_keeps_the_power_within_3db(make_room: RoomFactory, tmp_path: Path) -> None:
    a = tone(tmp_path / "a.flac", 440, 5.0, amplitude=0.3)
    b = tone(tmp_path / "b.flac", 587, 5.0, amplitude=0.3)
    cap = PcmCapture()
    room = make_room({"j": FilesPlaylist(files=(a, b))}, cap, track_crossfade_s=2.0, normalise=False,
                     unmeasured_gain=0.0)
    await checked(room, [a, b])
    t0 = time.monotonic()
    await room.apply(MusicTarget("j", volume=100, fade_in_s=0.5))
    await asyncio.sleep(8.0)
    _, levels = cap.rms(t0, time.monotonic() - 0.2, 0.05)
    steady = 0.3 / math.sqrt(2)
    full = np.nonzero(levels > 0.97 * steady)[0]
    span = levels[full[0] :]
    dip_db = 20 * math.log10(float(np.min(span)) / steady)
    assert dip_db > -3.3, f"the track crossfade dipped {dip_db:.1f} dB"
    assert float(np.max(span)) < 1.05 * steady, "the crossfade rose above the level"
    snap = room.snapshot()
    assert snap.playing and snap.now_playing is not None and room.health().ok


async def test_loudness_brings_tracks_to_the_target(make_room: RoomFactory, tmp_path: Path) -> None:
    loud = tone(tmp_path / "loud.mp3", 997, 4.0, amplitude=0.4)  # about -8 LUFS
    soft = tone(tmp_path / "soft.flac", 997, 4.0, rate=22050, channels=1, amplitude=0.1)  # about -20 LUFS
    assert measure(str(loud)).lufs - measure(str(soft)).lufs == pytest.approx(12, abs=0.7)
    cap = PcmCapture()
    room = make_room({"mix": FilesPlaylist(files=(loud, soft))}, cap, track_crossfade_s=0.0,
                     loudness_target=-18.0, loudness_cache=tmp_path / "cache.json")
    await checked(room, [loud, soft], measured=True)
    assert (await room.preflight(["mix"]))[0].measured == 2
    t0 = time.monotonic()
    await room.apply(MusicTarget("mix", volume=100, fade_in_s=0.5))
    await asyncio.sleep(8.3)
    # Each track's steady middle, as played.
    first = lufs_of(cap, t0 + 1.5, t0 + 3.5, tmp_path / "p1.wav")
    second = lufs_of(cap, t0 + 5.5, t0 + 7.5, tmp_path / "p2.wav")
    assert first == pytest.approx(-18, abs=1.0)
    assert second == pytest.approx(-18, abs=1.0)
    assert (tmp_path / "cache.json").exists()


async def test_cap_and_true_peak_ceiling_hold_after_normalising(make_room: RoomFactory, tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(4 * rate) / rate
    quiet = 0.02 * np.sin(2 * np.pi * 440 * t)  # about -37 LUFS: normalising wants +19 dB ...
    quiet[rate :: rate // 2] = 0.9  # ... but its clicks are near full scale
    spiky = write(tmp_path / "spiky.wav", np.repeat(quiet[:, None], 2, axis=1).astype(np.float32), rate)
    cap = PcmCapture()
    room = make_room({"s": FilesPlaylist(files=(spiky,))}, cap, true_peak_ceiling=-1.0,
                     loudness_cache=tmp_path / "cache.json")
    await checked(room, [spiky], measured=True)
    await room.apply(MusicTarget("s", volume=100, fade_in_s=0.5))
    await asyncio.sleep(4.0)
    ceiling = 10 ** (-1.0 / 20)
    assert 0.5 * ceiling < cap.peak <= ceiling * 1.01, f"peak {cap.peak:.3f}"
    capped = PcmCapture()
    room = make_room({"s": FilesPlaylist(files=(spiky,))}, capped, true_peak_ceiling=-1.0, max_volume=40,
                     loudness_cache=tmp_path / "cache.json")
    await checked(room, [spiky], measured=True)
    await room.apply(MusicTarget("s", volume=100, fade_in_s=0.5))
    await asyncio.sleep(3.0)
    assert 0 < capped.peak <= ceiling * volume_gain(40) * 1.01, f"peak {capped.peak:.3f} past the cap"


async def test_a_very_short_track_is_heard(make_room: RoomFactory, tmp_path: Path) -> None:
    blip = tone(tmp_path / "blip.wav", 440, 0.3, amplitude=0.3)
    cap = PcmCapture()
    room = make_room({"s": FilesPlaylist(files=(blip,))}, cap, track_crossfade_s=0.0, normalise=False,
                     unmeasured_gain=0.0)
    t0 = time.monotonic()
    await room.apply(MusicTarget("s", volume=80, fade_in_s=0.5))
    await asyncio.sleep(4.0)
    _, levels = cap.rms(t0 + 1.0, time.monotonic() - 0.2, 0.05)
    assert np.mean(levels > 0.01) > 0.5, "a 0.3 s track should be heard over and over"


async def test_health_says_what_plays_after_the_rest_of_a_playlist_is_deleted(make_room: RoomFactory,
                                                                              tmp_path: Path) -> None:
    a = tone(tmp_path / "a.wav", 440, 20.0, amplitude=0.3)
    b = tone(tmp_path / "b.wav", 550, 20.0, amplitude=0.3)
    cap = PcmCapture()
    room = make_room({"d": FilesPlaylist(files=(a, b))}, cap, normalise=False, unmeasured_gain=0.0)
    await room.apply(MusicTarget("d", volume=80, fade_in_s=0.5))
    await asyncio.sleep(1.5)
    a.unlink()
    b.unlink()
    await room.skip("next")
    await asyncio.sleep(2.0)
    health = room.health()
    assert not health.ok and health.detail is not None
    assert health.detail == "no other file of playlist 'd' can be played; 'a.wav' plays on", health.detail
    snap = room.snapshot()
    assert snap.playing and snap.now_playing is not None and snap.now_playing.file == str(a)


async def test_loudness_comes_from_tags_and_is_cached(tmp_path: Path) -> None:
    import logging

    import mutagen.flac

    from roomctl.drivers.tracks import TrackChecks, from_tags

    tagged = tone(tmp_path / "tagged.flac", 997, 3.0, amplitude=0.1)  # measures -20 LUFS
    flac = mutagen.flac.FLAC(str(tagged))  # type: ignore[no-untyped-call]  # mutagen leaves FLAC() unannotated
    flac["REPLAYGAIN_TRACK_GAIN"] = "+4.00 dB"  # a tagger found -22 LUFS (ReplayGain 2: -18 reference)
    flac["REPLAYGAIN_TRACK_PEAK"] = "0.100000"
    flac.save()
    plain = tone(tmp_path / "plain.ogg", 997, 3.0, amplitude=0.1)
    found = from_tags(str(tagged))
    assert found is not None and found.source == "tags" and found.lufs == pytest.approx(-22.0)
    assert from_tags(str(plain)) is None
    cache = tmp_path / "loudness-cache.json"
    checks = TrackChecks(cache, logging.getLogger("test"))
    try:
        checks.check([str(tagged), str(plain)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [checks.state(str(p)) for p in (tagged, plain)]
            if all(s is not None and s.loudness is not None for s in states) and cache.exists():
                break
            await asyncio.sleep(0.1)
        tagged_state, plain_state = checks.state(str(tagged)), checks.state(str(plain))
        assert tagged_state is not None and tagged_state.loudness is not None
        assert tagged_state.loudness.source == "tags" and tagged_state.loudness.lufs == pytest.approx(-22.0)
        assert plain_state is not None and plain_state.loudness is not None
        assert plain_state.loudness.source == "measured" and plain_state.loudness.lufs == pytest.approx(-20, abs=0.3)
    finally:
        checks.close()
    again = TrackChecks(cache, logging.getLogger("test"))
    try:
        again.check([str(plain)])
        known = again.state(str(plain))  # from the cache, at once: no decoding
        assert known is not None and known.loudness is not None and known.loudness.lufs == pytest.approx(-20, abs=0.3)
        plain.write_bytes(tone(tmp_path / "other.ogg", 997, 3.0, amplitude=0.3).read_bytes())  # changed on disk
        again.check([str(plain)])
        changed = again.state(str(plain))
        assert changed is None or changed.loudness is None or changed.loudness.lufs > -15, "a stale cache entry"
    finally:
        again.close()
