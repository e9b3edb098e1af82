"""A v2 light's state and its course in time, in v2 units: brightness percent, ``mirek``,
CIE ``xy``; fades chained past the longest ``dynamics.duration`` (`V2Fade`); what a look is on
one light (`v2_target`); command bodies as aiohue's models; a change in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohue.util import dataclass_to_dict
from aiohue.v2.models.feature import (
    ColorFeaturePut,
    ColorPoint,
    ColorTemperatureFeaturePut,
    DimmingFeaturePut,
    DynamicsFeaturePut,
    OnFeature,
    PowerUpFeatureColorMode,
    PowerUpFeatureColorState,
    PowerUpFeatureDimmingMode,
    PowerUpFeatureDimmingState,
    PowerUpFeatureOnMode,
    PowerUpFeatureOnState,
    PowerUpFeaturePut,
    PowerUpPreset,
)
from aiohue.v2.models.light import LightPut

from roomctl import curves, units
from roomctl.drivers.hue.color import LightCapabilities, hue_target
from roomctl.drivers.hue.fades import Chain
from roomctl.room import LightLook

MAX_DURATION_MS = 6_000_000  # dynamics.duration's maximum in the CLIP v2 reference (100 min)
MAX_DURATION_S = MAX_DURATION_MS / 1000

OutsidePolicy = Literal["restore", "follow"]


# --- a light's state in v2 units --------------------------------------------------------------


@dataclass(frozen=True)
class V2State:
    """A light's state as v2 has it. At most one of ``mirek`` and ``xy`` is set (its colour
    mode); neither: brightness only."""

    on: bool
    brightness: float  # percent
    mirek: int | None = None
    xy: units.XY | None = None


def blend_v2(a: V2State, b: V2State, f: float) -> V2State:
    """The state part ``f`` of the way from ``a`` to ``b`` (a light switched on fades up from
    its lowest; colour moves in ``b``'s colour mode)."""
    if f >= 1:
        return b
    bri = round(curves.lerp(a.brightness if a.on else 0.0, b.brightness, f), 2)
    mirek, xy = b.mirek, b.xy
    if b.mirek is not None:
        a_mirek = a.mirek if a.mirek is not None else (
            units.nearest_mireds(a.xy, 153, 500) if a.xy is not None else None)
        if a_mirek is not None:
            mirek = round(curves.lerp(a_mirek, b.mirek, f))
    elif b.xy is not None:
        a_xy = a.xy if a.xy is not None else (
            units.mireds_to_xy(a.mirek) if a.mirek is not None else None)
        if a_xy is not None:
            xy = curves.lerp_xy(a_xy, b.xy, f)
    else:
        mirek, xy = a.mirek, a.xy
    return V2State(b.on, bri, mirek, xy)


@dataclass(frozen=True)
class V2Caps:
    """What one v2 light can show (from its resource)."""

    ct_range: tuple[int, int] | None
    gamut: units.Gamut | None
    min_brightness: float  # percent: the light's lowest, ``dimming.min_dim_level``
    powerup: bool  # it has a ``powerup`` feature

    @classmethod
    def of(cls, light: Any) -> V2Caps:
        ct_range = None
        if light.color_temperature is not None:
            schema = light.color_temperature.mirek_schema
            ct_range = (int(schema.mirek_minimum), int(schema.mirek_maximum))
        gamut = None
        if light.color is not None and light.color.gamut is not None:
            g = light.color.gamut
            gamut = ((g.red.x, g.red.y), (g.green.x, g.green.y), (g.blue.x, g.blue.y))
        elif light.color is not None:
            gamut = ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475))  # gamut C, the usual
        floor = 0.0
        if light.dimming is not None and light.dimming.min_dim_level is not None:
            floor = float(light.dimming.min_dim_level)
        return cls(ct_range, gamut, floor, light.powerup is not None)


def state_of(light: Any) -> V2State:
    """A light resource's state (aiohue's model) as a `V2State`."""
    mirek = xy = None
    ct = light.color_temperature
    if ct is not None and ct.mirek_valid and ct.mirek is not None:
        mirek = int(ct.mirek)
    elif light.color is not None:
        xy = (round(light.color.xy.x, 4), round(light.color.xy.y, 4))
    return V2State(light.is_on, float(light.brightness), mirek, xy)


def v2_target(look: LightLook, caps: V2Caps) -> V2State:
    """What ``look`` is on one light: the colour as the v1 mapping has it (mireds clamped to
    the light's range, xy clamped into its gamut, the nearest white on a white-only light),
    brightness in percent, at least the light's lowest; 0 % is "off" (``on`` False)."""
    colour = hue_target(look, LightCapabilities(caps.ct_range, caps.gamut))
    brightness = float(max(caps.min_brightness, min(100.0, look.brightness)))
    return V2State(look.brightness > 0, round(brightness, 2), colour.ct, colour.xy)


