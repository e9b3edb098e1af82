"""What the `hue` drivers cost and whether they hold the bridge's limits.

Against the Hue bridge emulators (real HTTP(S) on 127.0.0.1; phue under v1, aiohue under v2):

(a) latency of one light change: through the driver (from `apply()` until the bridge has
    recorded the PUT) vs a direct phue `set_light` call, interleaved in one run on the same
    bridge (in pairs, taking turns at going first); p50 of each and their ratio. Pairs are
    PAIR_S apart so that the driver's rate limit never delays a change: this is the cost of
    the worker thread and the scheduler.
(b) a brightness slider dragged at 60 updates/s for 10 s on a room of 4 lights (a Hue
    group): the most light and group PUTs the bridge saw in any one second, and how long
    after the last update the last light had its final value.

(c) v1 over HTTPS: (a) again with the bridge's certificate checked on every connection, vs
    the same driver over plain HTTP, in one run: what TLS costs the v1 path.
(d) v2: one light change through the driver (apply() until the bridge recorded the PUT) vs a
    bare aiohue call (`lights.set_state`, aiohue's own unverified session), interleaved.
(e) v2: the slider burst of (b) on a room of 4 (a grouped_light): busiest second of light and
    grouped_light PUTs, 429 answers, and the final value's delay.

Last line: one JSON object.

    .venv/bin/python bench/hue.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test kit lives in the project root

import phue
from aiohue import HueBridgeV2

from roomctl import units
from roomctl.clock import RealClock
from roomctl.drivers.hue import BridgeTrust, HueLights, build_hue_lights
from roomctl.drivers.hue.v2 import HueV2Bridges, HueV2Lights
from roomctl.room import LightLook
from testkit.bridge_tls import StandInSignify
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator, RecordedRequest, most_in_a_second
from testkit.hue_v2_bridge import DEFAULT_APP_KEY, HueV2BridgeEmulator
from testkit.hue_v2_bridge import RecordedRequest as V2Request

PAIRS = 90  # light changes per variant in (a)
PAIR_S = 0.12  # between driver changes in (a): more than its light-command interval
BURST_S = 10.0
BURST_PER_S = 60.0


def _is_put(request: RecordedRequest) -> bool:
    return request.method == "PUT"


async def _through_driver(bridge: HueBridgeEmulator, room: HueLights, brightness: float) -> float:
    loop = asyncio.get_running_loop()
    after = len(bridge.requests)
    # The waiting thread is parked before the clock starts, so it costs the driver nothing.
    seen = loop.run_in_executor(None, bridge.wait_for, _is_put, 2.0, after)
    await asyncio.sleep(0.005)
    started = time.monotonic()
    await room.apply(LightLook(brightness, 2700), 0.0)
    request = await seen
    if request is None:
        raise RuntimeError("the driver's PUT never reached the bridge")
    return request.arrival_s - started


def _direct(bridge: HueBridgeEmulator, client: phue.Bridge, brightness: float) -> float:
    after = len(bridge.requests)
    body = {"on": True, "bri": units.percent_to_bri(brightness), "ct": 370, "transitiontime": 0}
    started = time.monotonic()
    client.set_light(1, body)  # blocking, as a plain phue program calls it
    request = bridge.wait_for(_is_put, 2.0, after)
    if request is None:
        raise RuntimeError("phue's PUT never reached the bridge")
    return request.arrival_s - started


async def latency() -> tuple[float, float]:
    with HueBridgeEmulator() as bridge:
        room = build_hue_lights(bridge.host, DEFAULT_USER, None, ["1"], RealClock(), trust=None)
        client = phue.Bridge(bridge.host, DEFAULT_USER, config_file_path="/nonexistent")
        driver_s: list[float] = []
        direct_s: list[float] = []
        try:
            await room.connect()
            for i in range(PAIRS):
                brightness = 10 + (i * 7) % 80
                if i % 2:
                    direct_s.append(_direct(bridge, client, brightness + 1))
                    driver_s.append(await _through_driver(bridge, room, brightness))
                else:
                    driver_s.append(await _through_driver(bridge, room, brightness))
                    direct_s.append(_direct(bridge, client, brightness + 1))
                await asyncio.sleep(PAIR_S)
        finally:
            await room.close()
    driver_p50, direct_p50 = statistics.median(driver_s), statistics.median(direct_s)
    print(f"(a) one light change: driver p50 {driver_p50 * 1000:.3f} ms "
          f"(p90 {_p90(driver_s) * 1000:.3f}, n={len(driver_s)}), direct phue p50 "
          f"{direct_p50 * 1000:.3f} ms (p90 {_p90(direct_s) * 1000:.3f}, n={len(direct_s)})")
    return driver_p50, direct_p50


async def tls_v1() -> tuple[float, float]:
    signify = StandInSignify()
    with HueBridgeEmulator(certificate=signify.issue()) as secure, HueBridgeEmulator() as plain:
        cert = secure.certificate
        assert cert is not None
        trust = BridgeTrust(secure.host, pin=cert.sha256, bridge_id=secure.bridge_id)
        https = build_hue_lights(secure.host, DEFAULT_USER, None, ["1"], RealClock(), trust=trust)
        http = build_hue_lights(plain.host, DEFAULT_USER, None, ["1"], RealClock(), trust=None)
        https_s: list[float] = []
        http_s: list[float] = []
        try:
            await https.connect()
            await http.connect()
            for i in range(PAIRS):
                brightness = 10 + (i * 7) % 80
                https_s.append(await _through_driver(secure, https, brightness))
                http_s.append(await _through_driver(plain, http, brightness))
                await asyncio.sleep(PAIR_S)
        finally:
            await https.close()
            await http.close()
    https_p50, http_p50 = statistics.median(https_s), statistics.median(http_s)
    print(f"(c) v1 over HTTPS (certificate checked per connection) p50 {https_p50 * 1000:.3f} ms "
          f"(p90 {_p90(https_s) * 1000:.3f}), over plain HTTP p50 {http_p50 * 1000:.3f} ms")
    return https_p50, http_p50


def _v2_trust(bridge: HueV2BridgeEmulator) -> BridgeTrust:
    return BridgeTrust(bridge.host, pin=bridge.certificate.sha256, bridge_id=bridge.bridge_id)


async def _v2_seen(bridge: HueV2BridgeEmulator, after: int) -> float:
    loop = asyncio.get_running_loop()
    request = await loop.run_in_executor(None, bridge.wait_for, _v2_put, 2.0, after)
    if request is None:
        raise RuntimeError("the PUT never reached the v2 bridge")
    return request.arrival_s


def _v2_put(request: V2Request) -> bool:
    return request.method == "PUT"


async def latency_v2() -> tuple[float, float]:
    # Two lights changed by two clients in turn: more than one light's share of the bridge's
    # limit, so the emulator does not limit here ((e) is about limits).
    with HueV2BridgeEmulator(StandInSignify().issue(), light_commands_per_s=None) as bridge:
        pool = HueV2Bridges(RealClock())
        room = pool.lights(bridge.host, DEFAULT_APP_KEY, trust=_v2_trust(bridge), group=None,
                           lights=["1"])
        bare = HueBridgeV2(bridge.host, DEFAULT_APP_KEY)
        light_2 = bridge.light_id("2")
        driver_s: list[float] = []
        bare_s: list[float] = []

        async def through_driver(brightness: float) -> None:
            after = len(bridge.requests)
            seen = asyncio.ensure_future(_v2_seen(bridge, after))
            await asyncio.sleep(0.005)
            started = time.monotonic()
            await room.apply(LightLook(brightness, 2700), 0.0)
            driver_s.append(await seen - started)

        async def bare_call(brightness: float) -> None:
            after = len(bridge.requests)
            seen = asyncio.ensure_future(_v2_seen(bridge, after))
            await asyncio.sleep(0.005)
            started = time.monotonic()
            await bare.lights.set_state(light_2, on=True, brightness=brightness, color_temp=370,
                                        transition_time=0)
            bare_s.append(await seen - started)

        try:
            await room.connect()
            await bare_call(50.0)  # both have their connection open before timing
            bare_s.clear()
            for i in range(PAIRS):
                brightness = float(10 + (i * 7) % 80)
                first, second = (through_driver, bare_call) if i % 2 == 0 else (
                    bare_call, through_driver)
                await first(brightness)
                await second(brightness + 1)
                await asyncio.sleep(PAIR_S)
        finally:
            await room.close()
            await bare.close()
    driver_p50, bare_p50 = statistics.median(driver_s), statistics.median(bare_s)
    print(f"(d) v2, one light change: driver p50 {driver_p50 * 1000:.3f} ms (p90 "
          f"{_p90(driver_s) * 1000:.3f}, n={len(driver_s)}), bare aiohue p50 "
          f"{bare_p50 * 1000:.3f} ms (p90 {_p90(bare_s) * 1000:.3f}, n={len(bare_s)})")
    return driver_p50, bare_p50


async def burst_v2() -> tuple[int, int, int, float]:
    with HueV2BridgeEmulator(StandInSignify().issue()) as bridge:
        pool = HueV2Bridges(RealClock())
        room: HueV2Lights = pool.lights(bridge.host, DEFAULT_APP_KEY, trust=_v2_trust(bridge),
                                        group="1")
        try:
            await room.connect()
            start = time.monotonic()
            i, last = 0, 0.0
            while (now := time.monotonic()) < start + BURST_S:
                last = float(5 + (i * 3) % 90)
                await room.apply(LightLook(last, 2700), 0.0)
                i += 1
                await asyncio.sleep(max(0.0, start + i / BURST_PER_S - now))
            last_at = time.monotonic()
            await asyncio.sleep(1.5)
        finally:
            await room.close()
        puts = [r for r in bridge.requests if r.method == "PUT"]
        refused = sum(1 for r in puts if r.status == 429)
        light_puts, group_puts = bridge.light_puts(), bridge.group_puts()
        delays = []
        group = ("grouped_light", bridge.grouped_light_id("1"))
        for v1_id in "1234":
            light = ("light", bridge.light_id(v1_id))
            mine = [p for p in puts if p.status == 200 and p.resource in (light, group)]
            if not mine or mine[-1].body.get("dimming") != {"brightness": last}:
                raise RuntimeError(f"v2 light {v1_id} did not get the final value")
            delays.append(mine[-1].arrival_s - last_at)
            if bridge.output(v1_id).brightness != last:
                raise RuntimeError(f"v2 light {v1_id} does not show the final value")
    light_max = most_in_a_second([p.arrival_s for p in light_puts])
    group_max = most_in_a_second([p.arrival_s for p in group_puts])
    delay_ms = max(0.0, max(delays)) * 1000
    print(f"(e) v2, {i} updates in {BURST_S:g} s on 4 lights: {len(light_puts)} light PUTs, "
          f"{len(group_puts)} grouped_light PUTs, {refused} answered 429; busiest second: "
          f"{light_max} light / {group_max} grouped_light PUTs; final value on every light "
          f"{delay_ms:.0f} ms after the last update")
    return light_max, group_max, refused, delay_ms


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


async def burst() -> tuple[int, int, float]:
    with HueBridgeEmulator() as bridge:
        bridge.set_rate_limit(light_puts_per_s=10, group_puts_per_s=1)
        room = build_hue_lights(bridge.host, DEFAULT_USER, "1", None, RealClock(), trust=None)
        try:
            await room.connect()
            start = time.monotonic()
            i, last = 0, 0
            while (now := time.monotonic()) < start + BURST_S:
                last = 5 + (i * 3) % 90
                await room.apply(LightLook(last, 2700), 0.0)
                i += 1
                await asyncio.sleep(max(0.0, start + i / BURST_PER_S - now))
            last_at = time.monotonic()
            await asyncio.sleep(1.5)
        finally:
            await room.close()
        puts = [r for r in bridge.requests if r.method == "PUT"]
        rejected = sum(1 for r in puts if r.status == 503)
        light_puts, group_puts = bridge.light_puts(), bridge.group_puts()
        final_bri = units.percent_to_bri(last)
        delays = []
        for light_id in "1234":
            mine = [p for p in puts if p.status == 200
                    and (p.light_id == light_id or p.group_id == "1")]
            if not mine or mine[-1].body.get("bri") != final_bri:
                raise RuntimeError(f"light {light_id} did not get the final value")
            delays.append(mine[-1].arrival_s - last_at)
            if bridge.light_state(light_id)["bri"] != final_bri:
                raise RuntimeError(f"light {light_id} does not show the final value")
    light_max = most_in_a_second([p.arrival_s for p in light_puts])
    group_max = most_in_a_second([p.arrival_s for p in group_puts])
    delay_ms = max(0.0, max(delays)) * 1000
    print(f"(b) {i} updates in {BURST_S:g} s on 4 lights: {len(light_puts)} light PUTs, "
          f"{len(group_puts)} group PUTs, {rejected} answered 503; busiest second: "
          f"{light_max} light / {group_max} group PUTs; final value on every light "
          f"{delay_ms:.0f} ms after the last update")
    return light_max, group_max, delay_ms


async def main() -> None:
    driver_p50, direct_p50 = await latency()
    light_max, group_max, delay_ms = await burst()
    https_p50, http_p50 = await tls_v1()
    v2_p50, bare_p50 = await latency_v2()
    v2_light_max, v2_group_max, v2_refused, v2_delay_ms = await burst_v2()
    print(json.dumps({
        "overhead_ratio_p50": round(driver_p50 / direct_p50, 3),
        "burst_max_light_puts_per_s": light_max,
        "burst_max_group_puts_per_s": group_max,
        "final_value_delay_ms": round(delay_ms, 1),
        "v1_https_p50_ms": round(https_p50 * 1000, 3),
        "v1_http_p50_ms": round(http_p50 * 1000, 3),
        "v2_overhead_ratio_p50": round(v2_p50 / bare_p50, 3),
        "v2_burst_max_light_puts_per_s": v2_light_max,
        "v2_burst_max_group_puts_per_s": v2_group_max,
        "v2_burst_429": v2_refused,
        "v2_final_value_delay_ms": round(v2_delay_ms, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
