"""The `hue` Lights driver against the bridge emulator, over real HTTP through phue."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from roomctl import units
from roomctl.clock import Clock, RealClock, VirtualClock
from roomctl.drivers.base import Lights
from roomctl.drivers.hue import (
    MAX_TRANSITION_DS,
    BridgeUnreachable,
    HueBridges,
    HueLights,
    HueOptions,
    PairingRequired,
    build_hue_lights,
)
from roomctl.drivers.hue.scheduler import (
    CommandScheduler,
    Job,
    RateLimits,
    Spacing,
    Target,
    Work,
    choose,
)
from roomctl.drivers.hue.tls import BridgeTrust
from roomctl.room import DriverHealth, LightLook
from testkit.hue_bridge import (
    DEFAULT_USER,
    GAMUT_C,
    GroupSpec,
    HueBridgeEmulator,
    RecordedRequest,
    color_lamp,
    most_in_a_second,
    white_ambiance,
    white_lamp,
)
from testkit.hue_drive import no_errors, puts, run_until

# --- helpers ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def hue_room(bridge: HueBridgeEmulator, clock: Clock, *, group: str | None = "1",
                   lights: list[str] | None = None, username: str = DEFAULT_USER,
                   **options: Any) -> AsyncIterator[HueLights]:
    room = build_hue_lights(bridge.host, username, group, lights, clock, trust=trust_for(bridge),
                            options=HueOptions(**options))
    try:
        yield room
    finally:
        await room.close()


def trust_for(bridge: HueBridgeEmulator) -> BridgeTrust | None:
    """What pairing would have stored for this emulator: its certificate's pin (None: HTTP)."""
    cert = bridge.certificate
    return None if cert is None else BridgeTrust(bridge.host, pin=cert.sha256,
                                                 bridge_id=bridge.bridge_id)


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock(start=1000.0)


@pytest.fixture
def bridge() -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator() as emulator:
        yield emulator


@pytest.fixture
def vbridge(vclock: VirtualClock) -> Iterator[HueBridgeEmulator]:
    """The emulator on the test's virtual clock (fades, rate limits)."""
    with HueBridgeEmulator(clock=vclock.now) as emulator:
        yield emulator


# --- first contact ----------------------------------------------------------------------------


async def test_connects_and_reads_the_room(bridge: HueBridgeEmulator) -> None:
    async with hue_room(bridge, RealClock()) as room:
        lights: Lights = room
        assert lights.health().ok is False  # not in touch yet
        await room.connect()
        assert room.health().ok
        readings = room.readings()
        assert [(r.id, r.name) for r in readings] == [
            ("1", "Couch lamp"), ("2", "Window lamp"), ("3", "Ceiling"), ("4", "Reading lamp")]
        assert all(r.on and r.brightness == units.bri_to_percent(200) for r in readings)
        assert readings[0].color_temp == units.mireds_to_kelvin(366)
        assert puts(bridge) == []


async def test_whole_room_change_is_one_group_command(vbridge: HueBridgeEmulator,
                                                     vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock) as room:
        await room.apply(LightLook(50, 2700), 2.0)
        await run_until(vclock, room, vclock.now() + 5)
    [put] = puts(vbridge)
    assert put.path == f"/api/{DEFAULT_USER}/groups/1/action"
    assert put.body == {"on": True, "bri": 128, "ct": 370, "transitiontime": 20}
    assert [(vbridge.light_state(i)["bri"], vbridge.light_state(i)["ct"]) for i in "1234"] == [
        (128, 370)] * 4


async def test_latest_value_wins(vbridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock) as room:
        await room.connect()
        for brightness in (10, 20, 30, 40):
            await room.apply(LightLook(brightness, 3000), 0)  # no await gives the loop a turn
        await run_until(vclock, room, vclock.now() + 2)
    [put] = puts(vbridge)
    assert put.body["bri"] == units.percent_to_bri(40)


async def test_readings_are_interpolated_mid_fade(vbridge: HueBridgeEmulator,
                                                  vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock, group=None, lights=["1"]) as room:
        await room.apply(LightLook(90, 2700), 0)
        await run_until(vclock, room, vclock.now() + 1)
        await room.apply(LightLook(10, 2700), 100)
        await run_until(vclock, room, vclock.now() + 50)
        [reading] = room.readings()
        assert reading.brightness == pytest.approx(50, abs=0.5)
        assert vbridge.light_state("1")["bri"] == units.percent_to_bri(50)


