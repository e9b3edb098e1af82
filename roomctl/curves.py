"""The one place a value moves over time: pure functions of normalised time.

`progress` says how far along a change is at a time (0 to 1); `lerp`, `lerp_mireds`,
`lerp_xy`, `lerp_rgb` and `blend_looks` say where a value is at that fraction; `Ramp` (a
number, such as a volume) and `Fade` (a light look) put the two together. Every fade in
roomctl is built from these: the timeline's prediction, the simulated bulbs, each Hue bulb's
course, the music's volume ramps. So they cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from roomctl import units
from roomctl.room import DEFAULT_KELVIN, LightLook


class Shape(StrEnum):
    """How a `Ramp` moves between its ends."""

    LINEAR = "linear"  # the value moves linearly (a volume percent: an even-sounding fade)
    # The heard gain (`volume_gain`) moves linearly: two decks crossfading in opposite
    # directions this way sum to at most a 3 dB dip (linear percents on both would dip 9 dB).
    EQUAL_GAIN = "equal-gain"


def progress(t: float, start_t: float, duration_s: float) -> float:
    """How far a change from ``start_t`` lasting ``duration_s`` has come at ``t``: 0 to 1."""
    if duration_s <= 0 or t >= start_t + duration_s:
        return 1.0
    if t <= start_t:
        return 0.0
    return (t - start_t) / duration_s


def lerp(a: float, b: float, x: float) -> float:
    return a + (b - a) * x


def volume_gain(percent: float) -> float:
    """The amplitude factor a volume percent is heard as: (percent / 100)^2, a perceptual
    taper (50 % is -12 dB, 25 % -24 dB, the 10 % Lights-up level -40 dB: quiet, still heard;
    0 is silence). The music driver applies it in floating point, so every step is smooth."""
    return float((max(0.0, percent) / 100.0) ** 2)


def volume_for_gain(gain: float) -> float:
    """The volume percent heard as amplitude factor ``gain`` (the inverse of `volume_gain`)."""
    return 100.0 * math.sqrt(max(0.0, gain))


def shaped(shape: Shape, a: float, b: float, x: float) -> float:
    """The value a fraction ``x`` of the way from ``a`` to ``b`` along ``shape``."""
    x = min(1.0, max(0.0, x))
    if shape is Shape.LINEAR:
        return lerp(a, b, x)
    return volume_for_gain(lerp(volume_gain(a), volume_gain(b), x))


def lerp_mireds(kelvin_a: float, kelvin_b: float, x: float) -> int:
    """A colour temperature between two, moved in mireds (even to the eye), in Kelvin."""
    ma, mb = units.kelvin_to_mireds(kelvin_a), units.kelvin_to_mireds(kelvin_b)
    kelvin = units.mireds_to_kelvin(lerp(ma, mb, x))
    return int(min(max(kelvin, min(kelvin_a, kelvin_b)), max(kelvin_a, kelvin_b)))


def lerp_xy(a: units.XY, b: units.XY, x: float) -> units.XY:
    """A CIE 1931 xy colour between two (4 decimals, as a Hue bridge keeps them)."""
    return round(lerp(a[0], b[0], x), 4), round(lerp(a[1], b[1], x), 4)


def lerp_rgb(a: str, b: str, x: float) -> str:
    """A "#rrggbb" colour between two, moved in RGB."""
    ra, rb = units.hex_to_rgb(a), units.hex_to_rgb(b)
    return units.rgb_to_hex((lerp(ra[0], rb[0], x), lerp(ra[1], rb[1], x), lerp(ra[2], rb[2], x)))


def blend_looks(a: LightLook, b: LightLook, x: float) -> LightLook:
    """Two looks mixed: brightness linearly, colour temperature in mireds, colours in RGB."""
    bri = round(lerp(a.brightness, b.brightness, x), 3)
    if a.color is None and b.color is None:
        return LightLook(bri, color_temp=lerp_mireds(a.color_temp or DEFAULT_KELVIN,
                                                     b.color_temp or DEFAULT_KELVIN, x))
    return LightLook(bri, color=lerp_rgb(a.display_rgb(), b.display_rgb(), x))


@dataclass(frozen=True)
class Ramp:
    """A number moving from ``start`` to ``end`` between ``start_t`` and ``end_t``."""

    start: float
    end: float
    start_t: float
    duration_s: float
    shape: Shape = Shape.LINEAR

    @property
    def end_t(self) -> float:
        return self.start_t + max(0.0, self.duration_s)

    def done(self, t: float) -> bool:
        return t >= self.end_t

    def value_at(self, t: float) -> float:
        x = progress(t, self.start_t, self.duration_s)
        if x >= 1.0:
            return self.end
        return shaped(self.shape, self.start, self.end, x)


@dataclass(frozen=True)
class Fade:
    """A light fade from one look to another (the bulbs do this themselves)."""

    start: LightLook
    end: LightLook
    start_t: float
    duration_s: float

    @property
    def end_t(self) -> float:
        return self.start_t + self.duration_s

    def value_at(self, t: float) -> LightLook:
        x = progress(t, self.start_t, self.duration_s)
        if x >= 1.0:
            return self.end
        if x <= 0.0:
            return self.start  # exactly where it was: a blend at 0 would round the colour
        return blend_looks(self.start, self.end, x)

    def remaining_s(self, t: float) -> float:
        return max(0.0, self.end_t - t)
