"""The libvlc driver, measured on the PCM that libvlc really outputs.

Every test plays steady sine tones generated into tmp_path through real libvlc, captures
the room's output with every gain applied (`PcmCapture` in place of the sink) and checks
the RMS of 50 ms windows as the room would hear them. A full-scale-0.5 sine has an RMS of
0.354; at volume v% the room scales it by `volume_gain` ((v/100)^2). These rooms play
tracks as they are (no loudness normalisation: tests/test_music.py covers that).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import threading
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from roomctl.curves import Shape, shaped, volume_gain
from roomctl.drivers.vlc import VlcAudio, choose_output, vlc_available
from roomctl.playlists import FilesPlaylist, PlaylistSpec, StreamPlaylist
from roomctl.room import MusicTarget
from testkit.pcm import PcmCapture, dominant_hz, longest_run

AMPLITUDE = 0.5
FULL_RMS = AMPLITUDE / math.sqrt(2)
NEAR_SILENCE = 0.01  # -40 dBFS
SILENCE = 0.001  # -60 dBFS
WINDOW_S = 0.05

RoomFactory = Callable[..., VlcAudio]


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the test tones as a stream without logging every request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def level(volume: float) -> float:
    """The RMS libvlc should output for a test tone at ``volume`` percent."""
    return FULL_RMS * volume_gain(volume)


def tone(path: Path, hz: float, seconds: float, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = np.round(AMPLITUDE * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def files(*paths: Path) -> FilesPlaylist:
    return FilesPlaylist(files=paths)


async def heard_at(cap: PcmCapture, volume: float, timeout_s: float = 4.0) -> None:
    """Wait until the room has been heard at ``volume`` for the last 200 ms."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.monotonic()
        x = cap.signal(now - 0.2, now)
        if abs(float(np.sqrt(np.mean(x**2))) - level(volume)) < 0.03 * level(volume):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never heard at volume {volume}")