# --- mapping ----------------------------------------------------------------------------------


MIXED = {"1": color_lamp("Couch lamp"), "3": white_ambiance("Ceiling"),
         "5": white_lamp("Hall"), "6": color_lamp("Off lamp", on=False)}


@pytest.fixture
def mixed(vclock: VirtualClock) -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator(MIXED, {"1": GroupSpec("All", tuple(MIXED))},
                           clock=vclock.now) as emulator:
        yield emulator


async def apply_and_settle(room: HueLights, clock: VirtualClock, look: LightLook,
                           transition_s: float = 0.0) -> None:
    await room.apply(look, transition_s)
    await run_until(clock, room, clock.now() + transition_s + 2)


async def test_full_brightness_is_bri_254(mixed: HueBridgeEmulator,
                                         vclock: VirtualClock) -> None:
    async with hue_room(mixed, vclock) as room:
        await apply_and_settle(room, vclock, LightLook(100, 4000))
        assert [mixed.light_state(i)["bri"] for i in MIXED] == [254] * 4
        assert all(r.brightness == 100 for r in room.readings())
    no_errors(mixed)


async def test_zero_percent_fades_to_bri_1_then_switches_off(mixed: HueBridgeEmulator,
                                                           vclock: VirtualClock) -> None:
    start = vclock.now()
    async with hue_room(mixed, vclock, group=None, lights=["1", "3"]) as room:
        await room.apply(LightLook(0, 2700), 3.0)
        await run_until(vclock, room, start + 2.9)
        assert [mixed.light_state(i)["on"] for i in "13"] == [True, True]
        await run_until(vclock, room, start + 5)
        assert [mixed.light_state(i)["on"] for i in "13"] == [False, False]
        assert [r.on for r in room.readings()] == [False, False]
    fades = [p for p in puts(mixed) if p.body.get("on") is True]
    offs = [p for p in puts(mixed) if p.body.get("on") is False]
    assert {p.light_id: p.body["bri"] for p in fades} == {"1": 1, "3": 1}
    assert all(p.clock_s < start + 0.5 and p.body["transitiontime"] > 25 for p in fades)
    assert [p.body for p in offs] == [{"on": False, "transitiontime": 0}] * 2
    assert all(p.clock_s >= start + 3.0 for p in offs)  # only once the fade has ended
    no_errors(mixed)


async def test_zero_percent_on_an_off_light_just_stays_off(mixed: HueBridgeEmulator,
                                                          vclock: VirtualClock) -> None:
    async with hue_room(mixed, vclock, group=None, lights=["6"]) as room:
        await apply_and_settle(room, vclock, LightLook(0, 2700), 60.0)
    assert [p.body for p in puts(mixed)] == [{"on": False, "transitiontime": 0}]


async def test_an_off_light_is_switched_on(mixed: HueBridgeEmulator,
                                           vclock: VirtualClock) -> None:
    async with hue_room(mixed, vclock, group=None, lights=["6"]) as room:
        await apply_and_settle(room, vclock, LightLook(40, 2700), 1.0)
    assert mixed.light_state("6")["on"] is True
    assert mixed.light_state("6")["bri"] == units.percent_to_bri(40)
    no_errors(mixed)


async def test_colour_temperature_is_clamped_to_each_lights_range(
        mixed: HueBridgeEmulator, vclock: VirtualClock) -> None:
    async with hue_room(mixed, vclock) as room:
        await apply_and_settle(room, vclock, LightLook(60, 2000))  # 500 mireds
        assert [mixed.light_state(i)["ct"] for i in "136"] == [500, 454, 500]
        await apply_and_settle(room, vclock, LightLook(60, 10000))  # 100 mireds
        assert [mixed.light_state(i)["ct"] for i in "136"] == [153, 153, 153]
        assert "ct" not in mixed.light_state("5")
    no_errors(mixed)


