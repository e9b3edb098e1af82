"""The driver gate on its own: latest target wins, a time limit per call, degraded with the
reason, retries that send what is current, urgent targets first, and a clean stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roomctl.clock import RealClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import LightsChange
from roomctl.gate import Backoff, DriverGate
from roomctl.preset import load_preset
from roomctl.session import Room, SessionRunner

FAST = Backoff(first_s=0.01, max_s=0.05)
TOUR = load_preset(Path(__file__).resolve().parent.parent / "roomctl" / "presets" / "tour.yaml")


async def until(check: Callable[[], bool], within_s: float = 3.0) -> None:
    for _ in range(int(within_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


class Driver:
    """Records what it is sent; can be made to hang or to fail."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.hang = asyncio.Event()  # set: calls hang until released
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def send(self, target: str) -> None:
        if self.fail is not None:
            raise self.fail
        if self.hang.is_set() and target != "urgent":
            await self.release.wait()
        await asyncio.sleep(0)
        self.sent.append(target)


async def test_the_latest_target_wins() -> None:
    d = Driver()
    gate: DriverGate[str] = DriverGate("lights", d.send)
    for t in ("a", "b", "c"):
        gate.submit(t)
    assert await gate.idle(2)
    assert d.sent == ["c"] and gate.sent == "c" and gate.state.ok
    await gate.close()


async def test_a_hung_call_is_given_up_after_the_time_limit_and_retried_with_what_is_current() -> None:
    d = Driver()
    gate: DriverGate[str] = DriverGate("music", d.send, time_limit_s=0.2, backoff=FAST)
    d.hang.set()
    gate.submit("a")
    await until(lambda: not gate.state.ok)
    assert gate.state.problem == "music: no answer within 0.2 s"
    gate.submit("b")
    d.hang.clear()  # the driver answers again: the current target, once
    assert await gate.idle(3)
    await asyncio.sleep(0.1)
    assert d.sent == ["b"] and gate.state.ok
    await gate.close()


async def test_a_failing_driver_is_named_with_its_error_and_recovers() -> None:
    d = Driver()
    gate: DriverGate[str] = DriverGate("lights", d.send, backoff=FAST)
    d.fail = ConnectionError("bridge unreachable")
    gate.submit("a")
    await until(lambda: not gate.state.ok)
    assert gate.state.problem == "lights: bridge unreachable" and gate.state.failures >= 1
    d.fail = None
    await until(lambda: gate.state.ok)
    assert d.sent == ["a"]
    await gate.close()


async def test_an_urgent_target_does_not_wait_for_a_hung_call() -> None:
    d = Driver()
    gate: DriverGate[str] = DriverGate("lights", d.send, time_limit_s=30)
    d.hang.set()
    gate.submit("slow")
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    gate.submit("urgent", urgent=True)
    assert await gate.idle(2)
    assert time.monotonic() - t0 < 1 and d.sent == ["urgent"] and gate.urgent_sent_at is not None
    assert gate.state.ok  # giving way is not the driver's fault
    await gate.close()


async def test_a_runner_stops_at_once_right_after_a_burst_of_commands() -> None:
    """A stop that arrives as a command's targets are handed over must not be lost (3.11's
    wait_for could swallow it, and the session task would never stop)."""
    clock = RealClock()
    runner = SessionRunner(Room("r", SimulatedLights(clock), SimulatedAudio(clock)), clock)
    await runner.start(TOUR)
    for i in range(2000):
        await runner.set_lights(LightsChange(brightness=i % 90 + 5, transition=0))
    try:
        async with asyncio.timeout(10):
            await runner.close()
    except TimeoutError:
        pytest.fail("the runner did not stop")
