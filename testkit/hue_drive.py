"""Driving a Hue room on a virtual clock while it does real HTTP to an emulator: helpers the
Hue tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from roomctl.clock import VirtualClock
from testkit.hue_bridge import HueBridgeEmulator, RecordedRequest


class Drains(Protocol):
    async def drain(self) -> None: ...


async def run_until(clock: VirtualClock, room: Drains, t: float) -> None:
    """Advance virtual time to ``t``, letting the driver finish its real HTTP calls at every
    moment it wakes up."""
    await settle(clock, room)
    while (deadline := clock.next_deadline()) is not None and deadline <= t:
        await clock.advance_to(deadline)
        await settle(clock, room)
    await clock.advance_to(t)
    await settle(clock, room)


async def settle(clock: VirtualClock, room: Drains) -> None:
    """Until the scheduler sleeps on the virtual clock again. An idle scheduler always has a
    deadline (its next survey), so none means it is still between a bridge answer and its next
    sleep; time must not move on under it then, or a chained fade would be sent late."""
    deadline = time.monotonic() + 5
    await room.drain()
    while clock.next_deadline() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
        await room.drain()


def puts(bridge: HueBridgeEmulator, after: int = 0) -> list[RecordedRequest]:
    return [r for r in bridge.requests[after:] if r.method == "PUT"]


def no_errors(bridge: HueBridgeEmulator) -> None:
    refused = [(r.path, r.body, r.response) for r in puts(bridge)
               if r.status != 200 or any("error" in e for e in r.response)]
    assert refused == []


async def until(condition: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``condition()`` holds (polling on the loop); fails after ``timeout_s``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start
