from collections.abc import AsyncIterator

import pytest

from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.session import Room, SessionRunner

VIRTUAL_START = 1_000_000.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(VIRTUAL_START)


@pytest.fixture
def lights(clock: VirtualClock) -> SimulatedLights:
    return SimulatedLights(clock)


@pytest.fixture
def audio(clock: VirtualClock) -> SimulatedAudio:
    return SimulatedAudio(clock)


@pytest.fixture
async def runner(clock: VirtualClock, lights: SimulatedLights,
                 audio: SimulatedAudio) -> AsyncIterator[SessionRunner]:
    """A session runner in a simulated room on a virtual clock."""
    r = SessionRunner(Room("test room", lights, audio), clock)
    yield r
    await r.close()
