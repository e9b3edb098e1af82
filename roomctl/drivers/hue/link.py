"""One Hue bridge and the rooms on it: `HueBridgeLink`, the `Plant` its `CommandScheduler` drives.

The link keeps what each light should be doing (a `ChainedFade`), what it last did (a
`Course`, for readings) and the bridge's lights and groups; it says which commands are
pending and builds them, and reads the bridge's answers.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from roomctl.clock import Clock
from roomctl.drivers.hue.client import DEFAULT_REQUEST_TIMEOUT_S, HueBridgeClient
from roomctl.drivers.hue.color import HueState, LightCapabilities, hue_target, light_reading
from roomctl.drivers.hue.errors import RESOURCE_NOT_AVAILABLE, HueError
from roomctl.drivers.hue.fades import ChainedFade, Course
from roomctl.drivers.hue.scheduler import (
    Backoff,
    CommandScheduler,
    Job,
    RateLimits,
    Target,
    Work,
)
from roomctl.drivers.hue.tls import BridgeTrust
from roomctl.room import DriverHealth, LightLook, LightReading

# The whole driver logs as "roomctl.drivers.hue", each bridge as a child of it.
logger = logging.getLogger("roomctl.drivers.hue")


@dataclass(frozen=True)
class HueOptions:
    """How a link talks to its bridge: request timeout, rate limits, back-off, refresh."""

    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    limits: RateLimits = field(default_factory=RateLimits)
    backoff: Backoff = field(default_factory=Backoff)
    refresh_s: float = 30.0  # how often the bridge's lights and groups are read again
    probe_s: float = 5.0  # how soon an idle bridge is asked whether it is still there


@dataclass
class _Light:
    id: str
    name: str
    caps: LightCapabilities
    reachable: bool
    course: Course
    state_known: bool = True  # False: the bridge has not said yet whether it is on
    fade: ChainedFade | None = None
    delivered: tuple[int, int] | None = None  # (fade seq, step) last delivered
    served_at: float = -math.inf


@dataclass(frozen=True)
class _Want:
    seq: int
    look: LightLook
    t0: float
    t1: float


@dataclass(eq=False)
class BridgeRoom:
    """A room as its link sees it: a Hue group or a list of light ids, and what it wants."""

    group: str | None
    lights: tuple[str, ...] | None
    want: _Want | None = None


class HueBridgeLink:
    """One Hue bridge and the rooms on it (the `Plant` its `CommandScheduler` drives).

    Everything here runs on the event loop except the ``call`` of a `Job`, which runs on the
    scheduler's worker thread and touches nothing but the client."""

    def __init__(self, host: str, username: str, clock: Clock,
                 options: HueOptions | None = None, *, trust: BridgeTrust | None) -> None:
        options = options or HueOptions()
        self.host, self.username = host, username
        self._clock = clock
        self._client = HueBridgeClient(host, username, trust=trust,
                                       timeout_s=options.request_timeout_s)
        self._log = logger.getChild(host.replace(".", "_").replace(":", "_"))
        self._lights: dict[str, _Light] = {}
        self._groups: dict[str, tuple[str, ...]] | None = None
        self._unlisted: set[str] = set()  # groups the bridge names without saying their lights
        self._rooms: list[BridgeRoom] = []
        self._seq = itertools.count(1)
        self.closed = False
        self.scheduler = CommandScheduler(
            self, clock, name=host, limits=options.limits, backoff=options.backoff,
            refresh_s=options.refresh_s, probe_s=options.probe_s, log=self._log)

    # rooms

    def attach(self, room: BridgeRoom) -> None:
        self._rooms.append(room)

    async def detach(self, room: BridgeRoom) -> None:
        if room in self._rooms:
            self._rooms.remove(room)
        if not self._rooms and not self.closed:
            await self.close()

    async def close(self) -> None:
        self.closed = True
        await self.scheduler.close()

    def want(self, room: BridgeRoom, look: LightLook, transition_s: float) -> None:
        now = self._clock.now()
        room.want = _Want(next(self._seq), look, now, now + transition_s)
        if self.ready:
            self._plan(room, now)
        self.scheduler.start()
        self.scheduler.notify()

    def room_lights(self, room: BridgeRoom) -> tuple[str, ...]:
        if room.lights is not None:
            return room.lights
        if room.group is not None:
            return self._group_members(room.group)
        return ()

    def _group_members(self, group_id: str) -> tuple[str, ...]:
        if group_id == "0":  # Hue's group of all lights
            return tuple(self._lights)
        return (self._groups or {}).get(group_id, ())

    def _plan(self, room: BridgeRoom, now: float) -> None:
        want = room.want
        if want is None:
            return
        for light_id in self.room_lights(room):
            light = self._lights.get(light_id)
            if light is None:
                continue
            start = light.course.at(now)
            target = hue_target(want.look, light.caps)
            # Already off: nothing to fade. Not known to be off: fade, never a sudden dark.
            t1 = want.t1 if target.on or start.on or not light.state_known else want.t0
            light.fade = ChainedFade(want.seq, start,
                                     HueState(True, target.bri, target.ct, target.xy),
                                     want.t0, t1, switch_off=not target.on)

    # what the room sees

    def readings(self, room: BridgeRoom) -> list[LightReading]:
        now = self._clock.now()
        answering = self.scheduler.problem is None
        out = []
        for light_id in self.room_lights(room):
            light = self._lights.get(light_id)
            if light is not None:
                out.append(light_reading(light_id, light.name, light.course.at(now),
                                         light.reachable and answering))
        return out

    def health(self, room: BridgeRoom) -> DriverHealth:
        if self.scheduler.crashed is not None:
            return DriverHealth(False, f"the command scheduler for Hue bridge {self.host} "
                                       f"stopped ({self.scheduler.crashed!r}): restart roomctl")
        if self.scheduler.problem is not None:
            return DriverHealth(False, self.scheduler.problem)
        if self._groups is None:
            return DriverHealth(False, f"not in touch with Hue bridge {self.host} yet")
        if room.group is not None and room.group != "0" and room.group not in self._groups:
            return DriverHealth(False, f"Hue bridge {self.host} has no group {room.group}")
        if room.group is not None and room.group in self._unlisted:
            return DriverHealth(False, f"Hue bridge {self.host} does not say which lights are "
                                       f"in group {room.group}: nothing can be sent to them")
        if not self.room_lights(room):
            what = f"group {room.group}" if room.group is not None else "this room"
            return DriverHealth(False, f"Hue bridge {self.host} has no lights in {what}")
        missing = [i for i in room.lights or () if i not in self._lights]
        if missing:
            return DriverHealth(False, f"Hue bridge {self.host} has no light "
                                       f"{', '.join(missing)}")
        asleep = [f"{i} ({self._lights[i].name})" for i in self.room_lights(room)
                  if i in self._lights and not self._lights[i].reachable]
        if asleep:
            return DriverHealth(False, f"Hue bridge {self.host} cannot reach light "
                                       f"{', '.join(asleep)}: switched off at the wall?")
        unknown = [f"{i} ({self._lights[i].name})" for i in self.room_lights(room)
                   if i in self._lights and not self._lights[i].caps.known]
        if unknown:
            return DriverHealth(False, f"Hue bridge {self.host} does not say what light "
                                       f"{', '.join(unknown)} can show: only its brightness "
                                       "is sent, not colours or colour temperatures")
        return DriverHealth(True)

    # the Plant the scheduler drives

    @property
    def ready(self) -> bool:
        return self._groups is not None

    def survey(self) -> Job:
        return Job(self._read_bridge, self._surveyed)

    def probe(self) -> Job:
        return Job(self._client.config_now, lambda _answer, _now: None)

    def _read_bridge(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._client.lights_now(), self._client.groups_now()

    def _surveyed(self, answer: tuple[dict[str, Any], dict[str, Any]], now: float) -> None:
        lights, groups = answer
        first = self._groups is None
        for light_id, obj in lights.items():
            api_state = obj.get("state")
            name = str(obj.get("name", f"light {light_id}"))
            caps = LightCapabilities.from_api(obj)
            light = self._lights.get(light_id)
            if not isinstance(api_state, dict):
                # The bridge said nothing of its state: keep what roomctl knows, never "off".
                if light is None:
                    self._lights[light_id] = _Light(light_id, name, caps, True,
                                                    Course.still(HueState(True, 254), now),
                                                    state_known=False)
                else:
                    light.name, light.caps = name, caps
                continue
            state = HueState.from_api(api_state)
            reachable = bool(api_state.get("reachable", True))
            if light is None:
                self._lights[light_id] = _Light(light_id, name, caps, reachable,
                                                Course.still(state, now))
                continue
            light.name, light.caps, light.reachable = name, caps, reachable
            if now >= light.course.t1 or not light.state_known:
                # Not mid-fade: the bridge knows best (e.g. the Hue app).
                light.course = Course.still(state, now)
            light.state_known = True
        for gone in set(self._lights) - set(lights):
            del self._lights[gone]
        self._groups = {gid: tuple(str(i) for i in obj.get("lights", []))
                        for gid, obj in groups.items() if isinstance(obj, dict)}
        self._unlisted = {gid for gid, obj in groups.items()
                          if not isinstance(obj, dict) or "lights" not in obj}
        if first:
            self._log.info("Hue bridge %s: %d lights, %d groups", self.host, len(lights),
                           len(groups))
            for room in self._rooms:
                self._plan(room, now)

    def work(self, now: float) -> Work:
        pending = [light for light in self._lights.values() if light.fade is not None
                   and (light.fade.seq, light.fade.step_at(now)) != light.delivered]
        pending.sort(key=lambda light: (light.served_at, light.id))
        waiting = {light.id for light in pending}
        groups: dict[str, frozenset[str]] = {}
        for room in self._rooms:
            if room.group is None or room.lights is not None:
                continue
            members = [self._lights[i] for i in self._group_members(room.group)
                       if i in self._lights]
            if not members or not waiting.intersection(m.id for m in members):
                continue
            fades = [m.fade for m in members]
            first = fades[0]
            if first is None or any(f is None or f.seq != first.seq for f in fades):
                continue
            body = first.body_at(now)
            if all(f is not None and f.body_at(now) == body for f in fades[1:]):
                groups[room.group] = frozenset(m.id for m in members if m.id in waiting)
        return Work(tuple(light.id for light in pending), groups)

    def next_change(self, now: float) -> float | None:
        changes = [c for light in self._lights.values() if light.fade is not None
                   and (c := light.fade.next_change_after(now)) is not None]
        return min(changes, default=None)

    def command(self, target: Target, now: float) -> Job:
        kind, target_id = target
        if kind == "light":
            members = [self._lights[target_id]]
        else:
            members = [self._lights[i] for i in self._group_members(target_id)
                       if i in self._lights]
        fade = members[0].fade
        assert fade is not None
        body = fade.body_at(now)
        key = (fade.seq, fade.step_at(now))
        if kind == "light":
            call = partial(self._client.put_light_state, target_id, body)
        else:
            call = partial(self._client.put_group_action, target_id, body)

        def done(answer: list[dict[str, Any]], _answered_at: float) -> None:
            self._delivered(kind, target_id, members, key, body, answer, now)

        return Job(call, done)

    def _delivered(self, kind: Literal["light", "group"], target_id: str,
                   members: Sequence[_Light], key: tuple[int, int], body: Mapping[str, Any],
                   answer: list[dict[str, Any]], sent_at: float) -> None:
        applied: dict[str, Any] = {}
        for entry in answer:
            success, error = entry.get("success"), entry.get("error")
            if isinstance(success, dict):
                for address, value in success.items():
                    applied[str(address).rsplit("/", 1)[-1]] = value
            elif isinstance(error, dict):
                parameter = str(error.get("address", "")).rsplit("/", 1)[-1]
                self._log.warning(
                    "Hue bridge %s refused %s %s %s=%s: %s (Hue error %s)", self.host, kind,
                    target_id, parameter, json.dumps(body.get(parameter)),
                    error.get("description"), error.get("type"))
                if error.get("type") == RESOURCE_NOT_AVAILABLE and kind == "light":
                    members[0].fade = None  # the light is gone; the next survey drops it
        for light in members:
            if light.fade is not None and light.fade.seq == key[0]:
                light.delivered = key
            light.served_at = sent_at
            light.course = light.course.then(applied, sent_at)

    def describe(self, exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, HueError) else None

