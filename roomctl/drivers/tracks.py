"""What a music file is, before it is played: does it decode, how long is it, how loud.

`probe` opens a file and decodes a moment of its audio (a file that fails here would only
cost playback time later); `measure` finds its integrated loudness (ITU-R BS.1770-4 /
EBU R128, LUFS) and true peak, by FFmpeg's ``ebur128`` filter through PyAV, as the room
will play it (stereo: a mono file is heard on both speakers); `from_tags` reads the same
from ReplayGain 2 or R128 tags (mutagen), when a file carries them. `track_gain` turns a
loudness into the gain that brings it to the room's target, never pushing its true peak
past the ceiling.

`TrackChecks` runs these in a child process (``python -m roomctl.drivers.tracks``, one
JSON line per file each way: a file that crashes a decoder cannot take the room down, and
decoding never competes with the output for the interpreter), one file at a time, and
keeps the results in memory and in a JSON cache keyed by path, size and modification time. Nothing here knows of libvlc.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

PROBE_S = 0.5  # a file must decode this much audio to count as playable
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2's reference level
R128_REFERENCE_LUFS = -23.0  # Opus R128_TRACK_GAIN is relative to EBU R128's -23 LUFS
CHECK_TIME_LIMIT_S = 600.0  # one file's check (a whole long file decoded) may take this long


@dataclass(frozen=True)
class Probe:
    problem: str | None  # None: it decodes
    duration_s: float | None


@dataclass(frozen=True)
class Loudness:
    lufs: float  # integrated loudness as played (stereo)
    true_peak: float  # linear, 1.0 = 0 dBTP
    source: str  # "measured" or "tags"


def _av_error(exc: Exception) -> str:
    """FFmpeg's words for what is wrong ("Invalid data found when processing input")."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return str(text).split(": '", 1)[0]


