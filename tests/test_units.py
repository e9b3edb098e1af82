import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomctl import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 5m", 3900.0),
        ("1h 5m 30s", 3930.0),
        ("2m30s", 150.0),
        ("0.5s", 0.5),
        ("1.5h", 5400.0),
        (" 90s ", 90.0),
        (90, 90.0),
        (0.3, 0.3),
        (0, 0.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert units.parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    "garbage",
    ["", "   ", "soon", "15", "15 minutes", "m", "1m1h", "-5m", "5d", "1h-5m", "1,5m",
     True, None, [15], {"m": 15}, float("nan"), float("inf")],
)
def test_parse_duration_rejects_garbage(garbage: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        units.parse_duration_s(garbage)


@pytest.mark.parametrize("endless", ["9" * 400 + "s", 10**400, 1e300, "168h1s", 7 * 86400 + 1])
def test_parse_duration_refuses_what_no_session_can_hold(endless: object) -> None:
    with pytest.raises(ValueError, match="too long: at most 168h"):
        units.parse_duration_s(endless)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (5400, "1h30m"),
     (3930, "1h5m30s"), (0.5, "0.5s"), (7200.0, "2h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert units.format_duration(seconds) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        units.format_duration(-1)


@pytest.mark.parametrize("seconds", [0.3, 1e-5, 12345.678, 100000.5, 0.1 + 0.2, 86400 * 3 + 0.25])
def test_format_duration_round_trips_awkward_values(seconds: float) -> None:
    assert units.parse_duration_s(units.format_duration(seconds)) == seconds


@given(st.floats(min_value=0, max_value=units.MAX_DURATION_S, allow_nan=False, allow_infinity=False))
def test_format_duration_round_trips(seconds: float) -> None:
    text = units.format_duration(seconds)
    assert units.parse_duration_s(text) == seconds


@given(st.integers(min_value=0, max_value=int(units.MAX_DURATION_S)))
def test_format_duration_of_whole_seconds_uses_h_m_s(seconds: int) -> None:
    text = units.format_duration(seconds)
    assert "." not in text
    assert units.parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00:00"), (59.9, "0:00:59"), (3725, "1:02:05"), (-3, "0:00:00")]
)
def test_format_clock(seconds: float, text: str) -> None:
    assert units.format_clock(seconds) == text


@pytest.mark.parametrize(
    ("value", "kelvin"), [("2700K", 2700), ("2700k", 2700), ("2700", 2700), (" 2200 K ", 2200),
                          (4000, 4000), (3000.0, 3000)],
)
def test_parse_kelvin(value: object, kelvin: int) -> None:
    assert units.parse_kelvin(value) == kelvin


@pytest.mark.parametrize("garbage", ["warm", "2700 kelvin", "-2700K", "27.5K", 2700.5, True, None, ""])
def test_parse_kelvin_rejects_garbage(garbage: object) -> None:
    with pytest.raises(ValueError, match="not a colour temperature"):
        units.parse_kelvin(garbage)


@pytest.mark.parametrize(
    ("percent", "bri"), [(0, 1), (-10, 1), (100, 254), (150, 254), (50, 128), (0.1, 1), (99.9, 254)]
)
def test_percent_to_bri_edges(percent: float, bri: int) -> None:
    assert units.percent_to_bri(percent) == bri


@pytest.mark.parametrize(("bri", "percent"), [(1, 0.0), (0, 0.0), (254, 100.0), (255, 100.0), (128, 50.2)])
def test_bri_to_percent(bri: int, percent: float) -> None:
    assert units.bri_to_percent(bri) == percent


@given(st.integers(min_value=1, max_value=254))
def test_bri_percent_round_trip(bri: int) -> None:
    assert units.percent_to_bri(units.bri_to_percent(bri)) == bri


@given(st.floats(min_value=0, max_value=100))
def test_percent_to_bri_monotone_and_in_range(percent: float) -> None:
    bri = units.percent_to_bri(percent)
    assert 1 <= bri <= 254
    assert units.percent_to_bri(min(100.0, percent + 1)) >= bri


def test_kelvin_mireds() -> None:
    assert units.kelvin_to_mireds(2000) == 500
    assert units.kelvin_to_mireds(6500) == 154
    assert units.kelvin_to_mireds(2700) == 370
    assert units.mireds_to_kelvin(500) == 2000
    assert units.mireds_to_kelvin(250) == 4000
    # Hue's ct range (153-500 mireds) covers every colour temperature a preset may use.
    assert 153 <= units.kelvin_to_mireds(units.KELVIN_MAX) < units.kelvin_to_mireds(units.KELVIN_MIN) <= 500


@given(st.integers(min_value=units.KELVIN_MIN, max_value=units.KELVIN_MAX))
def test_kelvin_mireds_round_trip_within_rounding(kelvin: int) -> None:
    back = units.mireds_to_kelvin(units.kelvin_to_mireds(kelvin))
    # one mired of rounding is worth at most ~22 K at 6500 K
    assert abs(back - kelvin) <= 22


def test_seconds_to_ds() -> None:
    assert units.seconds_to_ds(0) == 0
    assert units.seconds_to_ds(1.5) == 15
    assert units.seconds_to_ds(0.04) == 0
    assert units.seconds_to_ds(-2) == 0
    assert units.seconds_to_ds(6553.5) == 65535


def test_hex_rgb() -> None:
    assert units.hex_to_rgb("#ff9a3c") == (255, 154, 60)
    assert units.rgb_to_hex((255, 154, 60)) == "#ff9a3c"
    assert units.rgb_to_hex((300.0, -5.0, 127.6)) == "#ff0080"
    assert units.is_hex_color("#FF9a3c")
    assert not units.is_hex_color("ff9a3c")
    assert not units.is_hex_color("#ff9a3")
    assert not units.is_hex_color("#gg9a3c")


def test_kelvin_to_rgb_warm_is_redder_than_cool() -> None:
    warm = units.kelvin_to_rgb(2000)
    cool = units.kelvin_to_rgb(6500)
    assert warm[0] == 255
    assert warm[2] < 50  # candle-like: almost no blue
    assert warm[2] / warm[0] < cool[2] / cool[0]
    assert cool[2] > 240  # near white
    assert min(cool) > 240


@given(st.integers(min_value=1000, max_value=6600))
def test_kelvin_to_rgb_blue_rises_with_temperature(kelvin: int) -> None:
    lower = units.kelvin_to_rgb(kelvin)
    higher = units.kelvin_to_rgb(kelvin + 100)
    assert all(0 <= c <= 255 for c in lower)
    assert higher[2] >= lower[2]


def test_rgb_to_xy_white_is_near_d65() -> None:
    x, y = units.rgb_to_xy((255, 255, 255))
    assert math.isclose(x, 0.3127, abs_tol=0.015)
    assert math.isclose(y, 0.3290, abs_tol=0.015)


def test_rgb_to_xy_primaries_and_black() -> None:
    rx, ry = units.rgb_to_xy((255, 0, 0))
    _gx, gy = units.rgb_to_xy((0, 255, 0))
    bx, by = units.rgb_to_xy((0, 0, 255))
    assert rx > 0.6 and ry < 0.35
    assert gy > 0.6
    assert bx < 0.2 and by < 0.1
    assert units.rgb_to_xy((0, 0, 0)) == (0.3127, 0.3290)
