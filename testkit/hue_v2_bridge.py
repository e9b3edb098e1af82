"""A Philips Hue bridge speaking API v2 (CLIP v2) on 127.0.0.1, for tests and benches.

A real HTTPS server (aiohttp, on its own thread and event loop) with a certificate made at
test time (`testkit.bridge_tls`): the ``hue-application-key`` header, pairing (``POST /api``
with ``generateclientkey``), ``GET /clip/v2/resource[/{type}[/{id}]]`` with v2 shapes for
bridge, device, light, room, zone, grouped_light and zigbee_connectivity, ``PUT`` on light and
grouped_light with range checks and error bodies shaped like the bridge's, 429 when commands
come faster than ~10 light / 1 group a second, and the event stream
(``GET /eventstream/clip/v2``, server-sent events, batched) reporting every change — roomctl's,
and those a test makes "from another app" (`change_light`). Faults: `drop_stream`, `hang`,
`go_down`, `set_reachable` (a lamp switched off at the wall).

Lamps fade in time: `output` is what a lamp shows at a moment (interpolated mid-fade), while
the API reports each lamp's target, as the bridge does. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeGuard

from aiohttp import web

from roomctl import units
from testkit.bridge_tls import DEFAULT_BRIDGE_ID, BridgeCertificate

logger = logging.getLogger(__name__)

GAMUT_C: units.Gamut = ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475))
DEFAULT_APP_KEY = "roomctl-test-application-key"
LINK_BUTTON_WINDOW_S = 30.0
MAX_DURATION_MS = 6_000_000  # dynamics.duration's maximum in the CLIP v2 reference
_HOST = "127.0.0.1"


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(("hue-v2-emulator", *parts))))


# --- what is in the house ---------------------------------------------------------------------


@dataclass(frozen=True)
class LampSpec:
    """One emulated lamp (a device with one light service)."""

    name: str
    v1_id: str
    model_id: str = "LCA001"
    product_name: str = "Hue color lamp"
    mirek_range: tuple[int, int] | None = (153, 500)
    gamut: units.Gamut | None = GAMUT_C
    min_dim_level: float = 0.2  # percent
    on: bool = True
    brightness: float = 78.0
    mirek: int | None = 366
    xy: units.XY = (0.4573, 0.41)
    reachable: bool = True


def color_lamp(name: str, v1_id: str, **changes: Any) -> LampSpec:
    return replace(LampSpec(name, v1_id), **changes)


def white_ambiance(name: str, v1_id: str, **changes: Any) -> LampSpec:
    return replace(LampSpec(name, v1_id, model_id="LTA001", product_name="Hue white ambiance",
                            mirek_range=(153, 454), gamut=None), **changes)


def white_lamp(name: str, v1_id: str, **changes: Any) -> LampSpec:
    return replace(LampSpec(name, v1_id, model_id="LWA001", product_name="Hue white lamp",
                            mirek_range=None, gamut=None, mirek=None), **changes)


@dataclass(frozen=True)
class AreaSpec:
    """A room (groups devices) or a zone (groups lights), by the lamps' v1 ids."""

    name: str
    v1_id: str
    lamps: tuple[str, ...]
    kind: str = "room"  # "room" | "zone"


def therapy_room() -> tuple[list[LampSpec], list[AreaSpec]]:
    """Two colour lamps and two white-ambiance lamps in the room "Therapy room" (v1 group 1),
    and a zone "Couch corner" (v1 group 2) with lamps 1 and 3."""
    lamps = [color_lamp("Couch lamp", "1"), color_lamp("Window lamp", "2"),
             white_ambiance("Ceiling", "3"), white_ambiance("Reading lamp", "4")]
    return lamps, [AreaSpec("Therapy room", "1", ("1", "2", "3", "4")),
                   AreaSpec("Couch corner", "2", ("1", "3"), kind="zone")]


# --- a lamp in time ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """What a lamp shows (or is told to show)."""

    on: bool
    brightness: float
    mirek: int | None
    xy: units.XY | None  # None with a mirek: colour-temperature mode


