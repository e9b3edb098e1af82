"""The FastAPI app: the engine is built in the lifespan; routes stay thin."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import routes_history, routes_presets, routes_rooms
from api.auth import COOKIE, Auth, Locked
from api.deps import Authed, Engine, EngineDep
from api.docs import add_docs
from api.hub import RoomHub
from api.models import ErrorOut, Invalid, PairIn, PairOut, ProblemOut, TokenOut
from roomctl.clock import Clock
from roomctl.config import Config
from roomctl.preset import friendly_message
from roomctl.service import Service
from roomctl.store import SessionStore, StoreError

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(config: Config, *, clock: Clock | None = None, pin: str | None = None,
               store: SessionStore | None = None, on_ready: Callable[[Engine], None] | None = None) -> FastAPI:
    """The app for ``config``. ``store`` keeps the record (and so recovery and retention);
    ``on_ready`` is called once the rooms are up."""
    auth = Auth(pin or config.pin or f"{secrets.randbelow(10**6):06d}", config.data_dir / "tokens.json")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(config, clock=clock, store=store)
        await service.start()
        eng = Engine(service, auth)
        for rid, ctl in service.rooms.items():
            hub = RoomHub(ctl, service.clock)
            hub.start()
            eng.hubs[rid] = hub
        app.state.engine = eng
        if on_ready is not None:
            on_ready(eng)
        try:
            yield
        finally:
            for hub in eng.hubs.values():
                await hub.stop()
            await service.stop()

    app = RoomctlAPI(
        title="roomctl",
        version="0.1.0",
        description="Lights and music of a treatment room along timed presets, steered from a tablet. "
                    "Pair with POST /api/pair, then send the token as `Authorization: Bearer`.",
        lifespan=lifespan,
        docs_url=None,  # served from this machine by add_docs, never from a CDN
        redoc_url=None,
    )
    app.state.auth = auth

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()).model_dump(), status_code=422)

    @app.exception_handler(StoreError)
    async def record_failing(request: Request, exc: StoreError) -> JSONResponse:
        # The record cannot be read or written now: its own message, never a bare 500.
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.post("/api/pair", response_model=PairOut, tags=["auth"],
              responses={400: {"model": ErrorOut, "description": "neither PIN nor code given"},
                         401: {"model": ErrorOut, "description": "wrong PIN"},
                         429: {"model": ErrorOut, "description": "too many wrong PINs"}},
              summary="Pair a tablet with the PIN (or the one-time link's code); sets a cookie too")
    async def pair(body: PairIn, request: Request, response: Response, eng: EngineDep) -> PairOut:
        if body.pin is None and body.code is None:
            raise HTTPException(400, "give the PIN (pin) or the pairing link's code (code)")
        client = request.client.host if request.client else "unknown"
        try:
            token = eng.auth.pair(client, pin=body.pin, code=body.code, label=body.label)
        except Locked as err:
            raise HTTPException(429, str(err), headers={"Retry-After": str(int(err.retry_after_s) + 1)}) \
                from None
        if token is None:
            raise HTTPException(401, "wrong PIN")
        rec = eng.auth.check(token)
        assert rec is not None
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=10 * 365 * 86400)
        return PairOut(token=token, token_id=rec.id)

    @app.get("/api/tokens", response_model=list[TokenOut], tags=["auth"],
             responses={401: {"model": ErrorOut, "description": "not paired"}},
             summary="Paired tablets")
    async def tokens(eng: EngineDep, _: Authed) -> list[TokenOut]:
        return [TokenOut(id=r.id, label=r.label, created_at=r.created_at, last_seen=r.last_seen)
                for r in eng.auth.tokens()]

    @app.delete("/api/tokens/{token_id}", status_code=204, tags=["auth"],
                responses={401: {"model": ErrorOut, "description": "not paired"},
                           404: {"model": ErrorOut, "description": "no such token"}},
                summary="Revoke a tablet's token")
    async def revoke(token_id: str, eng: EngineDep, _: Authed) -> Response:
        if not eng.auth.revoke(token_id):
            raise HTTPException(404, f"no token '{token_id}'")
        return Response(status_code=204)

    @app.get("/healthz", tags=["health"], summary="Whether each room's lights and audio answer (open)")
    async def healthz(eng: EngineDep) -> dict[str, Any]:
        rooms = eng.service.health()
        ok = all(part["ok"] for r in rooms.values() for part in r.values())
        return {"ok": ok, "rooms": rooms}

    app.include_router(routes_rooms.router)
    app.include_router(routes_presets.router)
    app.include_router(routes_history.router)
    routes_rooms.register_ws(app)
    add_docs(app, STATIC)
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="tablet")
    return app


class RoomctlAPI(FastAPI):
    """FastAPI, with a schema that says what this app really answers (see `_openapi`)."""

    def openapi(self) -> dict[str, Any]:
        return _openapi(self)


def validation_body(errors: Any) -> Invalid:
    problems = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        if e.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        elif e.get("type") == "extra_forbidden":
            message = "unknown key"
        else:
            message = friendly_message(e).removeprefix("Value error, ")
        text = f"{where}: {message}" if where else message
        problems.append(ProblemOut(field=where or None, message=message, text=text))
    if not problems:
        problems.append(ProblemOut(message="the request is not valid", text="the request is not valid"))
    return Invalid(detail=problems[0].text, problems=problems)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, saying what this app really answers: every 422 is `Invalid`, and a
    body that is not UTF-8 JSON at all gets a 400."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Invalid, ProblemOut, ErrorOut):
        comps.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "invalid request: each problem names its field",
                                    "content": {"application/json": {
                                        "schema": {"$ref": "#/components/schemas/Invalid"}}}}
            if "requestBody" in op and "400" not in responses:
                responses["400"] = {"description": "the body could not be read",
                                    "content": {"application/json": {
                                        "schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    app.openapi_schema = schema
    return schema
