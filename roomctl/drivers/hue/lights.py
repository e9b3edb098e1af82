"""The room driver and a service's bridges.

`HueLights` is one room on a bridge behind `roomctl.drivers.base.Lights`; `HueBridges` holds
one `HueBridgeLink` per bridge for a service, shared by the rooms on it; `build_hue_lights`
makes a room's lights from its config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from roomctl import units
from roomctl.clock import Clock
from roomctl.drivers.hue.errors import HueError, PairingRequired
from roomctl.drivers.hue.link import BridgeRoom, HueBridgeLink, HueOptions
from roomctl.drivers.hue.tls import BridgeTrust
from roomctl.room import DriverHealth, LightLook, LightReading


def check_look(look: LightLook, transition_s: float) -> None:
    """ValueError for a look or transition no driver can carry out."""
    if not 0 <= look.brightness <= 100:
        raise ValueError(f"brightness {look.brightness} is outside 0-100 %")
    if look.color is not None and look.color_temp is not None:
        raise ValueError("a look has either a colour temperature or a colour, not both")
    if look.color is not None and not units.is_hex_color(look.color):
        raise ValueError(f"colour {look.color!r} is not '#rrggbb'")
    if look.color_temp is not None and look.color_temp <= 0:
        raise ValueError(f"colour temperature {look.color_temp} K is not positive")
    if not (math.isfinite(transition_s) and transition_s >= 0):
        raise ValueError(f"transition {transition_s} s is not a duration")


class HueLights:
    """A room's Hue lights: a Hue group (one broadcast when the whole room changes) or a list
    of light ids. Implements `roomctl.drivers.base.Lights`."""

    def __init__(self, link: HueBridgeLink, *, group: str | None = None,
                 lights: Sequence[str] | None = None) -> None:
        if (group is None) == (lights is None):
            raise ValueError("a Hue room is either a group or a list of lights")
        if lights is not None and not lights:
            raise ValueError("a Hue room needs at least one light")
        self._link = link
        self._room = BridgeRoom(None if group is None else str(group),
                                None if lights is None else tuple(str(i) for i in lights))
        link.attach(self._room)

    @property
    def bridge(self) -> str:
        return self._link.host

    async def apply(self, look: LightLook, transition_s: float) -> None:
        check_look(look, transition_s)
        self._link.want(self._room, look, transition_s)
        scheduler = self._link.scheduler
        if scheduler.crashed is not None:
            raise HueError(f"the command scheduler for Hue bridge {self._link.host} stopped"
                           ) from scheduler.crashed
        if isinstance(scheduler.failure, PairingRequired):
            raise PairingRequired(self._link.host, self._link.username)

    def readings(self) -> list[LightReading]:
        return self._link.readings(self._room)

    def health(self) -> DriverHealth:
        return self._link.health(self._room)

    async def connect(self) -> None:
        """Get in touch with the bridge now (a room check before a session); raises the
        `HueError` that says why not."""
        scheduler = self._link.scheduler
        scheduler.start()
        await scheduler.drain()
        if scheduler.failure is not None:
            if isinstance(scheduler.failure, HueError):
                raise scheduler.failure
            raise HueError(scheduler.problem) from scheduler.failure

    async def drain(self) -> None:
        """Wait until every command that can go out now has been answered."""
        await self._link.scheduler.drain()

    async def close(self) -> None:
        await self._link.detach(self._room)


# --- a service's bridges ----------------------------------------------------------------------


class HueBridges:
    """The Hue bridges one roomctl service drives: one link (one worker thread, one command
    scheduler) per bridge, shared by the rooms on it. A link closes with its last room."""

    def __init__(self, clock: Clock, options: HueOptions | None = None) -> None:
        self._clock = clock
        self._options = options or HueOptions()
        self._links: dict[str, HueBridgeLink] = {}

    def lights(self, bridge: str, username: str, *, trust: BridgeTrust | None,
               group: str | None = None, lights: Sequence[str] | None = None) -> HueLights:
        """A room on ``bridge``. ``trust`` says which HTTPS certificate the bridge must present
        (`roomctl.drivers.hue.tls`); None speaks plain HTTP (old bridges, by explicit choice)."""
        link = self._links.get(bridge)
        if link is None or link.closed:
            link = HueBridgeLink(bridge, username, self._clock, self._options, trust=trust)
            self._links[bridge] = link
        elif link.username != username:
            raise ValueError(f"two different usernames given for Hue bridge {bridge}")
        return HueLights(link, group=group, lights=lights)

    async def close(self) -> None:
        for link in self._links.values():
            if not link.closed:
                await link.close()
        self._links.clear()


def build_hue_lights(bridge: str, username: str, group: str | None,
                     lights: Sequence[str] | None, clock: Clock, *, trust: BridgeTrust | None,
                     bridges: HueBridges | None = None,
                     options: HueOptions | None = None) -> HueLights:
    """A room's `hue` lights (API v1) from the room config. Pass the service's `HueBridges`
    when more than one room may use the same bridge, so that they share its rate limits."""
    pool = bridges if bridges is not None else HueBridges(clock, options)
    return pool.lights(bridge, username, trust=trust, group=group, lights=lights)
