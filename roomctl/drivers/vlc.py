"""Music through libvlc: two decks per room, gentle fades, broken files skipped.

One libvlc instance per room drives two players ("decks"). A playlist change opens the
new playlist on the other deck and crossfades; half a second before a track ends the next
one opens on the other deck, so the ending track's tail plays out; a skip is a short
crossfade. libvlc has no fades of its own, so volume is ramped here, a step every
`TICK_S`.

How a track starts from silence (the start-blip trap): libvlc makes a fresh volume stage
at full volume for every new media, a moment *after* ``play()``, and a volume set before
that stage exists is lost. So a deck opens each track behind an equalizer with the preamp
and every band at -20 dB (about -35..-45 dB in all: near silence), sets volume 0 on every
tick, and only when libvlc reports the first audio buffer played (the stage exists, so
volume 0 has stuck) lifts the equalizer, goes back to the top of the track and fades in
from 0. The first ~0.45 s of every track (what libvlc hands over at once after opening)
is heard at volume 0; the fade-in follows.

Timing: libvlc applies the volume as audio is handed to the output, which plays it about
the caching delay + 150 ms later. So a fade-out that ends in a stop or a pause holds at 0
for that long before stopping, or the end of the fade would be cut off.

Curves: libvlc's gain is (volume/100)^3, so a linear ramp of the volume percent is an
even-sounding fade (loudness in dB follows 60*log10 of the percent). Fades, pauses and
volume changes use that. A crossfade instead moves each deck's *amplitude* linearly
(percent = cube root), so the two decks' summed power dips at most 3 dB mid-way; linear
percent ramps on both decks would dip 15 dB.

Threads: every libvlc call runs on the room's one worker thread, which serves a command
queue, a few timers and, only while a volume moves or a track opens, the `TICK_S` ticker;
otherwise it sleeps on the queue. libvlc's event callbacks only enqueue. The asyncio side
submits commands and awaits their futures; `snapshot()` and `health()` read what the
worker last published (a ramp is published as its curve, so readers see the mid-ramp
volume), with no libvlc call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import importlib
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from roomctl import playlists as pl
from roomctl.room import AudioSnapshot, DriverHealth, MusicTarget, NowPlaying, PlaylistReport

if TYPE_CHECKING:
    from testkit.pcm import PcmCapture

logger = logging.getLogger(__name__)

TICK_S = 0.048  # about 21 volume steps per second while a ramp runs
MIN_FADE_S = 0.5  # no volume change is ever faster than this
QUICK_FADE_S = 0.5  # a deck still fading out, hurried to make room for the next change
QUIET_EQ_DB = -20.0  # libvlc's floor for the preamp and for each band
FILE_START_TIMEOUT_S = 5.0
STREAM_START_TIMEOUT_S = 20.0
OUTPUT_MARGIN_S = 0.25  # audio handed to the output is heard about caching + 150 ms later
POSITION_READ_S = 1.0  # in between, the published position runs on the clock
PRELOAD_S = 0.5  # open the next track this long (by libvlc's clock) before the end
OUTPUT_CHECK_S = 2.0  # decoded but nothing played for this long: the output is dead
SKIP_MEMORY_S = 15 * 60.0  # skipped files are mentioned in health() this long
PROBLEMS_KEPT = 20
START_TIMEOUT_S = 30.0

DEFAULT_VLC_ARGS: tuple[str, ...] = (
    "--no-video",
    "--quiet",
    # Local files need little read-ahead, and less of it means volume changes are heard
    # sooner (libvlc's default of 1 s would delay every fade and pause by a second).
    "--file-caching=300",
    "--network-caching=1500",
    "--no-metadata-network-access",
)


class AudioUnavailable(RuntimeError):
    """libvlc cannot be loaded or started, or the driver is closed."""


def _load_vlc() -> ModuleType:
    try:
        return importlib.import_module("vlc")
    except (ImportError, OSError, NotImplementedError) as exc:
        raise AudioUnavailable(
            f"libvlc cannot be loaded ({type(exc).__name__}: {exc}); install libvlc5 and vlc-plugin-base"
        ) from exc


def vlc_available() -> tuple[bool, str]:
    """Whether libvlc can be loaded and started here, and a plain reason."""
    try:
        vlc = _load_vlc()
    except AudioUnavailable as exc:
        return False, str(exc)
    instance = vlc.Instance(["--quiet", "--no-video"])
    if instance is None:
        return False, "libvlc loads but does not start (is vlc-plugin-base installed?)"
    instance.release()
    version = vlc.libvlc_get_version().decode("utf-8", "replace")
    return True, f"libvlc {version}"


# --- curves: pure functions of normalised time -------------------------------------------


class Curve(StrEnum):
    LINEAR = "linear"  # volume percent moves linearly: an even-sounding fade
    EQUAL_GAIN = "equal-gain"  # amplitude moves linearly: for the two sides of a crossfade


def gain(volume: float) -> float:
    """libvlc's amplitude factor for a volume percent."""
    return float((max(0.0, volume) / 100.0) ** 3)


def volume_at(curve: Curve, v0: float, v1: float, x: float) -> float:
    """The volume percent a fade from ``v0`` to ``v1`` has reached at fraction ``x``."""
    x = min(1.0, max(0.0, x))
    if curve is Curve.LINEAR:
        return v0 + (v1 - v0) * x
    g = gain(v0) + (gain(v1) - gain(v0)) * x
    return 100.0 * math.cbrt(max(0.0, g))


