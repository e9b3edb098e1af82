"""The service's settings file (TOML): rooms, their lights and audio, presets, data, safety.

See roomctl.example.toml for every key with a comment. A mistake stops start-up with a
message naming the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from roomctl.drivers.hue.tls import normalise_fingerprint
from roomctl.playlists import parse_playlists
from roomctl.preset import Kelvin, NonNegativeDuration, Percent
from roomctl.room import Safety

_STRICT = ConfigDict(frozen=True, extra="forbid")
BUNDLED_PRESETS = Path(__file__).resolve().parent / "presets"  # shipped inside the package


def default_data_dir() -> Path:
    """$ROOMCTL_DATA, else $XDG_DATA_HOME/roomctl, else ~/.local/share/roomctl."""
    if env := os.environ.get("ROOMCTL_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "roomctl"


class ConfigError(ValueError):
    pass


class LightsKind(StrEnum):
    SIMULATED = "simulated"
    HUE = "hue"


class AudioKind(StrEnum):
    SIMULATED = "simulated"
    VLC = "vlc"
    AUTO = "auto"  # vlc when libvlc loads, else simulated (and says so)


class LightsConfig(BaseModel):
    model_config = _STRICT

    kind: LightsKind = LightsKind.SIMULATED
    names: list[str] | None = None  # simulated: the bulbs' names
    bridge: str | None = None  # hue: host or host:port
    username: str | None = None  # hue: else looked up in [hue_bridges."HOST"]
    group: str | None = None  # hue: a group id (preferred)
    lights: list[str] | None = None  # hue: light ids (v2 also: light names)
    timeout: NonNegativeDuration = 2.0  # hue: per request
    outside_changes: Literal["restore", "follow"] = "restore"  # hue v2: a lamp changed elsewhere
    powerup: Literal["soft-warm", "unchanged"] = "unchanged"  # hue v2: after a power cut

    @model_validator(mode="after")
    def _hue_needs(self) -> LightsConfig:
        if self.kind is LightsKind.HUE:
            if not self.bridge:
                raise ValueError("bridge: a hue room needs the bridge's address")
            if not self.group and not self.lights:
                raise ValueError("group: a hue room needs a group id or a list of light ids")
            if self.group and self.lights:
                raise ValueError("lights: give a group or a list of light ids, not both")
        return self


class AudioConfig(BaseModel):
    model_config = _STRICT

    kind: AudioKind = AudioKind.AUTO
    output: str | None = None  # libvlc audio output module, e.g. "alsa", "pulse"
    device: str | None = None  # libvlc device id, e.g. a USB speaker
    max_volume: Percent | None = None  # else [safety].max_volume
    demo_media: bool = False  # play the generated demo playlists
    playlists: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Seconds two tracks of one playlist overlap, crossfading; 0: gapless (the next track's
    # first sample follows the last one's last).
    track_crossfade: Annotated[float, Field(ge=0, le=20)] = 3.0
    # Every track is brought to this integrated loudness (EBU R128 / ITU-R BS.1770, LUFS).
    loudness_target: Annotated[float, Field(ge=-40, le=-5)] = -18.0
    # ... but never so far up that its true peak passes this (dBTP).
    true_peak_ceiling: Annotated[float, Field(ge=-20, le=0)] = -1.0
    # The gain of a track whose loudness is not known yet (dB): safe, not loud.
    unmeasured_gain: Annotated[float, Field(ge=-30, le=0)] = -6.0
    loudness_normalise: bool = True  # false: every track plays as it is (at the unmeasured gain: 0 dB)


class RoomConfig(BaseModel):
    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=60)]
    lights: LightsConfig = Field(default_factory=LightsConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)

    @property
    def id(self) -> str:
        return room_id(self.name)


class SafetyConfig(BaseModel):
    model_config = _STRICT

    max_volume: Percent = 85.0
    emergency_brightness: Percent = 100.0
    emergency_color_temp: Kelvin = 4000
    emergency_fade: NonNegativeDuration = 3.0
    emergency_volume: Percent = 10.0
    release_fade: NonNegativeDuration = 20.0

    def to_safety(self, room_max_volume: float | None = None) -> Safety:
        return Safety(
            max_volume=min(self.max_volume, room_max_volume if room_max_volume is not None else 100.0),
            emergency_brightness=self.emergency_brightness,
            emergency_color_temp=self.emergency_color_temp,
            emergency_fade_s=self.emergency_fade,
            emergency_volume=self.emergency_volume,
            release_fade_s=self.release_fade,
        )


class TlsMode(StrEnum):
    AUTO = "auto"  # HTTPS when listening beyond loopback, plain HTTP on loopback (the demo)
    ON = "on"  # HTTPS always
    OFF = "off"  # plain HTTP; beyond loopback only with plain_http = true


class ListenConfig(BaseModel):
    model_config = _STRICT

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    tls: TlsMode = TlsMode.AUTO
    # The clinic's own certificate (PEM, with its chain) and key, instead of the local
    # certificate authority roomctl makes in <data_dir>/tls.
    cert_file: Path | None = None
    key_file: Path | None = None
    # Names and addresses the tablets use to reach roomctl, besides this machine's own name and
    # addresses (found at start). Requests for any other host are refused (DNS rebinding).
    hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:_\-]{1,253}$")]] = Field(default_factory=list)
    plain_http: bool = False  # serve plain HTTP on a LAN address anyway: tokens and notes readable on the network
    # Reverse proxies whose X-Forwarded-For is believed (their addresses). Without one, the
    # header is ignored: the PIN lockout counts the address that really connected.
    trusted_proxies: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cert_pair(self) -> ListenConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file: give both cert_file and key_file, or neither")
        if self.cert_file is not None and self.tls is TlsMode.OFF:
            raise ValueError("tls: a certificate is configured but tls is \"off\"")
        return self

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def https(self) -> bool:
        """Whether the service speaks HTTPS on this listen address."""
        if self.tls is TlsMode.ON or self.cert_file is not None:
            return True
        if self.tls is TlsMode.OFF:
            return False
        return not self.loopback


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AccessConfig(BaseModel):
    """Who may do what from a tablet."""

    model_config = _STRICT

    # Pairing with this PIN makes the tablet a clinic admin (revokes other tablets, deletes
    # records, changes roles). Without it the first tablet paired is the admin.
    admin_pin: Annotated[str, Field(pattern=r"^[0-9]{6,12}$")] | None = None
    # A tablet's pairing lapses after this many days without use (never during a session).
    token_idle_days: Annotated[float, Field(gt=0, le=3650)] = 90.0


class HueBridgeConfig(BaseModel):
    """One paired bridge (`roomctl hue pair` writes these)."""

    model_config = _STRICT

    username: str  # v1 username, which is also the v2 application key
    client_key: str | None = None  # from pairing; roomctl itself does not use it
    api: Literal["v1", "v2"] = "v1"
    bridge_id: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{16}$")] | None = None
    certificate_sha256: str | None = None  # the certificate pinned at pairing
    plain_http: bool = False  # old bridges only: no HTTPS, nothing checked

    @field_validator("certificate_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        return None if value is None else normalise_fingerprint(value)

    @model_validator(mode="after")
    def _trust(self) -> HueBridgeConfig:
        if not self.plain_http and self.certificate_sha256 is None and self.bridge_id is None:
            raise ValueError("certificate_sha256: no certificate pinned for this bridge: pair "
                             "again with `roomctl hue pair` (or set plain_http = true for an "
                             "old bridge without HTTPS)")
        return self


class Config(BaseModel):
    model_config = _STRICT

    rooms: Annotated[list[RoomConfig], Field(min_length=1)]
    listen: ListenConfig = Field(default_factory=ListenConfig)
    data_dir: Path = Field(default_factory=default_data_dir)
    bundled_presets: Path = BUNDLED_PRESETS
    presets_dir: Path | None = None  # the clinic's own; default <data_dir>/presets
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")] | None = None  # else one is made up at start
    retention_days: Annotated[float, Field(gt=0)] | None = None
    # The longest roomctl waits for any one driver call (a Hue bridge, libvlc) before it marks
    # the driver degraded and retries; nothing else ever waits for it.
    driver_time_limit: Annotated[NonNegativeDuration, Field(gt=0, le=60)] = 5.0
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    hue_bridges: dict[str, HueBridgeConfig] = Field(default_factory=dict)
    config_dir: Path | None = None  # set when read from a file: relative music paths start there

    @model_validator(mode="after")
    def _unique_rooms(self) -> Config:
        ids = [r.id for r in self.rooms]
        for i, rid in enumerate(ids):
            if rid in ids[:i]:
                raise ValueError(f"rooms: two rooms are called '{self.rooms[i].name}'")
        if self.access.admin_pin is not None and self.access.admin_pin == self.pin:
            raise ValueError("access.admin_pin: must differ from pin (the therapists' PIN)")
        return self

    @property
    def clinic_presets(self) -> Path:
        return self.presets_dir or self.data_dir / "presets"

    def hue_username(self, room: RoomConfig) -> str | None:
        if room.lights.username:
            return room.lights.username
        bridge = self.hue_bridges.get(room.lights.bridge or "")
        return bridge.username if bridge else None

    def hue_bridge(self, room: RoomConfig) -> HueBridgeConfig | None:
        """The room's bridge as paired (its API version, certificate pin, bridge id)."""
        return self.hue_bridges.get(room.lights.bridge or "")


