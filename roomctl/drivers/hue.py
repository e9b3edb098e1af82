"""The `hue` Lights driver: a room's Philips Hue bulbs through phue (Hue API v1).

From the room down to the wire:

- `HueLights` is one room — a Hue group, or a list of light ids — behind `Lights`.
- `HueBridgeLink` is one bridge, shared by the rooms on it: what each light should be doing
  (a fade, chained beyond Hue's 109-minute limit; a switch-off after fading to bri 1), what
  it last did (for readings), and the bridge's lights and groups.
- `CommandScheduler` (hue_scheduler) decides when commands go out, on one worker thread.
- `HueBridgeClient` is phue's Bridge with a short timeout and every answer checked.
- `HueBridges` holds one link per bridge for a service; `build_hue_lights` is the factory.

Units: ``bri`` 1-254, ``ct`` mireds, ``xy`` CIE 1931, ``*_ds`` Hue's 100 ms steps.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Literal

import phue

from roomctl import curves, units
from roomctl.clock import Clock
from roomctl.drivers.hue_scheduler import (
    Backoff,
    CommandScheduler,
    Job,
    RateLimits,
    Target,
    Work,
)
from roomctl.room import DriverHealth, LightLook, LightReading

logger = logging.getLogger(__name__)

MAX_TRANSITION_DS = 65535
MAX_TRANSITION_S = MAX_TRANSITION_DS / 10
DEFAULT_REQUEST_TIMEOUT_S = 2.0
_JSON_HEADERS = {"Content-Type": "application/json"}


# --- errors -----------------------------------------------------------------------------------


class HueError(Exception):
    """A Hue bridge problem, worded so that a clinic can act on it."""


class PairingRequired(HueError):
    """The bridge does not know roomctl's username (Hue error 1)."""

    def __init__(self, host: str, username: str | None) -> None:
        who = f"user {_short(username)}" if username else "roomctl"
        super().__init__(f"Hue bridge {host} does not know {who}: pair again with "
                         f"`roomctl hue pair --bridge {host}`")
        self.host = host


class BridgeUnreachable(HueError):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"Hue bridge {host} not answering: {reason}")
        self.host, self.reason = host, reason


class BridgeBusy(HueError):
    def __init__(self, host: str) -> None:
        super().__init__(f"Hue bridge {host} is overloaded (HTTP 503); sending more slowly")
        self.host = host


class BadAnswer(HueError):
    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"Hue bridge {host} gave an answer roomctl cannot use: {detail}")
        self.host = host


class LinkButtonNotPressed(HueError):
    def __init__(self, host: str) -> None:
        super().__init__(f"the link button on Hue bridge {host} has not been pressed")
        self.host = host


def _short(username: str) -> str:
    return f"'{username[:8]}…'" if len(username) > 8 else f"'{username}'"


# --- the bridge's HTTP API through phue -------------------------------------------------------