@dataclass
class _Ramp:
    v0: float
    v1: float
    t0: float
    duration_s: float
    curve: Curve = Curve.LINEAR
    then: Callable[[], None] | None = None  # run once, when the ramp completes
    hold_s: float = 0.0  # stay at v1 this long before `then` (a timer, not ticks)
    holding: bool = False

    def value(self, now: float) -> float:
        if self.duration_s <= 0:
            return self.v1
        return volume_at(self.curve, self.v0, self.v1, (now - self.t0) / self.duration_s)

    def moved(self, now: float) -> bool:
        return now - self.t0 >= self.duration_s


# --- output choice -----------------------------------------------------------------------


@dataclass(frozen=True)
class OutputChoice:
    aout: str | None  # libvlc output module; None: libvlc's own order (pulse, then alsa)
    device: str | None
    note: str | None = None  # said in health(): why this is not what was asked for
    silent: bool = False  # nothing reaches a speaker


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


# --- decks -------------------------------------------------------------------------------


class _DeckState(StrEnum):
    IDLE = "idle"
    ARMING = "arming"  # track opened behind the quiet equalizer, not heard yet
    PLAYING = "playing"
    PAUSED = "paused"


@dataclass
class _Pending:
    """What a deck does once its new track is heard: fade to ``level``, then tell others."""

    level: float
    fade_s: float
    curve: Curve = Curve.LINEAR
    on_armed: Callable[[], None] | None = None


@dataclass
class _Switch:
    """A playlist change waiting for a deck to come free."""

    playlist: str
    index: int | None
    level: float
    crossfade_s: float
    fade_in_s: float
    entries: list[str] | None


@dataclass(eq=False)
class _Deck:
    index_in_room: int
    label: str
    player: Any
    state: _DeckState = _DeckState.IDLE
    playlist: str | None = None
    entries: list[str] = field(default_factory=list)
    index: int = 0
    gen: int = 0  # which media libvlc events are about
    media: Any = None
    media_events: Any = None
    volume: float = 0.0  # percent, as last set
    sent_percent: int | None = None  # what libvlc was last told
    ramp: _Ramp | None = None
    pending: _Pending | None = None
    arm_started: float = 0.0
    fail_streak: int = 0
    plan: int = 0  # which scheduled look at the track's end is current
    title: str = ""
    artist: str | None = None
    duration_s: float | None = None
    position_s: float = 0.0
    position_at: float | None = None  # monotonic time position_s was read; None: read it

    @property
    def entry(self) -> str:
        return self.entries[self.index] if self.entries else ""

    def audible(self) -> bool:
        """Heard now or soon: playing above 0, or ramping (a fade-out's tail is still
        queued in the output until its hold ends)."""
        return self.state is _DeckState.PLAYING and (self.volume > 0.0 or self.ramp is not None)

    def leaving(self) -> bool:
        """Fading out (or holding at 0 before a stop or pause)."""
        return self.ramp is not None and self.ramp.v1 == 0.0


# --- worker queue items ------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    fn: Callable[[], object]
    future: concurrent.futures.Future[object]


@dataclass(frozen=True)
class _Event:
    deck: int
    gen: int
    state: int  # libvlc's media state


@dataclass(frozen=True)
class _Published:
    snapshot: AudioSnapshot  # its volume is filled in when read, from `levels`
    health: DriverHealth
    at: float  # monotonic time of now_playing.position_s
    running: bool  # the position advances with time
    levels: tuple[tuple[float, _Ramp | None], ...] = ()  # each sounding deck: volume, ramp

    def volume(self, now: float) -> float:
        # Ramps are pure functions of time, so a reader can follow one between ticks.
        return max((r.value(now) if r is not None else v for v, r in self.levels), default=0.0)


def _title_from(entry: str) -> str:
    return entry if pl.is_stream(entry) else Path(entry).stem


