"""One Hue bridge over API v2 and the rooms on it: `HueV2Link`, the `Plant` the shared
`CommandScheduler` drives, and the listener of the bridge's event stream (changes made
outside roomctl, lamps unreachable and back, the stream lost and back)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohue.v2.controllers.events import EventType

from roomctl import units
from roomctl.clock import Clock
from roomctl.drivers.hue.errors import HueError
from roomctl.drivers.hue.scheduler import (
    Backoff,
    CommandScheduler,
    Job,
    OnTheLoop,
    RateLimits,
    Target,
    Work,
)
from roomctl.drivers.hue.tls import BridgeTrust
from roomctl.drivers.hue.v2.bridge import RequestFailed, RoomctlBridgeV2
from roomctl.drivers.hue.v2.state import (
    OutsidePolicy,
    V2Caps,
    V2Course,
    V2Fade,
    V2State,
    body_of,
    close_to,
    powerup_body,
    state_of,
    v2_target,
    what_changed,
)
from roomctl.room import DriverHealth, LightLook, LightReading, OutsideChange

logger = logging.getLogger("roomctl.drivers.hue")


# --- one bridge and the rooms on it ----------------------------------------------------------


@dataclass(frozen=True)
class V2Options:
    """How a v2 link talks to its bridge."""

    request_timeout_s: float = 2.0
    limits: RateLimits = field(default_factory=RateLimits)
    backoff: Backoff = field(default_factory=Backoff)
    refresh_s: float = 300.0  # a full read now and then (the event stream says the rest)
    probe_s: float = 5.0  # how soon an idle bridge is asked whether it is still there
    gentle_s: float = 3.0  # back on course after an outside change, or a lamp's return
    echo_s: float = 10.0  # how long the bridge may take to report roomctl's own command
    stream_grace_s: float = 5.0  # an event stream down longer than this degrades the room


@dataclass
class _Light:
    id: str
    v1_id: str | None
    name: str
    caps: V2Caps
    reported: V2State
    course: V2Course
    reachable: bool = True
    fade: V2Fade | None = None
    delivered: tuple[int, int] | None = None
    served_at: float = -math.inf
    sent: deque[tuple[float, V2State]] = field(default_factory=lambda: deque(maxlen=16))
    released: bool = False  # "follow": left as changed outside roomctl until taken back
    back_at: float = -math.inf  # when it last became reachable again
    powerup: dict[str, Any] | None = None  # a powerup still to send

    @property
    def label(self) -> str:
        return self.v1_id or self.id


@dataclass(frozen=True)
class _Want:
    seq: int
    look: LightLook
    t0: float
    t1: float


@dataclass(eq=False)
class V2Room:
    """A room as its link sees it: a Hue room or zone (by id, v1 id or name), or lights."""

    group: str | None
    lights: tuple[str, ...] | None
    policy: OutsidePolicy = "restore"
    powerup: LightLook | None = None
    want: _Want | None = None
    listeners: list[Callable[[OutsideChange], None]] = field(default_factory=list)
    changed: list[Callable[[], None]] = field(default_factory=list)
    noticed: list[OutsideChange] = field(default_factory=list)


@dataclass(frozen=True)
class _Area:
    id: str
    v1_id: str | None
    name: str
    grouped_light: str | None
    lights: tuple[str, ...]


def _v1_number(id_v1: str | None) -> str | None:
    return id_v1.rsplit("/", 1)[-1] if id_v1 else None


class HueV2Link:
    """One Hue bridge over API v2 and the rooms on it (the `Plant` its scheduler drives).

    Everything runs on the event loop; bridge calls are coroutines, one at a time."""

    def __init__(self, host: str, app_key: str, clock: Clock, *, trust: BridgeTrust,
                 options: V2Options | None = None) -> None:
        self.options = options or V2Options()
        self.host, self.app_key = host, app_key
        self._clock = clock
        self.bridge = RoomctlBridgeV2(host, app_key, trust=trust,
                                      timeout_s=self.options.request_timeout_s)
        self._log = logger.getChild(host.replace(".", "_").replace(":", "_"))
        self._lights: dict[str, _Light] = {}
        self._areas: dict[str, _Area] = {}
        self._rooms: list[V2Room] = []
        self._seq = itertools.count(1)
        self._initialized = False
        self._stream_seen = False
        self._stream_down_at: float | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.full_reads = 0
        self.closed = False
        self.scheduler = CommandScheduler(
            self, clock, name=host, limits=self.options.limits, backoff=self.options.backoff,
            refresh_s=self.options.refresh_s, probe_s=self.options.probe_s, log=self._log,
            worker=OnTheLoop())

    # rooms

    def attach(self, room: V2Room) -> None:
        self._rooms.append(room)
        if self._initialized:
            self._mark_powerup(room)

    async def detach(self, room: V2Room) -> None:
        if room in self._rooms:
            self._rooms.remove(room)
        if not self._rooms and not self.closed:
            await self.close()

    async def close(self) -> None:
        self.closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.scheduler.close()
        await self.bridge.close()

    def want(self, room: V2Room, look: LightLook, transition_s: float) -> None:
        now = self._clock.now()
        room.want = _Want(next(self._seq), look, now, now + transition_s)
        if self._initialized:
            self._plan(room, now)
        self.scheduler.start()
        self.scheduler.notify()

    def take_back(self, room: V2Room) -> None:
        now = self._clock.now()
        for light_id in self.room_lights(room):
            light = self._lights[light_id]
            if light.released:
                light.released = False
                light.course = V2Course.still(light.reported, now)
                self._plan_light(light, room, now, gentle=True)
        room.noticed.clear()
        self.scheduler.notify()

    def room_lights(self, room: V2Room) -> tuple[str, ...]:
        if room.lights is not None:
            found = [self._find_light(ref) for ref in room.lights]
            return tuple(i for i in found if i is not None)
        if room.group is not None and (area := self._find_area(room.group)) is not None:
            return area.lights
        return ()

    def _find_light(self, ref: str) -> str | None:
        if ref in self._lights:
            return ref
        for light in self._lights.values():
            if light.v1_id == ref or light.name.casefold() == ref.casefold():
                return light.id
        return None

    def _find_area(self, ref: str) -> _Area | None:
        if ref in self._areas:
            return self._areas[ref]
        for area in self._areas.values():
            if area.v1_id == ref or area.name.casefold() == ref.casefold():
                return area
        return None

    def _room_of(self, light_id: str) -> V2Room | None:
        return next((r for r in self._rooms if r.want is not None
                     and light_id in self.room_lights(r)), None)

    def _plan(self, room: V2Room, now: float) -> None:
        for light_id in self.room_lights(room):
            light = self._lights[light_id]
            if not light.released:
                self._plan_light(light, room, now)

    def _plan_light(self, light: _Light, room: V2Room, now: float, *, gentle: bool = False
                    ) -> None:
        """Give ``light`` the room's course; ``gentle``: from where it is now (an outside
        change, a lamp back on), ending with the room's fade but never sooner than gentle_s."""
        want = room.want
        if want is None:
            return
        start = light.course.at(now)
        target = v2_target(want.look, light.caps)
        t0, t1 = (now, max(want.t1, now + self.options.gentle_s)) if gentle else (want.t0,
                                                                                  want.t1)
        if not target.on and not start.on:
            t1 = t0  # already off: nothing to fade
        lowest = light.caps.min_brightness
        fade_to = V2State(True, target.brightness if target.on else lowest, target.mirek,
                          target.xy)
        light.fade = V2Fade(next(self._seq) if gentle else want.seq, start, fade_to, t0, t1,
                            switch_off=not target.on)
        light.delivered = None

    def _mark_powerup(self, room: V2Room) -> None:
        if room.powerup is None:
            return
        for light_id in self.room_lights(room):
            light = self._lights[light_id]
            if light.caps.powerup:
                light.powerup = powerup_body(room.powerup, light.caps)

    # what the room sees

    def readings(self, room: V2Room) -> list[LightReading]:
        now = self._clock.now()
        answering = self.scheduler.problem is None
        out = []
        for light_id in self.room_lights(room):
            light = self._lights[light_id]
            state = light.reported if light.released else light.course.at(now)
            out.append(LightReading(
                id=light.label, name=light.name, on=state.on,
                brightness=round(state.brightness, 1) if state.on else 0.0,
                color_temp=units.mireds_to_kelvin(state.mirek) if state.mirek else None,
                color=units.rgb_to_hex(units.xy_to_rgb(state.xy))
                if state.mirek is None and state.xy is not None else None,
                reachable=light.reachable and answering))
        return out

    def health(self, room: V2Room) -> DriverHealth:
        if self.scheduler.crashed is not None:
            return DriverHealth(False, f"the command scheduler for Hue bridge {self.host} "
                                       f"stopped ({self.scheduler.crashed!r}): restart roomctl")
        if self.scheduler.problem is not None:
            return DriverHealth(False, self.scheduler.problem)
        if not self._initialized:
            return DriverHealth(False, f"not in touch with Hue bridge {self.host} yet")
        if room.group is not None and self._find_area(room.group) is None:
            return DriverHealth(False, f"Hue bridge {self.host} has no room or zone "
                                       f"{room.group!r}")
        missing = [ref for ref in room.lights or () if self._find_light(ref) is None]
        if missing:
            return DriverHealth(False, f"Hue bridge {self.host} has no light "
                                       f"{', '.join(missing)}")
        lights = [self._lights[i] for i in self.room_lights(room)]
        if not lights:
            return DriverHealth(False, f"Hue bridge {self.host} has no lights in "
                                       f"{room.group or 'this room'}")
        asleep = [f"{light.label} ({light.name})" for light in lights if not light.reachable]
        if asleep:
            return DriverHealth(False, f"Hue bridge {self.host} cannot reach light "
                                       f"{', '.join(asleep)}: switched off at the wall?")
        down = self._stream_down_at
        if down is not None and self._clock.now() - down > self.options.stream_grace_s:
            return DriverHealth(False, f"the event stream of Hue bridge {self.host} is down: "
                                       "changes made by other apps are not seen")
        if room.noticed:
            return DriverHealth(True, "; ".join(c.describe() for c in room.noticed[-3:]))
        return DriverHealth(True)

    # the Plant the scheduler drives

    @property
    def ready(self) -> bool:
        return self._initialized

    def survey(self) -> Job:
        return Job(self._read_all, self._surveyed)

    async def _read_all(self) -> None:
        self.full_reads += 1
        try:
            if not self._initialized:
                await self.bridge.fetch_full_state()
                self._start_listening()
                await self.bridge.events.initialize()
            else:
                await self.bridge.fetch_full_state()
        except RequestFailed as exc:
            raise exc.error from exc

    def _start_listening(self) -> None:
        if self._unsubscribe:
            return
        self._unsubscribe = [
            self.bridge.lights.subscribe(self._light_event),
            self.bridge.sensors.zigbee_connectivity.subscribe(self._zigbee_event),
            self.bridge.events.subscribe(
                self._stream_event,
                (EventType.CONNECTED, EventType.RECONNECTED, EventType.DISCONNECTED)),
        ]

    def _surveyed(self, _answer: None, now: float) -> None:
        first = not self._initialized
        seen = set()
        for resource in self.bridge.lights:
            seen.add(resource.id)
            light = self._lights.get(resource.id)
            state = state_of(resource)
            name = resource.metadata.name if resource.metadata else resource.id
            if light is None:
                self._lights[resource.id] = _Light(
                    resource.id, _v1_number(resource.id_v1), name, V2Caps.of(resource), state,
                    V2Course.still(state, now), reachable=self._reachable(resource.id))
                continue
            light.name, light.caps = name, V2Caps.of(resource)
            light.reachable = self._reachable(resource.id)
        for gone in set(self._lights) - seen:
            del self._lights[gone]
        self._areas = {}
        for kind, controller in (("room", self.bridge.groups.room),
                                 ("zone", self.bridge.groups.zone)):
            for area in controller:
                members = sorted((m.id for m in controller.get_lights(area.id)
                                  if m.id in self._lights), key=self._order)
                self._areas[area.id] = _Area(area.id, _v1_number(area.id_v1),
                                             area.metadata.name if area.metadata else kind,
                                             area.grouped_light, tuple(members))
        if first:
            self._initialized = True
            self._log.info("Hue bridge %s (v2): %d lights, %d rooms and zones", self.host,
                           len(self._lights), len(self._areas))
            for room in self._rooms:
                self._mark_powerup(room)
                self._plan(room, now)
        self._changed()

    def _order(self, light_id: str) -> tuple[int, str]:
        light = self._lights[light_id]
        number = light.v1_id or ""
        return (int(number) if number.isdigit() else 1 << 30, light.name)

    def _reachable(self, light_id: str) -> bool:
        device = self.bridge.lights.get_device(light_id)
        if device is None:
            return True
        connectivity = self.bridge.devices.get_zigbee_connectivity(device.id)
        return connectivity is None or connectivity.status.value == "connected"

    def probe(self) -> Job:
        return Job(lambda: self.bridge.send("get", "clip/v2/resource/bridge"), self._probed)

    def _probed(self, _answer: Any, now: float) -> None:
        down = self._stream_down_at
        if down is not None and now - down > self.options.stream_grace_s:
            # aiohue waits longer between tries the longer the bridge was gone; the bridge
            # answers again, so connect now.
            self._log.info("Hue bridge %s answers: reconnecting its event stream", self.host)
            self._stream_down_at = now
            asyncio.get_running_loop().create_task(self._restart_stream())

    async def _restart_stream(self) -> None:
        await self.bridge.stop_events()
        if not self.closed:
            await self.bridge.events.initialize()

    def work(self, now: float) -> Work:
        pending = [light for light in self._lights.values() if light.reachable
                   and not light.released and (
                       (light.fade is not None
                        and (light.fade.seq, light.fade.step_at(now)) != light.delivered)
                       or light.powerup is not None)]
        pending.sort(key=lambda light: (light.served_at, light.id))
        waiting = {light.id for light in pending}
        groups: dict[str, frozenset[str]] = {}
        for room in self._rooms:
            if room.group is None or (area := self._find_area(room.group)) is None:
                continue
            if area.grouped_light is None or not area.lights:
                continue
            members = [self._lights[i] for i in area.lights]
            if any(not m.reachable or m.released or m.powerup is not None for m in members):
                continue
            if not waiting.intersection(m.id for m in members):
                continue
            fades = [m.fade for m in members]
            first = fades[0]
            if first is None or any(f is None or f.seq != first.seq for f in fades):
                continue
            command = first.command_at(now)
            if all(f is not None and f.command_at(now) == command for f in fades[1:]):
                groups[area.grouped_light] = frozenset(m.id for m in members if m.id in waiting)
        return Work(tuple(light.id for light in pending), groups)

    def next_change(self, now: float) -> float | None:
        changes = [c for light in self._lights.values() if light.fade is not None
                   and not light.released and (c := light.fade.next_change_after(now)) is not None]
        return min(changes, default=None)

    def command(self, target: Target, now: float) -> Job:
        kind, target_id = target
        if kind == "light":
            light = self._lights[target_id]
            fade = light.fade
            if light.powerup is not None and (
                    fade is None or (fade.seq, fade.step_at(now)) == light.delivered):
                body = light.powerup
                return Job(lambda: self.bridge.send("put", f"clip/v2/resource/light/{target_id}",
                                                    body),
                           lambda answer, _t: self._powered(light, answer))
            members = [light]
            path = f"clip/v2/resource/light/{target_id}"
        else:
            area = next(a for a in self._areas.values() if a.grouped_light == target_id)
            members = [self._lights[i] for i in area.lights]
            path = f"clip/v2/resource/grouped_light/{target_id}"
        fade = members[0].fade
        assert fade is not None
        state, left_s = fade.command_at(now)
        key = (fade.seq, fade.step_at(now))
        body = body_of(state, left_s)
        for light in members:
            # Noted before it goes out: the bridge may report it before it answers.
            told = state if state is not None else V2State(False, 0.0)
            light.sent.append((now, told))

        def done(answer: dict[str, Any], _answered_at: float) -> None:
            self._delivered(members, key, state, left_s, answer, now)

        return Job(lambda: self.bridge.send("put", path, body), done)

    def _powered(self, light: _Light, answer: Mapping[str, Any]) -> None:
        light.powerup = None
        if answer.get("errors"):
            self._log.warning("Hue bridge %s did not take the power-on look for light %s: %s",
                              self.host, light.name, answer["errors"])

    def _delivered(self, members: Sequence[_Light], key: tuple[int, int],
                   state: V2State | None, left_s: float, answer: Mapping[str, Any],
                   sent_at: float) -> None:
        errors = [str(e.get("description")) for e in answer.get("errors") or ()
                  if isinstance(e, dict)]
        if errors:
            self._log.warning("Hue bridge %s: %s", self.host, "; ".join(errors))
        for light in members:
            # What the bridge was told, even if a newer look came meanwhile: the lamp does it
            # (and the bridge will report it) until the newer command arrives.
            light.served_at = sent_at
            if light.fade is not None and light.fade.seq == key[0]:
                light.delivered = key
            now_state = light.course.at(sent_at)
            if state is None:
                end = V2State(False, now_state.brightness, now_state.mirek, now_state.xy)
                light.course = V2Course.still(end, sent_at)
            else:
                light.course = V2Course(now_state, state, sent_at, sent_at + left_s)

    def describe(self, exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, HueError) else None

    # what the bridge reports (the event stream, and full reads)

    def _stream_event(self, event_type: Any, _item: Any = None) -> None:
        now = self._clock.now()
        if event_type == EventType.DISCONNECTED:
            if self._stream_down_at is None:
                self._stream_down_at = now
            self._log.info("Hue bridge %s: event stream lost", self.host)
            return
        self._stream_down_at = None
        if self._stream_seen:
            # Back after a gap: what changed meanwhile is not in the stream. Read it all,
            # once (a resurvey already asked for is not asked for again).
            self._log.info("Hue bridge %s: event stream back; reading the bridge again",
                           self.host)
            self.scheduler.resurvey()
        self._stream_seen = True
        self._changed()

    def _light_event(self, event_type: Any, resource: Any) -> None:
        if event_type != EventType.RESOURCE_UPDATED:
            if event_type == EventType.RESOURCE_ADDED:
                self.scheduler.resurvey()
            return
        light = self._lights.get(resource.id)
        if light is None:
            return
        old, new = light.reported, state_of(resource)
        light.reported = new
        if close_to(old, new) and old.on == new.on:
            return
        now = self._clock.now()
        if self._explained(light, new, now):
            return
        room = self._room_of(light.id)
        if (room is None or not light.reachable or light.released
                or now - light.back_at < self.options.gentle_s):
            # Not driven, unreachable, left alone, or just back on (its power-on look).
            light.course = V2Course.still(new, now)
            self._changed()
            return
        action = "restored" if room.policy == "restore" else "followed"
        expected = light.course.at(now)  # what roomctl had it doing: the change as seen in the room
        change = OutsideChange(light.label, light.name, what_changed(expected, new), now, action)
        self._log.warning("Hue bridge %s: %s", self.host, change.describe())
        light.course = V2Course.still(new, now)
        if room.policy == "restore":
            self._plan_light(light, room, now, gentle=True)
        else:
            light.released = True
            light.fade = None
        room.noticed.append(change)
        del room.noticed[:-10]
        for listener in list(room.listeners):
            try:
                listener(change)
            except Exception:
                self._log.exception("an outside-change listener failed")
        self._changed()
        self.scheduler.notify()

    def _explained(self, light: _Light, new: V2State, now: float) -> bool:
        """Whether ``new`` is what roomctl itself asked for (the bridge reporting a command)."""
        if any(close_to(sent, new) for at, sent in light.sent if now - at <= self.options.echo_s):
            return True
        return close_to(light.course.at(now), new) or close_to(light.course.end, new)

    def _zigbee_event(self, event_type: Any, resource: Any) -> None:
        if event_type != EventType.RESOURCE_UPDATED or resource.owner is None:
            return
        device = self.bridge.devices.get(resource.owner.rid)
        if device is None:
            return
        reachable = resource.status.value == "connected"
        now = self._clock.now()
        for light_id in device.lights:
            light = self._lights.get(light_id)
            if light is None or light.reachable == reachable:
                continue
            light.reachable = reachable
            if reachable:
                self._log.info("Hue bridge %s: light %s is back", self.host, light.name)
                light.back_at = now
                light.course = V2Course.still(light.reported, now)
                room = self._room_of(light.id)
                if room is not None and not light.released:
                    self._plan_light(light, room, now, gentle=True)
            else:
                self._log.warning("Hue bridge %s cannot reach light %s", self.host, light.name)
        self._changed()
        self.scheduler.notify()

    def _changed(self) -> None:
        for room in self._rooms:
            for listener in list(room.changed):
                try:
                    listener()
                except Exception:
                    self._log.exception("a room-change listener failed")