def _mix(a: Look, b: Look, f: float) -> Look:
    """Part ``f`` of the way from ``a`` to ``b`` (an independent model: plain linear)."""
    bri_a = a.brightness if a.on else 0.0
    bri = bri_a + (b.brightness - bri_a) * f
    mirek = b.mirek
    if a.mirek is not None and b.mirek is not None:
        mirek = round(a.mirek + (b.mirek - a.mirek) * f)
    xy = b.xy
    if a.xy is not None and b.xy is not None:
        xy = (a.xy[0] + (b.xy[0] - a.xy[0]) * f, a.xy[1] + (b.xy[1] - a.xy[1]) * f)
    return Look(b.on or f < 1, bri, mirek, xy)


@dataclass
class _Lamp:
    spec: LampSpec
    light_id: str
    device_id: str
    zigbee_id: str
    start: Look
    target: Look
    t0: float = 0.0
    t1: float = 0.0
    reachable: bool = True
    powerup: dict[str, Any] = field(default_factory=lambda: {
        "preset": "safety", "configured": True, "on": {"mode": "on", "on": {"on": True}},
        "dimming": {"mode": "dimming", "dimming": {"brightness": 100.0}}})

    def output(self, t: float) -> Look:
        if t >= self.t1 or self.t1 <= self.t0:
            return self.target
        return _mix(self.start, self.target, (t - self.t0) / (self.t1 - self.t0))

    def command(self, now: float, changes: Mapping[str, Any], duration_ms: int) -> None:
        """Stop where it is, then fade to the new target."""
        current = self.output(now)
        on = bool(changes.get("on", self.target.on))
        brightness = float(changes.get("brightness", self.target.brightness))
        mirek, xy = self.target.mirek, self.target.xy
        if "mirek" in changes:
            mirek, xy = int(changes["mirek"]), None
        if "xy" in changes:
            mirek, xy = None, changes["xy"]
        self.start = current if current.on else replace(current, brightness=0.0)
        self.target = Look(on, brightness, mirek, xy)
        self.t0, self.t1 = now, now + duration_ms / 1000

    def light_json(self) -> dict[str, Any]:
        spec, look = self.spec, self.target
        obj: dict[str, Any] = {
            "id": self.light_id, "id_v1": f"/lights/{spec.v1_id}",
            "owner": {"rid": self.device_id, "rtype": "device"},
            "metadata": {"name": spec.name, "archetype": "sultan_bulb", "function": "mixed"},
            "product_data": {"function": "mixed"},
            "identify": {},
            "on": {"on": look.on},
            "dimming": {"brightness": round(look.brightness, 2),
                        "min_dim_level": spec.min_dim_level},
            "dynamics": {"status": "none", "status_values": ["none"], "speed": 0.0,
                         "speed_valid": False},
            "alert": {"action_values": ["breathe"]},
            "mode": "normal",
            "powerup": self.powerup,
            "type": "light",
        }
        if spec.mirek_range is not None:
            low, high = spec.mirek_range
            obj["color_temperature"] = {
                "mirek": look.mirek if look.xy is None else None,
                "mirek_valid": look.xy is None and look.mirek is not None,
                "mirek_schema": {"mirek_minimum": low, "mirek_maximum": high}}
        if spec.gamut is not None:
            xy = look.xy if look.xy is not None else (
                units.mireds_to_xy(look.mirek) if look.mirek is not None else spec.xy)
            (rx, ry), (gx, gy), (bx, by) = spec.gamut
            obj["color"] = {"xy": {"x": round(xy[0], 4), "y": round(xy[1], 4)},
                            "gamut": {"red": {"x": rx, "y": ry}, "green": {"x": gx, "y": gy},
                                      "blue": {"x": bx, "y": by}},
                            "gamut_type": "C"}
        return obj

    def device_json(self) -> dict[str, Any]:
        spec = self.spec
        return {"id": self.device_id, "id_v1": f"/lights/{spec.v1_id}",
                "product_data": {"model_id": spec.model_id,
                                 "manufacturer_name": "Signify Netherlands B.V.",
                                 "product_name": spec.product_name,
                                 "product_archetype": "sultan_bulb", "certified": True,
                                 "software_version": "1.104.2"},
                "metadata": {"name": spec.name, "archetype": "sultan_bulb"},
                "identify": {},
                "services": [{"rid": self.light_id, "rtype": "light"},
                             {"rid": self.zigbee_id, "rtype": "zigbee_connectivity"}],
                "type": "device"}

    def zigbee_json(self) -> dict[str, Any]:
        return {"id": self.zigbee_id, "id_v1": f"/lights/{self.spec.v1_id}",
                "owner": {"rid": self.device_id, "rtype": "device"},
                "status": "connected" if self.reachable else "connectivity_issue",
                "mac_address": f"00:17:88:01:00:00:00:{int(self.spec.v1_id) % 256:02x}",
                "type": "zigbee_connectivity"}