def probe(path: str) -> Probe:
    """Open ``path`` and decode `PROBE_S` of its audio."""
    import av  # imported where used: the service's own process never decodes

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return Probe("no audio stream in it", None)
            stream = container.streams.audio[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            decoded = 0.0
            for frame in container.decode(stream):
                decoded += frame.samples / (frame.sample_rate or 1)
                if decoded >= PROBE_S:
                    break
            if decoded == 0.0:
                return Probe("no audio could be decoded from it", duration)
            if duration is not None and duration >= PROBE_S and decoded < min(PROBE_S, duration) * 0.9:
                return Probe(f"only {decoded:.2f} s of its audio decodes", duration)
            return Probe(None, duration if duration is not None and duration > 0 else None)
    except Exception as exc:  # PyAV raises its own error types for every kind of bad file
        return Probe(f"cannot be decoded ({_av_error(exc)})", None)


def measure(path: str) -> Loudness:
    """Integrated loudness and true peak of the whole file, as the room plays it (stereo)."""
    import av
    import av.filter

    with av.open(path) as container:
        stream = container.streams.audio[0]
        graph = av.filter.Graph()
        src = graph.add_abuffer(template=stream)
        chain = [src]
        if stream.channels == 1:
            chain.append(graph.add("pan", "stereo|c0=c0|c1=c0"))  # heard on both speakers
        elif stream.channels > 2:
            chain.append(graph.add("aformat", "channel_layouts=stereo"))
        chain.append(graph.add("ebur128", "peak=true:metadata=1"))
        chain.append(graph.add("abuffersink"))
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()
        last: dict[str, str] = {}

        def drain() -> None:
            while True:
                try:
                    frame = graph.pull()
                except (av.BlockingIOError, av.EOFError):
                    return
                last.update(frame.metadata)  # a frame may carry none (the flush at the end)

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    lufs = float(last.get("lavfi.r128.I", "-inf"))
    true_peak = float(last.get("lavfi.r128.true_peak", "1.0"))  # linear (1.0 = 0 dBTP)
    if not math.isfinite(lufs):
        raise ValueError("silent: no loudness to measure")
    return Loudness(lufs, true_peak, "measured")


def _tag_float(value: object) -> float | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.strip().lower().removesuffix("db").strip()
    try:
        return float(text)
    except ValueError:
        return None


def from_tags(path: str) -> Loudness | None:
    """Loudness from ReplayGain 2 (REPLAYGAIN_TRACK_GAIN/PEAK) or R128_TRACK_GAIN tags."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except Exception:
        return None
    if audio is None or audio.tags is None:
        return None
    tags = audio.tags
    found: dict[str, object] = {}
    for key in list(tags.keys()):
        name = str(key).lower()
        for want in ("replaygain_track_gain", "replaygain_track_peak", "r128_track_gain"):
            if name.endswith(want):
                item = tags[key]
                text = getattr(item, "text", item)  # ID3 frames carry .text
                found[want] = text
    gain = _tag_float(found.get("replaygain_track_gain"))
    peak = _tag_float(found.get("replaygain_track_peak"))
    if gain is not None:
        return Loudness(REPLAYGAIN_REFERENCE_LUFS - gain, peak if peak and peak > 0 else 1.0, "tags")
    r128 = _tag_float(found.get("r128_track_gain"))
    if r128 is not None:
        return Loudness(R128_REFERENCE_LUFS - r128 / 256.0, 1.0, "tags")
    return None


def check(path: str, want_loudness: bool) -> tuple[Probe, Loudness | None, str | None]:
    """Probe ``path`` and (if asked) find its loudness: from tags, else measured. Runs in
    the checking process."""
    result = probe(path)
    if result.problem is not None or not want_loudness:
        return result, None, None
    loud = from_tags(path)
    if loud is not None:
        return result, loud, None
    try:
        return result, measure(path), None
    except Exception as exc:
        return result, None, f"loudness not measured: {_av_error(exc)}"


def track_gain(loud: Loudness | None, *, target_lufs: float, ceiling_db: float, unmeasured_db: float) -> float:
    """The linear gain for a track: to the target, its true peak kept under the ceiling;
    a track not measured yet plays at ``unmeasured_db``."""
    if loud is None:
        return 10 ** (unmeasured_db / 20)
    gain_db = target_lufs - loud.lufs
    if loud.true_peak > 0:
        gain_db = min(gain_db, ceiling_db - 20 * math.log10(loud.true_peak))
    return 10 ** (gain_db / 20)


@dataclass(frozen=True)
class TrackState:
    problem: str | None  # why it cannot play (None: it can, or not checked yet)
    duration_s: float | None
    loudness: Loudness | None
    checked: bool  # probed


def _end(child: subprocess.Popen[str]) -> None:
    """Stop the checking process and close its pipes."""
    with contextlib.suppress(OSError):
        child.kill()
    child.wait()
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{path}\0{st.st_size}\0{st.st_mtime_ns}"


class TrackChecks:
    """Probes and loudness of the room's files, found in the background.

    ``cache`` (a JSON file in the data directory, or None) keeps results across restarts.
    `state` never waits; `check` queues files (in the order given, ahead of files queued
    before); `wait` blocks until the given files are probed (preflight, on a thread)."""

    def __init__(self, cache: Path | None, log: logging.Logger, *, loudness: bool = True) -> None:
        self._cache_path = cache
        self._log = log
        self._loudness = loudness
        self._lock = threading.Condition()
        self._states: dict[str, TrackState] = {}
        self._keys: dict[str, str] = {}
        self._cached: dict[str, dict[str, object]] = self._load_cache()
        self._probes: list[str] = []  # files to probe: first, they decide what plays
        self._measures: list[str] = []  # probed files whose loudness is to be found
        self._queued: set[str] = set()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[str] | None = None
        self._closed = False
        self._unsaved = 0
        self.on_change: Callable[[], None] | None = None

    # --- any thread ---------------------------------------------------------------------

    def state(self, path: str) -> TrackState | None:
        with self._lock:
            return self._states.get(path)

    def check(self, paths: Iterable[str], *, first: bool = False) -> None:
        """Queue ``paths`` (files; streams are not checked). A file already known by its
        cached key is known at once."""
        fresh: list[str] = []
        paths = list(paths)
        if first:
            with self._lock:  # queued already: to the front
                wanted = set(paths)
                self._probes = [p for p in self._probes if p in wanted] + [p for p in self._probes if p not in wanted]
        for path in paths:
            if "://" in path:
                continue
            key = _key(path)
            with self._lock:
                if path in self._queued or (path in self._states and self._keys.get(path) == key):
                    continue
                # Changed on disk (or never known): what was known of it no longer holds.
                self._states.pop(path, None)
                self._keys.pop(path, None)
            if self._from_cache(path):
                continue
            fresh.append(path)
        if not fresh:
            return
        with self._lock:
            if self._closed:
                return
            fresh = [p for p in fresh if p not in self._queued]
            self._probes = [*fresh, *self._probes] if first else [*self._probes, *fresh]
            self._queued.update(fresh)
            self._wake()

    def _wake(self) -> None:
        """Start the checking thread if need be, and tell it there is work (lock held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="roomctl-track-checks", daemon=True)
            self._thread.start()
        self._lock.notify_all()

    def wait(self, paths: Iterable[str], timeout_s: float) -> bool:
        """Block until every file of ``paths`` is probed (True), or ``timeout_s`` passes."""
        wanted = [p for p in paths if "://" not in p]
        self.check(wanted, first=True)
        with self._lock:
            return self._lock.wait_for(lambda: all(
                (s := self._states.get(p)) is not None and s.checked for p in wanted), timeout_s)

    def mark_broken(self, path: str, reason: str) -> None:
        """A file that failed to play: known broken until it changes on disk."""
        with self._lock:
            known = self._states.get(path)
            self._states[path] = TrackState(reason, known.duration_s if known else None, None, True)
            self._keys.pop(path, None)  # probed again at the next scan: it may have been a passing fault

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._probes.clear()
            self._measures.clear()
            self._lock.notify_all()
            child, self._child = self._child, None
        if child is not None:
            _end(child)

    # --- the checking thread ------------------------------------------------------------

    def _load_cache(self) -> dict[str, dict[str, object]]:
        if self._cache_path is None:
            return {}
        try:
            data = json.loads(self._cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _from_cache(self, path: str) -> bool:
        key = _key(path)
        if key is None:
            return False
        with self._lock:
            entry = self._cached.get(key)
        if not isinstance(entry, dict):
            return False
        loud = entry.get("loudness")
        try:
            loudness = Loudness(**loud) if isinstance(loud, dict) else None
        except TypeError:
            return False
        duration = entry.get("duration_s")
        with self._lock:
            self._states[path] = TrackState(None, float(duration) if isinstance(duration, int | float) else None,
                                            loudness, True)
            self._keys[path] = key
            if loudness is None and self._loudness and path not in self._queued:
                self._measures.append(path)  # probed before, not measured yet
                self._queued.add(path)
                self._wake()
        return True

    def _save_cache(self) -> None:
        if self._cache_path is None:
            return
        with self._lock:
            data = json.dumps(self._cached)
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._cache_path.parent, prefix=".loudness-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, self._cache_path)
        except OSError as exc:
            self._log.warning("cannot write the loudness cache %s: %s", self._cache_path, exc)

    def _submit(self, path: str, want_loudness: bool) -> tuple[Probe, Loudness | None, str | None]:
        child = self._child
        if child is None or child.poll() is not None:
            # The same interpreter, with nothing of ours but this module.
            child = subprocess.Popen([sys.executable, "-m", "roomctl.drivers.tracks"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
            with self._lock:
                if self._closed:
                    _end(child)
                    raise RuntimeError("closed")
                self._child = child
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"path": path, "loudness": want_loudness}) + "\n")
        child.stdin.flush()
        deadline = time.monotonic() + CHECK_TIME_LIMIT_S
        while not select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if time.monotonic() >= deadline:
                _end(child)
                raise TimeoutError(f"checking took longer than {CHECK_TIME_LIMIT_S:g} s")
        line = child.stdout.readline()
        if not line:
            _end(child)
            raise ChildProcessError("it crashed the decoder")
        answer = json.loads(line)
        loud = answer.get("loudness")
        return (Probe(answer.get("problem"), answer.get("duration_s")),
                Loudness(**loud) if isinstance(loud, dict) else None, answer.get("note"))

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # lower priority: playback comes first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._probes or self._measures or self._closed)
                if self._closed:
                    return
                probing = bool(self._probes)
                path = self._probes.pop(0) if probing else self._measures.pop(0)
            key = _key(path)
            try:
                if key is None:
                    raise FileNotFoundError(path)
                result, loud, note = self._submit(path, self._loudness and not probing)
            except FileNotFoundError:
                result, loud, note = Probe("missing file", None), None, None
            except ChildProcessError as exc:
                result, loud, note = Probe(str(exc), None), None, None
            except Exception as exc:  # a check that hangs past its limit, a pool that was closed
                with self._lock:
                    if self._closed:
                        return
                result, loud, note = Probe(None, None), None, f"not checked: {exc!r}"
            if note:
                self._log.info("%s: %s", path, note)
            with self._lock:
                self._queued.discard(path)
                known = self._states.get(path)
                if loud is None and known is not None and known.loudness is not None and result.problem is None:
                    loud = known.loudness
                self._states[path] = TrackState(result.problem, result.duration_s, loud, True)
                if key is not None:
                    self._keys[path] = key
                    if result.problem is None:
                        self._cached[key] = {"duration_s": result.duration_s,
                                             "loudness": asdict(loud) if loud is not None else None}
                        if probing and self._loudness and loud is None:
                            self._measures.append(path)  # its loudness next, after every probe
                            self._queued.add(path)
                self._unsaved += 1
                save = not (self._probes or self._measures) or self._unsaved >= 20
                if save:
                    self._unsaved = 0
                self._lock.notify_all()
            if save:
                self._save_cache()
            if self.on_change is not None:
                self.on_change()


def _serve() -> None:
    """The checking process: one JSON request per line in, one answer per line out."""
    for line in sys.stdin:
        request = json.loads(line)
        result, loud, note = check(str(request["path"]), bool(request.get("loudness", True)))
        answer = {"problem": result.problem, "duration_s": result.duration_s,
                  "loudness": asdict(loud) if loud is not None else None, "note": note}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _serve()