@dataclass(frozen=True)
class V2Fade(Chain[V2State]):
    """A `Chain` in v2 units: steps of at most 6,000,000 ms."""

    max_step_s: ClassVar[float] = MAX_DURATION_S

    def blend(self, a: V2State, b: V2State, f: float) -> V2State:
        return blend_v2(a, b, f)


@dataclass(frozen=True)
class V2Course:
    """What a light is doing, as far as roomctl knows: from ``start`` at t0 to ``end`` at t1."""

    start: V2State
    end: V2State
    t0: float
    t1: float

    @classmethod
    def still(cls, state: V2State, t: float) -> V2Course:
        return cls(state, state, t, t)

    def at(self, t: float) -> V2State:
        return blend_v2(self.start, self.end, curves.progress(t, self.t0, self.t1 - self.t0))


def body_of(state: V2State | None, duration_s: float) -> dict[str, Any]:
    """A light or grouped_light PUT body (aiohue's models, as JSON) for one command."""
    if state is None:  # the switch-off at the end of a fade to 0 %
        put = LightPut(on=OnFeature(on=False), dynamics=DynamicsFeaturePut(duration=0))
        return dict(dataclass_to_dict(put))
    put = LightPut(on=OnFeature(on=True), dimming=DimmingFeaturePut(brightness=state.brightness),
                   dynamics=DynamicsFeaturePut(duration=min(
                       MAX_DURATION_MS, units.seconds_to_ms(duration_s))))
    if state.mirek is not None:
        put.color_temperature = ColorTemperatureFeaturePut(mirek=state.mirek)
    elif state.xy is not None:
        put.color = ColorFeaturePut(xy=ColorPoint(*state.xy))
    return dict(dataclass_to_dict(put))


def powerup_body(look: LightLook, caps: V2Caps) -> dict[str, Any]:
    """The ``powerup`` a light gets: on, at ``look`` (a soft warm white), after a power cut."""
    target = v2_target(look, caps)
    color = None
    if target.mirek is not None:
        color = PowerUpFeatureColorState(
            mode=PowerUpFeatureColorMode.COLOR_TEMPERATURE,
            color_temperature=ColorTemperatureFeaturePut(mirek=target.mirek))
    elif target.xy is not None:
        color = PowerUpFeatureColorState(mode=PowerUpFeatureColorMode.COLOR,
                                         color=ColorFeaturePut(xy=ColorPoint(*target.xy)))
    powerup = PowerUpFeaturePut(
        preset=PowerUpPreset.CUSTOM,
        on=PowerUpFeatureOnState(mode=PowerUpFeatureOnMode.ON, on=OnFeature(on=True)),
        dimming=PowerUpFeatureDimmingState(mode=PowerUpFeatureDimmingMode.DIMMING,
                                           dimming=DimmingFeaturePut(brightness=target.brightness)),
        color=color)
    return {"powerup": dataclass_to_dict(powerup)}


def close_to(a: V2State, b: V2State) -> bool:
    """Whether a reported state is the one expected (the bridge rounds a little)."""
    if a.on != b.on:
        return False
    if not a.on:
        return True
    if abs(a.brightness - b.brightness) > 1.0:
        return False
    if a.mirek is not None and b.mirek is not None:
        return abs(a.mirek - b.mirek) <= 2
    if a.xy is not None and b.xy is not None:
        return abs(a.xy[0] - b.xy[0]) <= 0.006 and abs(a.xy[1] - b.xy[1]) <= 0.006
    return (a.mirek is None and a.xy is None) or (b.mirek is None and b.xy is None)


def _kelvin(mirek: int) -> str:
    return f"{units.mireds_to_kelvin(mirek)} K"


def what_changed(old: V2State, new: V2State) -> str:
    """The difference between two states in plain words."""
    if old.on and not new.on:
        return "switched off"
    parts = ["switched on"] if new.on and not old.on else []
    if new.on and abs(old.brightness - new.brightness) > 1.0:
        parts.append(f"brightness {old.brightness:.0f} % -> {new.brightness:.0f} %")
    if new.mirek is not None and old.mirek is not None and abs(old.mirek - new.mirek) > 2:
        parts.append(f"colour temperature {_kelvin(old.mirek)} -> {_kelvin(new.mirek)}")
    elif new.mirek is not None and old.mirek is None:
        parts.append(f"colour -> white {_kelvin(new.mirek)}")
    elif new.xy is not None and (old.xy is None or abs(old.xy[0] - new.xy[0]) > 0.006
                                 or abs(old.xy[1] - new.xy[1]) > 0.006):
        rgb = units.rgb_to_hex(units.xy_to_rgb(new.xy))
        parts.append(f"colour -> {rgb}")
    return ", ".join(parts) or "changed"
