"""Loading libvlc and choosing where the sound goes.

`vlc_available` says whether libvlc loads and starts here; `choose_output` picks the
output module (the configured one, else the system's default, else libvlc's dummy output
on a machine with no working output, which `health` then says). An `OutputHook` replaces
the output altogether, for example a test's PCM capture.

Timing: libvlc applies the volume as audio is handed to the output, which plays it about
the caching delay + 150 ms later (`output_delay_s`). So a fade-out that ends in a stop or
a pause holds at 0 for that long before stopping, or the end of the fade would be cut off.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

DEFAULT_VLC_ARGS: tuple[str, ...] = (
    "--no-video",
    "--quiet",
    # Local files need little read-ahead, and less of it means volume changes are heard
    # sooner (libvlc's default of 1 s would delay every fade and pause by a second).
    "--file-caching=300",
    "--network-caching=1500",
    "--no-metadata-network-access",
)
OUTPUT_MARGIN_S = 0.25  # audio handed to the output is heard about caching + 150 ms later


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


class OutputHook(Protocol):
    """Takes over where both decks' sound goes, instead of a speaker (e.g. a PCM capture
    for measuring). The driver calls `attach` on its worker thread, once per deck, before
    the deck first plays; it typically installs libvlc's audio callbacks (the ``amem``
    output)."""

    @property
    def description(self) -> str:
        """What the room's output is, said in `health` (e.g. "capturing PCM for measurement")."""
        ...

    @property
    def measuring(self) -> bool:
        """A measurement sink rather than a speaker: the check for an output that takes
        audio but plays none does not apply to it."""
        ...

    def attach(self, player: Any, deck: str) -> None:
        """Route ``player``'s audio (deck ``deck``, "A" or "B") into this hook."""
        ...


@dataclass(frozen=True)
class OutputChoice:
    aout: str | None  # libvlc output module; None: libvlc's own order (pulse, then alsa)
    device: str | None
    note: str | None = None  # said in health(): why this is not what was asked for
    silent: bool = False  # nothing reaches a speaker


def hooked_output(hook: OutputHook) -> OutputChoice:
    """The output of a room whose sound goes to ``hook`` (through libvlc's callbacks)."""
    return OutputChoice("amem", None, hook.description)


def _pulse_reachable() -> bool:
    if os.environ.get("PULSE_SERVER"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return any(Path(p).exists() for p in (f"{runtime}/pulse/native", "/run/pulse/native"))


def _alsa_usable() -> bool:
    try:
        cards = Path("/proc/asound/cards").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cards = ""
    if any(line[:3].strip().isdigit() for line in cards.splitlines()):
        return True
    # A configured default (bluetooth, a pipewire bridge, a file sink) needs no card.
    return Path("/etc/asound.conf").exists() or Path("~/.asoundrc").expanduser().exists()


def choose_output(
    aout: str | None,
    device: str | None,
    *,
    pulse: bool | None = None,
    alsa: bool | None = None,
) -> OutputChoice:
    """The output to use: the configured one, else the system's default when a sound
    server or card is there, else libvlc's dummy output (playing silently, and saying so)."""
    if aout:
        return OutputChoice(aout, device)
    has_pulse = _pulse_reachable() if pulse is None else pulse
    has_alsa = _alsa_usable() if alsa is None else alsa
    if has_pulse or has_alsa:
        return OutputChoice(None, device)
    return OutputChoice(
        "adummy",
        None,
        "no audio output found (no PulseAudio/PipeWire server, no ALSA sound card): the music plays silently",
        silent=True,
    )


def output_delay_s(vlc_args: Sequence[str], *, stream: bool) -> float:
    """How long after libvlc hands audio to the output it is heard: the caching delay
    libvlc was started with (for a stream or a file) plus a margin."""
    option = "--network-caching=" if stream else "--file-caching="
    caching_ms = 1000.0  # libvlc's default
    for arg in vlc_args:
        if arg.startswith(option):
            with contextlib.suppress(ValueError):
                caching_ms = float(arg.removeprefix(option))
    return caching_ms / 1000.0 + OUTPUT_MARGIN_S
