"""The `hue` Lights driver for Hue API v2 (CLIP v2), on aiohue's `HueBridgeV2`.

From the room down to the wire:

- `HueV2Lights` is one room — a Hue room or zone, or a list of lights — behind `Lights`, plus
  what v2 adds: changes made outside roomctl (`subscribe_outside_changes`, the ``restore`` /
  ``follow`` policy, `take_back`).
- `HueV2Link` is one bridge, shared by the rooms on it: what each light should be doing (a
  `V2Fade`, chained past the longest ``dynamics.duration`` a bulb takes), what the bridge
  reports (through the event stream), and the `Plant` the shared `CommandScheduler` drives
  (rate limits, latest value wins, back-off), with its calls run on the event loop.
- `RoomctlBridgeV2` is aiohue's bridge with roomctl's TLS check (`roomctl.drivers.hue.tls`)
  instead of none, one attempt per request (the scheduler backs off and sends the newest
  value, where aiohue would re-send a stale one up to 25 times) and errors as `HueError`s.

Units: ``brightness`` percent (0-100, float), ``mirek`` (mireds), ``xy`` CIE 1931,
``dynamics.duration`` milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import aiohttp
from aiohue import HueBridgeV2
from aiohue.errors import AiohueException
from aiohue.util import dataclass_to_dict
from aiohue.v2.controllers.events import EventType
from aiohue.v2.models.feature import (
    ColorFeaturePut,
    ColorPoint,
    ColorTemperatureFeaturePut,
    DimmingFeaturePut,
    DynamicsFeaturePut,
    OnFeature,
    PowerUpFeatureColorMode,
    PowerUpFeatureColorState,
    PowerUpFeatureDimmingMode,
    PowerUpFeatureDimmingState,
    PowerUpFeatureOnMode,
    PowerUpFeatureOnState,
    PowerUpFeaturePut,
    PowerUpPreset,
)
from aiohue.v2.models.light import LightPut

from roomctl import curves, units
from roomctl.clock import Clock
from roomctl.drivers.hue.color import LightCapabilities, hue_target
from roomctl.drivers.hue.errors import (
    BadAnswer,
    BridgeBusy,
    BridgeUnreachable,
    CertificateRefused,
    HueError,
    PairingRequired,
)
from roomctl.drivers.hue.fades import Chain
from roomctl.drivers.hue.lights import check_look
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
from roomctl.room import DriverHealth, LightLook, LightReading, OutsideChange

logger = logging.getLogger("roomctl.drivers.hue")

MAX_DURATION_MS = 6_000_000  # dynamics.duration's maximum in the CLIP v2 reference (100 min)
MAX_DURATION_S = MAX_DURATION_MS / 1000

OutsidePolicy = Literal["restore", "follow"]


# --- a light's state in v2 units --------------------------------------------------------------


@dataclass(frozen=True)
class V2State:
    """A light's state as v2 has it. At most one of ``mirek`` and ``xy`` is set (its colour
    mode); neither: brightness only."""

    on: bool
    brightness: float  # percent
    mirek: int | None = None
    xy: units.XY | None = None


def blend_v2(a: V2State, b: V2State, f: float) -> V2State:
    """The state part ``f`` of the way from ``a`` to ``b`` (a light switched on fades up from
    its lowest; colour moves in ``b``'s colour mode)."""
    if f >= 1:
        return b
    bri = round(curves.lerp(a.brightness if a.on else 0.0, b.brightness, f), 2)
    mirek, xy = b.mirek, b.xy
    if b.mirek is not None:
        a_mirek = a.mirek if a.mirek is not None else (
            units.nearest_mireds(a.xy, 153, 500) if a.xy is not None else None)
        if a_mirek is not None:
            mirek = round(curves.lerp(a_mirek, b.mirek, f))
    elif b.xy is not None:
        a_xy = a.xy if a.xy is not None else (
            units.mireds_to_xy(a.mirek) if a.mirek is not None else None)
        if a_xy is not None:
            xy = curves.lerp_xy(a_xy, b.xy, f)
    else:
        mirek, xy = a.mirek, a.xy
    return V2State(b.on, bri, mirek, xy)


@dataclass(frozen=True)
class V2Caps:
    """What one v2 light can show (from its resource)."""

    ct_range: tuple[int, int] | None
    gamut: units.Gamut | None
    min_brightness: float  # percent: the light's lowest, ``dimming.min_dim_level``
    powerup: bool  # it has a ``powerup`` feature

    @classmethod
    def of(cls, light: Any) -> V2Caps:
        ct_range = None
        if light.color_temperature is not None:
            schema = light.color_temperature.mirek_schema
            ct_range = (int(schema.mirek_minimum), int(schema.mirek_maximum))
        gamut = None
        if light.color is not None and light.color.gamut is not None:
            g = light.color.gamut
            gamut = ((g.red.x, g.red.y), (g.green.x, g.green.y), (g.blue.x, g.blue.y))
        elif light.color is not None:
            gamut = ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475))  # gamut C, the usual
        floor = 0.0
        if light.dimming is not None and light.dimming.min_dim_level is not None:
            floor = float(light.dimming.min_dim_level)
        return cls(ct_range, gamut, floor, light.powerup is not None)


