"""A bridge that answers ``GET /lights`` and ``GET /groups`` with names only (early v1
firmware, some clones): roomctl learns members, states and capabilities from the per-resource
endpoints, and never reports ok while it sends nothing or drops what the preset asks for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from roomctl import units
from roomctl.clock import VirtualClock
from roomctl.drivers.hue import HueOptions, build_hue_lights
from roomctl.drivers.hue.lights import HueLights
from roomctl.room import LightLook
from testkit.hue_bridge import (
    DEFAULT_USER,
    GAMUT_C,
    GroupSpec,
    HueBridgeEmulator,
    LightSpec,
    therapy_room,
)
from testkit.hue_drive import no_errors, puts, run_until


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock(start=1000.0)


@pytest.fixture
def bridge(vclock: VirtualClock) -> Iterator[HueBridgeEmulator]:
    lights, groups = therapy_room()
    with HueBridgeEmulator(lights, groups, clock=vclock.now, names_only=True) as emulator:
        yield emulator


def room_on(bridge: HueBridgeEmulator, clock: VirtualClock, *, group: str | None = "1",
            lights: list[str] | None = None) -> HueLights:
    return build_hue_lights(bridge.host, DEFAULT_USER, group, lights, clock, trust=None,
                            options=HueOptions())


def test_the_emulator_answers_like_that_bridge(bridge: HueBridgeEmulator) -> None:
    from roomctl.drivers.hue.client import HueBridgeClient

    client = HueBridgeClient(bridge.host, DEFAULT_USER, trust=None)
    assert client.request("GET", f"/api/{DEFAULT_USER}/lights")["1"] == {"name": "Couch lamp"}
    assert client.request("GET", f"/api/{DEFAULT_USER}/groups") == {"1": {"name": "Therapy room"}}
    assert client.request("GET", f"/api/{DEFAULT_USER}/groups/1")["lights"] == ["1", "2", "3", "4"]


async def test_a_group_room_learns_its_members_and_drives_them(
        bridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    room = room_on(bridge, vclock)
    try:
        await room.connect()
        assert room.health().ok
        readings = room.readings()
        assert [r.name for r in readings] == ["Couch lamp", "Window lamp", "Ceiling",
                                              "Reading lamp"]
        assert all(r.on and r.brightness == units.bri_to_percent(200) for r in readings)
        await room.apply(LightLook(60, 3000), 2.0)
        await run_until(vclock, room, vclock.now() + 4)
    finally:
        await room.close()
    [put] = puts(bridge)
    assert put.body == {"on": True, "bri": units.percent_to_bri(60), "ct": 333,
                        "transitiontime": 20}
    assert {bridge.light_state(i)["ct"] for i in "1234"} == {333}
    no_errors(bridge)


async def test_colours_reach_lights_listed_by_id(bridge: HueBridgeEmulator,
                                                 vclock: VirtualClock) -> None:
    room = room_on(bridge, vclock, group=None, lights=["1", "3"])
    try:
        await room.apply(LightLook(70, color="#ff8a3d"), 0)
        await run_until(vclock, room, vclock.now() + 2)
        orange = units.rgb_to_xy(units.hex_to_rgb("#ff8a3d"))
        x, y = units.clamp_xy_to_gamut(orange, GAMUT_C)
        assert bridge.light_state("1")["xy"] == [round(x, 4), round(y, 4)]
        assert bridge.light_state("3")["ct"] == units.nearest_mireds(orange, 153, 454)
        await room.apply(LightLook(70, 2400), 0)
        await run_until(vclock, room, vclock.now() + 2)
        assert [bridge.light_state(i)["ct"] for i in "13"] == [417, 417]
        assert room.health().ok
    finally:
        await room.close()
    no_errors(bridge)


async def test_readings_after_a_re_read_show_the_lamps_as_they_are(
        bridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    room = room_on(bridge, vclock, group=None, lights=["1", "2"])
    try:
        await room.apply(LightLook(70, 3000), 0)
        await run_until(vclock, room, vclock.now() + 95)  # three 30 s re-reads
        surveys = [r for r in bridge.requests if r.method == "GET"
                   and r.path.rstrip("/").endswith("/lights")]
        assert len(surveys) >= 3
        assert [(r.on, r.brightness) for r in room.readings()] == [
            (True, units.bri_to_percent(units.percent_to_bri(70)))] * 2
    finally:
        await room.close()


async def test_a_fade_to_zero_fades_then_switches_off(bridge: HueBridgeEmulator,
                                                      vclock: VirtualClock) -> None:
    start = vclock.now()
    room = room_on(bridge, vclock)
    try:
        await room.apply(LightLook(0, 2700), 10.0)
        await run_until(vclock, room, start + 9.5)
        assert all(bridge.light_state(i)["on"] for i in "1234")
        assert all(bridge.light_state(i)["bri"] < 30 for i in "1234")
        await run_until(vclock, room, start + 12)
        assert not any(bridge.light_state(i)["on"] for i in "1234")
    finally:
        await room.close()
    fade, off = puts(bridge)
    assert fade.body["bri"] == 1 and fade.body["transitiontime"] == 100
    assert fade.clock_s < start + 0.5
    assert off.body == {"on": False, "transitiontime": 0} and off.clock_s >= start + 10


async def test_a_light_that_says_nothing_of_itself_is_reported(vclock: VirtualClock) -> None:
    clone = LightSpec("Clone bulb", type="", capabilities=False, ct_range=None, gamut=None,
                      gamut_type=None)
    with HueBridgeEmulator({"7": clone}, {"2": GroupSpec("Nook", ("7",))}, clock=vclock.now,
                           names_only=True) as bridge:
        room = room_on(bridge, vclock, group="2")
        try:
            await room.connect()
            assert room.health().detail == (
                f"Hue bridge {bridge.host} does not say what light 7 (Clone bulb) can show: "
                "only its brightness is sent, not colours or colour temperatures")
            await room.apply(LightLook(40, 2700), 0)
            await run_until(vclock, room, vclock.now() + 2)
            assert bridge.light_state("7")["bri"] == units.percent_to_bri(40)
        finally:
            await room.close()


async def test_a_group_whose_lights_nobody_says_is_not_ok(vclock: VirtualClock) -> None:
    with HueBridgeEmulator({}, {"3": GroupSpec("Empty", ())}, clock=vclock.now) as bridge:
        room = room_on(bridge, vclock, group="3")
        try:
            await room.connect()
            assert room.health().detail == f"Hue bridge {bridge.host} has no lights in group 3"
        finally:
            await room.close()