class HueBridgeClient(phue.Bridge):  # type: ignore[misc]  # phue ships no type information
    """phue's `Bridge`, held to roomctl's rules.

    - `request` has a short timeout (phue's own is a fixed 10 s) and turns every transport
      failure into a `HueError` that says what happened.
    - `connect` does nothing: roomctl keeps usernames in its own config file, so phue never
      reads, writes or registers through ``~/.python_hue``.
    - answers are checked: Hue reports errors as data in HTTP 200 answers.

    Blocking: call it only from the bridge's worker thread (or a CLI command).
    """

    def __init__(self, host: str, username: str | None, *,
                 timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        super().__init__(ip=host, username=username, config_file_path=os.devnull)

    def connect(self) -> None:
        return None

    @property
    def host(self) -> str:
        return str(self.ip)

    def request(self, mode: str = "GET", address: str | None = None, data: Any = None) -> Any:
        payload = None if data is None else json.dumps(data)
        connection = http.client.HTTPConnection(self.ip, timeout=self.timeout_s)
        try:
            connection.request(mode, address or "/", body=payload,
                               headers=_JSON_HEADERS if payload is not None else {})
            response = connection.getresponse()
            raw = response.read()
        except TimeoutError as exc:
            raise BridgeUnreachable(self.host, "timed out") from exc
        except ConnectionRefusedError as exc:
            raise BridgeUnreachable(self.host, "connection refused") from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise BridgeUnreachable(self.host, "connection dropped without an answer") from exc
        except OSError as exc:
            raise BridgeUnreachable(self.host, exc.strerror or str(exc)) from exc
        finally:
            connection.close()
        logger.debug("%s %s %s -> %s", mode, address, payload, response.status)
        if response.status == 503:
            raise BridgeBusy(self.host)
        if response.status != 200:
            raise BadAnswer(self.host, f"HTTP {response.status}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadAnswer(self.host, "not JSON") from exc

    def lights_now(self) -> dict[str, Any]:
        """Every light with its state and capabilities (phue: ``get_light()``)."""
        return self._object(self.get_light())

    def groups_now(self) -> dict[str, Any]:
        """Every group with its lights (phue: ``get_group()``)."""
        return self._object(self.get_group())

    # Not phue's set_light/set_group: they look a string id up by name (an extra request),
    # write transitiontime into the caller's dict, and log bridge errors with the deprecated
    # Logger.warn, whose DeprecationWarning becomes an exception under `-W error` after the
    # bridge has already acted. roomctl reads every answer itself.

    def put_light_state(self, light_id: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._list(self.request("PUT", f"/api/{self.username}/lights/{light_id}/state",
                                       dict(body)))

    def put_group_action(self, group_id: str, body: Mapping[str, Any]
                         ) -> list[dict[str, Any]]:
        return self._list(self.request("PUT", f"/api/{self.username}/groups/{group_id}/action",
                                       dict(body)))

    def register(self, devicetype: str) -> str:
        """``POST /api``: a new username once the link button has been pressed."""
        for entry in self._list(self.request("POST", "/api", {"devicetype": devicetype})):
            success = entry.get("success")
            username = success.get("username") if isinstance(success, dict) else None
            if isinstance(username, str):
                return username
            error = entry.get("error")
            if isinstance(error, dict):
                if error.get("type") == 101:
                    raise LinkButtonNotPressed(self.host)
                raise BadAnswer(self.host, str(error.get("description")))
        raise BadAnswer(self.host, "no username in the pairing answer")

    def _object(self, answer: Any) -> dict[str, Any]:
        if isinstance(answer, list):
            self._list(answer)
            errors = [e["error"].get("description") for e in answer if "error" in e]
            raise BadAnswer(self.host, "; ".join(map(str, errors)) or "a list, not an object")
        if not isinstance(answer, dict):
            raise BadAnswer(self.host, f"expected an object, got {type(answer).__name__}")
        return answer

    def _list(self, answer: Any) -> list[dict[str, Any]]:
        if not isinstance(answer, list) or not all(isinstance(e, dict) for e in answer):
            raise BadAnswer(self.host, "expected a list of results")
        for entry in answer:
            error = entry.get("error")
            if isinstance(error, dict) and error.get("type") == 1:
                raise PairingRequired(self.host, self.username)
        return answer


# --- what a light can show, and what it should show -------------------------------------------

GAMUTS: dict[str, units.Gamut] = {
    "A": ((0.704, 0.296), (0.2151, 0.7106), (0.138, 0.08)),
    "B": ((0.675, 0.322), (0.409, 0.518), (0.167, 0.04)),
    "C": ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475)),
}
_GAMUT_B_MODELS = {"LCT001", "LCT002", "LCT003", "LCT007", "LLM001"}


def _gamut_for_model(modelid: str) -> units.Gamut:
    """For bulbs whose API object predates "capabilities" (Philips' published table)."""
    if modelid in _GAMUT_B_MODELS:
        return GAMUTS["B"]
    if (modelid.startswith("LLC") and modelid != "LLC020") or modelid == "LST001":
        return GAMUTS["A"]
    return GAMUTS["C"]


@dataclass(frozen=True)
class LightCapabilities:
    ct_range: tuple[int, int] | None  # mireds, None: no colour temperature
    gamut: units.Gamut | None  # None: no colour

    @classmethod
    def from_api(cls, light: Mapping[str, Any]) -> LightCapabilities:
        kind = str(light.get("type", "")).lower()
        control = light.get("capabilities", {}).get("control", {})
        ct = control.get("ct")
        ct_range: tuple[int, int] | None = None
        if isinstance(ct, dict) and "min" in ct and "max" in ct:
            ct_range = (int(ct["min"]), int(ct["max"]))
        elif kind in ("extended color light", "color temperature light"):
            ct_range = (153, 500)
        gamut: units.Gamut | None = None
        points = control.get("colorgamut")
        if isinstance(points, list) and len(points) == 3:
            (rx, ry), (gx, gy), (bx, by) = points
            gamut = ((float(rx), float(ry)), (float(gx), float(gy)), (float(bx), float(by)))
        elif control.get("colorgamuttype") in GAMUTS:
            gamut = GAMUTS[control["colorgamuttype"]]
        elif kind in ("extended color light", "color light"):
            gamut = _gamut_for_model(str(light.get("modelid", "")))
        return cls(ct_range, gamut)


@dataclass(frozen=True)
class HueState:
    """A light's state in Hue's units. At most one of ``ct`` and ``xy`` is set (the colour
    mode); neither: brightness only, or "keep the colour" in a command."""

    on: bool
    bri: int
    ct: int | None = None
    xy: units.XY | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"on": self.on, "bri": self.bri}
        if self.ct is not None:
            out["ct"] = self.ct
        elif self.xy is not None:
            out["xy"] = [self.xy[0], self.xy[1]]
        return out

    @classmethod
    def from_api(cls, state: Mapping[str, Any]) -> HueState:
        on, bri = bool(state.get("on", False)), int(state.get("bri", 254))
        mode, ct, xy = state.get("colormode"), state.get("ct"), state.get("xy")
        if mode in ("xy", "hs") and isinstance(xy, list) and len(xy) == 2:
            return cls(on, bri, None, (float(xy[0]), float(xy[1])))
        if isinstance(ct, int):
            return cls(on, bri, ct)
        return cls(on, bri)


