"""The Hue API v2 driver against the v2 bridge emulator: real HTTPS through aiohue (unpatched),
the event stream included."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from roomctl import units
from roomctl.clock import Clock, RealClock, VirtualClock
from roomctl.drivers.base import Lights
from roomctl.drivers.hue import BridgeTrust
from roomctl.drivers.hue.v2 import (
    MAX_DURATION_MS,
    HueV2Bridges,
    HueV2Lights,
    OutsidePolicy,
    V2Options,
)
from roomctl.room import LightLook, OutsideChange
from testkit.bridge_tls import StandInSignify
from testkit.hue_drive import run_until, until
from testkit.hue_v2_bridge import (
    DEFAULT_APP_KEY,
    AreaSpec,
    HueV2BridgeEmulator,
    RecordedRequest,
    color_lamp,
    most_in_a_second,
    white_ambiance,
    white_lamp,
)

SIGNIFY = StandInSignify()


@pytest.fixture
def bridge() -> Iterator[HueV2BridgeEmulator]:
    with HueV2BridgeEmulator(SIGNIFY.issue()) as emulator:
        yield emulator


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock(start=1000.0)


@pytest.fixture
def vbridge(vclock: VirtualClock) -> Iterator[HueV2BridgeEmulator]:
    with HueV2BridgeEmulator(SIGNIFY.issue(), clock=vclock.now) as emulator:
        yield emulator


def pinned(bridge: HueV2BridgeEmulator) -> BridgeTrust:
    return BridgeTrust(bridge.host, pin=bridge.certificate.sha256, bridge_id=bridge.bridge_id)


@contextlib.asynccontextmanager
async def v2_room(bridge: HueV2BridgeEmulator, clock: Clock, *, group: str | None = "1",
                  lights: list[str] | None = None, policy: OutsidePolicy = "restore",
                  powerup: LightLook | None = None, **options: Any
                  ) -> AsyncIterator[HueV2Lights]:
    pool = HueV2Bridges(clock, V2Options(**options))
    room = pool.lights(bridge.host, DEFAULT_APP_KEY, trust=pinned(bridge), group=group,
                       lights=lights, policy=policy, powerup=powerup)
    try:
        yield room
    finally:
        await room.close()


def puts(bridge: HueV2BridgeEmulator, after: int = 0) -> list[RecordedRequest]:
    return [r for r in bridge.requests[after:] if r.method == "PUT"]


# --- reading the room -------------------------------------------------------------------------


async def test_connects_and_reads_the_room(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        lights: Lights = room
        assert not lights.health().ok
        await room.connect()
        assert room.health().ok
        readings = room.readings()
        assert [(r.id, r.name) for r in readings] == [
            ("1", "Couch lamp"), ("2", "Window lamp"), ("3", "Ceiling"), ("4", "Reading lamp")]
        assert all(r.on and r.brightness == 78.0 and r.color_temp == units.mireds_to_kelvin(366)
                   for r in readings)
    assert puts(bridge) == []


@pytest.mark.parametrize("ref", ["Therapy room", "1", "uuid"])
async def test_a_room_is_found_by_name_v1_id_or_id(bridge: HueV2BridgeEmulator,
                                                   ref: str) -> None:
    group = bridge.area_id("1") if ref == "uuid" else ref
    async with v2_room(bridge, RealClock(), group=group) as room:
        await room.connect()
        assert len(room.readings()) == 4 and room.health().ok


async def test_a_zone_and_lights_by_name(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock(), group="Couch corner") as zone:
        await zone.connect()
        assert [r.name for r in zone.readings()] == ["Couch lamp", "Ceiling"]
    async with v2_room(bridge, RealClock(), group=None, lights=["Reading lamp", "2"]) as room:
        await room.connect()
        assert [r.name for r in room.readings()] == ["Reading lamp", "Window lamp"]


async def test_a_missing_room_is_reported(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock(), group="Kitchen") as room:
        await room.connect()
        assert room.health().detail == (f"Hue bridge {bridge.host} has no room or zone "
                                        "'Kitchen'")


# --- commands ---------------------------------------------------------------------------------


async def test_a_phase_fade_is_one_grouped_light_command_with_its_duration(
        vbridge: HueV2BridgeEmulator, vclock: VirtualClock) -> None:
    async with v2_room(vbridge, vclock) as room:
        await room.apply(LightLook(40, 2700), 90.0)
        await run_until(vclock, room, vclock.now() + 100)
    [put] = puts(vbridge)
    assert put.resource == ("grouped_light", vbridge.grouped_light_id("1"))
    assert put.body == {"on": {"on": True}, "dimming": {"brightness": 40.0},
                        "color_temperature": {"mirek": 370}, "dynamics": {"duration": 90_000}}
    assert {vbridge.output(i).brightness for i in "1234"} == {40.0}


async def test_mixed_colours_go_light_by_light_each_within_what_it_can_show(
        vbridge: HueV2BridgeEmulator, vclock: VirtualClock) -> None:
    lamps = [color_lamp("Couch lamp", "1"), white_ambiance("Ceiling", "3"),
             white_lamp("Hall", "5")]
    with HueV2BridgeEmulator(SIGNIFY.issue(), lamps, [AreaSpec("All", "1", ("1", "3", "5"))],
                             clock=vclock.now) as mixed:
        async with v2_room(mixed, vclock) as room:
            start = vclock.now()
            await room.apply(LightLook(70, color="#0000ff"), 5.0)
            await run_until(vclock, room, vclock.now() + 6)
            assert room.health().ok
        bodies = {p.resource[1]: p.body for p in puts(mixed) if p.resource}
        ends = [p.clock_s + p.body["dynamics"]["duration"] / 1000 for p in puts(mixed)]
    blue = units.rgb_to_xy(units.hex_to_rgb("#0000ff"))
    x, y = units.clamp_xy_to_gamut(blue, ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475)))
    assert bodies[mixed.light_id("1")]["color"] == {"xy": {"x": round(x, 4), "y": round(y, 4)}}
    assert bodies[mixed.light_id("3")]["color_temperature"] == {
        "mirek": units.nearest_mireds(blue, 153, 454)}
    assert set(bodies[mixed.light_id("5")]) == {"on", "dimming", "dynamics"}
    assert ends == pytest.approx([start + 5.0] * 3, abs=0.1)  # sent one by one, ending together
    assert [r for r in mixed.requests if r.status not in (200, None)] == []


async def test_a_three_hour_fade_is_chained_and_ends_on_time(vbridge: HueV2BridgeEmulator,
                                                            vclock: VirtualClock) -> None:
    hours_3 = 3 * 3600.0
    # No idle reads over three virtual hours.
    async with v2_room(vbridge, vclock, group=None, lights=["1"], probe_s=1e9,
                       refresh_s=1e9) as room:
        await room.apply(LightLook(80, 2700), 0)
        await run_until(vclock, room, vclock.now() + 1)
        start = vclock.now()
        await room.apply(LightLook(5, 2200), hours_3)
        await run_until(vclock, room, start + hours_3 / 2)
        assert vbridge.output("1").brightness == pytest.approx((80 + 5) / 2, abs=1)
        await run_until(vclock, room, start + hours_3 + 60)
    steps = puts(vbridge)[1:]
    durations = [p.body["dynamics"]["duration"] for p in steps]
    assert durations[:-1] == [MAX_DURATION_MS] * (len(steps) - 1) and len(steps) == 2
    last = steps[-1]
    ends_at = last.clock_s + last.body["dynamics"]["duration"] / 1000
    assert abs(ends_at - (start + hours_3)) <= 1.0
    assert last.body["dimming"] == {"brightness": 5.0}
    assert last.body["color_temperature"] == {"mirek": 455}


async def test_zero_percent_fades_to_the_lowest_then_switches_off(
        vbridge: HueV2BridgeEmulator, vclock: VirtualClock) -> None:
    start = vclock.now()
    async with v2_room(vbridge, vclock) as room:
        await room.apply(LightLook(0, 2700), 10.0)
        await run_until(vclock, room, start + 9.5)
        assert all(vbridge.output(i).on for i in "1234")
        await run_until(vclock, room, start + 12)
        assert not any(vbridge.output(i).on for i in "1234")
        assert not any(r.on for r in room.readings())
    fade, off = puts(vbridge)
    assert fade.body["dimming"] == {"brightness": 0.2} and fade.body["dynamics"] == {
        "duration": 10_000}
    assert off.body == {"on": {"on": False}, "dynamics": {"duration": 0}}
    assert off.clock_s >= start + 10


async def test_latest_value_wins(vbridge: HueV2BridgeEmulator, vclock: VirtualClock) -> None:
    async with v2_room(vbridge, vclock) as room:
        await room.connect()
        for brightness in (10, 20, 30, 40):
            await room.apply(LightLook(brightness, 3000), 0)
        await run_until(vclock, room, vclock.now() + 2)
    [put] = puts(vbridge)
    assert put.body["dimming"] == {"brightness": 40.0}


async def slider(room: HueV2Lights, seconds: float, per_s: float = 60.0) -> tuple[float, float]:
    """Drag the brightness slider; (the last brightness, when it was sent)."""
    start, i, last = time.monotonic(), 0, 0.0
    while (now := time.monotonic()) < start + seconds:
        last = float(5 + (i * 3) % 90)
        await room.apply(LightLook(last, 2700), 0.0)
        i += 1
        await asyncio.sleep(max(0.0, start + i / per_s - now))
    return last, time.monotonic()


async def test_a_slider_burst_stays_within_the_bridges_limits(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        await room.connect()
        last, last_at = await slider(room, 6.0)
        await asyncio.sleep(1.2)
        assert room.health().ok
    assert [r for r in bridge.requests if r.status == 429] == []  # the emulator's 10/s and 1/s
    lights = [p.arrival_s for p in bridge.light_puts()]
    groups = [p.arrival_s for p in bridge.group_puts()]
    assert most_in_a_second(lights) <= 10 and most_in_a_second(groups) <= 1
    assert len(lights) >= 15 and len(groups) >= 3  # both paths carried the burst
    for v1_id in "1234":
        mine = [p for p in puts(bridge) if p.resource in (
            ("light", bridge.light_id(v1_id)), ("grouped_light", bridge.grouped_light_id("1")))]
        assert mine[-1].body["dimming"] == {"brightness": last}
        assert mine[-1].arrival_s - last_at <= 1.0
        assert bridge.output(v1_id).brightness == last


async def test_lights_up_arrives_within_a_second_even_right_after_a_group_command(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        await room.connect()
        await room.apply(LightLook(10, 2200), 30.0)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await room.apply(LightLook(100, 4000), 3.0)
        await until(lambda: all(any(p.body.get("dimming") == {"brightness": 100.0}
                                    and p.resource in (("light", bridge.light_id(i)),
                                                       ("grouped_light",
                                                        bridge.grouped_light_id("1")))
                                    for p in puts(bridge)) for i in "1234"), 3.0)
        assert time.monotonic() - started <= 1.0


async def test_too_many_requests_is_answered_with_back_off_not_a_burst() -> None:
    with HueV2BridgeEmulator(SIGNIFY.issue(), light_commands_per_s=2) as slow:
        async with v2_room(slow, RealClock(), group=None, lights=["1", "2", "3"]) as room:
            await room.connect()
            await room.apply(LightLook(30, 2700), 0)
            busy = (f"Hue bridge {slow.host} refuses commands as too many (HTTP 429); sending "
                    "more slowly")
            await until(lambda: room.health().detail == busy, 3.0)
            await room.apply(LightLook(60, 2700), 0)
            await until(lambda: all(slow.output(i).brightness == 60.0 for i in "123"), 8.0)
        answered = [r for r in slow.requests if r.method == "PUT"]
    refused = [i for i, r in enumerate(answered) if r.status == 429]
    for i in refused:  # each refusal is followed by a pause of at least the first back-off
        if i + 1 < len(answered):
            assert answered[i + 1].arrival_s - answered[i].arrival_s >= 0.9
    assert [p.body["dimming"] for p in slow.light_puts()][-3:] == [{"brightness": 60.0}] * 3


# --- changes made outside roomctl -------------------------------------------------------------


async def test_an_outside_change_is_noticed_and_restored(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        seen: list[tuple[float, OutsideChange]] = []
        room.subscribe_outside_changes(lambda c: seen.append((time.monotonic(), c)))
        await room.connect()
        await room.apply(LightLook(30, 2700), 1.0)
        await until(lambda: bridge.output("2").brightness == 30.0, 4.0)
        changed_at = time.monotonic()
        bridge.change_light("2", brightness=90.0, mirek=250)  # as the Hue app would
        await until(lambda: bool(seen), 2.0)
        noticed_at, change = seen[0]
        assert noticed_at - changed_at <= 2.0
        assert (change.light_id, change.name, change.action) == ("2", "Window lamp", "restored")
        assert change.what == "brightness 30 % -> 90 %, colour temperature 2703 K -> 4000 K"
        assert "Window lamp was changed outside roomctl" in str(room.health().detail)
        await until(lambda: bridge.output("2") == bridge.output("1"), 3.0 + 3.0)
        assert bridge.output("2").brightness == 30.0 and bridge.output("2").mirek == 370
        await asyncio.sleep(0.6)
        assert len(seen) == 1  # putting it back is roomctl's own change, not another one


async def test_follow_leaves_the_lamp_alone_until_the_next_phase(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock(), policy="follow") as room:
        seen: list[OutsideChange] = []
        room.subscribe_outside_changes(seen.append)
        room.runner_marks_phases()
        await room.connect()
        await room.apply(LightLook(30, 2700), 0.5)
        await until(lambda: bridge.output("3").brightness == 30.0, 4.0)
        bridge.change_light("3", brightness=100.0)
        await until(lambda: bool(seen), 2.0)
        assert seen[0].action == "followed"
        assert [r.brightness for r in room.readings()][2] == 100.0
        await room.apply(LightLook(45, 2700), 0.0)  # a slider, same phase
        await until(lambda: bridge.output("1").brightness == 45.0, 3.0)
        await asyncio.sleep(0.5)
        assert bridge.output("3").brightness == 100.0
        assert room.outside_changes() == tuple(seen)
        room.take_back()  # the next phase
        await room.apply(LightLook(20, 2400), 1.0)
        await until(lambda: all(bridge.output(i).brightness == 20.0 for i in "1234"), 5.0)
        assert room.outside_changes() == ()


async def test_follow_lasts_until_any_apply_while_the_runner_does_not_mark_phases(
        bridge: HueV2BridgeEmulator) -> None:
    """Lights up must reach every lamp even from a runner that knows nothing of phases."""
    async with v2_room(bridge, RealClock(), policy="follow") as room:
        seen: list[OutsideChange] = []
        room.subscribe_outside_changes(seen.append)
        await room.connect()
        await room.apply(LightLook(30, 2700), 0.0)
        await until(lambda: bridge.output("3").brightness == 30.0, 4.0)
        bridge.change_light("3", brightness=5.0)
        await until(lambda: bool(seen), 2.0)
        await room.apply(LightLook(100, 4000), 1.0)  # Lights up
        await until(lambda: all(bridge.output(i).brightness == 100.0 for i in "1234"), 4.0)


async def test_the_stream_dropping_and_coming_back_is_one_full_re_read(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        seen: list[OutsideChange] = []
        room.subscribe_outside_changes(seen.append)
        await room.connect()
        await room.apply(LightLook(50, 3000), 0.0)
        await until(lambda: bridge.output("4").brightness == 50.0, 3.0)
        reads, connects = len(bridge.full_reads()), len(bridge.stream_connects)
        bridge.drop_stream(refuse_for_s=1.5)
        await asyncio.sleep(0.3)
        bridge.change_light("4", brightness=5.0)  # unseen: nothing is streaming
        await until(lambda: len(bridge.stream_connects) > connects, 8.0)
        await until(lambda: bool(seen), 3.0)  # found by the re-read
        assert seen[0].name == "Reading lamp" and seen[0].what == "brightness 50 % -> 5 %"
        await asyncio.sleep(1.0)
        assert len(bridge.full_reads()) == reads + 1
        assert room.health().ok


async def test_an_unreachable_lamp_is_shown_and_gets_its_target_when_back(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        told: list[bool] = []
        room.subscribe(lambda: told.append(room.health().ok))
        await room.connect()
        await room.apply(LightLook(35, 2500), 0.0)
        await until(lambda: bridge.output("1").brightness == 35.0, 3.0)
        bridge.set_reachable("1", False)  # switched off at the wall
        shown = await until(lambda: not room.health().ok, 2.0)
        assert shown <= 2.0
        assert room.health().detail == (f"Hue bridge {bridge.host} cannot reach light 1 "
                                        "(Couch lamp): switched off at the wall?")
        assert [r.reachable for r in room.readings()] == [False, True, True, True]
        assert False in told  # subscribers heard of it without asking
        await room.apply(LightLook(60, 2500), 0.0)
        await until(lambda: bridge.output("2").brightness == 60.0, 3.0)
        assert bridge.output("1").brightness == 35.0
        before = len(bridge.light_puts("1"))
        bridge.set_reachable("1", True)  # back, at its power-on look
        await until(lambda: bridge.output("1").brightness == 60.0, 3.0 + 3.0)
        assert bridge.light_puts("1")[before:]
        assert room.health().ok and room.outside_changes() == ()


async def test_powerup_is_set_to_a_soft_warm_look(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock(), powerup=LightLook(15, 2200)) as room:
        await room.connect()
        await until(lambda: all(bridge.reported(i)["powerup"]["preset"] == "custom"
                                for i in "1234"), 3.0)
        bridge.set_reachable("2", False)
        bridge.set_reachable("2", True)
        await until(lambda: bridge.output("2").brightness == 15.0, 2.0)
    powerup = bridge.reported("3")["powerup"]
    assert powerup["dimming"] == {"mode": "dimming", "dimming": {"brightness": 15.0}}
    assert powerup["color"] == {"mode": "color_temperature",
                                "color_temperature": {"mirek": 454}}  # its warmest
    assert powerup["on"] == {"mode": "on", "on": {"on": True}}


# --- faults -----------------------------------------------------------------------------------


async def test_an_impostor_is_refused_with_a_message_naming_the_bridge(
        bridge: HueV2BridgeEmulator) -> None:
    trust = BridgeTrust(bridge.host, pin=SIGNIFY.issue().sha256, bridge_id=bridge.bridge_id)
    room = HueV2Bridges(RealClock()).lights(bridge.host, DEFAULT_APP_KEY, trust=trust, group="1")
    try:
        with pytest.raises(Exception, match=f"Hue bridge {bridge.host} .id {bridge.bridge_id}. "
                                            "presented a certificate"):
            await room.connect()
        assert str(room.health().detail).startswith(f"Hue bridge {bridge.host} (id ")
    finally:
        await room.close()
    assert bridge.requests == []


async def test_a_bridge_that_dies_while_idle_is_noticed_within_seconds(
        bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock(), request_timeout_s=0.5, probe_s=1.0) as room:
        await room.connect()
        bridge.hang()
        took = await until(lambda: not room.health().ok, 4.0)
        assert took <= 3.0
        assert room.health().detail == f"Hue bridge {bridge.host} not answering: timed out"
        bridge.come_back()
        await until(lambda: room.health().ok, 6.0)


async def test_bad_looks_are_refused(bridge: HueV2BridgeEmulator) -> None:
    async with v2_room(bridge, RealClock()) as room:
        for look in (LightLook(101), LightLook(50, 2700, "#ffffff"), LightLook(50, color="x")):
            with pytest.raises(ValueError):
                await room.apply(look, 0.0)
    assert puts(bridge) == []
