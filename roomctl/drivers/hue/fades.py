"""One light's course in time: the fades the bridge is told to run, and what it is doing.

`blend` is the state part of the way between two (the fraction from `roomctl.curves`);
`Chain` is what one light should do after one `apply`, cut into commands no longer than a
bulb takes (`ChainedFade`: v1, Hue's 65535 ds; `roomctl.drivers.hue.v2.V2Fade`: 6000 s);
`Course` is what the light is doing as far as roomctl knows (for readings, and as the start
of the next fade).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from roomctl import curves, units
from roomctl.drivers.hue.color import HueState

MAX_TRANSITION_DS = 65535  # the longest transitiontime a Hue command takes (about 109 minutes)
MAX_TRANSITION_S = MAX_TRANSITION_DS / 10


def blend(a: HueState, b: HueState, f: float) -> HueState:
    """The state a fraction ``f`` of the way from ``a`` to ``b`` (a bulb switched on fades up
    from dark; colour moves in ``b``'s colour mode)."""
    if f >= 1:
        return b
    a_bri = a.bri if a.on else 1
    bri = round(curves.lerp(a_bri, b.bri, f))
    ct, xy = b.ct, b.xy
    if b.ct is not None:
        a_ct = a.ct
        if a_ct is None and a.xy is not None:
            a_ct = units.nearest_mireds(a.xy, 153, 500)
        if a_ct is not None:
            ct = round(curves.lerp(a_ct, b.ct, f))
    elif b.xy is not None:
        a_xy = a.xy if a.xy is not None else (
            units.mireds_to_xy(a.ct) if a.ct is not None else None)
        if a_xy is not None:
            xy = curves.lerp_xy(a_xy, b.xy, f)
    else:
        ct, xy = a.ct, a.xy
    return HueState(b.on, bri, ct, xy)


S = TypeVar("S")


@dataclass(frozen=True)
class Chain(Generic[S]):
    """What one light should do after one `apply`: fade from ``start`` to ``target`` between
    t0 and t1, in steps of at most ``max_step_s`` (the longest transition a bulb takes; each
    step's target interpolated), and — for 0 % — switch off at t1, once it has faded to its
    lowest brightness (never off with a transition). API versions differ only in the state's
    units (`blend`) and the longest step."""

    seq: int
    start: S
    target: S  # on, at least the lowest brightness
    t0: float
    t1: float
    switch_off: bool

    max_step_s: ClassVar[float]

    def blend(self, a: S, b: S, f: float) -> S:
        raise NotImplementedError

    @cached_property
    def segments(self) -> int:
        return max(1, math.ceil((self.t1 - self.t0) / self.max_step_s - 1e-9))

    def step_at(self, t: float) -> int:
        if t >= self.t1:
            return self.segments if self.switch_off else self.segments - 1
        return min(self.segments - 1, max(0, int((t - self.t0) // self.max_step_s)))

    def _segment_end(self, k: int) -> float:
        return min(self.t0 + (k + 1) * self.max_step_s, self.t1)

    def command_at(self, t: float) -> tuple[S | None, float]:
        """The one command that makes the light do, from ``t`` on, what is wanted: the current
        step's target (None: switch off) and the seconds that step has left."""
        k = self.step_at(t)
        if k == self.segments:
            return None, 0.0
        end = self._segment_end(k)
        state = self.target
        if end < self.t1:
            state = self.blend(self.start, self.target,
                               curves.progress(end, self.t0, self.t1 - self.t0))
        return state, max(0.0, end - t)

    def next_change_after(self, t: float) -> float | None:
        k = self.step_at(t)
        if k < self.segments - 1:
            return self._segment_end(k)
        if k == self.segments - 1 and self.switch_off:
            return self.t1
        return None


@dataclass(frozen=True)
class ChainedFade(Chain[HueState]):
    """A `Chain` in Hue API v1 units: steps of at most 65535 ds, switched off from bri 1."""

    max_step_s: ClassVar[float] = MAX_TRANSITION_S

    def blend(self, a: HueState, b: HueState, f: float) -> HueState:
        return blend(a, b, f)

    def body_at(self, t: float) -> dict[str, Any]:
        """The v1 body of `command_at`."""
        state, left_s = self.command_at(t)
        if state is None:
            return {"on": False, "transitiontime": 0}
        body = state.fields()
        body["on"] = True
        body["transitiontime"] = min(MAX_TRANSITION_DS, units.seconds_to_ds(left_s))
        return body


@dataclass(frozen=True)
class Course:
    """What a light is doing, as far as roomctl knows: from ``start`` at t0 to ``end`` at t1."""

    start: HueState
    end: HueState
    t0: float
    t1: float

    @classmethod
    def still(cls, state: HueState, t: float) -> Course:
        return cls(state, state, t, t)

    def at(self, t: float) -> HueState:
        return blend(self.start, self.end, curves.progress(t, self.t0, self.t1 - self.t0))

    def then(self, applied: Mapping[str, Any], at: float) -> Course:
        """After a command whose ``applied`` fields the bridge accepted at ``at``."""
        now = self.at(at)
        if not applied.keys() & {"on", "bri", "ct", "xy"}:
            return self
        ct, xy = now.ct, now.xy
        if "ct" in applied:
            ct, xy = int(applied["ct"]), None
        if "xy" in applied:
            ct, xy = None, (float(applied["xy"][0]), float(applied["xy"][1]))
        end = HueState(bool(applied.get("on", now.on)), int(applied.get("bri", now.bri)), ct, xy)
        if not end.on:
            return Course.still(end, at)
        return Course(now, end, at, at + int(applied.get("transitiontime", 4)) / 10)