def hue_target(look: LightLook, caps: LightCapabilities) -> HueState:
    """What ``look`` is on one light: brightness -> ``bri`` (0 % -> bri 1, on False), Kelvin ->
    mireds clamped to the light's range, "#rrggbb" -> xy clamped into its gamut; a white-only
    light shows a colour as the nearest colour temperature, a dimmable one ignores colour."""
    bri = units.percent_to_bri(look.brightness)
    on = look.brightness > 0
    if look.color is not None:
        xy = units.rgb_to_xy(units.hex_to_rgb(look.color))
        if caps.gamut is not None:
            return HueState(on, bri, None, _round_xy(units.clamp_xy_to_gamut(xy, caps.gamut)))
        if caps.ct_range is not None:
            return HueState(on, bri, units.nearest_mireds(xy, *caps.ct_range))
    elif look.color_temp is not None:
        mireds = units.kelvin_to_mireds(look.color_temp)
        if caps.ct_range is not None:
            low, high = caps.ct_range
            return HueState(on, bri, min(high, max(low, mireds)))
        if caps.gamut is not None:
            xy = units.clamp_xy_to_gamut(units.mireds_to_xy(mireds), caps.gamut)
            return HueState(on, bri, None, _round_xy(xy))
    return HueState(on, bri)


def _round_xy(xy: units.XY) -> units.XY:
    return round(xy[0], 4), round(xy[1], 4)