async def heard_tone(cap: PcmCapture, hz: float, volume: float, timeout_s: float = 4.0) -> float:
    """Wait until ``hz`` alone has been heard at ``volume`` for 300 ms; returns when."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.monotonic()
        x = cap.signal(now - 0.3, now)
        rms = float(np.sqrt(np.mean(x**2)))
        if abs(rms - level(volume)) < 0.03 * level(volume) and abs(dominant_hz(x, cap.rate) - hz) < 5:
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"never heard {hz} Hz alone at volume {volume}")


def assert_gradual(levels: np.ndarray, volume: float) -> None:
    """No 50 ms window differs from the one before by a quarter of the level or more."""
    jumps = np.abs(np.diff(levels))
    assert np.max(jumps, initial=0.0) < 0.25 * level(volume), f"a jump of {np.max(jumps):.3f}"


def assert_fades_to_silence(levels: np.ndarray, volume: float) -> None:
    """The sound goes quiet before it stops: nothing is cut off mid-fade."""
    silent = levels < SILENCE
    assert silent[-1], "it never went silent"
    last_sound = len(silent) - int(np.argmin(silent[::-1]))  # first window of the final silence
    assert last_sound > 0, "it was silent all along"
    # Two windows: a cut inside a window only dilutes it.
    before = levels[max(0, last_sound - 2) : last_sound]
    assert np.max(before) < 0.05 * level(volume), "the fade was cut off before it ended"


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tones")
    corrupt = d / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 4)
    return {
        "a440": tone(d / "a440.wav", 440, 8.0),
        "b330": tone(d / "b330.wav", 330, 8.0),
        "short550": tone(d / "short550.wav", 550, 2.0),
        "good1": tone(d / "good1.wav", 440, 2.0),
        "good2": tone(d / "good2.wav", 660, 5.0),
        "corrupt": corrupt,
        "missing": d / "missing.wav",
    }


@pytest.fixture(scope="module")
def rooms() -> Iterator[list[VlcAudio]]:
    """Every room the tests made; closed together at the end (closing fades out, which
    would otherwise add a second to each test)."""
    made: list[VlcAudio] = []
    yield made

    async def close_all() -> None:
        await asyncio.gather(*(room.close() for room in made))

    asyncio.run(close_all())
    assert all(not room.health().ok for room in made)


@pytest.fixture
async def make_room(rooms: list[VlcAudio]) -> AsyncIterator[RoomFactory]:
    ok, reason = vlc_available()
    assert ok, f"libvlc is needed for these tests (run `make setup`): {reason}"
    mine: list[VlcAudio] = []

    def make(playlists: Mapping[str, PlaylistSpec], capture: PcmCapture, **kwargs: object) -> VlcAudio:
        options: dict[str, object] = {"normalise": False, "unmeasured_gain": 0.0, **kwargs}
        room = VlcAudio(playlists, output_hook=capture, close_fade_s=0.5, **options)  # type: ignore[arg-type]
        rooms.append(room)
        mine.append(room)
        return room

    yield make
    for room in mine:
        await room.apply(MusicTarget(None, volume=0, crossfade_s=0.5))


def test_libvlc_is_available() -> None:
    ok, reason = vlc_available()
    assert ok, reason
    assert reason.startswith("libvlc 3.")


def test_curves() -> None:
    assert shaped(Shape.LINEAR, 0, 80, 0.5) == pytest.approx(40)
    assert shaped(Shape.LINEAR, 80, 20, 1.5) == pytest.approx(20)
    # The two sides of a crossfade keep the summed power within 3 dB.
    for x in np.linspace(0, 1, 21):
        out_gain = volume_gain(shaped(Shape.EQUAL_GAIN, 70, 0, x))
        in_gain = volume_gain(shaped(Shape.EQUAL_GAIN, 0, 70, x))
        power_db = 10 * math.log10((out_gain**2 + in_gain**2) / volume_gain(70) ** 2)
        assert -3.02 < power_db <= 0.001


def test_headless_machine_falls_back_and_says_so() -> None:
    headless = choose_output(None, None, pulse=False, alsa=False)
    assert headless.aout == "adummy" and headless.silent
    assert headless.note is not None and "no audio output" in headless.note
    assert choose_output(None, "hw:1", pulse=True, alsa=False).aout == "pulse"
    assert choose_output(None, "hw:1", pulse=False, alsa=True).aout == "alsa"
    odd = choose_output("jack", None, pulse=True, alsa=False)
    assert odd.aout == "pulse" and odd.note is not None and "'jack' is not supported" in odd.note
    assert choose_output("alsa", "hw:1", pulse=False, alsa=False).device == "hw:1"


async def test_start_is_near_silent_for_the_first_100ms(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"])}, cap)
    t0 = time.monotonic()
    await room.apply(MusicTarget("a", volume=80, fade_in_s=1.0))
    await asyncio.sleep(1.0)
    covered = cap.covered()
    assert covered is not None and covered[0] < t0 + 0.5, "the music took too long to start"
    # The first 100 ms that libvlc put out: where the start blip would be.
    first = cap.signal(covered[0], covered[0] + 0.1)
    rms = float(np.sqrt(np.mean(first**2)))
    assert rms < NEAR_SILENCE
    assert rms < 0.05 * level(80)


async def test_fade_in_rises_steadily_to_its_level(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"])}, cap)
    t0 = time.monotonic()
    await room.apply(MusicTarget("a", volume=80, fade_in_s=1.5))
    await asyncio.sleep(3.2)
    _, levels = cap.rms(t0, t0 + 3.2, WINDOW_S)
    target = level(80)
    rising = int(np.argmax(levels > NEAR_SILENCE))
    assert np.all(levels[:rising] < NEAR_SILENCE)
    steps = np.diff(levels[rising:])
    assert np.all(steps > -max(0.005, 0.03 * target)), "the fade-in dipped"
    assert np.max(steps) < 0.25 * target, "the fade-in jumped"
    reached = rising + int(np.argmax(levels[rising:] > 0.95 * target))
    assert (reached - rising) * WINDOW_S > 0.4, "the fade-in was too fast"
    assert np.mean(levels[-10:]) == pytest.approx(target, rel=0.05)
    assert room.snapshot().volume == 80
    steps_per_s = room.fade_steps_per_s()
    # The output follows each ramp sample by sample; the worker steps it only to know where
    # it is, about 20 times a second (fewer on a loaded machine).
    assert steps_per_s is not None and steps_per_s >= 8
    # Holding steady, the worker sleeps: no ticking while nothing fades.
    before = room.wakeups
    await asyncio.sleep(0.6)
    assert room.wakeups - before <= 1


async def test_crossfade_has_no_gap_and_ends_at_the_new_level(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"]), "b": files(tones["b330"])}, cap)
    await room.apply(MusicTarget("a", volume=70, fade_in_s=0.5))
    await heard_at(cap, 70)
    t1 = time.monotonic()
    await room.apply(MusicTarget("b", volume=90, crossfade_s=1.5))
    t2 = await heard_tone(cap, 330, 90)
    assert t2 - t1 > 1.5, "the crossfade was too quick"
    _, levels = cap.rms(t1, t2, WINDOW_S)
    assert np.min(levels) > 0.5 * level(70), "the crossfade dipped towards silence"
    assert np.max(levels) < 1.1 * level(90)
    assert np.mean(levels[-6:]) == pytest.approx(level(90), rel=0.05)
    assert dominant_hz(cap.signal(t1 - 0.5, t1), cap.rate) == pytest.approx(440, abs=5)
    assert dominant_hz(cap.signal(t2 - 0.3, t2), cap.rate) == pytest.approx(330, abs=5)
    snap = room.snapshot()
    assert snap.playlist == "b" and snap.volume == 90 and snap.playing
    assert snap.now_playing is not None and snap.now_playing.file == str(tones["b330"])


async def test_volume_cap_holds_when_more_is_asked(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"])}, cap, max_volume=50)
    t0 = time.monotonic()
    await room.apply(MusicTarget("a", volume=95, fade_in_s=0.5))
    await heard_at(cap, 50)
    await room.apply(MusicTarget("a", volume=100, ramp_s=0.5))
    await asyncio.sleep(1.2)
    _, levels = cap.rms(t0, time.monotonic(), WINDOW_S)
    assert np.max(levels) < 1.02 * level(50)
    assert np.mean(levels[-6:]) == pytest.approx(level(50), rel=0.05)
    assert room.snapshot().volume == 50


async def test_broken_files_are_skipped_without_a_long_silence(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    playlist = files(tones["good1"], tones["missing"], tones["corrupt"], tones["good2"])
    room = make_room({"deep": playlist}, cap)
    t0 = time.monotonic()
    await room.apply(MusicTarget("deep", volume=80, fade_in_s=0.5))
    end = await heard_tone(cap, 660, 80, timeout_s=6.0)  # the good file after the broken ones
    _, levels = cap.rms(t0, end, WINDOW_S)
    heard = np.nonzero(levels > NEAR_SILENCE)[0]
    between = levels[heard[0] : heard[-1]]
    assert longest_run(between < SILENCE) * WINDOW_S < 1.0, "the music stopped for a second or more"
    problems = room.snapshot().problems
    assert any("missing.wav" in p for p in problems)
    assert any("corrupt.wav" in p for p in problems)
    health = room.health()
    assert health.ok and health.detail is not None and "corrupt.wav" in health.detail


async def test_pause_fades_out_and_resume_fades_back(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"])}, cap, pause_fade_s=0.8)
    await room.apply(MusicTarget("a", volume=80, fade_in_s=0.5))
    await heard_at(cap, 80)
    tp = time.monotonic()
    now_playing = room.snapshot().now_playing
    assert now_playing is not None
    at_pause = now_playing.position_s
    await room.apply(MusicTarget("a", volume=80, playing=False))
    await asyncio.sleep(2.0)
    tr = time.monotonic()
    assert not room.snapshot().playing
    await room.apply(MusicTarget("a", volume=80, playing=True))
    te = await heard_tone(cap, 440, 80)
    _, fading = cap.rms(tp, tp + 1.5, WINDOW_S)
    assert np.all(np.diff(fading) < 0.03 * level(80)), "it rose while pausing"
    assert_gradual(fading, 80)
    assert np.sum(fading > 0.5 * level(80)) * WINDOW_S > 0.15, "the pause cut the music short"
    _, paused = cap.rms(tp + 1.5, tr, WINDOW_S)
    assert np.all(paused < SILENCE)
    _, until_resume = cap.rms(tp, tr, WINDOW_S)
    assert_fades_to_silence(until_resume, 80)
    _, resumed = cap.rms(tr, te, WINDOW_S)
    assert_gradual(resumed, 80)
    snap = room.snapshot()
    assert snap.playing and snap.now_playing is not None
    # It carried on from where it paused rather than starting the track again.
    assert at_pause + 0.5 < snap.now_playing.position_s < at_pause + 3.5


async def test_a_short_playlist_loops(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"dosing": files(tones["short550"])}, cap, track_crossfade_s=0.0)
    t0 = time.monotonic()
    await room.apply(MusicTarget("dosing", volume=80, fade_in_s=0.5))
    await heard_at(cap, 80)
    positions = []
    for _ in range(25):
        await asyncio.sleep(0.2)
        now_playing = room.snapshot().now_playing
        assert now_playing is not None
        positions.append(now_playing.position_s)
    wraps = sum(1 for a, b in itertools.pairwise(positions) if b < a)
    assert wraps >= 2, f"the 2 s track did not loop: {positions}"
    _, levels = cap.rms(t0, time.monotonic(), WINDOW_S)
    full = np.nonzero(levels > 0.97 * level(80))[0]
    assert longest_run(levels[full[0] :] < 0.9 * level(80)) == 0, "the loop dipped"
    assert room.snapshot().playing and room.snapshot().problems == ()


async def test_skip_next_and_previous_crossfade(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"j": files(tones["a440"], tones["b330"])}, cap, skip_crossfade_s=1.0)
    await room.apply(MusicTarget("j", volume=80, fade_in_s=0.5))
    t1 = await heard_tone(cap, 440, 80)
    await room.skip("next")
    await heard_tone(cap, 330, 80)
    await room.skip("previous")
    t2 = await heard_tone(cap, 440, 80)
    _, levels = cap.rms(t1, t2, WINDOW_S)
    assert np.min(levels) > 0.5 * level(80)
    assert_gradual(levels, 80)
    assert room.snapshot().now_playing is not None


async def test_stop_fades_out_then_silence(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"])}, cap)
    await room.apply(MusicTarget("a", volume=80, fade_in_s=0.5))
    await heard_at(cap, 80)
    ts = time.monotonic()
    await room.apply(MusicTarget(None, volume=80, crossfade_s=1.0))
    await asyncio.sleep(2.2)
    _, levels = cap.rms(ts, time.monotonic(), WINDOW_S)
    assert np.all(np.diff(levels) < 0.03 * level(80)), "it rose while stopping"
    assert_gradual(levels, 80)
    assert np.sum(levels > 0.5 * level(80)) * WINDOW_S > 0.25, "it faded too quickly"
    assert np.all(levels[-10:] < SILENCE)
    assert_fades_to_silence(levels, 80)
    snap = room.snapshot()
    assert snap.playlist is None and not snap.playing and snap.volume == 0


async def test_preflight_reports_unknown_and_missing(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    room = make_room({"deep": files(tones["good1"], tones["missing"])}, PcmCapture())
    deep, other = await room.preflight(["deep", "journey"])
    assert (deep.name, deep.playable) == ("deep", 1)
    assert deep.problems == (f"missing file {tones['missing']}",)
    assert (other.name, other.playable, other.ok) == ("journey", 0, False)
    assert other.problems == ("playlist 'journey' is not in this room's config",)


async def test_stream_plays_and_bad_changes_keep_the_music(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    handler = functools.partial(QuietHandler, directory=str(tones["a440"].parent))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        cap = PcmCapture()
        room = make_room(
            {
                "radio": StreamPlaylist(url=f"http://127.0.0.1:{port}/{tones['a440'].name}"),
                "gone": StreamPlaylist(url=f"http://127.0.0.1:{port}/gone.mp3"),
            },
            cap,
        )
        await room.apply(MusicTarget("radio", volume=60, fade_in_s=0.5))
        await heard_tone(cap, 440, 60, timeout_s=6.0)
        await room.apply(MusicTarget("nope", volume=60))
        await room.apply(MusicTarget("gone", volume=60, crossfade_s=1.0))
        await asyncio.sleep(0.8)
        now = time.monotonic()
        assert dominant_hz(cap.signal(now - 0.3, now), cap.rate) == pytest.approx(440, abs=5)
        snap = room.snapshot()
        assert snap.playlist == "radio" and snap.playing
        assert "playlist 'nope' is not in this room's config" in snap.problems
        health = room.health()
        assert not health.ok and health.detail is not None
        assert "nothing in playlist 'gone' could be played; still playing" in health.detail
        assert "from 'radio'" in health.detail
        server.shutdown()


async def test_rapid_changes_settle_smoothly(make_room: RoomFactory, tones: dict[str, Path]) -> None:
    """Changes faster than the fades: every one is honoured, none jumps, the last one wins."""
    cap = PcmCapture()
    room = make_room({"a": files(tones["a440"]), "b": files(tones["b330"]), "c": files(tones["good2"])}, cap)
    await room.apply(MusicTarget("a", volume=80, fade_in_s=0.5))
    t0 = await heard_tone(cap, 440, 80)
    steps: list[tuple[MusicTarget | str, float]] = [
        (MusicTarget("b", volume=80, crossfade_s=2.0), 0.3),
        (MusicTarget("c", volume=80, crossfade_s=2.0), 0.5),
        (MusicTarget("a", volume=80, crossfade_s=1.5), 0.4),
        ("next", 0.3),
        (MusicTarget("a", volume=80, playing=False), 0.4),
        (MusicTarget("a", volume=80, playing=True), 0.2),
        (MusicTarget("c", volume=60, crossfade_s=1.0), 0.0),
    ]
    for step, pause_s in steps:
        if isinstance(step, str):
            await room.skip("next")
        else:
            await room.apply(step)
        await asyncio.sleep(pause_s)
    t1 = await heard_tone(cap, 660, 60, timeout_s=6.0)
    _, levels = cap.rms(t0, t1, WINDOW_S)
    jumps = np.abs(np.diff(levels))
    assert np.max(jumps) < 0.4 * level(80), "a change jumped instead of fading"
    snap = room.snapshot()
    assert snap.playlist == "c" and snap.volume == 60 and snap.playing
    assert not any("error" in p for p in snap.problems)
    assert room.health().ok