async def test_colour_outside_the_gamut_is_clamped_and_white_bulbs_get_the_nearest_white(
        mixed: HueBridgeEmulator, vclock: VirtualClock) -> None:
    blue_xy = units.rgb_to_xy(units.hex_to_rgb("#0000ff"))
    assert not units.xy_in_gamut(blue_xy, GAMUT_C)
    async with hue_room(mixed, vclock) as room:
        await apply_and_settle(room, vclock, LightLook(70, color="#0000ff"))
        x, y = units.clamp_xy_to_gamut(blue_xy, GAMUT_C)
        lamp = mixed.light_state("1")
        assert (lamp["colormode"], lamp["xy"]) == ("xy", [round(x, 4), round(y, 4)])
        ambiance = mixed.light_state("3")
        assert ambiance["colormode"] == "ct"
        assert ambiance["ct"] == units.nearest_mireds(blue_xy, 153, 454) == 153
        await apply_and_settle(room, vclock, LightLook(70, color="#ff9a3c"))  # warm orange
        assert mixed.light_state("3")["ct"] == 454
        assert mixed.light_state("5")["bri"] == units.percent_to_bri(70)
        readings = {r.id: r for r in room.readings()}
        assert readings["1"].color is not None and readings["1"].color_temp is None
        assert readings["3"].color_temp == units.mireds_to_kelvin(454)
        assert readings["5"].color is None and readings["5"].color_temp is None
    no_errors(mixed)


async def test_mixed_bodies_go_light_by_light(mixed: HueBridgeEmulator,
                                              vclock: VirtualClock) -> None:
    async with hue_room(mixed, vclock) as room:
        await apply_and_settle(room, vclock, LightLook(70, color="#ff0000"))
    assert mixed.group_puts() == []
    assert sorted(str(p.light_id) for p in mixed.light_puts()) == sorted(MIXED)


# --- long fades -------------------------------------------------------------------------------


async def test_a_three_hour_fade_is_chained_and_ends_on_time(vbridge: HueBridgeEmulator,
                                                            vclock: VirtualClock) -> None:
    hours_3 = 3 * 3600.0
    async with hue_room(vbridge, vclock, group=None, lights=["1"]) as room:
        await room.apply(LightLook(80, 2700), 0)
        await run_until(vclock, room, vclock.now() + 1)
        start = vclock.now()
        await room.apply(LightLook(5, 2200), hours_3)
        b80, b5 = units.percent_to_bri(80), units.percent_to_bri(5)
        await run_until(vclock, room, start + hours_3 / 2)
        assert vbridge.light_state("1")["bri"] == pytest.approx((b80 + b5) / 2, abs=1)
        await run_until(vclock, room, start + hours_3 - 300)
        assert vbridge.light_state("1")["ct"] < 455
        await run_until(vclock, room, start + hours_3 + 60)
    first, second = puts(vbridge)[1:]
    assert first.clock_s == start and first.body["transitiontime"] == MAX_TRANSITION_DS
    part = MAX_TRANSITION_DS / 10 / hours_3
    assert first.body["bri"] == round(b80 + (b5 - b80) * part)
    assert first.body["ct"] == round(370 + (455 - 370) * part)
    assert second.clock_s == pytest.approx(start + MAX_TRANSITION_DS / 10)
    assert second.clock_s + second.body["transitiontime"] / 10 == pytest.approx(start + hours_3)
    assert (second.body["bri"], second.body["ct"]) == (b5, 455)
    assert (vbridge.light_state("1")["bri"], vbridge.light_state("1")["ct"]) == (b5, 455)
    assert len(puts(vbridge)) == 3


async def test_a_new_look_mid_chain_replaces_the_chain(vbridge: HueBridgeEmulator,
                                                      vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock, group=None, lights=["1"]) as room:
        await room.apply(LightLook(5, 2700), 3 * 3600.0)
        await run_until(vclock, room, vclock.now() + 600)
        await room.apply(LightLook(100, 4000), 10)
        await run_until(vclock, room, vclock.now() + 4 * 3600.0)
    assert [p.body["bri"] for p in puts(vbridge)][-1] == 254
    assert len(puts(vbridge)) == 2


# --- rate limits and bursts -------------------------------------------------------------------


def test_choose_prefers_whichever_delivers_sooner() -> None:
    work = Work(("1", "2", "3", "4"), {"1": frozenset("1234")})
    lights, group = Spacing(0.105), Spacing(1.05)
    assert choose(work, lights, group, 10.0) == (("group", "1"), None)  # tie: one broadcast
    group.note(10.0)
    assert choose(work, lights, group, 10.1) == (("light", "1"), None)  # 4 lights by 10.415
    lights.note(10.1)
    slow_lights = Spacing(0.5)
    slow_lights.note(10.1)
    # 4 lights one by one would end at 11.1+; the group is free at 11.05: wait for it.
    assert choose(work, slow_lights, group, 10.2) == (None, 11.05)
    assert choose(Work((), {}), lights, group, 10.2) == (None, None)