def blend(a: HueState, b: HueState, f: float) -> HueState:
    """The state a fraction ``f`` of the way from ``a`` to ``b`` (a bulb switched on fades up
    from dark; colour moves in ``b``'s colour mode)."""
    if f >= 1:
        return b
    a_bri = a.bri if a.on else 1
    bri = round(curves.lerp(a_bri, b.bri, f))
    ct, xy = b.ct, b.xy
    if b.ct is not None:
        a_ct = a.ct
        if a_ct is None and a.xy is not None:
            a_ct = units.nearest_mireds(a.xy, 153, 500)
        if a_ct is not None:
            ct = round(curves.lerp(a_ct, b.ct, f))
    elif b.xy is not None:
        a_xy = a.xy if a.xy is not None else (
            units.mireds_to_xy(a.ct) if a.ct is not None else None)
        if a_xy is not None:
            xy = curves.lerp_xy(a_xy, b.xy, f)
    else:
        ct, xy = a.ct, a.xy
    return HueState(b.on, bri, ct, xy)


def _reading(light_id: str, name: str, state: HueState, reachable: bool) -> LightReading:
    color = None
    if state.ct is None and state.xy is not None:
        color = units.rgb_to_hex(units.xy_to_rgb(state.xy))
    return LightReading(
        id=light_id, name=name, on=state.on,
        brightness=units.bri_to_percent(state.bri) if state.on else 0.0,
        color_temp=units.mireds_to_kelvin(state.ct) if state.ct is not None else None,
        color=color, reachable=reachable)


# --- one light's course in time ---------------------------------------------------------------


