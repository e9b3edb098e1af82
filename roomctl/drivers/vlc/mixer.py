"""A room's two decks as one instrument: opened together, mixed into one output, their
volumes moved over time.

libvlc has no fades of its own, and here it applies no volume at all: each deck decodes
into its `Feed` and the room's `PcmOut` applies every gain as it mixes, sample by sample.
A volume change is a `VolumeRamp` (a `roomctl.curves.Ramp`): the output follows its curve
exactly; the worker steps it every `TICK_S` only to know where it is and when it ends.
Curves: the heard gain is `curves.volume_gain` (percent/100 squared), so a linear ramp of
the percent is an even-sounding fade. A crossfade instead moves each deck's *amplitude*
linearly (`Shape.EQUAL_GAIN`), so the two decks' summed power dips at most 3 dB mid-way.

What plays and when is the transport's business; the mixer runs on the worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from roomctl import curves
from roomctl.curves import Shape
from roomctl.drivers.vlc.deck import Deck, DeckState, Engine, MediaEvent, VolumeRamp
from roomctl.drivers.vlc.feed import Feed, Start
from roomctl.drivers.vlc.output import OutputChoice, OutputHook, make_sink
from roomctl.drivers.vlc.pcmout import BLOCK_S, OutputStatus, PcmOut
from roomctl.drivers.vlc.sink import LATENCY_S, Sink
from roomctl.drivers.vlc.worker import Worker

TICK_S = 0.048  # about 21 volume steps per second while a ramp runs
MIN_FADE_S = 0.5  # no volume change is ever faster than this
DECK_LABELS = ("A", "B")
FADE_HOLD_S = LATENCY_S + 2 * BLOCK_S  # a fade-out's end is heard this long after it is mixed


class Mixer:
    """Deck A and deck B, the output they play to, and their ramps."""

    def __init__(
        self,
        *,
        worker: Worker,
        log: logging.Logger,
        output: OutputChoice,
        output_hook: OutputHook | None,
        vlc_args: list[str],
        max_volume: float,
        ceiling_gain: float,
        name: str,
    ) -> None:
        self._worker = worker
        self._log = log
        self._hook = output_hook
        self._vlc_args = vlc_args
        self._max_volume = max_volume
        self._ceiling_gain = ceiling_gain
        self._name = name
        self._engine: Engine | None = None
        self.output = output  # read by other threads
        self.decks: list[Deck] = []
        self.pcm: PcmOut | None = None  # read by other threads
        self._ramp_steps = 0
        self._ramp_seconds = 0.0
        self._last_ramp_tick: float | None = None

    # --- opening, output, closing --------------------------------------------------------

    def open(self, notify: Callable[[MediaEvent], None], on_start: Callable[[Feed, int, Start], None],
             on_finish: Callable[[Feed, int], None], on_output: Callable[[], None]) -> None:
        """Start libvlc, both decks and the output (raises `AudioUnavailable`). ``notify``
        receives the decks' media events (on libvlc's threads), ``on_start``/``on_finish``
        the feeds' starts and ends and ``on_output`` changes of the output (on the output
        thread): each must only enqueue."""
        engine = Engine.open(self._vlc_args)
        self._engine = engine
        for i, label in enumerate(DECK_LABELS):
            feed = Feed(label)
            feed.on_start, feed.on_finish = on_start, on_finish
            deck = Deck(i, label, engine.new_player(), engine, notify, self._max_volume, feed)
            deck.attach_feed()
            self.decks.append(deck)
        sink: Sink = self._hook if self._hook is not None else make_sink(self.output, f"roomctl {self._name}")
        # The cap holds on every sample: the loudest the cap allows, at the true-peak ceiling.
        limit = curves.volume_gain(self._max_volume) * self._ceiling_gain
        self.pcm = PcmOut(sink, [d.feed for d in self.decks], limit=limit, log=self._log, on_status=on_output)
        self.pcm.start(f"roomctl-output-{self._name}")
        self._log.info("libvlc %s ready, output %s", engine.version, sink.description)

    def output_status(self) -> OutputStatus | None:
        return self.pcm.status() if self.pcm is not None else None

    def close(self) -> None:
        if self.pcm is not None:
            self.pcm.stop()
        for deck in self.decks:
            try:
                deck.release()
            except Exception:
                self._log.exception("releasing deck %s failed", deck.label)
        if self._engine is not None:
            self._engine.release()
        self.decks.clear()
        self._log.info("audio closed")

    def other(self, deck: Deck) -> Deck:
        return self.decks[1 - deck.index_in_room]

    # --- volumes over time ---------------------------------------------------------------

    def moving(self) -> bool:
        """Whether the ticker must run: a ramp moves."""
        return any(d.ramp is not None and not d.ramp.holding for d in self.decks)

    def settled(self) -> bool:
        """No ramp (not even a hold) and no track opening."""
        return all(d.ramp is None and d.state is not DeckState.ARMING for d in self.decks)

    def sync(self) -> None:
        for deck in self.decks:
            deck.sync_feed()

    def tick(self, now: float) -> bool:
        """One step of every ramp; True if a deck changed more than its volume."""
        changed = ramping = False
        for deck in self.decks:
            ramp = deck.ramp
            if ramp is not None and not ramp.holding:
                ramping = True
                deck.set_volume(ramp.value_at(now))
                if ramp.done(now) and deck.ramp is ramp:
                    changed = True
                    if ramp.hold_s > 0:
                        ramp.holding = True
                        self._worker.schedule(ramp.hold_s, partial(self._end_ramp, deck, ramp))
                    else:
                        self._end_ramp(deck, ramp)
        if ramping and self._last_ramp_tick is not None:
            self._ramp_steps += 1
            self._ramp_seconds += now - self._last_ramp_tick
        self._last_ramp_tick = now if ramping else None
        self.sync()
        return changed

    def ticker_stopped(self) -> None:
        self._last_ramp_tick = None

    def fade_steps_per_s(self) -> float | None:
        """Volume steps per second measured while ramps ran (None before any ramp)."""
        seconds, steps = self._ramp_seconds, self._ramp_steps
        return steps / seconds if seconds > 0 else None

    def _end_ramp(self, deck: Deck, ramp: VolumeRamp) -> None:
        if deck.ramp is ramp:
            deck.ramp = None
            deck.sync_feed()
            if ramp.then is not None:
                ramp.then()

    def fade_out(self, deck: Deck, seconds: float, then: Callable[[], None], shape: Shape = Shape.LINEAR) -> None:
        """Fade ``deck`` to 0 over ``seconds`` (at least `MIN_FADE_S`), hold until the end
        of the fade is heard, then run ``then`` (at once if the deck is not heard)."""
        if not deck.audible():
            then()
            return
        now = time.monotonic()
        fade = max(MIN_FADE_S, seconds)
        ramp = deck.ramp
        if ramp is not None and ramp.end == 0.0 and ramp.curve.end_t + ramp.hold_s <= now + fade + FADE_HOLD_S:
            ramp.then = then  # already fading out, and sooner: just do this afterwards
            return
        deck.ramp = VolumeRamp(curves.Ramp(deck.volume, 0.0, now, fade, shape), then, FADE_HOLD_S)
        deck.sync_feed()
