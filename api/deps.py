"""What routes share: the app's engine objects and the auth check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket

from api.auth import COOKIE, Auth, TokenRecord
from api.hub import RoomHub
from roomctl.service import RoomController, Service
from roomctl.store import SessionStore


@dataclass
class Engine:
    service: Service
    auth: Auth
    hubs: dict[str, RoomHub] = field(default_factory=dict)

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


async def require_token(request: Request, eng: Annotated[Engine, Depends(engine)]) -> TokenRecord:
    rec = eng.auth.check(token_of(request.headers, request.cookies))
    if rec is None:
        raise HTTPException(401, "pair this tablet first: POST /api/pair with the PIN",
                            headers={"WWW-Authenticate": "Bearer"})
    return rec


def ws_token_ok(ws: WebSocket, eng: Engine) -> bool:
    return eng.auth.check(token_of(ws.headers, ws.cookies, ws.query_params)) is not None


async def room(room_id: str, eng: Annotated[Engine, Depends(engine)]) -> RoomController:
    ctl = eng.service.rooms.get(room_id)
    if ctl is None:
        known = ", ".join(eng.service.rooms) or "none"
        raise HTTPException(404, f"no room '{room_id}' (rooms: {known})")
    return ctl


Authed = Annotated[TokenRecord, Depends(require_token)]
EngineDep = Annotated[Engine, Depends(engine)]
RoomDep = Annotated[RoomController, Depends(room)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not paired", "model": None},
    404: {"description": "unknown room, preset or phase"},
    409: {"description": "the command does not fit the room's state"},
}
