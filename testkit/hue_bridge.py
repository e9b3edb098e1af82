"""A Philips Hue bridge (API v1) on 127.0.0.1, for tests and benchmarks of the `hue` driver.

It is a real HTTP server speaking the part of the v1 API that phue and roomctl use: pairing
(`POST /api`, link button), reading lights, groups and config, and changing light states and
group actions, answered with Hue's success/error lists. Lights fade in time like real bulbs
(a state read mid-fade is interpolated; a new command stops a fade where it is), every
request is recorded with its arrival time, and faults can be switched on: down (refused
connections), hanging (accepts, never answers), rate limits (HTTP 503), failing every request
(an HTTP status) and resetting connections.

Modes: HTTPS with a certificate made at test time (``certificate=``, see `testkit.bridge_tls`;
`present` swaps it, as a replaced bridge or an impostor would), and ``names_only``: ``GET
/lights`` and ``GET /groups`` answer with names only, as early v1 firmware and some clones do
(the per-resource endpoints still answer in full).

    with HueBridgeEmulator() as bridge:
        bridge.host            # "127.0.0.1:PORT", what phue's Bridge takes as ip
        bridge.light_state("1")
        bridge.light_puts()
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from roomctl import units
from testkit.bridge_tls import DEFAULT_BRIDGE_ID, BridgeCertificate

logger = logging.getLogger(__name__)

GAMUT_C: units.Gamut = ((0.6915, 0.3083), (0.17, 0.7), (0.1532, 0.0475))
DEFAULT_USER = "roomctl-test-user"
DEFAULT_TRANSITION_DS = 4
LINK_BUTTON_WINDOW_S = 30.0
_HOST = "127.0.0.1"
RESET = -1  # the "status" of a request answered with a connection reset


# --- lights and groups ------------------------------------------------------------------------


@dataclass(frozen=True)
class LightSpec:
    """One emulated bulb: what it is (capabilities) and how it starts."""

    name: str
    type: str = "Extended color light"
    productname: str = "Hue color lamp"
    modelid: str = "LCA001"
    ct_range: tuple[int, int] | None = (153, 500)
    gamut: units.Gamut | None = GAMUT_C
    gamut_type: str | None = "C"
    on: bool = True
    bri: int = 200
    ct: int = 366
    xy: units.XY = (0.4573, 0.41)
    reachable: bool = True
    capabilities: bool = True  # False: an old bulb whose API object has no "capabilities"
    # "" : a clone whose API object has no "type" either (with no ct range and no gamut, its
    # state carries no colour fields: nothing says what it can show)


def color_lamp(name: str, **changes: Any) -> LightSpec:
    """A "Hue color lamp": extended colour light, ct 153-500 mireds, gamut C."""
    return replace(LightSpec(name=name), **changes)


def white_ambiance(name: str, **changes: Any) -> LightSpec:
    """A "Hue white ambiance" bulb: colour temperature 153-454 mireds, no colour."""
    spec = LightSpec(name=name, type="Color temperature light", productname="Hue white ambiance",
                     modelid="LTA001", ct_range=(153, 454), gamut=None, gamut_type=None)
    return replace(spec, **changes)


def white_lamp(name: str, **changes: Any) -> LightSpec:
    """A "Hue white lamp": brightness only."""
    spec = LightSpec(name=name, type="Dimmable light", productname="Hue white lamp",
                     modelid="LWA001", ct_range=None, gamut=None, gamut_type=None)
    return replace(spec, **changes)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    lights: tuple[str, ...]
    type: str = "Room"


def therapy_room() -> tuple[dict[str, LightSpec], dict[str, GroupSpec]]:
    """Four bulbs (two colour, two white ambiance) in one room group "1"."""
    lights = {
        "1": color_lamp("Couch lamp"),
        "2": color_lamp("Window lamp"),
        "3": white_ambiance("Ceiling"),
        "4": white_ambiance("Reading lamp"),
    }
    return lights, {"1": GroupSpec("Therapy room", ("1", "2", "3", "4"))}


@dataclass(frozen=True)
class _Look:
    on: bool
    bri: float
    ct: float | None
    xy: units.XY | None
    colormode: str | None


def _blend(a: _Look, b: _Look, f: float) -> _Look:
    def mix(x: float | None, y: float | None) -> float | None:
        if x is None or y is None:
            return y
        return x + (y - x) * f

    xy = b.xy
    if a.xy is not None and b.xy is not None:
        xy = (a.xy[0] + (b.xy[0] - a.xy[0]) * f, a.xy[1] + (b.xy[1] - a.xy[1]) * f)
    bri = mix(a.bri, b.bri)
    return _Look(b.on, b.bri if bri is None else bri, mix(a.ct, b.ct), xy, b.colormode)


@dataclass
class _Light:
    spec: LightSpec
    start: _Look
    target: _Look
    t0: float = 0.0
    t1: float = 0.0
    reachable: bool = True

    def look_at(self, t: float) -> _Look:
        if t >= self.t1 or self.t1 <= self.t0:
            return self.target
        return _blend(self.start, self.target, (t - self.t0) / (self.t1 - self.t0))

    def change(self, now: float, changes: Mapping[str, Any], transition_ds: int) -> None:
        """A command at ``now``: stop any fade where it is, then fade to the new state."""
        current = self.look_at(now)
        start = current
        on = bool(changes.get("on", current.on))
        if on and not current.on:
            start = replace(current, on=True, bri=1.0)  # a bulb switched on fades up from dark
        ct, xy, mode = current.ct, current.xy, current.colormode
        if "ct" in changes:
            ct, mode = float(changes["ct"]), "ct"
            if self.spec.gamut is not None:
                xy = units.mireds_to_xy(ct)
        if "xy" in changes:
            xy, mode = units.clamp_xy_to_gamut(changes["xy"], self.spec.gamut or GAMUT_C), "xy"
        bri = float(changes.get("bri", current.bri))
        self.start, self.target = start, _Look(on, bri, ct, xy, mode)
        self.t0, self.t1 = now, now + transition_ds / 10
        if not on:
            # Modelled as immediate: roomctl never fades to off (it fades to bri 1 first).
            self.start, self.t1 = self.target, now

    def api_state(self, t: float) -> dict[str, Any]:
        look = self.look_at(t)
        state: dict[str, Any] = {"on": look.on, "bri": max(1, min(254, round(look.bri)))}
        if self.spec.ct_range is not None:
            state["ct"] = round(look.ct) if look.ct is not None else self.spec.ct
        if self.spec.gamut is not None:
            xy = look.xy or self.spec.xy
            state["xy"] = [round(xy[0], 4), round(xy[1], 4)]
            state["hue"], state["sat"] = 8402, 140
        if self.spec.ct_range is not None or self.spec.gamut is not None:
            state["colormode"] = look.colormode or "ct"
        state.update(alert="none", mode="homeautomation", reachable=self.reachable)
        if self.spec.gamut is not None:
            state["effect"] = "none"
        return state

    def api_object(self, light_id: str, t: float) -> dict[str, Any]:
        spec = self.spec
        obj: dict[str, Any] = {
            "state": self.api_state(t),
            "name": spec.name,
            "modelid": spec.modelid,
            "manufacturername": "Signify Netherlands B.V.",
            "productname": spec.productname,
            "uniqueid": f"00:17:88:01:00:00:00:{int(light_id) % 256:02x}-0b",
            "swversion": "1.90.1",
        }
        if spec.type:  # some clones say nothing of what the light is
            obj["type"] = spec.type
        if spec.capabilities:
            control: dict[str, Any] = {"mindimlevel": 200, "maxlumen": 800}
            if spec.gamut is not None:
                control["colorgamuttype"] = spec.gamut_type
                control["colorgamut"] = [list(p) for p in spec.gamut]
            if spec.ct_range is not None:
                control["ct"] = {"min": spec.ct_range[0], "max": spec.ct_range[1]}
            obj["capabilities"] = {"certified": True, "control": control,
                                   "streaming": {"renderer": True, "proxy": True}}
        return obj


def _new_light(spec: LightSpec) -> _Light:
    mode = "ct" if spec.ct_range is not None else ("xy" if spec.gamut is not None else None)
    look = _Look(spec.on, float(spec.bri), float(spec.ct) if spec.ct_range else None,
                 spec.xy if spec.gamut else None, mode)
    return _Light(spec, look, look, reachable=spec.reachable)


# --- requests and the record ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the bridge saw it. ``status`` is None when it was never answered."""

    method: str
    path: str
    body: Any  # the parsed JSON body, the raw text if it was not JSON, None without a body
    arrival_s: float  # time.monotonic() when the request had been read
    clock_s: float  # the emulator's clock at arrival (differs from arrival_s on a virtual clock)
    status: int | None
    response: Any = None

    @property
    def light_id(self) -> str | None:
        parts = self.path.strip("/").split("/")
        if len(parts) >= 4 and parts[2] == "lights":
            return parts[3]
        return None

    @property
    def group_id(self) -> str | None:
        parts = self.path.strip("/").split("/")
        if len(parts) >= 4 and parts[2] == "groups":
            return parts[3]
        return None


