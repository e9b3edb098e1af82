"""The v2 room driver (`HueV2Lights`, behind `roomctl.drivers.base.Lights`, with what v2
adds: changes made outside roomctl) and a service's v2 bridges (`HueV2Bridges`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from roomctl.clock import Clock
from roomctl.drivers.hue.errors import HueError, PairingRequired
from roomctl.drivers.hue.lights import check_look
from roomctl.drivers.hue.tls import BridgeTrust
from roomctl.drivers.hue.v2.link import HueV2Link, V2Options, V2Room
from roomctl.drivers.hue.v2.state import OutsidePolicy
from roomctl.room import DriverHealth, LightLook, LightReading, OutsideChange

# --- the room driver --------------------------------------------------------------------------


def _subscription(items: list[Any], item: Any) -> Callable[[], None]:
    items.append(item)

    def unsubscribe() -> None:
        if item in items:
            items.remove(item)

    return unsubscribe


class HueV2Lights:
    """A room's Hue lights over API v2: a Hue room or zone (``group``: its id, v1 id or name;
    one grouped_light command when the whole room changes) or ``lights`` (ids, v1 ids or
    names). Implements `roomctl.drivers.base.Lights`, and notices changes made elsewhere."""

    def __init__(self, link: HueV2Link, *, group: str | None = None,
                 lights: Sequence[str] | None = None, policy: OutsidePolicy = "restore",
                 powerup: LightLook | None = None) -> None:
        if (group is None) == (lights is None):
            raise ValueError("a Hue room is either a room/zone or a list of lights")
        if lights is not None and not lights:
            raise ValueError("a Hue room needs at least one light")
        self._link = link
        self._room = V2Room(None if group is None else str(group),
                            None if lights is None else tuple(str(i) for i in lights),
                            policy=policy, powerup=powerup)
        self._phases_marked = False
        link.attach(self._room)

    @property
    def bridge(self) -> str:
        return self._link.host

    async def apply(self, look: LightLook, transition_s: float) -> None:
        check_look(look, transition_s)
        if not self._phases_marked:
            self._link.take_back(self._room)  # see `runner_marks_phases`
        self._link.want(self._room, look, transition_s)
        scheduler = self._link.scheduler
        if scheduler.crashed is not None:
            raise HueError(f"the command scheduler for Hue bridge {self._link.host} stopped"
                           ) from scheduler.crashed
        if isinstance(scheduler.failure, PairingRequired):
            raise PairingRequired(self._link.host, self._link.app_key)

    def readings(self) -> list[LightReading]:
        return self._link.readings(self._room)

    def health(self) -> DriverHealth:
        return self._link.health(self._room)

    # outside changes

    @property
    def outside_policy(self) -> OutsidePolicy:
        return self._room.policy

    def set_outside_policy(self, policy: OutsidePolicy) -> None:
        """``restore``: a lamp changed elsewhere is put back on the room's course with a
        gentle transition. ``follow``: it is left as it is until `take_back`."""
        if policy not in ("restore", "follow"):
            raise ValueError(f"outside-change policy {policy!r} is not 'restore' or 'follow'")
        self._room.policy = policy

    def subscribe_outside_changes(self, callback: Callable[[OutsideChange], None]
                                  ) -> Callable[[], None]:
        """``callback(change)`` on the event loop for each lamp changed outside roomctl while
        the room is driven (at most a second or two after the change); returns the
        unsubscribe. Callbacks must not block."""
        return _subscription(self._room.listeners, callback)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """``callback()`` whenever readings or health may have changed because of the bridge
        (an outside change, a lamp unreachable or back, the stream lost or back)."""
        return _subscription(self._room.changed, callback)

    def outside_changes(self) -> tuple[OutsideChange, ...]:
        """The outside changes noticed since the last `take_back` (newest last)."""
        return tuple(self._room.noticed)

    def take_back(self) -> None:
        """Drive every lamp of the room again, those left alone under ``follow`` included,
        from where each is now to the room's course. Call it when a new phase starts and for
        Lights up, before that `apply`."""
        self._link.take_back(self._room)

    def runner_marks_phases(self) -> None:
        """Say that the caller calls `take_back` at each new phase and for Lights up. Until
        then every `apply` takes all lamps back (``follow`` lasts until the next apply), so
        that Lights up always reaches every lamp."""
        self._phases_marked = True

    # lifecycle

    async def connect(self) -> None:
        """Get in touch with the bridge now; raises the `HueError` that says why not."""
        scheduler = self._link.scheduler
        scheduler.start()
        await scheduler.drain()
        if scheduler.failure is not None:
            if isinstance(scheduler.failure, HueError):
                raise scheduler.failure
            raise HueError(scheduler.problem) from scheduler.failure

    async def drain(self) -> None:
        await self._link.scheduler.drain()

    async def close(self) -> None:
        await self._link.detach(self._room)


class HueV2Bridges:
    """The v2 bridges one service drives: one link (one connection, one event stream, one
    scheduler) per bridge, shared by the rooms on it."""

    def __init__(self, clock: Clock, options: V2Options | None = None) -> None:
        self._clock = clock
        self._options = options or V2Options()
        self._links: dict[str, HueV2Link] = {}

    def lights(self, bridge: str, app_key: str, *, trust: BridgeTrust,
               group: str | None = None, lights: Sequence[str] | None = None,
               policy: OutsidePolicy = "restore", powerup: LightLook | None = None
               ) -> HueV2Lights:
        link = self._links.get(bridge)
        if link is None or link.closed:
            link = HueV2Link(bridge, app_key, self._clock, trust=trust, options=self._options)
            self._links[bridge] = link
        elif link.app_key != app_key:
            raise ValueError(f"two different application keys given for Hue bridge {bridge}")
        return HueV2Lights(link, group=group, lights=lights, policy=policy, powerup=powerup)

    async def close(self) -> None:
        for link in self._links.values():
            if not link.closed:
                await link.close()
        self._links.clear()
