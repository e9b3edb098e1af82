"""Where the room's mixed audio goes: one output stream, opened once and kept open.

A `Sink` takes float32 stereo blocks at `feed.RATE`. `PulseSink` is a PulseAudio (or
PipeWire's pulse server) playback stream through libpulse-simple; `AlsaSink` an ALSA PCM
through alsa-lib; `SilentSink` plays nothing (no sound device: the room is silent, and says
so). Both libraries ship with libvlc on every Debian/Ubuntu system; their "simple" APIs are
four calls each (open, write, close, error text), bound here with ctypes.

A sink that fails raises `SinkError`; the output thread then plays on to nothing, says so
in health, and opens the sink again every `REOPEN_S` until it works (a sound server that
was restarted, a USB speaker plugged back in).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from roomctl.drivers.vlc.feed import CHANNELS, RATE, FloatBlock

LATENCY_S = 0.25  # what the sound server buffers: the delay from the mix to the ear


class SinkError(RuntimeError):
    """The output cannot be opened, or stopped taking audio."""


class Sink(Protocol):
    @property
    def description(self) -> str:
        """What the output is, for health and logs."""
        ...

    @property
    def paced(self) -> bool:
        """`write` blocks until the device has room (a real output); otherwise the output
        thread keeps time itself."""
        ...

    @property
    def silent(self) -> bool:
        """Nothing reaches a speaker (said in health)."""
        ...

    def open(self) -> None:
        """Open the stream (raises `SinkError`)."""
        ...

    def write(self, block: FloatBlock, at: float) -> None:
        """Play ``block`` (float32, (frames, 2)); ``at`` is the monotonic time its first
        sample is due. Raises `SinkError`."""
        ...

    def close(self) -> None: ...


# --- PulseAudio / PipeWire ----------------------------------------------------------------


class _PaSampleSpec(ctypes.Structure):
    _fields_ = (("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8))


class _PaBufferAttr(ctypes.Structure):
    _fields_ = (("maxlength", ctypes.c_uint32), ("tlength", ctypes.c_uint32), ("prebuf", ctypes.c_uint32),
                ("minreq", ctypes.c_uint32), ("fragsize", ctypes.c_uint32))


_PA_STREAM_PLAYBACK = 1
_PA_SAMPLE_FLOAT32LE = 5
_NO_VALUE = 0xFFFFFFFF  # (uint32_t) -1: the server's default


def _load(names: tuple[str, ...]) -> ctypes.CDLL:
    for name in names:
        path = ctypes.util.find_library(name) or f"lib{name}.so"
        for candidate in (path, f"lib{name}.so.0", f"lib{name}.so.2"):
            try:
                return ctypes.CDLL(candidate)
            except OSError:
                continue
    raise SinkError(f"lib{names[0]} is not installed")


_pa: ctypes.CDLL | None = None


def _pulse() -> ctypes.CDLL:
    global _pa
    if _pa is None:
        lib = _load(("pulse-simple",))
        lib.pa_simple_new.restype = ctypes.c_void_p
        lib.pa_simple_new.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.POINTER(_PaSampleSpec), ctypes.c_void_p,
                                      ctypes.POINTER(_PaBufferAttr), ctypes.POINTER(ctypes.c_int))
        lib.pa_simple_write.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_int))
        lib.pa_simple_free.argtypes = (ctypes.c_void_p,)
        lib.pa_simple_free.restype = None
        lib.pa_strerror.restype = ctypes.c_char_p
        lib.pa_strerror.argtypes = (ctypes.c_int,)
        _pa = lib
    return _pa


@dataclass
class PulseSink:
    """A playback stream on the PulseAudio (or PipeWire) server: ``device`` is a sink name
    (None: the server's default); the server is $PULSE_SERVER or the user's."""

    device: str | None = None
    name: str = "roomctl"
    paced: bool = True
    silent: bool = False

    def __post_init__(self) -> None:
        self._stream: int | None = None

    @property
    def description(self) -> str:
        return f"PulseAudio sink '{self.device}'" if self.device else "PulseAudio (default sink)"

    def open(self) -> None:
        lib = _pulse()
        spec = _PaSampleSpec(_PA_SAMPLE_FLOAT32LE, RATE, CHANNELS)
        frame = 4 * CHANNELS
        # The server asks for a block at a time (fewer wake-ups), and holds LATENCY_S.
        attr = _PaBufferAttr(_NO_VALUE, int(LATENCY_S * RATE) * frame, _NO_VALUE, int(0.1 * RATE) * frame,
                             _NO_VALUE)
        err = ctypes.c_int(0)
        stream = lib.pa_simple_new(None, self.name.encode(), _PA_STREAM_PLAYBACK,
                                   self.device.encode() if self.device else None, b"music",
                                   ctypes.byref(spec), None, ctypes.byref(attr), ctypes.byref(err))
        if not stream:
            raise SinkError(f"cannot open {self.description}: {self._error(err.value)}")
        self._stream = stream

    def write(self, block: FloatBlock, at: float) -> None:
        if self._stream is None:
            raise SinkError(f"{self.description} is not open")
        data = np.ascontiguousarray(block, dtype="<f4")
        err = ctypes.c_int(0)
        if _pulse().pa_simple_write(self._stream, data.ctypes.data, data.nbytes, ctypes.byref(err)) < 0:
            raise SinkError(f"{self.description} stopped: {self._error(err.value)}")

    def close(self) -> None:
        if self._stream is not None:
            _pulse().pa_simple_free(self._stream)
            self._stream = None

    @staticmethod
    def _error(code: int) -> str:
        text = _pulse().pa_strerror(code)
        return text.decode("utf-8", "replace") if text else f"error {code}"


# --- ALSA -------------------------------------------------------------------------------

_SND_PCM_STREAM_PLAYBACK = 0
_SND_PCM_FORMAT_FLOAT_LE = 14
_SND_PCM_ACCESS_RW_INTERLEAVED = 3
_als: ctypes.CDLL | None = None


def _alsa() -> ctypes.CDLL:
    global _als
    if _als is None:
        lib = _load(("asound",))
        lib.snd_pcm_open.argtypes = (ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_int, ctypes.c_int)
        lib.snd_pcm_set_params.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                                           ctypes.c_uint, ctypes.c_int, ctypes.c_uint)
        lib.snd_pcm_writei.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong)
        lib.snd_pcm_writei.restype = ctypes.c_long
        lib.snd_pcm_recover.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
        lib.snd_pcm_close.argtypes = (ctypes.c_void_p,)
        lib.snd_strerror.restype = ctypes.c_char_p
        lib.snd_strerror.argtypes = (ctypes.c_int,)
        _als = lib
    return _als


@dataclass
class AlsaSink:
    """An ALSA PCM: ``device`` as ALSA names it ("default", "hw:1", "plughw:CARD=USB")."""

    device: str | None = None
    paced: bool = True
    silent: bool = False

    def __post_init__(self) -> None:
        self._pcm: int | None = None

    @property
    def description(self) -> str:
        return f"ALSA device '{self.device or 'default'}'"

    def open(self) -> None:
        lib = _alsa()
        pcm = ctypes.c_void_p()
        rc = lib.snd_pcm_open(ctypes.byref(pcm), (self.device or "default").encode(), _SND_PCM_STREAM_PLAYBACK, 0)
        if rc < 0:
            raise SinkError(f"cannot open {self.description}: {self._error(rc)}")
        rc = lib.snd_pcm_set_params(pcm, _SND_PCM_FORMAT_FLOAT_LE, _SND_PCM_ACCESS_RW_INTERLEAVED, CHANNELS, RATE,
                                    1, int(LATENCY_S * 1e6))
        if rc < 0:
            lib.snd_pcm_close(pcm)
            raise SinkError(f"cannot set up {self.description}: {self._error(rc)}")
        self._pcm = pcm.value

    def write(self, block: FloatBlock, at: float) -> None:
        if self._pcm is None:
            raise SinkError(f"{self.description} is not open")
        lib = _alsa()
        data = np.ascontiguousarray(block, dtype="<f4")
        done = 0
        while done < len(data):
            rc = lib.snd_pcm_writei(self._pcm, data[done:].ctypes.data, len(data) - done)
            if rc < 0:
                # An underrun or a suspend can be recovered from; an unplugged device cannot.
                if lib.snd_pcm_recover(self._pcm, int(rc), 1) < 0:
                    raise SinkError(f"{self.description} stopped: {self._error(int(rc))}")
                continue
            done += rc

    def close(self) -> None:
        if self._pcm is not None:
            _alsa().snd_pcm_close(self._pcm)
            self._pcm = None

    @staticmethod
    def _error(code: int) -> str:
        text = _alsa().snd_strerror(code)
        return text.decode("utf-8", "replace") if text else f"error {code}"


@dataclass
class SilentSink:
    """Plays nothing, in time (no sound device found, or libvlc's "adummy" asked for)."""

    description: str = "no audio output"
    paced: bool = False
    silent: bool = True

    def open(self) -> None:
        pass

    def write(self, block: FloatBlock, at: float) -> None:
        pass

    def close(self) -> None:
        pass


def pulse_reachable() -> bool:
    """Whether a PulseAudio/PipeWire server seems to be there (its socket exists)."""
    server = os.environ.get("PULSE_SERVER")
    if server:
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return any(os.path.exists(p) for p in (f"{runtime}/pulse/native", "/run/pulse/native"))