class EmulatorError(RuntimeError):
    """The emulator itself failed while answering (a bug here, not in the client)."""


@dataclass
class _RateWindow:
    per_s: float | None = None
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


def _error(kind: int, address: str, description: str) -> dict[str, Any]:
    return {"error": {"type": kind, "address": address, "description": description}}


# --- the bridge -------------------------------------------------------------------------------


class HueBridgeEmulator:
    """A Hue v1 bridge on 127.0.0.1 (an ephemeral port); start/stop or use ``with``."""

    def __init__(
        self,
        lights: Mapping[str, LightSpec] | None = None,
        groups: Mapping[str, GroupSpec] | None = None,
        *,
        users: Iterable[str] = (DEFAULT_USER,),
        clock: Callable[[], float] = time.monotonic,
        name: str = "Philips hue",
        certificate: BridgeCertificate | None = None,
        names_only: bool = False,
        bridge_id: str = DEFAULT_BRIDGE_ID,
        modelid: str = "BSB002",
    ) -> None:
        if lights is None and groups is None:
            lights, groups = therapy_room()
        self._lights = {lid: _new_light(spec) for lid, spec in (lights or {}).items()}
        self._groups = dict(groups or {})
        self._users = set(users)
        self._clock = clock
        self._name = name
        self._certificate = certificate
        self._names_only = names_only
        self._bridge_id = bridge_id
        self._modelid = modelid
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._link_until = float("-inf")
        self._light_window = _RateWindow()
        self._group_window = _RateWindow()
        self._hanging = False
        self._failing: int | None = None  # answer every request with this HTTP status
        self._resetting = False  # reset every connection instead of answering
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # lifecycle

    def start(self) -> Self:
        self._listen()
        return self

    def stop(self) -> None:
        """Stop serving; raises `EmulatorError` if answering any request crashed."""
        self._release.set()
        self._close_listener()
        if self._errors:
            raise EmulatorError(f"the Hue emulator failed {len(self._errors)} time(s)"
                                ) from self._errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what phue's ``Bridge(ip=...)`` and roomctl's config take."""
        return f"{_HOST}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def bridge_id(self) -> str:
        return self._bridge_id

    @property
    def certificate(self) -> BridgeCertificate | None:
        """What the bridge presents now (None: plain HTTP)."""
        return self._certificate

    def present(self, certificate: BridgeCertificate) -> None:
        """From now on present ``certificate`` (same address and port)."""
        self._close_listener()
        self._certificate = certificate
        self._listen()

    # faults

    def go_down(self) -> None:
        """Refuse connections (the listening socket is closed) until `come_back`."""
        self._close_listener()

    def hang(self) -> None:
        """Accept connections and read requests but never answer, until `come_back`."""
        with self._lock:
            self._hanging = True
            self._release = threading.Event()

    def fail_all(self, status: int = 503) -> None:
        """Answer every request with HTTP ``status`` (a bridge that is busy or broken), until
        `come_back`."""
        with self._lock:
            self._failing = status

    def reset_connections(self) -> None:
        """Reset every connection (TCP RST) instead of answering, until `come_back`."""
        with self._lock:
            self._resetting = True

    def come_back(self) -> None:
        """Answer normally again (hung requests are dropped unanswered)."""
        with self._lock:
            self._hanging = False
            self._failing = None
            self._resetting = False
            self._release.set()
        if self._server is None:
            self._listen()

    def set_rate_limit(self, light_puts_per_s: float | None,
                       group_puts_per_s: float | None) -> None:
        """Answer HTTP 503 to light state / group action PUTs beyond these counts in any second
        (None: no limit)."""
        with self._lock:
            self._light_window = _RateWindow(light_puts_per_s)
            self._group_window = _RateWindow(group_puts_per_s)

    def press_link_button(self) -> None:
        """Pairing (``POST /api``) succeeds for the next 30 s."""
        with self._lock:
            self._link_until = time.monotonic() + LINK_BUTTON_WINDOW_S

    def set_reachable(self, light_id: str, reachable: bool) -> None:
        with self._lock:
            self._lights[light_id].reachable = reachable

    def add_user(self, username: str) -> None:
        with self._lock:
            self._users.add(username)

    # what tests read

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def light_puts(self, light_id: str | None = None) -> list[RecordedRequest]:
        """Answered light-state PUTs (a 503 or an unanswered one is not a command)."""
        return [r for r in self.requests if r.method == "PUT" and r.status == 200
                and r.path.rstrip("/").endswith("/state") and r.light_id is not None
                and (light_id is None or r.light_id == light_id)]

    def group_puts(self, group_id: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "PUT" and r.status == 200
                and r.path.rstrip("/").endswith("/action") and r.group_id is not None
                and (group_id is None or r.group_id == group_id)]

    def light_state(self, light_id: str, at: float | None = None) -> dict[str, Any]:
        """The light's ``state`` object as the API reports it (interpolated mid-fade)."""
        with self._lock:
            return self._lights[light_id].api_state(self._clock() if at is None else at)

    def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout_s: float,
                 after: int = 0) -> RecordedRequest | None:
        """The first recorded request from index ``after`` on matching ``predicate``, waiting
        up to ``timeout_s`` for it."""
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

    # serving

    def _listen(self) -> None:
        for attempt in range(50):
            try:
                server = ThreadingHTTPServer((_HOST, self._port), _Handler)
                break
            except OSError:
                # Coming back on the same port right after going down: retry briefly.
                if self._port == 0 or attempt == 49:
                    raise
                time.sleep(0.02)
        server.daemon_threads = True
        if self._certificate is not None:
            # The handshake happens in the request's own thread (on its first read), so a
            # client that connects and stalls never blocks the listener.
            server.socket = self._certificate.server_context().wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False)
        server.emulator = self  # type: ignore[attr-defined]  # read back by _Handler
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server,),
                                        name=f"hue-emulator-{self._port}", daemon=True)
        self._thread.start()

    def _serve(self, server: ThreadingHTTPServer) -> None:
        try:
            server.serve_forever(poll_interval=0.02)
        except BaseException as exc:  # kept and re-raised by stop()
            logger.exception("Hue emulator stopped serving")
            with self._lock:
                self._errors.append(exc)

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _record(self, request: RecordedRequest) -> None:
        with self._recorded:
            self._requests.append(request)
            self._recorded.notify_all()

    def _answer(self, method: str, path: str, raw: bytes | None
                ) -> tuple[int | None, Any, threading.Event | None]:
        """(status, JSON answer, event to wait on before dropping the request unanswered)."""
        arrival = time.monotonic()
        body: Any = None
        parsed_ok = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, parsed_ok = raw.decode("utf-8", "replace"), False
        with self._lock:
            now = self._clock()
            if self._hanging:
                release = self._release
                self._requests.append(RecordedRequest(method, path, body, arrival, now, None))
                self._recorded.notify_all()
                return None, None, release
            if self._resetting or self._failing is not None:
                status = RESET if self._resetting else self._failing
                self._requests.append(RecordedRequest(method, path, body, arrival, now, status))
                self._recorded.notify_all()
                return status, None, None
            status, answer = self._route(method, path, body, parsed_ok, now)
            self._requests.append(RecordedRequest(method, path, body, arrival, now, status,
                                                  answer))
            self._recorded.notify_all()
            return status, answer, None

    # the API (called with the lock held)

    def _route(self, method: str, path: str, body: Any, parsed_ok: bool, now: float
               ) -> tuple[int, Any]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if not parts or parts[0] != "api":
            return 404, [_error(4, path, f"method, {method}, not available for resource, {path}")]
        rest = parts[1:]
        if method == "POST" and not rest:
            return 200, self._register(body, parsed_ok)
        if not rest:
            return 200, [_error(4, "/", f"method, {method}, not available for resource, /")]
        if rest == ["config"] and method == "GET":
            return 200, self._public_config()
        user, resource = rest[0], rest[1:]
        if user not in self._users:
            if resource == ["config"] and method == "GET":
                return 200, self._public_config()
            address = "/" + "/".join(resource)
            return 200, [_error(1, address, "unauthorized user")]
        address = "/" + "/".join(resource)
        if method == "GET":
            return self._get(resource, address, now)
        if method == "PUT":
            if not parsed_ok or not isinstance(body, dict):
                return 200, [_error(2, address, "body contains invalid json")]
            if len(resource) == 3 and resource[0] == "lights" and resource[2] == "state":
                return self._put_light(resource[1], body, now)
            if len(resource) == 3 and resource[0] == "groups" and resource[2] == "action":
                return self._put_group(resource[1], body, now)
        return 200, [_error(4, address,
                            f"method, {method}, not available for resource, {address}")]

    def _register(self, body: Any, parsed_ok: bool) -> list[dict[str, Any]]:
        if not parsed_ok or not isinstance(body, dict):
            return [_error(2, "/", "body contains invalid json")]
        if not isinstance(body.get("devicetype"), str):
            return [_error(5, "/", "invalid/missing parameters in body")]
        if time.monotonic() > self._link_until:
            return [_error(101, "", "link button not pressed")]
        username = secrets.token_hex(20)
        self._users.add(username)
        success: dict[str, Any] = {"username": username}
        if body.get("generateclientkey") is True:
            success["clientkey"] = secrets.token_hex(16).upper()
        return [{"success": success}]

    def _public_config(self) -> dict[str, Any]:
        return {"name": self._name, "datastoreversion": "126", "swversion": "1962097030",
                "apiversion": "1.62.0", "mac": "00:17:88:00:00:01",
                "bridgeid": self._bridge_id.upper(), "factorynew": False,
                "modelid": self._modelid}

    def _get(self, resource: list[str], address: str, now: float) -> tuple[int, Any]:
        if not resource:
            return 200, {"lights": self._lights_json(now), "groups": self._groups_json(now),
                         "config": self._config(), "schedules": {}, "scenes": {}, "rules": {},
                         "sensors": {}, "resourcelinks": {}}
        kind, ids = resource[0], resource[1:]
        if kind == "config" and not ids:
            return 200, self._config()
        if kind == "lights":
            if not ids:
                if self._names_only:
                    return 200, {lid: {"name": light.spec.name}
                                 for lid, light in self._lights.items()}
                return 200, self._lights_json(now)
            light = self._lights.get(ids[0])
            if light is None or len(ids) > 1:
                return 200, [_error(3, address, f"resource, {address}, not available")]
            return 200, light.api_object(ids[0], now)
        if kind == "groups":
            if not ids:
                if self._names_only:
                    return 200, {gid: {"name": group.name} for gid, group in self._groups.items()}
                return 200, self._groups_json(now)
            groups = self._groups_json(now)
            if ids[0] not in groups or len(ids) > 1:
                return 200, [_error(3, address, f"resource, {address}, not available")]
            return 200, groups[ids[0]]
        return 200, [_error(3, address, f"resource, {address}, not available")]

    def _config(self) -> dict[str, Any]:
        config = self._public_config()
        config.update(ipaddress=_HOST, netmask="255.255.255.0", gateway=_HOST, dhcp=False,
                      zigbeechannel=15, linkbutton=time.monotonic() <= self._link_until,
                      whitelist={u: {"name": "roomctl"} for u in sorted(self._users)})
        return config

    def _lights_json(self, now: float) -> dict[str, Any]:
        return {lid: light.api_object(lid, now) for lid, light in self._lights.items()}

    def _groups_json(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for gid, group in self._groups.items():
            members = [self._lights[lid] for lid in group.lights if lid in self._lights]
            states = [m.api_state(now) for m in members]
            action = dict(states[0]) if states else {"on": False}
            action.pop("reachable", None)
            action.pop("mode", None)
            out[gid] = {"name": group.name, "lights": list(group.lights), "sensors": [],
                        "type": group.type, "class": "Living room", "recycle": False,
                        "state": {"all_on": bool(states) and all(s["on"] for s in states),
                                  "any_on": any(s["on"] for s in states)},
                        "action": action}
        return out

    def _validate(self, body: Mapping[str, Any], prefix: str, light: _Light | None,
                  is_on: bool) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        """Hue's per-attribute answers, the accepted changes and the transition (ds)."""
        answers: list[dict[str, Any]] = []
        changes: dict[str, Any] = {}
        transition_ds = DEFAULT_TRANSITION_DS
        will_be_on = body["on"] if isinstance(body.get("on"), bool) else is_on

        def invalid(key: str, value: Any) -> None:
            answers.append(_error(7, f"{prefix}/{key}",
                                  f"invalid value, {value}, for parameter, {key}"))

        for key, value in body.items():
            address = f"{prefix}/{key}"
            ok_number = isinstance(value, int) and not isinstance(value, bool)
            if key == "on":
                if not isinstance(value, bool):
                    invalid(key, value)
                    continue
            elif key == "transitiontime":
                if not ok_number or not 0 <= value <= 65535:
                    invalid(key, value)
                    continue
                transition_ds = value
            elif key in ("bri", "ct", "xy"):
                if light is not None and (
                        (key == "ct" and light.spec.ct_range is None)
                        or (key == "xy" and light.spec.gamut is None)):
                    answers.append(_error(6, address, f"parameter, {key}, not available"))
                    continue
                if key == "bri" and (not ok_number or not 1 <= value <= 254):
                    invalid(key, value)
                    continue
                if key == "ct":
                    low, high = (light.spec.ct_range or (153, 500)) if light else (153, 500)
                    if not ok_number or not low <= value <= high:
                        invalid(key, value)
                        continue
                if key == "xy" and not (
                        isinstance(value, list) and len(value) == 2
                        and all(isinstance(v, int | float) and not isinstance(v, bool)
                                and 0 <= v <= 1 for v in value)):
                    invalid(key, value)
                    continue
                if not will_be_on and light is not None:
                    answers.append(_error(201, address, f"parameter, {key}, is not modifiable. "
                                                        "Device is set to off."))
                    continue
                if key == "xy":
                    value = (float(value[0]), float(value[1]))
            elif key == "alert":
                if value not in ("none", "select", "lselect"):
                    invalid(key, value)
                    continue
            else:
                answers.append(_error(6, address, f"parameter, {key}, not available"))
                continue
            changes[key] = value
            answers.append({"success": {address: list(value) if key == "xy" else value}})
        changes.pop("transitiontime", None)
        changes.pop("alert", None)
        return answers, changes, transition_ds

    def _put_light(self, light_id: str, body: Mapping[str, Any], now: float
                   ) -> tuple[int, Any]:
        prefix = f"/lights/{light_id}/state"
        light = self._lights.get(light_id)
        if light is None:
            return 200, [_error(3, prefix, f"resource, {prefix}, not available")]
        if not self._light_window.admit(now):
            return 503, None
        answers, changes, transition_ds = self._validate(body, prefix, light,
                                                         light.look_at(now).on)
        if changes:
            light.change(now, changes, transition_ds)
        return 200, answers

    def _put_group(self, group_id: str, body: Mapping[str, Any], now: float
                   ) -> tuple[int, Any]:
        prefix = f"/groups/{group_id}/action"
        if group_id == "0":
            members = list(self._lights)
        elif group_id in self._groups:
            members = [lid for lid in self._groups[group_id].lights if lid in self._lights]
        else:
            return 200, [_error(3, prefix, f"resource, {prefix}, not available")]
        if not self._group_window.admit(now):
            return 503, None
        answers, changes, transition_ds = self._validate(body, prefix, None, True)
        for lid in members:
            light = self._lights[lid]
            own = dict(changes)
            # A group command reaches every bulb; each takes what it can (as a real bridge does).
            if light.spec.ct_range is None:
                own.pop("ct", None)
            elif "ct" in own:
                low, high = light.spec.ct_range
                own["ct"] = min(high, max(low, own["ct"]))
            if light.spec.gamut is None:
                own.pop("xy", None)
            if not own.get("on", light.look_at(now).on):
                own = {k: v for k, v in own.items() if k == "on"}
            if own:
                light.change(now, own, transition_ds)
        return 200, answers


class _Handler(BaseHTTPRequestHandler):
    server_version = "nginx"
    sys_version = ""

    def handle(self) -> None:
        # A client may give up in the TLS handshake (e.g. refusing the certificate).
        with contextlib.suppress(ssl.SSLError, ConnectionError, TimeoutError):
            super().handle()

    def _handle(self) -> None:
        emulator: HueBridgeEmulator = self.server.emulator  # type: ignore[attr-defined]
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else None
            status, answer, release = emulator._answer(self.command, self.path, raw)
            if release is not None:
                release.wait()
                self.close_connection = True
                return
            assert status is not None
            if status == RESET:
                # SO_LINGER 0: closing sends a TCP RST, as a crashing bridge or a flaky switch does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            payload = b"" if answer is None else json.dumps(answer).encode()
            if status >= 500:
                payload = b"Service Unavailable"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status < 500
                             else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its own timeout): nothing to answer
        except Exception as exc:
            logger.exception("Hue emulator failed answering %s %s", self.command, self.path)
            emulator._failed(exc)

    do_GET = _handle
    do_PUT = _handle
    do_POST = _handle
    do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("hue emulator: " + format, *args)


def most_in_a_second(times: list[float]) -> int:
    """The most requests (by arrival ``times``) in any half-open one-second window: what the
    bridge's rate limits are about."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
