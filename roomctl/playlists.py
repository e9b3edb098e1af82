"""Playlist names -> media, as the room config maps them.

A preset names its playlists ("journey", "return"); each room's config says what those
names mean on this machine, so one preset can be shared between clinics. In TOML::

    [rooms.audio.playlists]
    journey = { folder = "/srv/music/journey", shuffle = true, seed = 7 }
    arrival = { m3u = "/srv/music/arrival.m3u8" }
    deep = { files = ["/srv/music/a.flac", "/srv/music/b.flac"] }
    radio = { url = "http://radio.example/stream" }

Exactly one of ``folder``, ``m3u``, ``files`` or ``url`` says the kind. Relative paths are
taken relative to ``base_dir`` when one is passed to `parse_playlists` (the config file's
folder), else to the working directory.

`resolve` turns a spec into what can be played now (absolute paths or a URL); `report`
is the preflight: how many entries are playable and what is wrong with the rest.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from roomctl.room import PlaylistReport

AUDIO_EXTENSIONS = frozenset({".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac"})
STREAM_SCHEMES = frozenset({"http", "https", "rtsp", "rtmp", "mms", "mmsh", "udp", "rtp"})

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DIGITS_RE = re.compile(r"(\d+)")


def _absolute(path: Path, info: ValidationInfo) -> Path:
    path = path.expanduser()
    if path.is_absolute():
        return path
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    return Path(base) / path if base is not None else path.absolute()


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FolderPlaylist(_Spec):
    """Every audio file in a folder: in name order (numbers compared as numbers), or shuffled.
    With a ``seed`` the shuffle is the same every time, so a session can be repeated."""

    folder: Path
    shuffle: bool = False
    seed: int | None = None
    recursive: bool = False

    @field_validator("folder")
    @classmethod
    def _abs_folder(cls, v: Path, info: ValidationInfo) -> Path:
        return _absolute(v, info)


class M3uPlaylist(_Spec):
    """An .m3u/.m3u8 file; relative entries are resolved against the file's folder."""

    m3u: Path

    @field_validator("m3u")
    @classmethod
    def _abs_m3u(cls, v: Path, info: ValidationInfo) -> Path:
        return _absolute(v, info)


class FilesPlaylist(_Spec):
    """An explicit list of files, played in the order given."""

    files: tuple[Path, ...] = Field(min_length=1)

    @field_validator("files")
    @classmethod
    def _abs_files(cls, v: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        return tuple(_absolute(p, info) for p in v)


class StreamPlaylist(_Spec):
    """A network stream (internet radio, a local streaming server)."""

    url: str

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        scheme = urlparse(v).scheme.lower()
        if scheme not in STREAM_SCHEMES:
            allowed = ", ".join(sorted(STREAM_SCHEMES))
            raise ValueError(f"{v!r} is not a stream URL (schemes: {allowed})")
        return v


_TAGS: tuple[tuple[type[BaseModel], str], ...] = (
    (FolderPlaylist, "folder"),
    (M3uPlaylist, "m3u"),
    (FilesPlaylist, "files"),
    (StreamPlaylist, "url"),
)


def _spec_kind(value: Any) -> str | None:
    for model, tag in _TAGS:
        if isinstance(value, model):
            return tag
    if isinstance(value, Mapping):
        keys = [k for k in ("folder", "m3u", "files", "url") if k in value]
        return keys[0] if len(keys) == 1 else None
    return None


PlaylistSpec = Annotated[
    Annotated[FolderPlaylist, Tag("folder")]
    | Annotated[M3uPlaylist, Tag("m3u")]
    | Annotated[FilesPlaylist, Tag("files")]
    | Annotated[StreamPlaylist, Tag("url")],
    Discriminator(
        _spec_kind,
        custom_error_type="playlist_kind",
        custom_error_message="a playlist needs exactly one of: folder, m3u, files, url",
    ),
]

_PLAYLISTS_ADAPTER: TypeAdapter[dict[str, PlaylistSpec]] = TypeAdapter(dict[str, PlaylistSpec])


def parse_playlists(data: Mapping[str, object], *, base_dir: Path | None = None) -> dict[str, PlaylistSpec]:
    """Validate a ``[rooms.audio.playlists]`` table; relative paths become relative to
    ``base_dir``. Raises pydantic's ``ValidationError`` naming the playlist and field."""
    context = {"base_dir": base_dir} if base_dir is not None else None
    return _PLAYLISTS_ADAPTER.validate_python(dict(data), context=context)


def is_stream(entry: str) -> bool:
    """Whether a resolved entry is a URL rather than a file path."""
    return bool(_URL_RE.match(entry))


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in _DIGITS_RE.split(path.as_posix())
        if part
    )