def state_of(light: Any) -> V2State:
    """A light resource's state (aiohue's model) as a `V2State`."""
    mirek = xy = None
    ct = light.color_temperature
    if ct is not None and ct.mirek_valid and ct.mirek is not None:
        mirek = int(ct.mirek)
    elif light.color is not None:
        xy = (round(light.color.xy.x, 4), round(light.color.xy.y, 4))
    return V2State(light.is_on, float(light.brightness), mirek, xy)


def v2_target(look: LightLook, caps: V2Caps) -> V2State:
    """What ``look`` is on one light: the colour as the v1 mapping has it (mireds clamped to
    the light's range, xy clamped into its gamut, the nearest white on a white-only light),
    brightness in percent, at least the light's lowest; 0 % is "off" (``on`` False)."""
    colour = hue_target(look, LightCapabilities(caps.ct_range, caps.gamut))
    brightness = float(max(caps.min_brightness, min(100.0, look.brightness)))
    return V2State(look.brightness > 0, round(brightness, 2), colour.ct, colour.xy)


@dataclass(frozen=True)
class V2Fade(Chain[V2State]):
    """A `Chain` in v2 units: steps of at most 6,000,000 ms."""

    max_step_s: ClassVar[float] = MAX_DURATION_S

    def blend(self, a: V2State, b: V2State, f: float) -> V2State:
        return blend_v2(a, b, f)


@dataclass(frozen=True)
class V2Course:
    """What a light is doing, as far as roomctl knows: from ``start`` at t0 to ``end`` at t1."""

    start: V2State
    end: V2State
    t0: float
    t1: float

    @classmethod
    def still(cls, state: V2State, t: float) -> V2Course:
        return cls(state, state, t, t)

    def at(self, t: float) -> V2State:
        return blend_v2(self.start, self.end, curves.progress(t, self.t0, self.t1 - self.t0))


def body_of(state: V2State | None, duration_s: float) -> dict[str, Any]:
    """A light or grouped_light PUT body (aiohue's models, as JSON) for one command."""
    if state is None:  # the switch-off at the end of a fade to 0 %
        put = LightPut(on=OnFeature(on=False), dynamics=DynamicsFeaturePut(duration=0))
        return dict(dataclass_to_dict(put))
    put = LightPut(on=OnFeature(on=True), dimming=DimmingFeaturePut(brightness=state.brightness),
                   dynamics=DynamicsFeaturePut(duration=min(
                       MAX_DURATION_MS, units.seconds_to_ms(duration_s))))
    if state.mirek is not None:
        put.color_temperature = ColorTemperatureFeaturePut(mirek=state.mirek)
    elif state.xy is not None:
        put.color = ColorFeaturePut(xy=ColorPoint(*state.xy))
    return dict(dataclass_to_dict(put))


