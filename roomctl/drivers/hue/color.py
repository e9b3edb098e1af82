"""What a light can show, and what it should show, in Hue's units.

`LightCapabilities` (colour temperature range, colour gamut) from a light's API object;
`HueState` a light's state as the bridge has it; `hue_target` a room's `LightLook` on one
light; `light_reading` a state as the room reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roomctl import units
from roomctl.room import LightLook, LightReading

GAMUTS: dict[str, units.Gamut] = {
    "A": ((0.704, 0.296), (0.2151, 0.7106), (0.138, 0.08)),
    "B": ((0.675, 0.322), (0.409, 0.518), (0.167, 0.04)),
    "C": ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475)),
}
_GAMUT_B_MODELS = {"LCT001", "LCT002", "LCT003", "LCT007", "LLM001"}


def _gamut_for_model(modelid: str) -> units.Gamut:
    """For bulbs whose API object predates "capabilities" (Philips' published table)."""
    if modelid in _GAMUT_B_MODELS:
        return GAMUTS["B"]
    if (modelid.startswith("LLC") and modelid != "LLC020") or modelid == "LST001":
        return GAMUTS["A"]
    return GAMUTS["C"]


@dataclass(frozen=True)
class LightCapabilities:
    ct_range: tuple[int, int] | None  # mireds, None: no colour temperature
    gamut: units.Gamut | None  # None: no colour
    known: bool = True  # False: the bridge did not say what the light is (nothing to learn from)

    @classmethod
    def from_api(cls, light: Mapping[str, Any]) -> LightCapabilities:
        """From a light's API object: its ``capabilities``, else its ``type`` and model, else
        (clones, early firmware) the colour fields its ``state`` carries."""
        kind = str(light.get("type", "")).lower()
        capabilities = light.get("capabilities")
        control = capabilities.get("control", {}) if isinstance(capabilities, dict) else {}
        state = light.get("state")
        state = state if isinstance(state, dict) else {}
        ct = control.get("ct")
        ct_range: tuple[int, int] | None = None
        if isinstance(ct, dict) and "min" in ct and "max" in ct:
            ct_range = (int(ct["min"]), int(ct["max"]))
        elif kind in ("extended color light", "color temperature light") or (
                not kind and "ct" in state):
            ct_range = (153, 500)
        gamut: units.Gamut | None = None
        points = control.get("colorgamut")
        if isinstance(points, list) and len(points) == 3:
            (rx, ry), (gx, gy), (bx, by) = points
            gamut = ((float(rx), float(ry)), (float(gx), float(gy)), (float(bx), float(by)))
        elif control.get("colorgamuttype") in GAMUTS:
            gamut = GAMUTS[control["colorgamuttype"]]
        elif kind in ("extended color light", "color light") or (not kind and "xy" in state):
            gamut = _gamut_for_model(str(light.get("modelid", "")))
        known = bool(kind) or bool(control) or ct_range is not None or gamut is not None
        return cls(ct_range, gamut, known)


@dataclass(frozen=True)
class HueState:
    """A light's state in Hue's units. At most one of ``ct`` and ``xy`` is set (the colour
    mode); neither: brightness only, or "keep the colour" in a command."""

    on: bool
    bri: int
    ct: int | None = None
    xy: units.XY | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"on": self.on, "bri": self.bri}
        if self.ct is not None:
            out["ct"] = self.ct
        elif self.xy is not None:
            out["xy"] = [self.xy[0], self.xy[1]]
        return out

    @classmethod
    def from_api(cls, state: Mapping[str, Any]) -> HueState:
        on, bri = bool(state.get("on", False)), int(state.get("bri", 254))
        mode, ct, xy = state.get("colormode"), state.get("ct"), state.get("xy")
        if mode in ("xy", "hs") and isinstance(xy, list) and len(xy) == 2:
            return cls(on, bri, None, (float(xy[0]), float(xy[1])))
        if isinstance(ct, int):
            return cls(on, bri, ct)
        return cls(on, bri)


def hue_target(look: LightLook, caps: LightCapabilities) -> HueState:
    """What ``look`` is on one light: brightness -> ``bri`` (0 % -> bri 1, on False), Kelvin ->
    mireds clamped to the light's range, "#rrggbb" -> xy clamped into its gamut; a white-only
    light shows a colour as the nearest colour temperature, a dimmable one ignores colour."""
    bri = units.percent_to_bri(look.brightness)
    on = look.brightness > 0
    if look.color is not None:
        xy = units.rgb_to_xy(units.hex_to_rgb(look.color))
        if caps.gamut is not None:
            return HueState(on, bri, None, _round_xy(units.clamp_xy_to_gamut(xy, caps.gamut)))
        if caps.ct_range is not None:
            return HueState(on, bri, units.nearest_mireds(xy, *caps.ct_range))
    elif look.color_temp is not None:
        mireds = units.kelvin_to_mireds(look.color_temp)
        if caps.ct_range is not None:
            low, high = caps.ct_range
            return HueState(on, bri, min(high, max(low, mireds)))
        if caps.gamut is not None:
            xy = units.clamp_xy_to_gamut(units.mireds_to_xy(mireds), caps.gamut)
            return HueState(on, bri, None, _round_xy(xy))
    return HueState(on, bri)


def _round_xy(xy: units.XY) -> units.XY:
    return round(xy[0], 4), round(xy[1], 4)


def light_reading(light_id: str, name: str, state: HueState, reachable: bool) -> LightReading:
    """``state`` as the room reads it: percent, Kelvin, "#rrggbb" (a colour only in xy mode)."""
    color = None
    if state.ct is None and state.xy is not None:
        color = units.rgb_to_hex(units.xy_to_rgb(state.xy))
    return LightReading(
        id=light_id, name=name, on=state.on,
        brightness=units.bri_to_percent(state.bri) if state.on else 0.0,
        color_temp=units.mireds_to_kelvin(state.ct) if state.ct is not None else None,
        color=color, reachable=reachable)