@dataclass(frozen=True)
class _Fade:
    """What one light should do after one `apply`: fade from ``start`` to ``target`` between
    t0 and t1, in steps of at most 65535 ds (each step's target interpolated), and — for 0 % —
    switch off at t1, once it has faded to bri 1 (never off with a transition)."""

    seq: int
    start: HueState
    target: HueState  # on, bri >= 1
    t0: float
    t1: float
    switch_off: bool

    @cached_property
    def segments(self) -> int:
        return max(1, math.ceil((self.t1 - self.t0) / MAX_TRANSITION_S - 1e-9))

    def step_at(self, t: float) -> int:
        if t >= self.t1:
            return self.segments if self.switch_off else self.segments - 1
        return min(self.segments - 1, max(0, int((t - self.t0) // MAX_TRANSITION_S)))

    def _segment_end(self, k: int) -> float:
        return min(self.t0 + (k + 1) * MAX_TRANSITION_S, self.t1)

    def body_at(self, t: float) -> dict[str, Any]:
        """The one command that makes the light do, from ``t`` on, what is wanted: the current
        step's target over the time that step has left."""
        k = self.step_at(t)
        if k == self.segments:
            return {"on": False, "transitiontime": 0}
        end = self._segment_end(k)
        state = self.target
        if end < self.t1:
            state = blend(self.start, self.target, curves.progress(end, self.t0, self.t1 - self.t0))
        body = state.fields()
        body["on"] = True
        body["transitiontime"] = min(MAX_TRANSITION_DS, units.seconds_to_ds(max(0.0, end - t)))
        return body

    def next_change_after(self, t: float) -> float | None:
        k = self.step_at(t)
        if k < self.segments - 1:
            return self._segment_end(k)
        if k == self.segments - 1 and self.switch_off:
            return self.t1
        return None


@dataclass(frozen=True)
class _Course:
    """What a light is doing, as far as roomctl knows: from ``start`` at t0 to ``end`` at t1."""

    start: HueState
    end: HueState
    t0: float
    t1: float

    @classmethod
    def still(cls, state: HueState, t: float) -> _Course:
        return cls(state, state, t, t)

    def at(self, t: float) -> HueState:
        return blend(self.start, self.end, curves.progress(t, self.t0, self.t1 - self.t0))

    def then(self, applied: Mapping[str, Any], at: float) -> _Course:
        """After a command whose ``applied`` fields the bridge accepted at ``at``."""
        now = self.at(at)
        if not applied.keys() & {"on", "bri", "ct", "xy"}:
            return self
        ct, xy = now.ct, now.xy
        if "ct" in applied:
            ct, xy = int(applied["ct"]), None
        if "xy" in applied:
            ct, xy = None, (float(applied["xy"][0]), float(applied["xy"][1]))
        end = HueState(bool(applied.get("on", now.on)), int(applied.get("bri", now.bri)), ct, xy)
        if not end.on:
            return _Course.still(end, at)
        return _Course(now, end, at, at + int(applied.get("transitiontime", 4)) / 10)


# --- one bridge -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HueOptions:
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    limits: RateLimits = field(default_factory=RateLimits)
    backoff: Backoff = field(default_factory=Backoff)
    refresh_s: float = 30.0  # how often an idle bridge is read again (reachability, outages)


@dataclass
class _Light:
    id: str
    name: str
    caps: LightCapabilities
    reachable: bool
    course: _Course
    fade: _Fade | None = None
    delivered: tuple[int, int] | None = None  # (fade seq, step) last delivered
    served_at: float = -math.inf


@dataclass(frozen=True)
class _Want:
    seq: int
    look: LightLook
    t0: float
    t1: float


@dataclass(eq=False)
class _Room:
    group: str | None
    lights: tuple[str, ...] | None
    want: _Want | None = None


class HueBridgeLink:
    """One Hue bridge and the rooms on it (the `Plant` its `CommandScheduler` drives).

    Everything here runs on the event loop except the ``call`` of a `Job`, which runs on the
    scheduler's worker thread and touches nothing but the client."""

    def __init__(self, host: str, username: str, clock: Clock,
                 options: HueOptions | None = None) -> None:
        options = options or HueOptions()
        self.host, self.username = host, username
        self._clock = clock
        self._client = HueBridgeClient(host, username, timeout_s=options.request_timeout_s)
        self._log = logger.getChild(host.replace(".", "_").replace(":", "_"))
        self._lights: dict[str, _Light] = {}
        self._groups: dict[str, tuple[str, ...]] | None = None
        self._rooms: list[_Room] = []
        self._seq = itertools.count(1)
        self.closed = False
        self.scheduler = CommandScheduler(
            self, clock, name=host, limits=options.limits, backoff=options.backoff,
            refresh_s=options.refresh_s, log=self._log)

    # rooms

    def attach(self, room: _Room) -> None:
        self._rooms.append(room)

    async def detach(self, room: _Room) -> None:
        if room in self._rooms:
            self._rooms.remove(room)
        if not self._rooms and not self.closed:
            await self.close()

    async def close(self) -> None:
        self.closed = True
        await self.scheduler.close()

    def want(self, room: _Room, look: LightLook, transition_s: float) -> None:
        now = self._clock.now()
        room.want = _Want(next(self._seq), look, now, now + transition_s)
        if self.ready:
            self._plan(room, now)
        self.scheduler.start()
        self.scheduler.notify()

    def room_lights(self, room: _Room) -> tuple[str, ...]:
        if room.lights is not None:
            return room.lights
        if room.group is not None:
            return self._group_members(room.group)
        return ()

    def _group_members(self, group_id: str) -> tuple[str, ...]:
        if group_id == "0":  # Hue's group of all lights
            return tuple(self._lights)
        return (self._groups or {}).get(group_id, ())

    def _plan(self, room: _Room, now: float) -> None:
        want = room.want
        if want is None:
            return
        for light_id in self.room_lights(room):
            light = self._lights.get(light_id)
            if light is None:
                continue
            start = light.course.at(now)
            target = hue_target(want.look, light.caps)
            t1 = want.t1 if target.on or start.on else want.t0  # already off: nothing to fade
            light.fade = _Fade(want.seq, start, HueState(True, target.bri, target.ct, target.xy),
                               want.t0, t1, switch_off=not target.on)

    # what the room sees

    def readings(self, room: _Room) -> list[LightReading]:
        now = self._clock.now()
        answering = self.scheduler.problem is None
        out = []
        for light_id in self.room_lights(room):
            light = self._lights.get(light_id)
            if light is not None:
                out.append(_reading(light_id, light.name, light.course.at(now),
                                    light.reachable and answering))
        return out

    def health(self, room: _Room) -> DriverHealth:
        if self.scheduler.crashed is not None:
            return DriverHealth(False, f"the command scheduler for Hue bridge {self.host} "
                                       f"stopped ({self.scheduler.crashed!r}): restart roomctl")
        if self.scheduler.problem is not None:
            return DriverHealth(False, self.scheduler.problem)
        if self._groups is None:
            return DriverHealth(False, f"not in touch with Hue bridge {self.host} yet")
        if room.group is not None and room.group != "0" and room.group not in self._groups:
            return DriverHealth(False, f"Hue bridge {self.host} has no group {room.group}")
        missing = [i for i in room.lights or () if i not in self._lights]
        if missing:
            return DriverHealth(False, f"Hue bridge {self.host} has no light "
                                       f"{', '.join(missing)}")
        asleep = [f"{i} ({self._lights[i].name})" for i in self.room_lights(room)
                  if i in self._lights and not self._lights[i].reachable]
        if asleep:
            return DriverHealth(False, f"Hue bridge {self.host} cannot reach light "
                                       f"{', '.join(asleep)}: switched off at the wall?")
        return DriverHealth(True)

    # the Plant the scheduler drives

    @property
    def ready(self) -> bool:
        return self._groups is not None

    def survey(self) -> Job:
        return Job(self._read_bridge, self._surveyed)

    def _read_bridge(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._client.lights_now(), self._client.groups_now()

    def _surveyed(self, answer: tuple[dict[str, Any], dict[str, Any]], now: float) -> None:
        lights, groups = answer
        first = self._groups is None
        for light_id, obj in lights.items():
            api_state = obj.get("state", {})
            state = HueState.from_api(api_state)
            name = str(obj.get("name", f"light {light_id}"))
            caps = LightCapabilities.from_api(obj)
            reachable = bool(api_state.get("reachable", True))
            light = self._lights.get(light_id)
            if light is None:
                self._lights[light_id] = _Light(light_id, name, caps, reachable,
                                                _Course.still(state, now))
                continue
            light.name, light.caps, light.reachable = name, caps, reachable
            if now >= light.course.t1:  # not mid-fade: the bridge knows best (e.g. the Hue app)
                light.course = _Course.still(state, now)
        for gone in set(self._lights) - set(lights):
            del self._lights[gone]
        self._groups = {gid: tuple(str(i) for i in obj.get("lights", []))
                        for gid, obj in groups.items() if isinstance(obj, dict)}
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
                if error.get("type") == 3 and kind == "light":
                    members[0].fade = None  # the light is gone; the next survey drops it
        for light in members:
            if light.fade is not None and light.fade.seq == key[0]:
                light.delivered = key
            light.served_at = sent_at
            light.course = light.course.then(applied, sent_at)

    def describe(self, exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, HueError) else None


# --- the room driver --------------------------------------------------------------------------


def _check(look: LightLook, transition_s: float) -> None:
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
        self._room = _Room(None if group is None else str(group),
                           None if lights is None else tuple(str(i) for i in lights))
        link.attach(self._room)

    @property
    def bridge(self) -> str:
        return self._link.host

    async def apply(self, look: LightLook, transition_s: float) -> None:
        _check(look, transition_s)
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

    def lights(self, bridge: str, username: str, *, group: str | None = None,
               lights: Sequence[str] | None = None) -> HueLights:
        link = self._links.get(bridge)
        if link is None or link.closed:
            link = HueBridgeLink(bridge, username, self._clock, self._options)
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
                     lights: Sequence[str] | None, clock: Clock, *,
                     bridges: HueBridges | None = None,
                     options: HueOptions | None = None) -> HueLights:
    """A room's `hue` lights from the room config. Pass the service's `HueBridges` when more
    than one room may use the same bridge, so that they share its rate limits."""
    pool = bridges if bridges is not None else HueBridges(clock, options)
    return pool.lights(bridge, username, group=group, lights=lights)


def username_for_bridge(config: Mapping[str, Any], bridge: str) -> str | None:
    """The username stored by `roomctl hue pair` in ``[hue_bridges."HOST"]``, if any."""
    bridges = config.get("hue_bridges")
    entry = bridges.get(bridge) if isinstance(bridges, Mapping) else None
    username = entry.get("username") if isinstance(entry, Mapping) else None
    return username if isinstance(username, str) and username else None
