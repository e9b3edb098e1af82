"""Units and their conversions: one place for durations, percent, Kelvin, mireds and colours.

Names carry their unit: ``*_s`` seconds, ``*_ds`` Hue deciseconds, ``kelvin``, ``mireds``,
``bri`` (Hue 1-254), ``percent`` (0-100).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal

KELVIN_MIN = 2000
KELVIN_MAX = 6500

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")
_KELVIN_RE = re.compile(r"^\s*(\d+)\s*[kK]?\s*$")
_HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


MAX_DURATION_S = 7 * 86400.0  # no phase, fade or cue offset is longer than a week
MAX_TRANSITION_S = 86400.0  # a light change fades for a day at most


def parse_duration_s(value: object) -> float:
    """'45s', '15m', '1h30m', '1h 5m 30s' or a bare number of seconds -> seconds: finite, at
    most `MAX_DURATION_S`, so that nothing downstream meets a time it cannot compute with."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer with hundreds of digits
            seconds = math.inf
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            seconds = h * 3600 + mi * 60 + s
    if seconds is None or (not math.isfinite(seconds) and not isinstance(value, str | int)):
        raise ValueError(f"{_short(value)} is not a duration (use e.g. '45s', '15m', '1h30m')")
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION_S:
        raise ValueError(f"{_short(value)} is too long: at most {format_duration(MAX_DURATION_S)}")
    return seconds


def _short(value: object) -> str:
    if not (value is None or isinstance(value, str | bool | int | float)):
        return f"a {type(value).__name__}"  # never the repr of a structure: a YAML alias can make it huge
    try:
        text = repr(value)
    except ValueError:  # an integer with thousands of digits
        return "a very large number"
    return text if len(text) <= 24 else text[:20] + "…"


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest human form that parses back to the same value ('1h30m', '45s')."""
    if seconds < 0:
        raise ValueError("negative duration")
    if not math.isfinite(seconds):
        raise ValueError(f"{seconds} is not a duration")
    if not float(seconds).is_integer():
        # repr is the shortest text that reads back as the same float; Decimal drops its exponent
        return f"{Decimal(repr(float(seconds))):f}s"
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return "".join(parts) or "0s"


def format_clock(seconds: float) -> str:
    """Seconds -> 'H:MM:SS' for session times in logs and tables."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def format_iso(epoch_s: float) -> str:
    """Epoch seconds -> local ISO 8601 time with its offset, for the record ('2026-12-03T09:48:34+01:00')."""
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="seconds")


def parse_kelvin(value: object) -> int:
    """'2700K', '2700' or 2700 -> 2700."""
    if isinstance(value, bool):
        raise ValueError(f"{_short(value)} is not a colour temperature (use e.g. '2700K')")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _KELVIN_RE.match(value)
        if m:
            return int(m.group(1))
    raise ValueError(f"{_short(value)} is not a colour temperature (use e.g. '2700K')")


def is_hex_color(value: str) -> bool:
    return bool(_HEX_RE.match(value))


def kelvin_to_mireds(kelvin: float) -> int:
    return round(1_000_000 / kelvin)


def mireds_to_kelvin(mireds: float) -> int:
    return round(1_000_000 / mireds)


def percent_to_bri(percent: float) -> int:
    """0-100 % -> Hue bri 1-254 (0 % maps to 1; switching off is the driver's decision)."""
    p = min(100.0, max(0.0, percent))
    return max(1, min(254, round(1 + p / 100 * 253)))


def bri_to_percent(bri: int) -> float:
    return round((min(254, max(1, bri)) - 1) / 253 * 100, 1)


def seconds_to_ds(seconds: float) -> int:
    """Seconds -> Hue transitiontime (100 ms units)."""
    return max(0, round(seconds * 10))


def ds_to_seconds(ds: float) -> float:
    """Hue transitiontime (100 ms units) -> seconds."""
    return ds / 10