def _new_lamp(spec: LampSpec) -> _Lamp:
    mirek = spec.mirek if spec.mirek_range is not None else None
    xy = None if mirek is not None or spec.gamut is None else spec.xy
    look = Look(spec.on, spec.brightness, mirek, xy)
    return _Lamp(spec, _uuid("light", spec.v1_id), _uuid("device", spec.v1_id),
                 _uuid("zigbee", spec.v1_id), look, look, reachable=spec.reachable)


# --- the record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: Any
    arrival_s: float  # time.monotonic()
    clock_s: float  # the emulator's clock
    status: int | None  # None: never answered
    response: Any = None

    @property
    def resource(self) -> tuple[str, str] | None:
        """(type, id) of a ``/clip/v2/resource/{type}/{id}`` request."""
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["clip", "v2", "resource"]:
            return parts[3], parts[4]
        return None


class EmulatorError(RuntimeError):
    """The emulator itself failed while answering (a bug here, not in the client)."""


@dataclass
class _Window:
    per_s: float | None
    accepted: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        if self.per_s is None:
            return True
        while self.accepted and self.accepted[0] <= now - 1.0:
            self.accepted.popleft()
        if len(self.accepted) >= self.per_s:
            return False
        self.accepted.append(now)
        return True


def _errors(status: int, *descriptions: str) -> tuple[int, dict[str, Any]]:
    return status, {"data": [], "errors": [{"description": d} for d in descriptions]}


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- the bridge -------------------------------------------------------------------------------


