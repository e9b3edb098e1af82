"""Music through libvlc: two decks per room, mixed by the room into one output stream.

One libvlc instance per room drives two players ("decks"), on one worker thread; libvlc
only decodes, and the room's output thread mixes, applies every gain and plays:

- `output`: loading libvlc, choosing the output, the `OutputHook` that can replace it;
- `sink`: the output stream itself (PulseAudio/PipeWire, ALSA, or silence);
- `feed`: a deck's decoded audio on its way to the output, and when it is to be heard;
- `pcmout`: the output thread: the feeds mixed, gains and the cap per sample, the sink watched;
- `worker`: the room's one thread: command queue, timers, the ticker (knows no libvlc);
- `deck`: one player: a track decoded into its feed, its events;
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