async def test_a_second_room_change_within_a_second_goes_light_by_light(
        vbridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock) as room:
        await room.apply(LightLook(30, 3000), 0)
        await run_until(vclock, room, vclock.now() + 0.2)
        await room.apply(LightLook(60, 3000), 0)
        await run_until(vclock, room, vclock.now() + 2)
    assert len(vbridge.group_puts()) == 1
    assert sorted(str(p.light_id) for p in vbridge.light_puts()) == ["1", "2", "3", "4"]
    assert {vbridge.light_state(i)["bri"] for i in "1234"} == {units.percent_to_bri(60)}


async def test_slow_light_limits_make_the_group_command_worth_waiting_for(
        vbridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    limits = RateLimits(light_commands_per_s=2, group_commands_per_s=1)
    async with hue_room(vbridge, vclock, limits=limits) as room:
        await room.apply(LightLook(30, 3000), 0)
        await run_until(vclock, room, vclock.now() + 0.2)
        await room.apply(LightLook(60, 3000), 0)
        await run_until(vclock, room, vclock.now() + 3)
    assert len(vbridge.group_puts()) == 2
    assert vbridge.light_puts() == []


async def slider_burst(room: HueLights, seconds: float, per_s: float = 60.0) -> tuple[int, float]:
    """Drag the brightness slider up and down; returns the last brightness % and when it was
    sent (time.monotonic)."""
    start = time.monotonic()
    i = 0
    last = 0
    while (now := time.monotonic()) < start + seconds:
        last = 5 + (i * 3) % 90
        await room.apply(LightLook(last, 2700), 0.0)
        i += 1
        await asyncio.sleep(max(0.0, start + i / per_s - now))
    sent_at = time.monotonic()
    return last, sent_at


def last_delivery(bridge: HueBridgeEmulator, light_id: str, group_id: str | None
                  ) -> RecordedRequest:
    mine = [p for p in puts(bridge) if p.light_id == light_id
            or (group_id is not None and p.group_id == group_id)]
    return mine[-1]


async def test_a_slider_on_one_light_lands_within_200_ms(bridge: HueBridgeEmulator) -> None:
    bridge.set_rate_limit(light_puts_per_s=10, group_puts_per_s=1)
    async with hue_room(bridge, RealClock(), group=None, lights=["2"]) as room:
        await room.connect()
        last, last_at = await slider_burst(room, 2.5)
        await asyncio.sleep(0.5)
    final = last_delivery(bridge, "2", None)
    assert final.body["bri"] == units.percent_to_bri(last)
    assert final.arrival_s - last_at <= 0.2
    assert bridge.light_state("2")["bri"] == units.percent_to_bri(last)
    assert most_in_a_second([p.arrival_s for p in bridge.light_puts()]) <= 10
    assert [r for r in bridge.requests if r.status == 503] == []


async def test_a_ten_second_slider_burst_on_a_room_of_four(bridge: HueBridgeEmulator) -> None:
    bridge.set_rate_limit(light_puts_per_s=10, group_puts_per_s=1)  # a 503 would show a breach
    async with hue_room(bridge, RealClock()) as room:
        await room.connect()
        last, last_at = await slider_burst(room, 10.0)
        await asyncio.sleep(1.2)
        assert room.health().ok
    assert [r for r in bridge.requests if r.status == 503] == []
    light_times = [p.arrival_s for p in bridge.light_puts()]
    group_times = [p.arrival_s for p in bridge.group_puts()]
    assert most_in_a_second(light_times) <= 10
    assert most_in_a_second(group_times) <= 1
    assert len(light_times) >= 50 and len(group_times) >= 8  # both paths carried the burst
    final_bri = units.percent_to_bri(last)
    for light_id in "1234":
        final = last_delivery(bridge, light_id, "1")
        assert final.body["bri"] == final_bri
        assert final.arrival_s - last_at <= 1.0
        assert bridge.light_state(light_id)["bri"] == final_bri
    no_errors(bridge)


async def test_two_rooms_on_one_bridge_share_its_limits(bridge: HueBridgeEmulator) -> None:
    bridges = HueBridges(RealClock())
    one = bridges.lights(bridge.host, DEFAULT_USER, trust=None, lights=["1", "2"])
    two = bridges.lights(bridge.host, DEFAULT_USER, trust=None, lights=["3", "4"])
    try:
        for i in range(30):
            await one.apply(LightLook(10 + i, 2700), 0)
            await two.apply(LightLook(60 - i, 2700), 0)
            await asyncio.sleep(1 / 60)
        await asyncio.sleep(0.6)
    finally:
        await one.close()
        await two.close()
    assert most_in_a_second([p.arrival_s for p in bridge.light_puts()]) <= 10
    assert [bridge.light_state(i)["bri"] for i in "13"] == [
        units.percent_to_bri(39), units.percent_to_bri(31)]


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["1", None])
async def test_bridge_down_for_30_s_then_back_gets_what_is_wanted_now_once(
        vbridge: HueBridgeEmulator, vclock: VirtualClock, group: str | None) -> None:
    lights = None if group else ["1", "2", "3", "4"]
    async with hue_room(vbridge, vclock, group=group, lights=lights) as room:
        await room.apply(LightLook(70, 3000), 0)
        await run_until(vclock, room, vclock.now() + 2)
        before = len(puts(vbridge))
        vbridge.go_down()
        down_at = vclock.now()
        await room.apply(LightLook(50, 3000), 120)
        await run_until(vclock, room, down_at + 10)
        health = room.health()
        assert not health.ok
        assert health.detail == f"Hue bridge {vbridge.host} not answering: connection refused"
        assert not any(r.reachable for r in room.readings())
        await room.apply(LightLook(20, 2300), 100)  # wanted: bri 52, ct 435 at down_at + 110
        await run_until(vclock, room, down_at + 30)
        assert len(puts(vbridge)) == before
        vbridge.come_back()
        await run_until(vclock, room, down_at + 200)
        assert room.health().ok
    after = puts(vbridge)[before:]
    assert len(after) == (1 if group else 4)
    for put in after:
        assert put.clock_s > down_at + 30
        assert (put.body["bri"], put.body["ct"]) == (units.percent_to_bri(20), 435)
        assert put.clock_s + put.body["transitiontime"] / 10 == pytest.approx(down_at + 110,
                                                                             abs=0.05)
    assert {vbridge.light_state(i)["bri"] for i in "1234"} == {units.percent_to_bri(20)}


