"""A room's two decks as one instrument: opened together, their volumes moved over time.

libvlc has no fades of its own, so every volume change here is a `VolumeRamp` (a
`roomctl.curves.Ramp`) stepped every `TICK_S` while it runs. Curves: libvlc's gain is
(volume/100)^3, so a linear ramp of the volume percent is an even-sounding fade (loudness
in dB follows 60*log10 of the percent). Fades, pauses and volume changes use that. A
crossfade instead moves each deck's *amplitude* linearly (`Shape.EQUAL_GAIN`: percent =
cube root), so the two decks' summed power dips at most 3 dB mid-way; linear percent
ramps on both decks would dip 15 dB.

A fade-out that ends in a stop or a pause holds at 0 for the output's delay
(`output.output_delay_s`) before it stops, or the end of the fade would be cut off.

What plays and when is the transport's business; the mixer runs on the worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from roomctl import curves
from roomctl import playlists as pl
from roomctl.curves import Shape
from roomctl.drivers.vlc.deck import Deck, DeckState, Engine, MediaEvent, VolumeRamp
from roomctl.drivers.vlc.output import OutputChoice, OutputHook, output_delay_s
from roomctl.drivers.vlc.status import Problems
from roomctl.drivers.vlc.worker import Worker

TICK_S = 0.048  # about 21 volume steps per second while a ramp runs
MIN_FADE_S = 0.5  # no volume change is ever faster than this
DECK_LABELS = ("A", "B")


class Mixer:
    """Deck A and deck B, the output they play to, and their ramps."""

    def __init__(
        self,
        *,
        worker: Worker,
        log: logging.Logger,
        problems: Problems,
        output: OutputChoice,
        output_hook: OutputHook | None,
        vlc_args: list[str],
        max_volume: float,
    ) -> None:
        self._worker = worker
        self._log = log
        self._problems = problems
        self._hook = output_hook
        self._vlc_args = vlc_args
        self._max_volume = max_volume
        self._engine: Engine | None = None
        self.output = output  # read by other threads
        self.decks: list[Deck] = []
        self._ramp_steps = 0
        self._ramp_seconds = 0.0
        self._last_ramp_tick: float | None = None

    # --- opening, output, closing --------------------------------------------------------

    def open(self, notify: Callable[[MediaEvent], None]) -> None:
        """Start libvlc and both decks (raises `AudioUnavailable`). ``notify`` receives the
        decks' media events, on libvlc's threads."""
        engine = Engine.open(self._vlc_args)
        self._engine = engine
        for i, label in enumerate(DECK_LABELS):
            deck = Deck(i, label, engine.new_player(), engine, notify, self._max_volume)
            if self._hook is not None:
                self._hook.attach(deck.player, label)
            else:
                self._route_output(deck)
            deck.set_volume(0.0, force=True)
            self.decks.append(deck)
        self._log.info("libvlc %s ready, output %s", engine.version, self.output.aout or "system default")

    def _route_output(self, deck: Deck) -> None:
        out = self.output
        if out.aout and not deck.set_output(out.aout):
            note = f"audio output '{out.aout}' is not available; using the system default"
            self.output = OutputChoice(None, out.device, note)
            self._problems.note(note)
        if self.output.device:
            deck.set_output_device(self.output.device)

    @property
    def checks_output(self) -> bool:
        """Whether an output that takes audio but plays none can be told apart (not for
        a silent output, nor for a measurement sink)."""
        return not self.output.silent and not (self._hook is not None and self._hook.measuring)

    def output_plays_nothing(self) -> None:
        """The output takes audio but plays none: play silently from now on, and say so."""
        name = f"audio output '{self.output.aout}'" if self.output.aout else "the system's default audio output"
        note = f"{name} plays nothing (no working sound device?): the music plays silently"
        self.output = OutputChoice("adummy", None, note, silent=True)
        self._problems.note(note)
        for d in self.decks:
            d.set_output("adummy")

    def close(self) -> None:
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
        """Whether the ticker must run: a ramp moves, or a track opens."""
        return any(d.state is DeckState.ARMING or (d.ramp is not None and not d.ramp.holding) for d in self.decks)

    def settled(self) -> bool:
        """No ramp (not even a hold) and no track opening."""
        return all(d.ramp is None and d.state is not DeckState.ARMING for d in self.decks)

    def tick(self, now: float, check_arming: Callable[[Deck, float], bool]) -> bool:
        """One step of every ramp; True if a deck changed more than its volume.
        ``check_arming`` looks at an opening deck first (True: it moved on)."""
        changed = ramping = False
        for deck in self.decks:
            if deck.state is DeckState.ARMING:
                changed = check_arming(deck, now) or changed
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
            elif deck.state is DeckState.ARMING:
                deck.set_volume(0.0, force=True)
        if ramping and self._last_ramp_tick is not None:
            self._ramp_steps += 1
            self._ramp_seconds += now - self._last_ramp_tick
        self._last_ramp_tick = now if ramping else None
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
            if ramp.then is not None:
                ramp.then()

    def fade_out(self, deck: Deck, seconds: float, then: Callable[[], None], shape: Shape = Shape.LINEAR) -> None:
        """Fade ``deck`` to 0 over ``seconds`` (at least `MIN_FADE_S`), hold for the output's
        delay, then run ``then`` (at once if the deck is not heard)."""
        if not deck.audible():
            then()
            return
        now = time.monotonic()
        fade = max(MIN_FADE_S, seconds)
        # libvlc applies the volume as audio is handed to the output, which plays it a
        # caching delay later: stopping or pausing at once would cut the fade short.
        hold = output_delay_s(self._vlc_args, stream=pl.is_stream(deck.entry))
        ramp = deck.ramp
        if ramp is not None and ramp.end == 0.0 and ramp.curve.end_t + ramp.hold_s <= now + fade + hold:
            ramp.then = then  # already fading out, and sooner: just do this afterwards
            return
        deck.ramp = VolumeRamp(curves.Ramp(deck.volume, 0.0, now, fade, shape), then, hold)