class VlcAudio:
    """A room's music through libvlc (implements `roomctl.drivers.base.Audio`).

    ``playlists`` maps the names presets use to media (`roomctl.playlists`); ``max_volume``
    (percent) caps every volume; ``aout``/``device`` pick the output (default: the
    system's; on a machine with no working output, libvlc's dummy output, said in
    `health`). ``capture`` routes both decks into a `PcmCapture` instead of a speaker.

    The constructor starts the room's worker thread and waits for libvlc to start (about
    0.1 s); it raises `AudioUnavailable` if libvlc cannot be loaded or refuses ``vlc_args``.
    """

    def __init__(
        self,
        playlists: Mapping[str, pl.PlaylistSpec],
        *,
        max_volume: float = 100.0,
        aout: str | None = None,
        device: str | None = None,
        vlc_args: Sequence[str] = DEFAULT_VLC_ARGS,
        capture: PcmCapture | None = None,
        name: str = "room",
        track_fade_in_s: float = 1.0,
        pause_fade_s: float = 1.5,
        skip_crossfade_s: float = 2.5,
        close_fade_s: float = 1.0,
    ) -> None:
        if not 0.0 <= max_volume <= 100.0:
            raise ValueError(f"max_volume must be 0-100 percent, not {max_volume!r}")
        self._playlists = dict(playlists)
        self._max_volume = float(max_volume)
        self._vlc_args = list(vlc_args)
        self._capture = capture
        self._track_fade_in_s = max(MIN_FADE_S, track_fade_in_s)
        self._pause_fade_s = max(MIN_FADE_S, pause_fade_s)
        self._skip_crossfade_s = max(MIN_FADE_S, skip_crossfade_s)
        self._close_fade_s = max(MIN_FADE_S, close_fade_s)
        self._log = logger.getChild(name)
        if capture is not None:
            self._output = OutputChoice("amem", None, "capturing PCM for measurement")
        else:
            self._output = choose_output(aout, device)
        if self._output.note and capture is None:
            self._log.warning("%s", self._output.note)

        # Worker-owned state (only the worker thread touches these after start).
        self._vlc: ModuleType | None = None
        self._instance: Any = None
        self._quiet_eq: Any = None
        self._decks: list[_Deck] = []
        self._active: _Deck | None = None
        self._want_playlist: str | None = None
        self._level = 0.0
        self._playing = False
        self._last_target = MusicTarget(playlist=None, volume=0.0)
        self._problems: deque[str] = deque(maxlen=PROBLEMS_KEPT)
        self._skips: deque[tuple[float, str]] = deque(maxlen=PROBLEMS_KEPT)
        self._dead: str | None = None
        self._queued: _Switch | None = None
        self._retries = 0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._closing = False
        self._done = False
        self._ramp_steps = 0
        self._ramp_seconds = 0.0
        self._last_ramp_tick: float | None = None
        self._published_at = 0.0
        self._wakeups = 0

        # Shared with the asyncio side.
        self._queue: queue.SimpleQueue[_Call | _Event] = queue.SimpleQueue()
        self._accept_lock = threading.Lock()
        self._accepting = True
        self._fatal: str | None = None
        self._pub = _Published(
            AudioSnapshot(playlist=None, volume=0.0, playing=False),
            DriverHealth(False, "starting"),
            time.monotonic(),
            False,
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"roomctl-audio-{name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise AudioUnavailable(f"libvlc did not start within {START_TIMEOUT_S:g} s")
        if self._fatal is not None:
            self._thread.join()
            raise AudioUnavailable(self._fatal)

    # --- the Audio protocol (any thread / the event loop) ---------------------------------

    async def apply(self, target: MusicTarget) -> None:
        await asyncio.wrap_future(self._submit(partial(self._apply, target)))

    async def skip(self, direction: Literal["next", "previous"]) -> None:
        await asyncio.wrap_future(self._submit(partial(self._skip, direction)))

    async def preflight(self, playlists: list[str]) -> list[PlaylistReport]:
        return await asyncio.to_thread(self._preflight, list(playlists))

    def snapshot(self) -> AudioSnapshot:
        pub = self._pub
        now = time.monotonic()
        snap = replace(pub.snapshot, volume=round(pub.volume(now), 1))
        now_playing = snap.now_playing
        if now_playing is not None and pub.running:
            pos = now_playing.position_s + (now - pub.at)
            if now_playing.duration_s:
                pos = min(pos, now_playing.duration_s)
            snap = replace(snap, now_playing=replace(now_playing, position_s=round(pos, 2)))
        return snap

    def health(self) -> DriverHealth:
        if self._fatal is not None:
            return DriverHealth(False, self._fatal)
        if not self._thread.is_alive():
            return DriverHealth(False, "audio driver is closed")
        return self._pub.health

    async def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(AudioUnavailable):  # closed already
                await asyncio.wrap_future(self._submit(self._begin_close))
            await asyncio.to_thread(self._thread.join)

    # --- extras for the room check and the bench -----------------------------------------

    @property
    def output(self) -> OutputChoice:
        return self._output

    @property
    def wakeups(self) -> int:
        """How often the worker has woken (commands, events, ticks, timers): a steady
        room, with nothing fading, should add next to none."""
        return self._wakeups

    def fade_steps_per_s(self) -> float | None:
        """Volume steps per second measured while ramps ran (None before any ramp)."""
        seconds, steps = self._ramp_seconds, self._ramp_steps
        return steps / seconds if seconds > 0 else None

    # --- submitting work -----------------------------------------------------------------

    def _submit(self, fn: Callable[[], object]) -> concurrent.futures.Future[object]:
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        with self._accept_lock:
            if not self._accepting:
                raise AudioUnavailable(self._fatal or "audio driver is closed")
            self._queue.put(_Call(fn, future))
        return future

    def _preflight(self, names: list[str]) -> list[PlaylistReport]:
        reports: list[PlaylistReport] = []
        for name in names:
            spec = self._playlists.get(name)
            if spec is None:
                problem = f"playlist '{name}' is not in this room's config"
                reports.append(PlaylistReport(name=name, playable=0, problems=(problem,)))
            else:
                reports.append(pl.report(name, spec))
        return reports

    # --- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except Exception as exc:
            self._log.exception("libvlc did not start")
            self._fatal = str(exc) if isinstance(exc, AudioUnavailable) else f"libvlc did not start: {exc}"
            self._stop_accepting()
            self._teardown()
            self._ready.set()
            return
        self._publish(time.monotonic())
        self._ready.set()
        try:
            self._serve()
        except BaseException as exc:
            self._log.exception("audio worker stopped")
            self._fatal = f"audio worker stopped: {exc!r}"
        finally:
            self._stop_accepting()
            self._teardown()

    def _stop_accepting(self) -> None:
        with self._accept_lock:
            self._accepting = False
        reason = self._fatal or "audio driver is closed"
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(AudioUnavailable(reason))

    def _open(self) -> None:
        vlc = _load_vlc()
        instance = vlc.Instance(self._vlc_args)
        if instance is None:
            raise AudioUnavailable(f"libvlc refused its options {self._vlc_args}")
        self._vlc, self._instance = vlc, instance
        eq = vlc.AudioEqualizer()
        eq.set_preamp(QUIET_EQ_DB)
        for band in range(vlc.libvlc_audio_equalizer_get_band_count()):
            eq.set_amp_at_index(QUIET_EQ_DB, band)
        self._quiet_eq = eq
        for i, label in enumerate(("A", "B")):
            player = instance.media_player_new()
            if self._capture is not None:
                self._capture.attach(player, label)
            else:
                self._route_output(player)
            player.audio_set_volume(0)
            self._decks.append(_Deck(i, label, player))
        self._log.info(
            "libvlc %s ready, output %s",
            vlc.libvlc_get_version().decode("utf-8", "replace"),
            self._output.aout or "system default",
        )

    def _route_output(self, player: Any) -> None:
        out = self._output
        if out.aout and player.audio_output_set(out.aout) != 0:
            note = f"audio output '{out.aout}' is not available; using the system default"
            self._output = OutputChoice(None, out.device, note)
            self._problem(note)
        if self._output.device:
            player.audio_output_device_set(None, self._output.device)

    def _serve(self) -> None:
        get = self._queue.get
        next_tick: float | None = None  # None: nothing moving, sleep until woken
        while not self._done:
            self._wakeups += 1
            now = time.monotonic()
            wake = self._timers[0][0] if self._timers else None
            if next_tick is not None and (wake is None or next_tick < wake):
                wake = next_tick
            try:
                item = get() if wake is None else get(timeout=max(0.0, wake - now))
            except queue.Empty:
                item = None
            changed = item is not None
            if item is not None:
                self._handle(item)
            now = time.monotonic()
            if self._timers and self._timers[0][0] <= now:
                self._run_timers(now)
                changed = True
            if next_tick is None and self._needs_tick():
                next_tick = now  # a ramp or a track start began: first step at once
            if next_tick is not None and now >= next_tick:
                try:
                    changed = self._tick(now) or changed
                except Exception as exc:
                    self._log.exception("audio step failed")
                    self._problem(f"audio driver error: {exc}")
                    changed = True
                next_tick = next_tick + TICK_S if now - next_tick <= TICK_S else now + TICK_S
            if next_tick is not None and not self._needs_tick():
                next_tick = None
                self._last_ramp_tick = None
            if self._closing and all(d.ramp is None and d.state is not _DeckState.ARMING for d in self._decks):
                self._done = True
            # Mid-ramp volumes need no publishing (readers evaluate the ramp); the rest
            # is published when it changes, and the position now and then.
            if changed or now - self._published_at >= POSITION_READ_S:
                self._guard(partial(self._publish, now))

    def _needs_tick(self) -> bool:
        return any(d.state is _DeckState.ARMING or (d.ramp is not None and not d.ramp.holding) for d in self._decks)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            self._log.exception("audio step failed")
            self._problem(f"audio driver error: {exc}")

    def _handle(self, item: _Call | _Event) -> None:
        if isinstance(item, _Call):
            if not item.future.set_running_or_notify_cancel():
                return
            try:
                result = item.fn()
            except Exception as exc:
                self._log.exception("audio command failed")
                self._problem(f"audio driver error: {exc}")
                item.future.set_exception(exc)
            else:
                item.future.set_result(result)
            return
        self._guard(partial(self._on_event, item))

    def _schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_seq), fn))

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self._guard(fn)

    def _tick(self, now: float) -> bool:
        """One step of every ramp; True if a deck changed more than its volume."""
        changed = ramping = False
        for deck in self._decks:
            if deck.state is _DeckState.ARMING:
                changed = self._check_armed(deck, now) or changed
            ramp = deck.ramp
            if ramp is not None and not ramp.holding:
                ramping = True
                self._set_volume(deck, ramp.value(now))
                if ramp.moved(now) and deck.ramp is ramp:
                    changed = True
                    if ramp.hold_s > 0:
                        ramp.holding = True
                        self._schedule(ramp.hold_s, partial(self._end_ramp, deck, ramp))
                    else:
                        self._end_ramp(deck, ramp)
            elif deck.state is _DeckState.ARMING:
                self._set_volume(deck, 0.0, force=True)
        if ramping and self._last_ramp_tick is not None:
            self._ramp_steps += 1
            self._ramp_seconds += now - self._last_ramp_tick
        self._last_ramp_tick = now if ramping else None
        return changed

    def _end_ramp(self, deck: _Deck, ramp: _Ramp) -> None:
        if deck.ramp is ramp:
            deck.ramp = None
            if ramp.then is not None:
                ramp.then()

    def _set_volume(self, deck: _Deck, volume: float, *, force: bool = False) -> None:
        volume = min(max(volume, 0.0), self._max_volume)
        deck.volume = volume
        percent = round(volume)
        if percent > self._max_volume:
            percent = math.floor(self._max_volume)
        # libvlc takes whole percents; a step that rounds to the same one needs no call.
        if force or percent != deck.sent_percent:
            deck.player.audio_set_volume(percent)
            deck.sent_percent = percent

    def _teardown(self) -> None:
        for deck in self._decks:
            try:
                deck.player.stop()
                self._release_media(deck)
                deck.player.release()
            except Exception:
                self._log.exception("releasing deck %s failed", deck.label)
        if self._quiet_eq is not None:
            self._quiet_eq.release()
        if self._instance is not None:
            self._instance.release()
        self._decks.clear()
        self._log.info("audio closed")

    # --- publishing ----------------------------------------------------------------------

    def _problem(self, message: str, *, skipped: bool = False) -> None:
        self._log.warning("%s", message)
        self._problems.append(message)
        if skipped:
            self._skips.append((time.monotonic(), message))

    def _publish(self, now: float) -> None:
        act = self._active
        now_playing: NowPlaying | None = None
        running = False
        if act is not None and act.media is not None and act.state is not _DeckState.IDLE:
            position = act.position_s
            if act.state is _DeckState.PLAYING:
                if act.position_at is None or now - act.position_at > POSITION_READ_S:
                    ms = act.player.get_time()
                    if ms is not None and ms >= 0:
                        act.position_s, act.position_at = ms / 1000.0, now
                if act.position_at is not None:
                    position = act.position_s + (now - act.position_at)
                running = True
            now_playing = NowPlaying(
                title=act.title,
                artist=act.artist,
                file=act.entry,
                position_s=round(position, 2),
                duration_s=act.duration_s,
            )
        sounding = [d for d in self._decks if d.state in (_DeckState.PLAYING, _DeckState.ARMING)]
        snapshot = AudioSnapshot(
            playlist=act.playlist if act is not None and act.state is not _DeckState.IDLE else None,
            volume=0.0,
            playing=self._playing and bool(sounding),
            now_playing=now_playing,
            problems=tuple(self._problems),
        )
        levels = tuple((d.volume, d.ramp) for d in sounding)
        self._pub = _Published(snapshot, self._current_health(now), now, running, levels)
        self._published_at = now

    def _current_health(self, now: float) -> DriverHealth:
        if self._output.silent:
            return DriverHealth(False, self._output.note)
        if self._dead is not None:
            return DriverHealth(False, self._dead)
        recent = [m for t, m in self._skips if now - t < SKIP_MEMORY_S]
        if recent:
            minutes = round(SKIP_MEMORY_S / 60)
            return DriverHealth(True, f"{len(recent)} skipped in the last {minutes} min; last: {recent[-1]}")
        return DriverHealth(True, self._output.note)

    # --- libvlc events (on the worker, enqueued by the callbacks) -------------------------

    def _watch(self, deck: _Deck, media: Any) -> Any:
        vlc = self._vlc
        assert vlc is not None
        put = self._queue.put
        i, gen = deck.index_in_room, deck.gen

        # Runs on a libvlc thread: enqueue and nothing else.
        def on_state(event: Any) -> None:
            put(_Event(i, gen, int(event.u.new_state)))

        events = media.event_manager()
        events.event_attach(vlc.EventType.MediaStateChanged, on_state)
        return events

    def _release_media(self, deck: _Deck) -> None:
        vlc = self._vlc
        if deck.media_events is not None and vlc is not None:
            deck.media_events.event_detach(vlc.EventType.MediaStateChanged)
        if deck.media is not None:
            deck.media.release()
        deck.media = None
        deck.media_events = None

    def _on_event(self, event: _Event) -> None:
        deck = self._decks[event.deck]
        if event.gen != deck.gen or self._vlc is None:
            return
        states = self._vlc.State
        if event.state == states.Playing.value:
            self._read_meta(deck)
            if deck.state is _DeckState.ARMING:
                self._set_volume(deck, 0.0, force=True)
        elif event.state == states.Error.value:
            if deck.state is _DeckState.ARMING:
                self._entry_failed(deck, "cannot be opened (missing, unreadable or not audio)")
            elif deck.state is _DeckState.PLAYING:
                self._problem(f"{deck.entry} stopped with an error", skipped=True)
                self._track_ended(deck)
        elif event.state == states.Ended.value:
            if deck.state is _DeckState.ARMING:
                if self._played_buffers(deck) == 0:
                    self._entry_failed(deck, "unreadable or corrupt (no sound in it)")
                    return
                self._armed(deck, time.monotonic())
            if deck.state is _DeckState.PLAYING:
                self._track_ended(deck)

    # Title, artist and length come with playback (taglib reads them as the file opens),
    # which spares a separate parse racing the player for the same file.
    def _read_meta(self, deck: _Deck) -> None:
        vlc, media = self._vlc, deck.media
        if vlc is None or media is None:
            return
        title = media.get_meta(vlc.Meta.Title)
        artist = media.get_meta(vlc.Meta.Artist)
        duration_ms = media.get_duration()
        deck.title = title or _title_from(deck.entry)
        deck.artist = artist or None
        deck.duration_s = duration_ms / 1000.0 if duration_ms and duration_ms > 0 else None

    def _played_buffers(self, deck: _Deck) -> int:
        stats = self._stats(deck)
        return int(stats.played_abuffers) if stats is not None else 0

    def _stats(self, deck: _Deck) -> Any:
        if self._vlc is None or deck.media is None:
            return None
        stats = self._vlc.MediaStats()
        deck.media.get_stats(stats)
        return stats

    # --- starting tracks -----------------------------------------------------------------

    def _entries(self, playlist: str, *, quiet: bool = False) -> list[str]:
        spec = self._playlists.get(playlist)
        if spec is None:
            return []
        entries, problems = pl.scan(spec)
        if not quiet:
            for p in problems:
                self._problem(f"playlist '{playlist}': {p}", skipped=True)
        return entries

    def _start(self, deck: _Deck, playlist: str, entries: list[str], index: int, pending: _Pending) -> None:
        deck.playlist = playlist
        deck.entries = list(entries)
        deck.fail_streak = 0
        self._load(deck, index, pending)

    def _load(self, deck: _Deck, index: int, pending: _Pending | None) -> None:
        """Open entry ``index`` on ``deck`` behind the quiet equalizer, at volume 0."""
        assert self._instance is not None and self._vlc is not None
        self._release_media(deck)
        deck.index = index % len(deck.entries)
        deck.gen += 1
        entry = deck.entry
        stream = pl.is_stream(entry)
        media = self._instance.media_new_location(entry) if stream else self._instance.media_new_path(entry)
        deck.title, deck.artist, deck.duration_s = _title_from(entry), None, None
        deck.position_s, deck.position_at, deck.sent_percent = 0.0, None, None
        deck.state = _DeckState.ARMING
        deck.ramp = None
        deck.pending = pending
        deck.arm_started = time.monotonic()
        deck.volume = 0.0
        if media is None:
            self._queue.put(_Event(deck.index_in_room, deck.gen, self._vlc.State.Error.value))
            return
        deck.media = media
        deck.media_events = self._watch(deck, media)
        player = deck.player
        player.set_equalizer(self._quiet_eq)
        player.audio_set_volume(0)
        player.set_media(media)
        if player.play() != 0:
            self._queue.put(_Event(deck.index_in_room, deck.gen, self._vlc.State.Error.value))
        player.audio_set_volume(0)

    def _check_armed(self, deck: _Deck, now: float) -> bool:
        """Whether the track is heard yet; True if the deck moved on (armed or given up)."""
        stats = self._stats(deck)
        if stats is None:
            return False
        if stats.played_abuffers > 0:
            self._armed(deck, now)
            return True
        waited = now - deck.arm_started
        if stats.decoded_audio > 0 and waited > OUTPUT_CHECK_S and not self._output.silent and self._capture is None:
            self._output_failed(deck)
            return True
        limit = STREAM_START_TIMEOUT_S if pl.is_stream(deck.entry) else FILE_START_TIMEOUT_S
        if waited > limit:
            self._entry_failed(deck, f"no sound after {limit:g} s")
            return True
        return False

    def _armed(self, deck: _Deck, now: float) -> None:
        # The track's own volume stage exists now: volume 0 sticks, the equalizer can go.
        deck.player.audio_set_volume(0)
        deck.sent_percent, deck.position_at = 0, None
        deck.player.set_equalizer(None)
        if not pl.is_stream(deck.entry) and deck.player.is_seekable():
            # Back to the top, so the fade-in starts at the track's first note rather than
            # wherever the half second of opening got to (the output drops that audio).
            deck.player.set_time(0)
        deck.state = _DeckState.PLAYING
        deck.volume = 0.0
        deck.fail_streak = 0
        if deck is self._active:
            self._dead = None
            self._retries = 0
        self._read_meta(deck)
        self._log.info("deck %s playing %s", deck.label, deck.entry)
        self._plan_next(deck)
        pending, deck.pending = deck.pending, None
        if pending is not None:
            deck.ramp = _Ramp(0.0, pending.level, now, pending.fade_s, pending.curve)
            if pending.on_armed is not None:
                pending.on_armed()

    def _entry_failed(self, deck: _Deck, reason: str) -> None:
        self._problem(f"skipped {deck.entry}: {reason}", skipped=True)
        deck.fail_streak += 1
        if deck.fail_streak >= len(deck.entries):
            self._playlist_dead(deck)
            return
        pending = deck.pending or _Pending(self._level, self._track_fade_in_s)
        self._load(deck, deck.index + 1, pending)

    def _playlist_dead(self, deck: _Deck) -> None:
        name = deck.playlist or "?"
        was_active = deck is self._active
        self._stop_deck(deck)
        message = f"nothing in playlist '{name}' could be played"
        self._problem(message)
        if not was_active:
            return
        other = self._other(deck)
        if other.state is _DeckState.PLAYING:
            # The crossfade never began: the music that was playing goes on.
            self._active = other
            if abs(other.volume - self._level) > 0.5 or other.ramp is not None:
                other.ramp = _Ramp(other.volume, self._level, time.monotonic(), self._pause_fade_s)
            self._dead = f"{message}; still playing '{other.playlist}'"
        else:
            self._dead = f"{message}; the music is silent"
        delay = min(60.0, 5.0 * 2**self._retries)
        self._retries += 1
        self._schedule(delay, partial(self._retry, name))

    def _retry(self, name: str) -> None:
        if self._closing or self._want_playlist != name or not self._playing:
            return
        act = self._active
        if act is not None and act.playlist == name and act.state is not _DeckState.IDLE:
            return
        t = self._last_target
        self._switch(name, None, self._level, t.crossfade_s, t.fade_in_s)

    def _output_failed(self, deck: _Deck) -> None:
        name = f"audio output '{self._output.aout}'" if self._output.aout else "the system's default audio output"
        note = f"{name} plays nothing (no working sound device?): the music plays silently"
        self._output = OutputChoice("adummy", None, note, silent=True)
        self._problem(note)
        for d in self._decks:
            d.player.audio_output_set("adummy")
        self._load(deck, deck.index, deck.pending)

    # --- ending and stopping ---------------------------------------------------------------

    def _other(self, deck: _Deck) -> _Deck:
        return self._decks[1 - deck.index_in_room]

    def _stop_deck(self, deck: _Deck) -> None:
        """Stop now; only for a deck that is silent. Keeps its playlist and place."""
        deck.ramp = None
        deck.pending = None
        if deck.media is not None:
            deck.player.stop()
            self._release_media(deck)
        deck.state = _DeckState.IDLE
        deck.volume = 0.0

    def _fade_out(self, deck: _Deck, seconds: float, then: Callable[[], None], curve: Curve = Curve.LINEAR) -> None:
        if not deck.audible():
            then()
            return
        now = time.monotonic()
        fade = max(MIN_FADE_S, seconds)
        # libvlc applies the volume as audio is handed to the output, which plays it a
        # caching delay later: stopping or pausing at once would cut the fade short.
        hold = self._output_delay_s(deck)
        ramp = deck.ramp
        if ramp is not None and ramp.v1 == 0.0 and ramp.t0 + ramp.duration_s + ramp.hold_s <= now + fade + hold:
            ramp.then = then  # already fading out, and sooner: just do this afterwards
            return
        deck.ramp = _Ramp(deck.volume, 0.0, now, fade, curve, then, hold)

    def _output_delay_s(self, deck: _Deck) -> float:
        option = "--network-caching=" if pl.is_stream(deck.entry) else "--file-caching="
        caching_ms = 1000.0  # libvlc's default
        for arg in self._vlc_args:
            if arg.startswith(option):
                with contextlib.suppress(ValueError):
                    caching_ms = float(arg.removeprefix(option))
        return caching_ms / 1000.0 + OUTPUT_MARGIN_S

    def _pause_deck(self, deck: _Deck) -> None:
        deck.player.set_pause(1)
        deck.state = _DeckState.PAUSED
        deck.position_at = None

    def _finished(self, deck: _Deck) -> None:
        """The track played to its end. No stop(): that would drop audio still queued."""
        deck.state = _DeckState.IDLE
        deck.ramp = None
        deck.pending = None
        deck.volume = 0.0

    def _next_entry(self, deck: _Deck) -> tuple[list[str], int]:
        index = deck.index + 1
        if index < len(deck.entries):
            return deck.entries, index
        # The playlist ran out before its phase did: loop, seeing any new files.
        return self._entries(deck.playlist or "", quiet=True) or deck.entries, 0

    def _plan_next(self, deck: _Deck) -> None:
        """Schedule the next track to open on the other deck just before this one ends,
        so it is heard as this one finishes (opening a track takes about half a second)."""
        length_ms, time_ms = deck.player.get_length(), deck.player.get_time()
        if not length_ms or length_ms <= 0:
            return
        remaining = (length_ms - max(0, time_ms or 0)) / 1000.0
        deck.plan += 1
        self._schedule(max(0.0, remaining - PRELOAD_S), partial(self._preload, deck, deck.plan))

    def _preload(self, deck: _Deck, plan: int) -> None:
        if plan != deck.plan or deck is not self._active or deck.state is not _DeckState.PLAYING:
            return
        if not self._playing or self._closing:
            return
        remaining = (deck.player.get_length() - deck.player.get_time()) / 1000.0
        if remaining > PRELOAD_S + 0.25:
            self._plan_next(deck)
            return
        other = self._other(deck)
        if other.state is not _DeckState.IDLE:
            return  # busy with a crossfade; the end of this track starts the next one
        entries, index = self._next_entry(deck)
        self._start(other, deck.playlist or "", entries, index, _Pending(self._level, self._track_fade_in_s))
        self._active = other

    def _track_ended(self, deck: _Deck) -> None:
        if deck is not self._active or not self._playing or self._closing:
            self._finished(deck)
            return
        entries, index = self._next_entry(deck)
        pending = _Pending(self._level, self._track_fade_in_s)
        other = self._other(deck)
        if other.state is _DeckState.IDLE:
            self._finished(deck)
            self._start(other, deck.playlist or "", entries, index, pending)
            self._active = other
        else:
            deck.entries = list(entries)
            self._load(deck, index, pending)

    # --- commands --------------------------------------------------------------------------

    def _cap(self, volume: float) -> float:
        return min(max(float(volume), 0.0), self._max_volume)

    def _apply(self, target: MusicTarget) -> None:
        if self._closing:
            return
        level = self._cap(target.volume)
        if target.playlist is None:
            self._queued = None
            self._want_playlist, self._playing, self._level = None, target.playing, level
            self._last_target = target
            for d in self._decks:
                self._fade_out(d, target.crossfade_s, partial(self._stop_deck, d))
            self._active = None
            self._dead = None
            return
        if target.playlist not in self._playlists:
            self._problem(f"playlist '{target.playlist}' is not in this room's config")
            return
        act = self._active
        self._want_playlist, self._level, self._last_target = target.playlist, level, target
        queued, self._queued = self._queued, None
        if queued is not None and queued.playlist == target.playlist and target.playing:
            queued.level = level
            self._queued = queued  # still waiting for its deck
            return
        if act is not None and act.playlist == target.playlist:
            if not target.playing:
                if self._playing:
                    self._playing = False
                    self._pause(act)
                return
            if not self._playing:
                self._playing = True
                self._resume(act, target)
                return
            self._change_level(act, level, target.ramp_s)
            return
        self._playing = target.playing
        if not target.playing:
            for d in self._decks:
                self._fade_out(d, self._pause_fade_s, partial(self._stop_deck, d))
            self._active = None
            return
        self._switch(target.playlist, None, level, target.crossfade_s, target.fade_in_s)

    def _switch(
        self,
        playlist: str,
        index: int | None,
        level: float,
        crossfade_s: float,
        fade_in_s: float,
        entries: list[str] | None = None,
    ) -> None:
        """Bring ``playlist`` in on the deck that is not active: a crossfade if music is
        heard now, else a fade-in from silence. ``index`` None: from its start."""
        now = time.monotonic()
        old = self._active
        if index is None:
            for d in self._decks:
                if d is not old and d.playlist == playlist and d.state is _DeckState.PLAYING:
                    # Changed back while it was still fading out: turn it around.
                    d.ramp = _Ramp(d.volume, level, now, max(MIN_FADE_S, crossfade_s))
                    if old is not None:
                        self._fade_out(old, crossfade_s, partial(self._stop_deck, old))
                    self._active = d
                    return
        entries = entries if entries is not None else self._entries(playlist)
        if not entries:
            message = f"nothing in playlist '{playlist}' can be played"
            self._problem(message)
            if old is None or not old.audible():
                self._dead = f"{message}; the music is silent"
                delay = min(60.0, 5.0 * 2**self._retries)
                self._retries += 1
                self._schedule(delay, partial(self._retry, playlist))
            else:
                self._dead = f"{message}; still playing '{old.playlist}'"
            return
        start = 0 if index is None else index % len(entries)
        # Crossfade from the music that is heard and staying; a deck already fading out
        # just finishes its fade, and the new music starts from silence beside it.
        staying = [d for d in self._decks if d.audible() and not d.leaving()]
        outgoing = old if old in staying else (staying[0] if staying else None)
        if old is not None and not old.audible():
            self._stop_deck(old)  # silent: paused, opening or idle
        if outgoing is not None:
            target = self._other(outgoing)
            fade = max(MIN_FADE_S, crossfade_s)
            leaving = outgoing

            def begin_fade_out() -> None:
                self._fade_out(leaving, fade, partial(self._stop_deck, leaving), Curve.EQUAL_GAIN)

            pending = _Pending(level, fade, Curve.EQUAL_GAIN, begin_fade_out)
        else:
            target = min(self._decks, key=lambda d: (d.audible(), d.volume))
            pending = _Pending(level, max(MIN_FADE_S, fade_in_s))
        if target.audible():
            # Both decks are heard (a crossfade is under way): let the leaving one finish
            # quickly, then bring the new music in.
            self._queued = _Switch(playlist, index, level, crossfade_s, fade_in_s, entries)
            self._fade_out(target, QUICK_FADE_S, partial(self._cleared, target))
            return
        self._stop_deck(target)
        self._active = target
        self._start(target, playlist, entries, start, pending)

    def _cleared(self, deck: _Deck) -> None:
        self._stop_deck(deck)
        queued, self._queued = self._queued, None
        if queued is not None and self._playing and not self._closing:
            self._switch(
                queued.playlist,
                queued.index,
                queued.level,
                queued.crossfade_s,
                queued.fade_in_s,
                queued.entries,
            )

    def _pause(self, act: _Deck) -> None:
        other = self._other(act)
        self._fade_out(other, self._pause_fade_s, partial(self._stop_deck, other))
        if act.state is _DeckState.PLAYING:
            self._fade_out(act, self._pause_fade_s, partial(self._pause_deck, act))
        elif act.state is _DeckState.ARMING:
            self._stop_deck(act)

    def _resume(self, act: _Deck, target: MusicTarget) -> None:
        now = time.monotonic()
        level = self._level
        if act.state is _DeckState.PAUSED:
            act.player.set_pause(0)
            act.state = _DeckState.PLAYING
            act.position_at = None
            act.ramp = _Ramp(act.volume, level, now, self._pause_fade_s)
            self._plan_next(act)
        elif act.state is _DeckState.PLAYING:
            act.ramp = _Ramp(act.volume, level, now, self._pause_fade_s)
        elif act.state is _DeckState.ARMING and act.pending is not None:
            act.pending.level = level
        elif act.playlist is not None:
            entries = act.entries or self._entries(act.playlist)
            if entries:
                pending = _Pending(level, max(MIN_FADE_S, target.fade_in_s))
                self._start(act, act.playlist, entries, act.index, pending)
            else:
                self._switch(act.playlist, None, level, target.crossfade_s, target.fade_in_s)

    def _change_level(self, act: _Deck, level: float, ramp_s: float) -> None:
        if act.state is _DeckState.ARMING and act.pending is not None:
            act.pending.level = level
            return
        if act.state is not _DeckState.PLAYING:
            return
        now = time.monotonic()
        heading = act.ramp.v1 if act.ramp is not None else act.volume
        if abs(heading - level) < 0.05:
            return
        duration = max(MIN_FADE_S, ramp_s)
        if act.ramp is not None:
            duration = max(duration, act.ramp.t0 + act.ramp.duration_s - now)
        act.ramp = _Ramp(act.volume, level, now, duration)

    def _skip(self, direction: Literal["next", "previous"]) -> None:
        act = self._active
        step = 1 if direction == "next" else -1
        if self._queued is not None:
            self._queued.index = (self._queued.index or 0) + step
            return
        if self._closing or act is None or act.playlist is None or not act.entries:
            return
        index = act.index + step
        if not self._playing or act.state in (_DeckState.PAUSED, _DeckState.IDLE):
            self._stop_deck(act)
            act.index = index % len(act.entries)
            return
        if act.state is _DeckState.ARMING:
            self._load(act, index, act.pending or _Pending(self._level, self._track_fade_in_s))
            return
        self._switch(act.playlist, index, self._level, self._skip_crossfade_s, self._track_fade_in_s, act.entries)

    def _begin_close(self) -> None:
        self._closing = True
        for d in self._decks:
            self._fade_out(d, self._close_fade_s, partial(self._stop_deck, d))