def seconds_to_ms(seconds: float) -> int:
    """Seconds -> milliseconds (Hue v2 ``dynamics.duration``), in whole 100 ms steps as the
    bridge keeps them."""
    return max(0, round(seconds * 10)) * 100


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def rgb_to_hex(rgb: tuple[float, float, float]) -> str:
    r, g, b = (max(0, min(255, round(v))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def kelvin_to_rgb(kelvin: float) -> tuple[int, int, int]:
    """Approximate sRGB of a black body at ``kelvin`` (Tanner Helland's fit), for display and blending."""
    t = min(40000.0, max(1000.0, kelvin)) / 100
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * math.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    return _byte(r), _byte(g), _byte(b)


def _byte(v: float) -> int:
    return int(max(0, min(255, round(v))))


def _srgb_to_linear(c: float) -> float:
    c = c / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def rgb_to_xy(rgb: tuple[int, int, int]) -> tuple[float, float]:
    """sRGB -> CIE 1931 xy (wide-gamut D65 matrix, as Philips documents for Hue)."""
    r, g, b = (_srgb_to_linear(c) for c in rgb)
    x = r * 0.664511 + g * 0.154324 + b * 0.162028
    y = r * 0.283881 + g * 0.668433 + b * 0.047685
    z = r * 0.000088 + g * 0.072310 + b * 0.986039
    total = x + y + z
    if total == 0:
        return 0.3127, 0.3290  # D65 white point for black
    return x / total, y / total


# --- CIE xy geometry for colour lights -------------------------------------------------------

XY = tuple[float, float]
Gamut = tuple[XY, XY, XY]  # red, green, blue corners of a light's colour triangle


def _cross(o: XY, a: XY, b: XY) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _closest_on_segment(p: XY, a: XY, b: XY) -> XY:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return a
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return a[0] + t * dx, a[1] + t * dy


def xy_in_gamut(xy: XY, gamut: Gamut) -> bool:
    r, g, b = gamut
    d1, d2, d3 = _cross(r, g, xy), _cross(g, b, xy), _cross(b, r, xy)
    has_neg = d1 < 0 or d2 < 0 or d3 < 0
    has_pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (has_neg and has_pos)


def clamp_xy_to_gamut(xy: XY, gamut: Gamut) -> XY:
    """``xy`` itself when a light can show it, else the closest point on the gamut triangle."""
    if xy_in_gamut(xy, gamut):
        return xy
    r, g, b = gamut
    candidates = [_closest_on_segment(xy, a, c) for a, c in ((r, g), (g, b), (b, r))]
    return min(candidates, key=lambda q: (q[0] - xy[0]) ** 2 + (q[1] - xy[1]) ** 2)


def mireds_to_xy(mireds: float) -> XY:
    """A colour temperature -> xy on the Planckian locus (Kim et al. 2002, 1667-25000 K)."""
    t = min(25000.0, max(1667.0, 1_000_000 / mireds))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def nearest_mireds(xy: XY, lowest: int, highest: int) -> int:
    """The colour temperature in ``lowest..highest`` mireds whose white is closest to ``xy``:
    how a white-only light shows a colour."""

    def distance2(m: int) -> float:
        px, py = mireds_to_xy(m)
        return (px - xy[0]) ** 2 + (py - xy[1]) ** 2

    return min(range(lowest, highest + 1), key=distance2)


def _linear_to_srgb(c: float) -> float:
    return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def xy_to_rgb(xy: XY) -> tuple[int, int, int]:
    """CIE xy -> the sRGB colour at full brightness (the inverse of `rgb_to_xy`), for display."""
    x, y = xy
    if y <= 0:
        return 0, 0, 0
    big_x, big_y, big_z = x / y, 1.0, (1 - x - y) / y
    r = big_x * 1.656492 - big_y * 0.354851 - big_z * 0.255038
    g = -big_x * 0.707196 + big_y * 1.655397 + big_z * 0.036152
    b = big_x * 0.051713 - big_y * 0.121364 + big_z * 1.011530
    rgb = [max(0.0, v) for v in (r, g, b)]
    top = max(rgb)
    if top > 1:
        rgb = [v / top for v in rgb]
    r8, g8, b8 = (round(255 * min(1.0, _linear_to_srgb(v))) for v in rgb)
    return r8, g8, b8
