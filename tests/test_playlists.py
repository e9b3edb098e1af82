"""Playlist specs: TOML shape, resolution order, m3u parsing, preflight problems."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from roomctl.playlists import (
    FilesPlaylist,
    FolderPlaylist,
    M3uPlaylist,
    StreamPlaylist,
    parse_playlists,
    report,
    resolve,
)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "journey"
    for name in ["10 ten.mp3", "2 two.flac", "1 one.ogg", "b.WAV", "a.opus", "notes.txt", ".hidden.mp3"]:
        touch(folder / name)
    (folder / "sub").mkdir()
    touch(folder / "sub" / "deeper.m4a")
    return folder


def test_toml_shape_parses_into_each_kind(tmp_path: Path) -> None:
    table = tomllib.loads(
        """
        [rooms.audio.playlists]
        journey = { folder = "music/journey", shuffle = true, seed = 7 }
        arrival = { m3u = "lists/arrival.m3u8" }
        deep = { files = ["a.flac", "/abs/b.flac"] }
        radio = { url = "http://radio.example/stream" }
        """
    )["rooms"]["audio"]["playlists"]
    specs = parse_playlists(table, base_dir=tmp_path)
    assert specs["journey"] == FolderPlaylist(folder=tmp_path / "music/journey", shuffle=True, seed=7)
    assert specs["arrival"] == M3uPlaylist(m3u=tmp_path / "lists/arrival.m3u8")
    assert specs["deep"] == FilesPlaylist(files=(tmp_path / "a.flac", Path("/abs/b.flac")))
    assert specs["radio"] == StreamPlaylist(url="http://radio.example/stream")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "exactly one of: folder, m3u, files, url"),
        ({"folder": "a", "m3u": "b.m3u"}, "exactly one of"),
        ({"folder": "a", "shufle": True}, "Extra inputs are not permitted"),
        ({"url": "file:///srv/a.mp3"}, "not a stream URL"),
        ({"files": []}, "at least 1 item"),
    ],
)
def test_bad_entries_are_refused_with_a_clear_message(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_playlists({"journey": entry})
    assert message in str(excinfo.value)
    assert "journey" in str(excinfo.value)


def test_specs_are_frozen(music: Path) -> None:
    spec = FolderPlaylist(folder=music)
    with pytest.raises(ValidationError):
        spec.shuffle = True


def test_folder_is_sorted_naturally_and_skips_other_files(music: Path) -> None:
    names = [Path(p).name for p in resolve(FolderPlaylist(folder=music))]
    assert names == ["1 one.ogg", "2 two.flac", "10 ten.mp3", "a.opus", "b.WAV"]
    assert all(Path(p).is_absolute() for p in resolve(FolderPlaylist(folder=music)))


def test_folder_recursive_includes_subfolders(music: Path) -> None:
    names = [Path(p).name for p in resolve(FolderPlaylist(folder=music, recursive=True))]
    assert "deeper.m4a" in names and len(names) == 6


def test_shuffle_with_seed_is_deterministic_and_differs_by_seed(tmp_path: Path) -> None:
    for i in range(20):
        touch(tmp_path / f"{i:02d}.mp3")
    seven = resolve(FolderPlaylist(folder=tmp_path, shuffle=True, seed=7))
    assert seven == resolve(FolderPlaylist(folder=tmp_path, shuffle=True, seed=7))
    assert seven != resolve(FolderPlaylist(folder=tmp_path, shuffle=True, seed=8))
    assert seven != resolve(FolderPlaylist(folder=tmp_path))
    assert sorted(seven) == resolve(FolderPlaylist(folder=tmp_path))


def test_m3u_resolves_relative_entries_against_its_folder(tmp_path: Path) -> None:
    touch(tmp_path / "music" / "a.mp3")
    touch(tmp_path / "music" / "sub" / "b.flac")
    touch(tmp_path / "elsewhere" / "c.ogg")
    m3u = tmp_path / "music" / "list.m3u8"
    m3u.write_text(
        "\ufeff#EXTM3U\n"
        "#EXTINF:123,Artist - A\n"
        "a.mp3\n"
        "\n"
        "sub/b.flac\n"
        f"{tmp_path / 'elsewhere' / 'c.ogg'}\n"
        f"file://{tmp_path / 'music' / 'a.mp3'}\n"
        "http://radio.example/live\n",
        encoding="utf-8",
    )
    assert resolve(M3uPlaylist(m3u=m3u)) == [
        str(tmp_path / "music" / "a.mp3"),
        str(tmp_path / "music" / "sub" / "b.flac"),
        str(tmp_path / "elsewhere" / "c.ogg"),
        str(tmp_path / "music" / "a.mp3"),
        "http://radio.example/live",
    ]


def test_m3u_report_names_missing_files(tmp_path: Path) -> None:
    touch(tmp_path / "a.mp3")
    m3u = tmp_path / "list.m3u"
    m3u.write_text("#EXTM3U\na.mp3\ngone.mp3\nreadme.txt\n", encoding="latin-1")
    touch(tmp_path / "readme.txt")
    rep = report("arrival", M3uPlaylist(m3u=m3u))
    assert rep.name == "arrival"
    assert rep.playable == 1
    assert rep.ok
    assert rep.problems == ("missing file gone.mp3", "readme.txt is not an audio file")


def test_files_report_names_missing_files_and_keeps_order(tmp_path: Path) -> None:
    b = touch(tmp_path / "b.flac")
    a = touch(tmp_path / "a.flac")
    spec = FilesPlaylist(files=(b, tmp_path / "a.mp3", a))
    assert resolve(spec) == [str(b), str(a)]
    assert report("deep", spec).problems == (f"missing file {tmp_path / 'a.mp3'}",)


def test_empty_and_missing_folders_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    touch(tmp_path / "empty" / "cover.jpg")
    rep = report("journey", FolderPlaylist(folder=tmp_path / "empty"))
    assert not rep.ok
    assert rep.problems == (f"folder {tmp_path / 'empty'} has no audio files",)
    gone = report("journey", FolderPlaylist(folder=tmp_path / "gone"))
    assert gone.problems == (f"folder {tmp_path / 'gone'} does not exist",)
    missing_list = report("arrival", M3uPlaylist(m3u=tmp_path / "none.m3u"))
    assert missing_list.playable == 0
    assert missing_list.problems == (f"playlist file {tmp_path / 'none.m3u'} is missing",)


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = touch(tmp_path / "locked.mp3")
    real_access = os.access
    # Tests may run as root, who can read anything; pretend the permission bits hold.
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == f else real_access(p, mode))
    assert resolve(FilesPlaylist(files=(f,))) == []
    assert report("x", FilesPlaylist(files=(f,))).problems == (f"cannot read {f} (permission denied)",)


def test_stream_counts_as_playable_without_contacting_it() -> None:
    rep = report("radio", StreamPlaylist(url="https://radio.example/stream"))
    assert (rep.playable, rep.problems) == (1, ())
