"""What the `hue` driver costs and whether it holds the bridge's limits.

Against the Hue bridge emulator (real HTTP on 127.0.0.1, phue underneath):

(a) latency of one light change: through the driver (from `apply()` until the bridge has
    recorded the PUT) vs a direct phue `set_light` call, interleaved in one run on the same
    bridge (in pairs, taking turns at going first); p50 of each and their ratio. Pairs are
    PAIR_S apart so that the driver's rate limit never delays a change: this is the cost of
    the worker thread and the scheduler.
(b) a brightness slider dragged at 60 updates/s for 10 s on a room of 4 lights (a Hue
    group): the most light and group PUTs the bridge saw in any one second, and how long
    after the last update the last light had its final value.

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

from roomctl import units
from roomctl.clock import RealClock
from roomctl.drivers.hue import HueLights, build_hue_lights
from roomctl.room import LightLook
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator, RecordedRequest, most_in_a_second

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
    print(json.dumps({
        "overhead_ratio_p50": round(driver_p50 / direct_p50, 3),
        "burst_max_light_puts_per_s": light_max,
        "burst_max_group_puts_per_s": group_max,
        "final_value_delay_ms": round(delay_ms, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