def room_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "room"


def demo_config(data_dir: Path | None = None) -> Config:
    """The embedded demo: one room with simulated lights and real audio when libvlc loads."""
    return Config(
        rooms=[RoomConfig(name="Room 1", audio=AudioConfig(kind=AudioKind.AUTO, demo_media=True))],
        data_dir=data_dir or default_data_dir(),
    )


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for p in loc:
        if isinstance(p, int) and parts:
            item = node[p] if isinstance(node, list) and p < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts[-1] += f"[{p}]" + (f" ('{name}')" if name else "")
        else:
            parts.append(str(p))
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)


def parse_config(data: dict[str, Any], source: str = "roomctl.toml", base_dir: Path | None = None) -> Config:
    try:
        config = Config.model_validate({**data, "config_dir": base_dir} if base_dir else data)
        _check_playlists(config, source)
        return config
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = _key_path(tuple(e["loc"]), data)
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def _check_playlists(config: Config, source: str) -> None:
    """The music mapping is checked at start-up too, so a typo stops roomctl with its key."""
    for i, room in enumerate(config.rooms):
        try:
            parse_playlists(room.audio.playlists, base_dir=config.config_dir)
        except ValidationError as err:
            lines = []
            for e in err.errors():
                parts = [str(p) for p in e["loc"] if not str(p).endswith("Playlist")]
                key = ".".join(p for j, p in enumerate(parts) if j == 0 or p != parts[j - 1])
                lines.append(f"{source}: rooms[{i}] ('{room.name}').audio.playlists.{key}: "
                             f"{e['msg'].removeprefix('Value error, ')}")
            raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: TOML syntax error: {err}") from None
    config = parse_config(data, p.name, base_dir=p.resolve().parent)
    # Relative paths in the file are relative to the file, not to where roomctl was started.
    base = p.resolve().parent
    updates: dict[str, Any] = {}
    if not config.data_dir.is_absolute() and "data_dir" in data:
        updates["data_dir"] = base / config.data_dir
    if config.presets_dir is not None and not config.presets_dir.is_absolute():
        updates["presets_dir"] = base / config.presets_dir
    if "bundled_presets" in data and not config.bundled_presets.is_absolute():
        updates["bundled_presets"] = base / config.bundled_presets
    files = {key: base / path for key in ("cert_file", "key_file")
             if (path := getattr(config.listen, key)) is not None and not path.is_absolute()}
    if files:
        updates["listen"] = config.listen.model_copy(update=files)
    return config.model_copy(update=updates) if updates else config