def _readable_problem(path: Path, shown: str) -> str | None:
    if not path.exists():
        return f"missing file {shown}"
    if not path.is_file():
        return f"{shown} is not a file"
    if not os.access(path, os.R_OK):
        return f"cannot read {shown} (permission denied)"
    return None


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def _scan_folder(spec: FolderPlaylist) -> tuple[list[str], list[str]]:
    folder = spec.folder
    if not folder.is_dir():
        return [], [f"folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"]
    try:
        candidates = folder.rglob("*") if spec.recursive else folder.iterdir()
        found = [p for p in candidates if _is_audio(p) and not p.name.startswith(".") and p.is_file()]
    except OSError as exc:
        return [], [f"cannot read folder {folder}: {exc.strerror or exc}"]
    found.sort(key=lambda p: _natural_key(p.relative_to(folder)))
    entries: list[str] = []
    problems: list[str] = []
    for p in found:
        problem = _readable_problem(p, str(p.relative_to(folder)))
        if problem is None:
            entries.append(str(p))
        else:
            problems.append(problem)
    if not found:
        problems.append(f"folder {folder} has no audio files")
    if spec.shuffle:
        random.Random(spec.seed).shuffle(entries)
    return entries, problems


def _read_m3u(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Old .m3u files are often in the Windows code page; latin-1 never fails.
        return raw.decode("latin-1")


def _scan_m3u(spec: M3uPlaylist) -> tuple[list[str], list[str]]:
    path = spec.m3u
    if not path.is_file():
        return [], [f"playlist file {path} is missing" if not path.exists() else f"{path} is not a file"]
    try:
        text = _read_m3u(path)
    except OSError as exc:
        return [], [f"cannot read playlist file {path}: {exc.strerror or exc}"]
    entries: list[str] = []
    problems: list[str] = []
    listed = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        listed += 1
        if line.lower().startswith("file://"):
            line = unquote(urlparse(line).path)
        elif is_stream(line):
            entries.append(line)
            continue
        entry = Path(line)
        full = entry if entry.is_absolute() else path.parent / entry
        problem = _readable_problem(full, line)
        if problem is None and not _is_audio(full):
            problem = f"{line} is not an audio file"
        if problem is None:
            entries.append(str(full))
        else:
            problems.append(problem)
    if listed == 0:
        problems.append(f"playlist file {path} lists no entries")
    return entries, problems


def _scan_files(spec: FilesPlaylist) -> tuple[list[str], list[str]]:
    entries: list[str] = []
    problems: list[str] = []
    for p in spec.files:
        problem = _readable_problem(p, str(p))
        if problem is None and not _is_audio(p):
            problem = f"{p} is not an audio file"
        if problem is None:
            entries.append(str(p))
        else:
            problems.append(problem)
    return entries, problems


def scan(spec: PlaylistSpec) -> tuple[list[str], list[str]]:
    """(playable entries in play order, problems with the others)."""
    if isinstance(spec, FolderPlaylist):
        return _scan_folder(spec)
    if isinstance(spec, M3uPlaylist):
        return _scan_m3u(spec)
    if isinstance(spec, FilesPlaylist):
        return _scan_files(spec)
    return [spec.url], []


def resolve(spec: PlaylistSpec) -> list[str]:
    """The entries to play, in order: absolute file paths, or URLs. Missing or unreadable
    files are left out (`report` says which)."""
    return scan(spec)[0]


def report(name: str, spec: PlaylistSpec) -> PlaylistReport:
    """Preflight of one playlist: what can play and what is wrong. Streams are not
    contacted; they count as one playable entry."""
    entries, problems = scan(spec)
    return PlaylistReport(name=name, playable=len(entries), problems=tuple(problems))