async def test_retries_back_off(vbridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock, group=None, lights=["1"]) as room:
        await room.connect()
        vbridge.go_down()
        start = vclock.now()
        await room.apply(LightLook(50, 3000), 0)
        attempts = []
        while vclock.now() < start + 100:
            await room.drain()
            attempts.append(vclock.now() - start)
            deadline = vclock.next_deadline()
            assert deadline is not None
            await vclock.advance_to(deadline)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(attempts)]
    assert gaps[:7] == [1, 2, 4, 8, 16, 30, 30]


async def test_a_hanging_bridge_times_out_and_the_room_is_degraded(
        bridge: HueBridgeEmulator) -> None:
    async with hue_room(bridge, RealClock(), request_timeout_s=0.3) as room:
        await room.connect()
        bridge.hang()
        started = time.monotonic()
        await room.apply(LightLook(50, 3000), 0)
        await room.drain()
        assert 0.25 <= time.monotonic() - started < 1.5
        assert room.health() == DriverHealth(
            False, f"Hue bridge {bridge.host} not answering: timed out")
        bridge.come_back()


async def test_a_bridge_that_is_down_at_start_says_so(bridge: HueBridgeEmulator) -> None:
    bridge.go_down()
    async with hue_room(bridge, RealClock()) as room:
        with pytest.raises(BridgeUnreachable, match="not answering: connection refused"):
            await room.connect()
        assert room.readings() == []


async def test_an_unknown_user_must_pair_again(bridge: HueBridgeEmulator) -> None:
    message = (f"Hue bridge {bridge.host} does not know user 'forgotte…': pair again with "
               f"`roomctl hue pair --bridge {bridge.host}`")
    async with hue_room(bridge, RealClock(), username="forgotten-user") as room:
        with pytest.raises(PairingRequired) as raised:
            await room.connect()
        assert str(raised.value) == message
        assert room.health().detail == message
        with pytest.raises(PairingRequired, match="pair again"):
            await room.apply(LightLook(50, 3000), 0)