def powerup_body(look: LightLook, caps: V2Caps) -> dict[str, Any]:
    """The ``powerup`` a light gets: on, at ``look`` (a soft warm white), after a power cut."""
    target = v2_target(look, caps)
    color = None
    if target.mirek is not None:
        color = PowerUpFeatureColorState(
            mode=PowerUpFeatureColorMode.COLOR_TEMPERATURE,
            color_temperature=ColorTemperatureFeaturePut(mirek=target.mirek))
    elif target.xy is not None:
        color = PowerUpFeatureColorState(mode=PowerUpFeatureColorMode.COLOR,
                                         color=ColorFeaturePut(xy=ColorPoint(*target.xy)))
    powerup = PowerUpFeaturePut(
        preset=PowerUpPreset.CUSTOM,
        on=PowerUpFeatureOnState(mode=PowerUpFeatureOnMode.ON, on=OnFeature(on=True)),
        dimming=PowerUpFeatureDimmingState(mode=PowerUpFeatureDimmingMode.DIMMING,
                                           dimming=DimmingFeaturePut(brightness=target.brightness)),
        color=color)
    return {"powerup": dataclass_to_dict(powerup)}


def _close(a: V2State, b: V2State) -> bool:
    """Whether a reported state is the one expected (the bridge rounds a little)."""
    if a.on != b.on:
        return False
    if not a.on:
        return True
    if abs(a.brightness - b.brightness) > 1.0:
        return False
    if a.mirek is not None and b.mirek is not None:
        return abs(a.mirek - b.mirek) <= 2
    if a.xy is not None and b.xy is not None:
        return abs(a.xy[0] - b.xy[0]) <= 0.006 and abs(a.xy[1] - b.xy[1]) <= 0.006
    return (a.mirek is None and a.xy is None) or (b.mirek is None and b.xy is None)


def _kelvin(mirek: int) -> str:
    return f"{units.mireds_to_kelvin(mirek)} K"


def what_changed(old: V2State, new: V2State) -> str:
    """The difference between two states in plain words."""
    if old.on and not new.on:
        return "switched off"
    parts = ["switched on"] if new.on and not old.on else []
    if new.on and abs(old.brightness - new.brightness) > 1.0:
        parts.append(f"brightness {old.brightness:.0f} % -> {new.brightness:.0f} %")
    if new.mirek is not None and old.mirek is not None and abs(old.mirek - new.mirek) > 2:
        parts.append(f"colour temperature {_kelvin(old.mirek)} -> {_kelvin(new.mirek)}")
    elif new.mirek is not None and old.mirek is None:
        parts.append(f"colour -> white {_kelvin(new.mirek)}")
    elif new.xy is not None and (old.xy is None or abs(old.xy[0] - new.xy[0]) > 0.006
                                 or abs(old.xy[1] - new.xy[1]) > 0.006):
        rgb = units.rgb_to_hex(units.xy_to_rgb(new.xy))
        parts.append(f"colour -> {rgb}")
    return ", ".join(parts) or "changed"


# --- aiohue's bridge, held to roomctl's rules --------------------------------------------------


