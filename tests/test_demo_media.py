"""The demo room's synthesized music: present, whole, gentle, made once."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from roomctl.demo_media import (
    DEMO_ARTIST,
    DEMO_PLAYLISTS,
    DEMO_TRACKS,
    RATE,
    TRACK_S,
    demo_playlists,
    ensure_demo_media,
)
from roomctl.drivers.vlc import vlc_available
from roomctl.playlists import FolderPlaylist, resolve

BUNDLED_PRESET_PLAYLISTS = {"arrival", "dosing", "journey", "deep", "return", "integration"}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    data_dir = tmp_path_factory.mktemp("data")
    started = time.monotonic()
    ensure_demo_media(data_dir)
    return data_dir, time.monotonic() - started


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


def test_every_bundled_playlist_has_two_tracks(made: tuple[Path, float]) -> None:
    data_dir, _ = made
    specs = demo_playlists(data_dir, generate=False)
    assert set(specs) == set(DEMO_PLAYLISTS) == BUNDLED_PRESET_PLAYLISTS
    for name, spec in specs.items():
        assert isinstance(spec, FolderPlaylist)
        files = resolve(spec)
        assert [Path(f).name for f in files] == [t.filename for t in DEMO_TRACKS if t.playlist == name]


def test_generation_is_quick(made: tuple[Path, float]) -> None:
    _, seconds = made
    assert seconds < 15.0


def test_tracks_are_about_two_minutes_and_not_silent(made: tuple[Path, float]) -> None:
    data_dir, _ = made
    total_bytes = 0
    for track in DEMO_TRACKS:
        path = data_dir / "demo-media" / track.playlist / track.filename
        total_bytes += path.stat().st_size
        x = read(path)
        assert len(x) / RATE == pytest.approx(TRACK_S, abs=0.01)
        rms_dbfs = 20 * np.log10(np.sqrt(np.mean(x**2)))
        assert -26 < rms_dbfs < -14, track.title
        assert np.max(np.abs(x)) < 0.9, track.title
        # Every 10 s stretch past the fade-in has sound: no dropouts inside a track.
        middle = x[int(5 * RATE) : int((TRACK_S - 7) * RATE)]
        stretches = middle[: len(middle) // (10 * RATE) * 10 * RATE].reshape(-1, 10 * RATE)
        assert np.all(np.sqrt(np.mean(stretches**2, axis=1)) > 0.01), track.title
    assert total_bytes < 80 * 2**20


def test_no_clicks_at_the_ends_or_inside(made: tuple[Path, float]) -> None:
    data_dir, _ = made
    for track in DEMO_TRACKS:
        x = read(data_dir / "demo-media" / track.playlist / track.filename)
        ten_ms = RATE // 100
        assert np.max(np.abs(x[:ten_ms])) < 10 ** (-60 / 20), track.title
        assert np.max(np.abs(x[-ten_ms:])) < 10 ** (-60 / 20), track.title
        # The ends rise and fall slowly: the first and last half second stay quiet.
        assert np.max(np.abs(x[: RATE // 2])) < 0.02, track.title
        assert np.max(np.abs(x[-RATE // 2 :])) < 0.02, track.title
        # A click is a jump in slope; soft pads and bells never bend this sharply.
        assert np.max(np.abs(np.diff(x, 2))) < 0.06, track.title


def test_playlists_have_their_own_character(made: tuple[Path, float]) -> None:
    data_dir, _ = made
    centroids: dict[str, float] = {}
    for name in DEMO_PLAYLISTS:
        track = next(t for t in DEMO_TRACKS if t.playlist == name)
        x = read(data_dir / "demo-media" / name / track.filename)[: 30 * RATE]
        spectrum = np.abs(np.fft.rfft(x))
        freqs = np.fft.rfftfreq(len(x), 1 / RATE)
        centroids[name] = float(np.sum(spectrum * freqs) / np.sum(spectrum))
    assert centroids["deep"] < centroids["journey"] < centroids["arrival"]
    assert len({round(c, -1) for c in centroids.values()}) == len(DEMO_PLAYLISTS)


def test_second_run_keeps_the_files(made: tuple[Path, float]) -> None:
    data_dir, _ = made
    files = sorted((data_dir / "demo-media").rglob("*.wav"))
    before = {f: f.stat().st_mtime_ns for f in files}
    started = time.monotonic()
    ensure_demo_media(data_dir)
    assert time.monotonic() - started < 0.5
    assert {f: f.stat().st_mtime_ns for f in files} == before


def test_a_damaged_playlist_is_made_again(tmp_path: Path) -> None:
    root = ensure_demo_media(tmp_path, track_s=20.0)
    damaged = root / "deep" / next(t.filename for t in DEMO_TRACKS if t.playlist == "deep")
    damaged.write_bytes(damaged.read_bytes()[:1000])
    untouched = root / "journey" / next(t.filename for t in DEMO_TRACKS if t.playlist == "journey")
    mtime = untouched.stat().st_mtime_ns
    ensure_demo_media(tmp_path, track_s=20.0)
    assert len(read(damaged)) == 20 * RATE
    assert untouched.stat().st_mtime_ns == mtime


def test_libvlc_reads_title_and_artist(made: tuple[Path, float]) -> None:
    ok, reason = vlc_available()
    assert ok, reason
    import vlc

    data_dir, _ = made
    instance = vlc.Instance(["--quiet", "--no-video"])
    try:
        for track in DEMO_TRACKS[:4]:
            media = instance.media_new_path(str(data_dir / "demo-media" / track.playlist / track.filename))
            media.parse_with_options(vlc.MediaParseFlag.local, 5000)
            deadline = time.monotonic() + 5
            while media.get_parsed_status() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert media.get_parsed_status() == vlc.MediaParsedStatus.done
            assert media.get_meta(vlc.Meta.Title) == track.title
            assert media.get_meta(vlc.Meta.Artist) == DEMO_ARTIST
            assert media.get_duration() == pytest.approx(TRACK_S * 1000, abs=50)
            media.release()
    finally:
        instance.release()
