import asyncio
import time

import pytest

from roomctl.clock import RealClock, VirtualClock


async def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(100.0)
    assert clock.now() == 100.0
    await asyncio.sleep(0.01)
    assert clock.now() == 100.0
    await clock.advance(5)
    assert clock.now() == 105.0
    await clock.advance_to(103)  # never backwards
    assert clock.now() == 105.0
    assert clock.next_deadline() is None


async def test_advance_to_wakes_sleepers_in_deadline_order_at_their_deadlines() -> None:
    clock = VirtualClock(0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, d))
             for n, d in [("c", 30.0), ("a", 10.0), ("b", 20.0), ("late", 99.0), ("a2", 10.0)]]
    await clock.advance(0)
    assert clock.next_deadline() == 10.0
    await clock.advance_to(30)
    assert woke == [("a", 10.0), ("a2", 10.0), ("b", 20.0), ("c", 30.0)]
    assert clock.now() == 30.0
    assert clock.next_deadline() == 99.0
    await clock.advance_to(1000)
    assert woke[-1] == ("late", 99.0)
    assert clock.now() == 1000.0
    await asyncio.gather(*tasks)


async def test_a_sleeper_that_sleeps_again_is_woken_in_the_same_advance() -> None:
    clock = VirtualClock(0.0)
    seen: list[float] = []

    async def ticker() -> None:
        for deadline in (1.0, 2.5, 4.0):
            await clock.sleep_until(deadline)
            seen.append(clock.now())

    task = asyncio.create_task(ticker())
    await clock.advance_to(3)
    assert seen == [1.0, 2.5]
    assert clock.now() == 3.0
    await clock.advance_to(10)
    assert seen == [1.0, 2.5, 4.0]
    await task


async def test_cancelled_sleepers_are_dropped() -> None:
    clock = VirtualClock(0.0)
    woke: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(clock.now())

    early = asyncio.create_task(sleeper(5.0))
    later = asyncio.create_task(sleeper(8.0))
    await clock.advance(0)
    early.cancel()
    with pytest.raises(asyncio.CancelledError):
        await early
    assert clock.next_deadline() == 8.0
    await clock.advance_to(20)
    assert woke == [8.0]
    assert clock.next_deadline() is None
    await later


async def test_sleeping_until_a_past_deadline_returns_at_once() -> None:
    clock = VirtualClock(50.0)
    await asyncio.wait_for(clock.sleep_until(49.0), timeout=1)
    await asyncio.wait_for(clock.sleep_until(50.0), timeout=1)
    assert clock.now() == 50.0
    assert clock.next_deadline() is None


async def test_real_clock_is_wall_time() -> None:
    clock = RealClock()
    assert abs(clock.now() - time.time()) < 0.01


async def test_real_clock_sleeps_until_the_deadline() -> None:
    clock = RealClock()
    for delay in (0.0, 0.01, 0.05):
        deadline = clock.now() + delay
        await clock.sleep_until(deadline)
        after = time.time()
        assert after >= deadline
        assert after - deadline < 0.05


async def test_real_clock_past_deadline_returns_at_once() -> None:
    clock = RealClock()
    began = time.perf_counter()
    await clock.sleep_until(time.time() - 10)
    assert time.perf_counter() - began < 0.01
