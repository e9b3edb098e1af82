"""The room's one output stream: the decks' feeds mixed, every gain applied, the sink watched.

A thread of its own (no libvlc call, no file access): every `BLOCK_S` it takes each feed's
next samples, multiplies them by the feed's gain, sample by sample (its volume, or a ramp of
it, on the `curves.volume_gain` taper, times the track's loudness gain), adds the feeds up,
holds every sample within the cap (``limit``: the cap's gain at the true-peak ceiling) and
writes the block to the sink. So nothing reaches the speaker that this code has not scaled,
and the stream is opened once, not per track: no new stream can start loud.

Times: a block is mixed a little before it is heard (the sink's buffer); ramps are evaluated
at the time the block is *heard*, which is the time the transport's ramps are expressed in.

Starts: a feed cued `IMMEDIATE` starts with its first audio; one cued after another starts
on the sample after the other's last (gapless), or its overlap before (a crossfade: the new
one rises, the old one falls, equal-gain), and a fade-in starts its clock on the first sample
mixed. The output tells the transport (``on_start``/``on_finish``, which only enqueue).

The sink: if it fails (a write error, or a write that has not returned for `STALL_S`) the
thread goes on mixing in time, to nothing, says so in `status`, and opens the sink again
every `sink.REOPEN_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from roomctl import curves
from roomctl.drivers.vlc.feed import CHANNELS, RATE, Feed, FloatBlock, Start
from roomctl.drivers.vlc.sink import LATENCY_S, Sink, SinkError

BLOCK_S = 0.1  # 10 blocks a second: each costs the same interpreter time, however long
BLOCK_FRAMES = int(BLOCK_S * RATE)
REOPEN_S = 0.5
STALL_S = 1.0  # a write that has not returned for this long: the output takes no audio
CLOCK_LEAD_S = 0.04  # how far ahead of the clock a sink that does not block is fed
MAX_LEAD_S = 1.0  # a blocking sink that stops blocking is held to this


@dataclass(frozen=True)
class OutputStatus:
    ok: bool
    detail: str | None  # what is wrong, or what the output is
    since: float  # monotonic time of the last change


class PcmOut:
    """Mixes ``feeds`` to ``sink`` on its own thread (`start`/`stop`)."""

    def __init__(self, sink: Sink, feeds: Sequence[Feed], *, limit: float, log: logging.Logger,
                 on_status: Callable[[], None] | None = None) -> None:
        self.sink = sink
        self._feeds = list(feeds)
        self.limit = limit  # no output sample is ever beyond +-limit
        self._log = log
        self._on_status = on_status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status = OutputStatus(False, f"{sink.description}: not opened yet", time.monotonic())
        self._write_since: float | None = None
        self.blocks = 0  # blocks mixed (for the bench)
        self._unit = np.arange(1, BLOCK_FRAMES + 1, dtype=np.float32) / BLOCK_FRAMES  # a block's 0..1 ramp

    # --- any thread -----------------------------------------------------------------------

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def status(self) -> OutputStatus:
        with self._lock:
            status, since = self._status, self._write_since
        if status.ok and since is not None and time.monotonic() - since > STALL_S:
            return OutputStatus(False, f"{self.sink.description} takes no audio (stalled for "
                                       f"{time.monotonic() - since:.0f} s)", since)
        return status

    def wait_opened(self, timeout_s: float) -> OutputStatus:
        """The status once the first attempt to open the sink is over."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            if status.ok or not status.detail or "not opened yet" not in status.detail:
                return status
            time.sleep(0.01)
        return self.status()

    # --- the output thread ------------------------------------------------------------------

    def _set_status(self, ok: bool, detail: str | None) -> None:
        with self._lock:
            changed = ok != self._status.ok or detail != self._status.detail
            if changed:
                self._status = OutputStatus(ok, detail, time.monotonic())
        if changed:
            (self._log.info if ok else self._log.warning)("audio output: %s", detail or "ok")
            if self._on_status is not None:
                self._on_status()

    def _run(self) -> None:
        sink = self.sink
        opened = False
        next_open = 0.0
        anchor = time.monotonic()
        frames_out = 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if not opened and now >= next_open:
                    try:
                        sink.open()
                    except SinkError as exc:
                        self._set_status(False, str(exc))
                        next_open = now + REOPEN_S
                    except Exception as exc:  # a library that breaks: the same as a failed output
                        self._set_status(False, f"{sink.description}: {exc}")
                        next_open = now + REOPEN_S
                    else:
                        opened = True
                        self._set_status(True, None)
                        anchor, frames_out = now + (LATENCY_S if sink.paced else CLOCK_LEAD_S), 0
                due = anchor + frames_out / RATE
                blocking = opened and sink.paced
                lead = due - now
                if lead > (MAX_LEAD_S if blocking else CLOCK_LEAD_S):
                    self._stop.wait(lead - (MAX_LEAD_S if blocking else CLOCK_LEAD_S))
                elif lead < -0.25:  # fell behind (a slow machine, a sink that was away): catch up
                    anchor, frames_out = now, 0
                    due = now
                block, events = self._mix(BLOCK_FRAMES, due)
                self.blocks += 1
                if opened:
                    with self._lock:
                        self._write_since = time.monotonic()
                    try:
                        sink.write(block, due)
                    except Exception as exc:
                        opened = False
                        self._set_status(False, str(exc) if isinstance(exc, SinkError) else
                                         f"{sink.description}: {exc}")
                        self._close_quietly()
                        next_open = time.monotonic() + REOPEN_S
                        anchor, frames_out = time.monotonic(), 0
                    finally:
                        with self._lock:
                            self._write_since = None
                    if opened and blocking and time.monotonic() - now > 0.002:
                        # The device sets the pace: what it has taken is what is heard next.
                        anchor = time.monotonic() + LATENCY_S - (frames_out + BLOCK_FRAMES) / RATE
                frames_out += BLOCK_FRAMES
                for fire in events:
                    fire()
        except BaseException:
            self._log.exception("audio output thread stopped")
            self._set_status(False, "audio output thread stopped")
            raise
        finally:
            if opened:
                self._close_quietly()

    def _close_quietly(self) -> None:
        try:
            self.sink.close()
        except Exception:
            self._log.exception("closing the audio output failed")

    def _gain(self, feed: Feed, t: float) -> float:
        return curves.volume_gain(feed.level_at(t)) * feed.gain

    def _mix(self, n: int, t0: float) -> tuple[FloatBlock, list[Callable[[], None]]]:
        out = np.zeros((n, CHANNELS), dtype=np.float32)
        events: list[Callable[[], None]] = []
        ends: dict[int, int] = {}  # id(feed) -> offset just after its last sample, this block
        after: dict[int, tuple[int | None, float, float, curves.Ramp | None, float]] = {}
        loudest = 0.0  # the most any output sample can be: the sum of the gains applied
        # Feeds already playing first: a feed cued after one of them needs to know where it ends.
        order = sorted(self._feeds, key=lambda f: not f.mixing)
        deferred: list[tuple[Feed, curves.Ramp]] = []
        for feed in order:
            with feed.lock:
                if feed.cue is None or feed.finished:
                    continue
                offset = 0
                if not feed.mixing:
                    begun = self._begin(feed, n, t0, ends, after, deferred)
                    if begun is None:
                        continue
                    offset, start = begun
                    if feed.on_start is not None:
                        events.append(partial(feed.on_start, feed, feed.gen, start))
                if not feed.paused:
                    chunk = feed.take(n - offset)
                    k = len(chunk)
                    if k:
                        g0 = feed.last_gain
                        g1 = self._gain(feed, t0 + (offset + k) / RATE)
                        if g0 == g1:  # holding steady: one factor for the block
                            if g1 != 0.0:
                                out[offset : offset + k] += chunk * np.float32(g1)
                        else:  # moving: sample by sample, from where the last block ended
                            unit = self._unit if k == n else np.arange(1, k + 1, dtype=np.float32) / np.float32(k)
                            env = np.float32(g0) + np.float32(g1 - g0) * unit
                            out[offset : offset + k] += chunk * env[:, None]
                        feed.last_gain = g1
                        loudest += max(g0, g1)
                    if feed.ended and feed.queued_frames == 0:
                        feed.finished = True
                        ends[id(feed)] = offset + k
                        if feed.on_finish is not None:
                            events.append(partial(feed.on_finish, feed, feed.gen))
                    t_end = t0 + n / RATE
                    target = feed.ramp.end if feed.ramp is not None else feed.volume
                    after[id(feed)] = (feed.remaining_frames(), feed.level_at(t_end), target, feed.ramp,
                                       feed.last_gain / feed.gain if feed.gain > 0 else 0.0)
        for feed, ramp in deferred:
            with feed.lock:
                feed.ramp, feed.adopting = ramp, True
        if loudest > self.limit:  # samples are within +-1: below this sum of gains none can pass
            np.clip(out, -self.limit, self.limit, out=out)
        return out, events

    def _begin(
        self,
        feed: Feed,
        n: int,
        t0: float,
        ends: dict[int, int],
        after: dict[int, tuple[int | None, float, float, curves.Ramp | None, float]],
        deferred: list[tuple[Feed, curves.Ramp]],
    ) -> tuple[int, Start] | None:
        """Whether ``feed`` starts in this block, and where: (offset, what it started with)."""
        cue = feed.cue
        assert cue is not None
        if feed.queued_frames == 0 and not feed.ended:
            return None  # nothing to play yet
        prev = cue.after
        offset = 0
        joined = False  # follows the previous track without a gap
        other_ramp: curves.Ramp | None = None
        if prev is not None:
            info = after.get(id(prev))
            if id(prev) in ends:
                offset, joined = ends[id(prev)], True
            elif info is not None:
                remaining, level_now, target, prev_ramp, _ = info
                overlap = int(cue.overlap_s * RATE)
                if not (overlap > 0 and remaining is not None and remaining <= overlap + n):
                    return None  # the track before is still playing
                joined = True
                # Both ramps start where the old track's gain for this block ends: the new one
                # is silent for its first block, and never adds to the old one at full level.
                t_ramp = t0 + n / RATE
                seconds = max(BLOCK_S, (remaining - n) / RATE if remaining > n else BLOCK_S)
                other_ramp = curves.Ramp(level_now, 0.0, t_ramp, seconds, curves.Shape.EQUAL_GAIN)
                deferred.append((prev, other_ramp))
                ramp = curves.Ramp(0.0, target, t_ramp, seconds, curves.Shape.EQUAL_GAIN)
                feed.mixing, feed.started_at, feed.ramp, feed.adopting = True, t0, ramp, True
                feed.last_gain = 0.0
                return 0, Start(t0, ramp, 0.0, other_ramp)
            # else: the track before is gone (stopped, or it ended before this one was ready)
        t_start = t0 + offset / RATE
        feed.mixing, feed.started_at, feed.adopting = True, t_start, True
        if joined and prev is not None:
            # Straight on at the level the last track had, on the same ramp if one ran.
            prev_info = after.get(id(prev))
            if prev_info is not None:
                _, level_now, _, prev_ramp, prev_unit_gain = prev_info
                feed.volume, feed.ramp = level_now, prev_ramp
                feed.last_gain = prev_unit_gain * feed.gain
            else:
                feed.last_gain = curves.volume_gain(feed.level_at(t_start)) * feed.gain
            return offset, Start(t_start, feed.ramp, feed.volume)
        old = cue.replaces
        old_info = after.get(id(old)) if old is not None else None
        t_ramp = t_start
        if old is not None and old_info is not None and id(old) not in ends:
            # The music it replaces falls as this rises, from where its gain for this block
            # ends (not when the worker hears of it): their gains never add up past the level.
            t_ramp = t0 + n / RATE
            other_ramp = curves.Ramp(old_info[1], 0.0, t_ramp, max(BLOCK_S, cue.replace_s), curves.Shape.EQUAL_GAIN)
            deferred.append((old, other_ramp))
        if feed.fade_in is not None:
            level, seconds, shape = feed.fade_in
            feed.ramp = curves.Ramp(0.0, level, t_ramp, seconds, shape)
            feed.volume = 0.0
        feed.last_gain = 0.0
        return offset, Start(t_start, feed.ramp, feed.volume, other_ramp)