class CertificateCheck(aiohttp.Fingerprint):
    """aiohttp's hook for checking a server's certificate after the handshake (its
    `Fingerprint`), deciding by `BridgeTrust` instead of one fixed fingerprint."""

    def __init__(self, trust: BridgeTrust) -> None:
        super().__init__(bytes(32))  # aiohttp's constructor wants a digest; ours is unused
        self.trust = trust
        self.refused: CertificateRefused | None = None

    def check(self, transport: asyncio.Transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        try:
            if not der:
                raise CertificateRefused(self.trust.host, self.trust.bridge_id, "none",
                                         self.trust.pin)
            self.trust.check(der)
        except CertificateRefused as exc:
            self.refused = exc
            host, port, *_ = transport.get_extra_info("peername")
            raise aiohttp.ServerFingerprintMismatch(
                self.fingerprint, hashlib.sha256(der or b"").digest(), host, port) from exc
        self.refused = None


class RequestFailed(AiohueException):  # type: ignore[misc]  # aiohue ships no type information
    """A `HueError` raised inside aiohue's own calls (a full read, its stream keep-alive),
    which expect aiohue's exceptions; `error` is what went wrong."""

    def __init__(self, error: HueError) -> None:
        super().__init__(str(error))
        self.error = error


class RoomctlBridgeV2(HueBridgeV2):  # type: ignore[misc]  # aiohue ships no type information
    """aiohue's `HueBridgeV2` with the bridge's certificate checked, one attempt per request,
    a request timeout, and errors as `HueError`s (see the module docstring)."""

    _websession: aiohttp.ClientSession | None

    def __init__(self, host: str, app_key: str, *, trust: BridgeTrust, timeout_s: float) -> None:
        super().__init__(host, app_key)
        self.check = CertificateCheck(trust)
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def create_request(self, method: str, path: str, **kwargs: Any
                             ) -> AsyncIterator[aiohttp.ClientResponse]:
        if self._websession is None:
            # As aiohue does: at most 3 connections (the bridge refuses more at once).
            self._websession = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit_per_host=3))
        kwargs["ssl"] = self.check
        kwargs.setdefault("timeout", aiohttp.ClientTimeout(total=self.timeout_s))
        headers = kwargs.setdefault("headers", {})
        headers["hue-application-key"] = self._app_key
        async with self._websession.request(method, f"https://{self._host}/{path}",
                                            **kwargs) as response:
            yield response

    async def send(self, method: str, path: str, body: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
        """One request; the bridge's whole answer (``data`` and ``errors``). Raises `HueError`."""
        try:
            async with self.create_request(method, path, json=body) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except aiohttp.ServerFingerprintMismatch as exc:
            raise self.check.refused or CertificateRefused(
                self._host, None, "?", None) from exc
        except TimeoutError as exc:
            raise BridgeUnreachable(self._host, "timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            raise BridgeUnreachable(self._host, "connection refused" if refused
                                    else exc.os_error.strerror or str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise BridgeUnreachable(self._host, "connection dropped without an answer") from exc
        errors = answer.get("errors") if isinstance(answer, dict) else None
        descriptions = "; ".join(str(e.get("description")) for e in errors or ()
                                 if isinstance(e, dict))
        if status in (429, 503):
            raise BridgeBusy(self._host, status)
        if status == 403:
            raise PairingRequired(self._host, self._app_key)
        if status >= 400 or not isinstance(answer, dict):
            raise BadAnswer(self._host, f"HTTP {status}" + (f": {descriptions}"
                                                            if descriptions else ""))
        return answer

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """aiohue's own requests (full reads, its keep-alive) through `send`."""
        try:
            answer = await self.send(method, path, kwargs.get("json"))
        except HueError as exc:
            raise RequestFailed(exc) from exc
        return answer.get("data", [])

    async def stop_events(self) -> None:
        """Stop the event stream and wait until its tasks have ended (aiohue's own `stop`
        only cancels them, so their connection could outlive the session)."""
        tasks = list(getattr(self.events, "_bg_tasks", ()))  # aiohue keeps them there
        await self.events.stop()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_events()
        await super().close()
        # A TLS connection closes in a round trip with the bridge: let that happen before a
        # caller closes the event loop (else its socket is left unclosed).
        await asyncio.sleep(0.05)

    async def _handle_connect_event(self, event_type: Any, item: Any = None) -> None:
        """aiohue re-reads everything only after a stream gap of over 60 s; `HueV2Link` does
        it once after every reconnect, so this one does nothing (no second re-read)."""
        return None


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
        if _close(old, new) and old.on == new.on:
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
        if any(_close(sent, new) for at, sent in light.sent if now - at <= self.options.echo_s):
            return True
        return _close(light.course.at(now), new) or _close(light.course.end, new)

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