class HueV2BridgeEmulator:
    """A Hue bridge with API v2 on 127.0.0.1 over HTTPS; start/stop or use ``with``."""

    def __init__(
        self,
        certificate: BridgeCertificate,
        lamps: Iterable[LampSpec] | None = None,
        areas: Iterable[AreaSpec] | None = None,
        *,
        app_keys: Iterable[str] = (DEFAULT_APP_KEY,),
        clock: Callable[[], float] = time.monotonic,
        bridge_id: str = DEFAULT_BRIDGE_ID,
        light_commands_per_s: float | None = 10,
        group_commands_per_s: float | None = 1,
        event_batch_s: float = 0.25,
    ) -> None:
        if lamps is None and areas is None:
            lamps, areas = therapy_room()
        self._certificate = certificate
        self._lamps = {spec.v1_id: _new_lamp(spec) for spec in lamps or ()}
        self._areas = list(areas or ())
        self._keys = set(app_keys)
        self._clock = clock
        self._bridge_id = bridge_id
        self._light_window = _Window(light_commands_per_s)
        self._group_window = _Window(group_commands_per_s)
        self._batch_s = event_batch_s
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._pending: list[dict[str, Any]] = []  # events not yet sent
        self._event_seq = 0
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._stream_connects: list[float] = []
        self._geofence: dict[str, dict[str, Any]] = {}
        self._link_until = float("-inf")
        self._hanging = False
        self._refuse_streams = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._release: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._port = 0

    # lifecycle

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,),
                                        name="hue-v2-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise EmulatorError("the Hue v2 emulator did not start")
        if self._errors:
            raise EmulatorError("the Hue v2 emulator did not start") from self._errors[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
        if self._errors:
            raise EmulatorError(f"the Hue v2 emulator failed {len(self._errors)} time(s)"
                                ) from self._errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"{_HOST}:{self._port}"

    @property
    def bridge_id(self) -> str:
        return self._bridge_id

    @property
    def certificate(self) -> BridgeCertificate:
        return self._certificate

    # what tests look at

    def light_id(self, v1_id: str) -> str:
        """The v2 id (a UUID) of the lamp with this v1 id."""
        return self._lamps[v1_id].light_id

    def area_id(self, v1_id: str) -> str:
        area = next(a for a in self._areas if a.v1_id == v1_id)
        return _uuid(area.kind, v1_id)

    def grouped_light_id(self, area_v1_id: str) -> str:
        return _uuid("grouped_light", area_v1_id)

    def output(self, v1_id: str, at: float | None = None) -> Look:
        """What the lamp shows at ``at`` (default now), mid-fade interpolated."""
        with self._lock:
            return self._lamps[v1_id].output(self._clock() if at is None else at)

    def reported(self, v1_id: str) -> dict[str, Any]:
        """The light resource as the API reports it."""
        with self._lock:
            return self._lamps[v1_id].light_json()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def light_puts(self, v1_id: str | None = None) -> list[RecordedRequest]:
        """Light PUTs the bridge carried out (not those answered 429 or with an error)."""
        wanted = None if v1_id is None else self.light_id(v1_id)
        return [r for r in self.requests if r.method == "PUT" and r.status == 200
                and (res := r.resource) is not None and res[0] == "light"
                and (wanted is None or res[1] == wanted)]

    def group_puts(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "PUT" and r.status == 200
                and (res := r.resource) is not None and res[0] == "grouped_light"]

    @property
    def stream_connects(self) -> list[float]:
        """When (time.monotonic) each event-stream connection was opened."""
        with self._lock:
            return list(self._stream_connects)

    def full_reads(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "GET"
                and r.path.split("?")[0].rstrip("/") == "/clip/v2/resource"]

    def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout_s: float,
                 after: int = 0) -> RecordedRequest | None:
        deadline = time.monotonic() + timeout_s
        with self._recorded:
            index = after
            while True:
                while index < len(self._requests):
                    if predicate(self._requests[index]):
                        return self._requests[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._recorded.wait(remaining)

    # what tests do

    def press_link_button(self) -> None:
        with self._lock:
            self._link_until = time.monotonic() + LINK_BUTTON_WINDOW_S

    def change_light(self, v1_id: str, *, on: bool | None = None,
                     brightness: float | None = None, mirek: int | None = None,
                     xy: units.XY | None = None, duration_ms: int = 400) -> None:
        """Change a lamp as the Hue app, a wall switch or an automation would."""
        changes: dict[str, Any] = {}
        for key, value in (("on", on), ("brightness", brightness), ("mirek", mirek),
                           ("xy", xy)):
            if value is not None:
                changes[key] = value
        with self._lock:
            lamp = self._lamps[v1_id]
            lamp.command(self._clock(), changes, duration_ms)
            self._queue_update(lamp)

    def set_reachable(self, v1_id: str, reachable: bool) -> None:
        """A lamp switched off (or on again) at the wall. Back on, it shows its power-on look."""
        with self._lock:
            lamp = self._lamps[v1_id]
            lamp.reachable = reachable
            self._queue("update", [{"id": lamp.zigbee_id, "id_v1": f"/lights/{v1_id}",
                                    "owner": {"rid": lamp.device_id, "rtype": "device"},
                                    "status": "connected" if reachable else "connectivity_issue",
                                    "type": "zigbee_connectivity"}])
            if reachable:
                power = lamp.powerup
                bri = power.get("dimming", {}).get("dimming", {}).get("brightness", 100.0)
                mirek = power.get("color", {}).get("color_temperature", {}).get("mirek", 366)
                if lamp.spec.mirek_range is None:
                    mirek = None
                lamp.start = lamp.target = Look(True, float(bri), mirek, None)
                lamp.t0 = lamp.t1 = self._clock()
                self._queue_update(lamp)

    def drop_stream(self, refuse_for_s: float = 0.0) -> None:
        """Close every event-stream connection (and refuse new ones for a while)."""
        loop = self._loop
        assert loop is not None
        with self._lock:
            self._refuse_streams = refuse_for_s > 0
        loop.call_soon_threadsafe(self._close_streams)
        if refuse_for_s > 0:
            threading.Timer(refuse_for_s, self._accept_streams).start()

    def go_down(self) -> None:
        """Refuse connections (nothing listens on the port) until `come_back`."""
        loop = self._loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(self._unlisten(), loop).result(10)

    def hang(self) -> None:
        """Accept requests but never answer them (the event stream goes quiet too)."""
        with self._lock:
            self._hanging = True

    def come_back(self) -> None:
        """Answer again after `hang` (hung requests are dropped) or `go_down`."""
        with self._lock:
            self._hanging = False
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(self._unhang)
        if self._site is None:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)

    # serving (the emulator's own thread and loop)

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._begin())
        except BaseException as exc:
            self._errors.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    async def _begin(self) -> None:
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._record_middleware])
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_events())

    async def _listen(self) -> None:
        assert self._runner is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, self._port))
        self._port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock,
                                  ssl_context=self._certificate.server_context())
        await self._site.start()

    async def _unlisten(self) -> None:
        self._close_streams()
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def _shutdown(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self._close_streams()
        self._unhang()
        if self._runner is not None:
            await self._runner.cleanup()
        # Let closing connections finish before the loop stops (no unclosed transports).
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0.01)

    def _unhang(self) -> None:
        if self._release is not None:
            self._release.set()
            self._release = asyncio.Event()

    def _close_streams(self) -> None:
        for stream in list(self._streams):
            stream.put_nowait(None)

    def _accept_streams(self) -> None:
        with self._lock:
            self._refuse_streams = False

    @web.middleware
    async def _record_middleware(self, request: web.Request,
                                 handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            logger.exception("Hue v2 emulator failed answering %s %s", request.method,
                             request.path)
            self._errors.append(exc)
            raise

    async def _route(self, request: web.Request) -> web.StreamResponse:
        arrival = time.monotonic()
        raw = await request.read()
        body: Any = None
        parsed = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, parsed = raw.decode("utf-8", "replace"), False
        path = request.path
        with self._lock:
            hanging, now = self._hanging, self._clock()
        if hanging:
            with self._lock:
                self._requests.append(RecordedRequest(request.method, path, body, arrival, now,
                                                      None))
                self._recorded.notify_all()
            release = self._release
            assert release is not None
            await release.wait()
            raise ConnectionResetError("dropped unanswered")
        if path == "/eventstream/clip/v2" and request.method == "GET":
            return await self._stream(request, arrival)
        with self._lock:
            now = self._clock()
            status, answer = self._answer(request, path, body, parsed, now)
            self._requests.append(RecordedRequest(request.method, path, body, arrival, now,
                                                  status, answer))
            self._recorded.notify_all()
        return web.json_response(answer, status=status)

    async def _stream(self, request: web.Request, arrival: float) -> web.StreamResponse:
        with self._lock:
            known = request.headers.get("hue-application-key") in self._keys
            refused = self._refuse_streams
            self._requests.append(RecordedRequest("GET", request.path, None, arrival,
                                                  self._clock(), 403 if not known else 200))
            self._recorded.notify_all()
        if not known:
            return web.json_response({"errors": [{"description": "unauthorized user"}],
                                      "data": []}, status=403)
        if refused:
            return web.json_response({"errors": [{"description": "service unavailable"}],
                                      "data": []}, status=503)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.add(queue)  # before anything is awaited: a drop now reaches it too
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        with self._lock:
            self._stream_connects.append(time.monotonic())
        try:
            await response.prepare(request)
            await response.write(b": hi\n\n")
            while (chunk := await queue.get()) is not None:
                await response.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def _flush_events(self) -> None:
        while True:
            await asyncio.sleep(self._batch_s)
            with self._lock:
                if self._hanging or not self._pending:
                    continue  # a hung bridge sends nothing; what happened goes out later
                events, self._pending = self._pending, []
            self._event_seq += 1
            chunk = (f"id: {int(time.time())}:{self._event_seq}\n"
                     f"data: {json.dumps(events)}\n\n").encode()
            for stream in list(self._streams):
                stream.put_nowait(chunk)

    # the API (with the lock held)

    def _queue(self, kind: str, data: list[dict[str, Any]]) -> None:
        self._pending.append({"creationtime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "data": data, "id": str(uuid.uuid4()), "type": kind})

    def _queue_update(self, lamp: _Lamp) -> None:
        full = lamp.light_json()
        partial: dict[str, Any] = {k: full[k] for k in ("id", "id_v1", "owner", "on", "dimming",
                                        "color_temperature", "color", "type") if k in full}
        if "color" in partial:
            partial["color"] = {"xy": full["color"]["xy"]}
        if "color_temperature" in partial:
            partial["color_temperature"] = {k: v for k, v in full["color_temperature"].items()
                                            if k != "mirek_schema"}
        self._queue("update", [partial])

    def _answer(self, request: web.Request, path: str, body: Any, parsed: bool, now: float
                ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["api"] and request.method == "POST":
            return 200, self._pair(body, parsed)
        if parts == ["api", "config"] and request.method == "GET":
            return 200, self._public_config()
        if parts[:3] != ["clip", "v2", "resource"]:
            return 404, {"errors": [{"description": "resource not found"}], "data": []}
        if request.headers.get("hue-application-key") not in self._keys:
            return _errors(403, "unauthorized user")
        rest = parts[3:]
        if request.method == "GET":
            return self._get(rest)
        if request.method in ("PUT", "POST"):
            if not parsed or not isinstance(body, dict):
                return _errors(400, "body is not valid JSON")
            if request.method == "POST" and rest == ["geofence_client"]:
                return self._geofence_post(body)
            if request.method == "PUT" and len(rest) == 2:
                kind, rid = rest
                if kind == "light":
                    return self._put_light(rid, body, now)
                if kind == "grouped_light":
                    return self._put_group(rid, body, now)
                if kind == "geofence_client" and rid in self._geofence:
                    self._geofence[rid].update(name=str(body.get("name", "")))
                    self._queue("update", [dict(self._geofence[rid])])
                    return 200, {"data": [{"rid": rid, "rtype": kind}], "errors": []}
        return _errors(405, f"method, {request.method}, not available for resource")

    def _pair(self, body: Any, parsed: bool) -> list[dict[str, Any]]:
        if not parsed or not isinstance(body, dict) or not isinstance(body.get("devicetype"),
                                                                      str):
            return [{"error": {"type": 5, "address": "/",
                               "description": "invalid/missing parameters in body"}}]
        if time.monotonic() > self._link_until:
            return [{"error": {"type": 101, "address": "",
                               "description": "link button not pressed"}}]
        key = secrets.token_hex(20)
        self._keys.add(key)
        success: dict[str, Any] = {"username": key}
        if body.get("generateclientkey") is True:
            success["clientkey"] = secrets.token_hex(16).upper()
        return [{"success": success}]

    def _public_config(self) -> dict[str, Any]:
        return {"name": "Hue Bridge", "datastoreversion": "172", "swversion": "1970084010",
                "apiversion": "1.70.0", "mac": "00:17:88:00:00:01",
                "bridgeid": self._bridge_id.upper(), "factorynew": False,
                "replacesbridgeid": None, "modelid": "BSB002", "starterkitid": ""}

    def _resources(self) -> list[dict[str, Any]]:
        bridge_device, bridge = _uuid("device", "bridge"), _uuid("bridge")
        out: list[dict[str, Any]] = [
            {"id": bridge_device, "product_data": {
                "model_id": "BSB002", "manufacturer_name": "Signify Netherlands B.V.",
                "product_name": "Hue Bridge", "product_archetype": "bridge_v2",
                "certified": True, "software_version": "1.70.1970084010"},
             "metadata": {"name": "Hue Bridge", "archetype": "bridge_v2"}, "identify": {},
             "services": [{"rid": bridge, "rtype": "bridge"}], "type": "device"},
            {"id": bridge, "owner": {"rid": bridge_device, "rtype": "device"},
             "bridge_id": self._bridge_id, "time_zone": {"time_zone": "Europe/Amsterdam"},
             "type": "bridge"},
        ]
        for lamp in self._lamps.values():
            out += [lamp.device_json(), lamp.light_json(), lamp.zigbee_json()]
        for area in self._areas:
            out += self._area_json(area)
        out += [dict(g) for g in self._geofence.values()]
        return out

    def _area_json(self, area: AreaSpec) -> list[dict[str, Any]]:
        area_id, group_id = _uuid(area.kind, area.v1_id), _uuid("grouped_light", area.v1_id)
        lamps = [self._lamps[i] for i in area.lamps if i in self._lamps]
        if area.kind == "room":
            children = [{"rid": lamp.device_id, "rtype": "device"} for lamp in lamps]
        else:
            children = [{"rid": lamp.light_id, "rtype": "light"} for lamp in lamps]
        on = [lamp.target for lamp in lamps if lamp.target.on]
        return [
            {"id": area_id, "id_v1": f"/groups/{area.v1_id}", "children": children,
             "services": [{"rid": group_id, "rtype": "grouped_light"}],
             "metadata": {"name": area.name, "archetype": "living_room"}, "type": area.kind},
            {"id": group_id, "id_v1": f"/groups/{area.v1_id}",
             "owner": {"rid": area_id, "rtype": area.kind}, "on": {"on": bool(on)},
             "dimming": {"brightness": round(sum(t.brightness for t in on) / len(on), 2)
                         if on else 0.0},
             "type": "grouped_light"},
        ]

    def _get(self, rest: list[str]) -> tuple[int, Any]:
        resources = self._resources()
        if rest:
            resources = [r for r in resources if r["type"] == rest[0]]
        if len(rest) == 2:
            resources = [r for r in resources if r["id"] == rest[1]]
            if not resources:
                return _errors(404, "Not Found")
        if len(rest) > 2:
            return _errors(404, "Not Found")
        return 200, {"errors": [], "data": resources}

    def _geofence_post(self, body: Mapping[str, Any]) -> tuple[int, Any]:
        rid = str(uuid.uuid4())
        self._geofence[rid] = {"id": rid, "name": str(body.get("name", "")),
                               "type": "geofence_client"}
        self._queue("add", [dict(self._geofence[rid])])
        return 200, {"data": [{"rid": rid, "rtype": "geofence_client"}], "errors": []}

    def _validate(self, body: Mapping[str, Any], lamp: _Lamp | None
                  ) -> tuple[list[str], dict[str, Any], int]:
        """Errors, the changes, and the duration (ms) of a light or grouped_light body."""
        errors: list[str] = []
        changes: dict[str, Any] = {}
        duration_ms = 400  # the bridge's default transition
        allowed = {"on", "dimming", "color_temperature", "color", "dynamics", "powerup",
                   "alert", "identify"}
        for key in body:
            if key not in allowed:
                errors.append(f"body ({key}) is invalid: unknown attribute")

        def section(name: str) -> Mapping[str, Any] | None:
            value = body.get(name)
            if value is None:
                return None
            if not isinstance(value, dict):
                errors.append(f"body ({name}) is invalid: expected an object")
                return None
            return value

        if (on := section("on")) is not None:
            if not isinstance(on.get("on"), bool):
                errors.append(f"body (on.on) is invalid: {on.get('on')!r} is not a boolean")
            else:
                changes["on"] = on["on"]
        if (dimming := section("dimming")) is not None:
            bri = dimming.get("brightness")
            if not _number(bri):
                errors.append(f"body (dimming.brightness) is invalid: {bri!r} is not a number")
            elif float(bri) > 100:
                errors.append(f"body (dimming.brightness) is invalid: {bri} is greater than "
                              "the maximum of 100")
            elif float(bri) < 0:
                errors.append(f"body (dimming.brightness) is invalid: {bri} is less than the "
                              "minimum of 0")
            else:
                floor = lamp.spec.min_dim_level if lamp is not None else 0.0
                changes["brightness"] = max(float(bri), floor)
        if (ct := section("color_temperature")) is not None:
            mirek = ct.get("mirek")
            low, high = (lamp.spec.mirek_range or (153, 500)) if lamp is not None else (153, 500)
            if lamp is not None and lamp.spec.mirek_range is None:
                errors.append("body (color_temperature) is invalid: device does not support it")
            elif not isinstance(mirek, int) or isinstance(mirek, bool):
                errors.append(f"body (color_temperature.mirek) is invalid: {mirek!r} is not an "
                              "integer")
            elif not low <= mirek <= high:
                errors.append(f"body (color_temperature.mirek) is invalid: {mirek} is not in "
                              f"{low}-{high}")
            else:
                changes["mirek"] = mirek
        if (color := section("color")) is not None:
            xy = color.get("xy")
            if lamp is not None and lamp.spec.gamut is None:
                errors.append("body (color) is invalid: device does not support it")
            elif not (isinstance(xy, dict) and _number(xy.get("x")) and _number(xy.get("y"))
                      and 0 <= xy["x"] <= 1 and 0 <= xy["y"] <= 1):
                errors.append(f"body (color.xy) is invalid: {xy!r}")
            else:
                point = (float(xy["x"]), float(xy["y"]))
                gamut = lamp.spec.gamut if lamp is not None and lamp.spec.gamut else GAMUT_C
                changes["xy"] = units.clamp_xy_to_gamut(point, gamut)
        if (dynamics := section("dynamics")) is not None:
            duration = dynamics.get("duration")
            if duration is not None:
                if not isinstance(duration, int) or isinstance(duration, bool) or not (
                        0 <= duration <= MAX_DURATION_MS):
                    errors.append(f"body (dynamics.duration) is invalid: {duration!r} is not "
                                  f"an integer in 0-{MAX_DURATION_MS}")
                else:
                    duration_ms = duration
        if (power := section("powerup")) is not None:
            if power.get("preset") not in ("safety", "powerfail", "last_on_state", "custom"):
                errors.append(f"body (powerup.preset) is invalid: {power.get('preset')!r}")
            else:
                changes["powerup"] = dict(power)
        return errors, changes, duration_ms

    def _put_light(self, rid: str, body: Mapping[str, Any], now: float) -> tuple[int, Any]:
        lamp = next((lamp for lamp in self._lamps.values() if lamp.light_id == rid), None)
        if lamp is None:
            return _errors(404, "Not Found")
        if not self._light_window.admit(now):
            return _errors(429, "Too many requests")
        errors, changes, duration_ms = self._validate(body, lamp)
        if errors:
            return 400, {"data": [], "errors": [{"description": e} for e in errors]}
        done = {"data": [{"rid": rid, "rtype": "light"}], "errors": []}
        if not lamp.reachable:
            done["errors"] = [{"description": "device (light) has communication issues, "
                                              "command (.on.on) may not have effect"}]
            return 207, done
        self._apply(lamp, changes, duration_ms, now)
        return 200, done

    def _apply(self, lamp: _Lamp, changes: dict[str, Any], duration_ms: int, now: float) -> None:
        power = changes.pop("powerup", None)
        if power is not None:
            lamp.powerup = {"configured": True, **power}
        if changes:
            lamp.command(now, changes, duration_ms)
            self._queue_update(lamp)

    def _put_group(self, rid: str, body: Mapping[str, Any], now: float) -> tuple[int, Any]:
        area = next((a for a in self._areas if _uuid("grouped_light", a.v1_id) == rid), None)
        if area is None:
            return _errors(404, "Not Found")
        if not self._group_window.admit(now):
            return _errors(429, "Too many requests")
        errors, changes, duration_ms = self._validate(body, None)
        if errors:
            return 400, {"data": [], "errors": [{"description": e} for e in errors]}
        for v1_id in area.lamps:
            lamp = self._lamps.get(v1_id)
            if lamp is None or not lamp.reachable:
                continue
            own = dict(changes)
            # Each lamp takes what it can, as the bridge does with a group command.
            if lamp.spec.mirek_range is None:
                own.pop("mirek", None)
            elif "mirek" in own:
                low, high = lamp.spec.mirek_range
                own["mirek"] = min(high, max(low, own["mirek"]))
            if lamp.spec.gamut is None:
                own.pop("xy", None)
            elif "xy" in own:
                own["xy"] = units.clamp_xy_to_gamut(own["xy"], lamp.spec.gamut)
            if "brightness" in own:
                own["brightness"] = max(own["brightness"], lamp.spec.min_dim_level)
            self._apply(lamp, own, duration_ms, now)
        return 200, {"data": [{"rid": rid, "rtype": "grouped_light"}], "errors": []}


def most_in_a_second(times: list[float]) -> int:
    """The most requests (by arrival ``times``) in any half-open one-second window."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