async def test_refusals_in_the_bridges_answer_are_logged_with_light_and_field(
        vclock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    # An old white bulb whose API object has no capabilities: roomctl assumes 153-500 mireds,
    # the bulb only takes 153-454.
    lights = {"3": white_ambiance("Ceiling", capabilities=False)}
    with HueBridgeEmulator(lights, {}, clock=vclock.now) as bridge:
        async with hue_room(bridge, vclock, group=None, lights=["3"]) as room:
            with caplog.at_level(logging.WARNING, logger="roomctl.drivers.hue"):
                await apply_and_settle(room, vclock, LightLook(50, 2000))
        assert bridge.light_state("3")["bri"] == units.percent_to_bri(50)
    assert (f"Hue bridge {bridge.host} refused light 3 ct=500: invalid value, 500, for "
            "parameter, ct (Hue error 7)") in caplog.messages


async def test_a_missing_group_is_reported(bridge: HueBridgeEmulator) -> None:
    async with hue_room(bridge, RealClock(), group="9") as room:
        await room.connect()
        assert room.health().detail == f"Hue bridge {bridge.host} has no group 9"


async def test_an_unreachable_bulb_is_reported(bridge: HueBridgeEmulator) -> None:
    bridge.set_reachable("3", False)
    async with hue_room(bridge, RealClock()) as room:
        await room.connect()
        assert room.health().detail == (f"Hue bridge {bridge.host} cannot reach light "
                                        "3 (Ceiling): switched off at the wall?")
        assert [r.reachable for r in room.readings()] == [True, True, False, True]


async def test_bad_looks_are_refused(bridge: HueBridgeEmulator) -> None:
    async with hue_room(bridge, RealClock()) as room:
        for look, transition in [(LightLook(101), 0.0), (LightLook(-1), 0.0),
                                 (LightLook(50, 2700, "#ffffff"), 0.0),
                                 (LightLook(50, color="orange"), 0.0), (LightLook(50), -1.0)]:
            with pytest.raises(ValueError):
                await room.apply(look, transition)
    assert bridge.requests == []


# --- the scheduler's own failures are never silent --------------------------------------------


class BrokenPlant:
    """A plant whose calls fail like bugs do."""

    def __init__(self, fail_in: str) -> None:
        self.fail_in = fail_in
        self.ready = True

    def survey(self) -> Job:
        return Job(lambda: None, lambda answer, now: None)

    def probe(self) -> Job:
        return self.survey()

    def work(self, now: float) -> Work:
        return Work(("1",))

    def next_change(self, now: float) -> float | None:
        return None

    def command(self, target: Target, now: float) -> Job:
        if self.fail_in == "loop":
            raise KeyError("light 1")
        return Job(self._call, lambda answer, now: None)

    def _call(self) -> None:
        raise ValueError("unexpected answer")

    def describe(self, exc: BaseException) -> str | None:
        return None


async def test_an_exception_on_the_worker_thread_is_logged_and_surfaced(
        vclock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = CommandScheduler(BrokenPlant("worker"), vclock, name="test")
    with caplog.at_level(logging.ERROR):
        await scheduler.drain()
    await scheduler.close()
    assert scheduler.problem == "Hue bridge test: unexpected error (ValueError('unexpected answer'))"
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


async def test_a_crash_of_the_scheduler_is_logged_and_surfaced(
        vclock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = CommandScheduler(BrokenPlant("loop"), vclock, name="test")
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="stopped"):
        await scheduler.drain()
    await scheduler.close()
    assert isinstance(scheduler.crashed, KeyError)
    assert any("stopped" in m for m in caplog.messages)


async def test_an_idle_bridge_that_dies_is_noticed_within_seconds(
        vbridge: HueBridgeEmulator, vclock: VirtualClock) -> None:
    async with hue_room(vbridge, vclock) as room:
        await room.connect()
        assert room.health().ok
        vbridge.go_down()
        await run_until(vclock, room, vclock.now() + 6)  # nothing wanted: the room is idle
        assert room.health().detail == (f"Hue bridge {vbridge.host} not answering: "
                                        "connection refused")
