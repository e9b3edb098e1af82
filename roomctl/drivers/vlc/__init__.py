"""Music through libvlc: two decks per room, gentle fades, broken files skipped.

One libvlc instance per room drives two players ("decks"), on one worker thread:

- `output`: loading libvlc, choosing the output, the `OutputHook` that can replace it;
- `worker`: the room's one thread: command queue, timers, the ticker (knows no libvlc);
- `deck`: one player: opening a track from silence (the start-blip trap), its events;
- `mixer`: the two decks together: their volumes ramped over time, fade-outs;
- `transport`: the policy: which deck plays what, crossfades, skips, pauses, dead playlists;
- `status`: what is published for other threads: snapshot, health, problems;
- `audio`: `VlcAudio`, the `roomctl.drivers.base.Audio` the rest of roomctl uses.
"""

from roomctl.drivers.vlc.audio import VlcAudio
from roomctl.drivers.vlc.output import (
    DEFAULT_VLC_ARGS,
    AudioUnavailable,
    OutputChoice,
    OutputHook,
    choose_output,
    vlc_available,
)

__all__ = [
    "DEFAULT_VLC_ARGS",
    "AudioUnavailable",
    "OutputChoice",
    "OutputHook",
    "VlcAudio",
    "choose_output",
    "vlc_available",
]
