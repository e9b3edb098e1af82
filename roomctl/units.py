"""Units and their conversions: one place for durations, percent, Kelvin, mireds and colours.

Names carry their unit: ``*_s`` seconds, ``*_ds`` Hue deciseconds, ``kelvin``, ``mireds``,
``bri`` (Hue 1-254), ``percent`` (0-100).
"""

from __future__ import annotations

import math
import re

KELVIN_MIN = 2000
KELVIN_MAX = 6500

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")
_KELVIN_RE = re.compile(r"^\s*(\d+)\s*[kK]?\s*$")
_HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_duration_s(value: object) -> float:
    """'45s', '15m', '1h30m', '1h 5m 30s' or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. '45s', '15m', '1h30m')")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s
    raise ValueError(f"{value!r} is not a duration (use e.g. '45s', '15m', '1h30m')")


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest human form that parses back to the same value ('1h30m', '45s')."""
    if seconds < 0:
        raise ValueError("negative duration")
    whole = round(seconds)
    if not math.isclose(whole, seconds, abs_tol=1e-9):
        return f"{seconds:g}s"
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


def parse_kelvin(value: object) -> int:
    """'2700K', '2700' or 2700 -> 2700."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a colour temperature (use e.g. '2700K')")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _KELVIN_RE.match(value)
        if m:
            return int(m.group(1))
    raise ValueError(f"{value!r} is not a colour temperature (use e.g. '2700K')")


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
    clamp = lambda v: int(max(0, min(255, round(v))))  # noqa: E731 - tiny local helper
    return clamp(r), clamp(g), clamp(b)


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
