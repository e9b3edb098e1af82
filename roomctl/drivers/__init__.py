"""Room hardware behind two small protocols, `Lights` and `Audio` (see `base`)."""

from roomctl.drivers.base import (
    Audio,
    AudioSnapshot,
    DriverHealth,
    LightLook,
    LightReading,
    Lights,
    MusicTarget,
    NowPlaying,
    PlaylistReport,
)

__all__ = [
    "Audio",
    "AudioSnapshot",
    "DriverHealth",
    "LightLook",
    "LightReading",
    "Lights",
    "MusicTarget",
    "NowPlaying",
    "PlaylistReport",
]
