"""What routes share: the app's engine objects and the auth check.

A route that needs the device a request comes from (to check its role, or to record which
device issued a command) takes `CurrentDevice`; `AdminDevice` also refuses non-admins (403)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket

from api.auth import COOKIE, Auth, Device
from api.hub import DeviceSockets, RoomHub
from roomctl.service import RoomController, Service
from roomctl.store import SessionStore


@dataclass
class Engine:
    service: Service
    auth: Auth
    hubs: dict[str, RoomHub] = field(default_factory=dict)
    sockets: DeviceSockets = field(default_factory=DeviceSockets)

    @property
    def store(self) -> SessionStore | None:
        """The record, when this service keeps one."""
        return self.service.store


async def engine(request: Request) -> Engine:
    eng: Engine = request.app.state.engine
    return eng


def token_of(headers: Any, cookies: Any, query: Any = None) -> str | None:
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    if cookies.get(COOKIE):
        return str(cookies.get(COOKIE))
    if query is not None and query.get("token"):
        return str(query.get("token"))
    return None


def client_address(conn: Request | WebSocket) -> str:
    """The address that connected (a trusted proxy's X-Forwarded-For aside: see roomctl serve)."""
    return conn.client.host if conn.client else "unknown"


async def current_device(request: Request, eng: Annotated[Engine, Depends(engine)]) -> Device:
    token = token_of(request.headers, request.cookies)
    device = eng.auth.check(token, client_address(request))
    if device is None:
        raise HTTPException(401, "pair this tablet first: POST /api/pair with the PIN",
                            headers={"WWW-Authenticate": "Bearer"})
    if token is not None and request.cookies.get(COOKIE) == token:
        request.state.renew_cookie = token  # the security middleware keeps the cookie as long as the pairing
    return device


async def admin_device(device: Annotated[Device, Depends(current_device)]) -> Device:
    if not device.is_admin:
        raise HTTPException(403, "only a clinic admin may do this: ask the admin's tablet")
    return device


def ws_device(ws: WebSocket, eng: Engine) -> Device | None:
    return eng.auth.check(token_of(ws.headers, ws.cookies, ws.query_params), client_address(ws))


async def room(room_id: str, eng: Annotated[Engine, Depends(engine)]) -> RoomController:
    ctl = eng.service.rooms.get(room_id)
    if ctl is None:
        known = ", ".join(eng.service.rooms) or "none"
        raise HTTPException(404, f"no room '{room_id}' (rooms: {known})")
    return ctl


CurrentDevice = Annotated[Device, Depends(current_device)]
AdminDevice = Annotated[Device, Depends(admin_device)]
Authed = CurrentDevice  # any paired device
EngineDep = Annotated[Engine, Depends(engine)]
RoomDep = Annotated[RoomController, Depends(room)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not paired", "model": None},
    403: {"description": "only a clinic admin may do this"},
    404: {"description": "unknown room, preset or phase"},
    409: {"description": "the command does not fit the room's state"},
}
