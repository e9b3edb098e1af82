"""Loading libvlc and choosing where the sound goes.

`vlc_available` says whether libvlc loads and starts here; `choose_output` picks the
output (the configured one, else PulseAudio/PipeWire when a server is there, else ALSA
when a card or a configured default is, else silence on a machine with no working output,
which `health` then says) and `make_sink` opens it as the room's one `sink.Sink`. libvlc
itself only decodes (`feed`); an `OutputHook` (for example a test's PCM capture) takes the
place of the sink altogether.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from roomctl.drivers.vlc.sink import AlsaSink, PulseSink, SilentSink, Sink, pulse_reachable

DEFAULT_VLC_ARGS: tuple[str, ...] = (
    "--no-video",
    "--quiet",
    # Local files need little read-ahead (the volume is applied as the audio is mixed, so
    # the read-ahead delays no fade; less of it keeps libvlc's buffers small).
    "--file-caching=300",
    "--network-caching=1500",
    "--no-metadata-network-access",
)


class AudioUnavailable(RuntimeError):
    """libvlc cannot be loaded or started, or the driver is closed."""


def load_vlc() -> ModuleType:
    """The python-vlc module, with libvlc loaded (raises `AudioUnavailable`)."""
    try:
        return importlib.import_module("vlc")
    except (ImportError, OSError, NotImplementedError) as exc:
        raise AudioUnavailable(
            f"libvlc cannot be loaded ({type(exc).__name__}: {exc}); install libvlc5 and vlc-plugin-base"
        ) from exc


def vlc_available() -> tuple[bool, str]:
    """Whether libvlc can be loaded and started here, and a plain reason."""
    try:
        vlc = load_vlc()
    except AudioUnavailable as exc:
        return False, str(exc)
    instance = vlc.Instance(["--quiet", "--no-video"])
    if instance is None:
        return False, "libvlc loads but does not start (is vlc-plugin-base installed?)"
    instance.release()
    version = vlc.libvlc_get_version().decode("utf-8", "replace")
    return True, f"libvlc {version}"


class OutputHook(Sink, Protocol):
    """Takes the place of the room's output (e.g. a PCM capture for measuring): a `Sink`
    that also says whether it is a measurement rather than a speaker."""

    @property
    def measuring(self) -> bool:
        """A measurement sink rather than a speaker."""
        ...


@dataclass(frozen=True)
class OutputChoice:
    aout: str | None  # "pulse", "alsa", "adummy" (nothing), or "hook" (an `OutputHook`)
    device: str | None
    note: str | None = None  # said in health(): why this is not what was asked for
    silent: bool = False  # nothing reaches a speaker


def hooked_output(hook: OutputHook) -> OutputChoice:
    """The output of a room whose sound goes to ``hook``."""
    return OutputChoice("hook", None, hook.description)


SILENT_NOTE = "no audio output found (no PulseAudio/PipeWire server, no ALSA sound card): the music plays silently"


def _alsa_usable() -> bool:
    try:
        cards = Path("/proc/asound/cards").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cards = ""
    if any(line[:3].strip().isdigit() for line in cards.splitlines()):
        return True
    # A configured default (bluetooth, a pipewire bridge, a file sink) needs no card.
    return Path("/etc/asound.conf").exists() or Path("~/.asoundrc").expanduser().exists()


KNOWN_OUTPUTS = ("pulse", "alsa", "adummy")


def choose_output(
    aout: str | None,
    device: str | None,
    *,
    pulse: bool | None = None,
    alsa: bool | None = None,
) -> OutputChoice:
    """The output to use: the configured one ("pulse", "alsa", or "adummy" for none), else
    PulseAudio/PipeWire when a server is there, else ALSA when a card is, else silence
    (playing in time to nothing, and saying so)."""
    note = None
    if aout in KNOWN_OUTPUTS:
        if aout == "adummy":
            return OutputChoice("adummy", None, "audio output 'adummy' is configured: the music plays silently",
                                silent=True)
        return OutputChoice(aout, device)
    if aout:
        note = f"audio output '{aout}' is not supported (use pulse or alsa); using the system default"
    has_pulse = pulse_reachable() if pulse is None else pulse
    has_alsa = _alsa_usable() if alsa is None else alsa
    if has_pulse:
        return OutputChoice("pulse", device, note)
    if has_alsa:
        return OutputChoice("alsa", device, note)
    return OutputChoice("adummy", None, SILENT_NOTE if note is None else f"{note}; {SILENT_NOTE}", silent=True)


def make_sink(choice: OutputChoice, name: str = "roomctl") -> Sink:
    """The room's sink for ``choice`` (opened later, by the output thread)."""
    if choice.aout == "pulse":
        return PulseSink(choice.device, name=name)
    if choice.aout == "alsa":
        return AlsaSink(choice.device)
    return SilentSink(choice.note or "no audio output")
