"""The FastAPI app: the engine is built in the lifespan; routes stay thin."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import routes_access, routes_history, routes_presets, routes_rooms
from api.auth import Auth
from api.deps import Engine, EngineDep
from api.docs import add_docs
from api.hub import RoomHub
from api.models import ErrorOut, Invalid, ProblemOut
from api.security import HostCheck, RequireJSON, SecurityHeaders
from roomctl.clock import Clock
from roomctl.config import Config
from roomctl.preset import friendly_message
from roomctl.service import Service
from roomctl.store import SessionStore, StoreError
from roomctl.tls import ServerTLS, service_names

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(config: Config, *, clock: Clock | None = None, pin: str | None = None,
               store: SessionStore | None = None, on_ready: Callable[[Engine], None] | None = None,
               tls: ServerTLS | None = None, hosts: Sequence[str] | None = None) -> FastAPI:
    """The app for ``config``. ``store`` keeps the record (and so recovery and retention);
    ``on_ready`` is called once the rooms are up. ``tls`` is the certificate being served
    (shown to tablets to install); ``hosts`` the names and addresses requests may name in
    their Host header (default: those of ``config.listen``, and loopback)."""
    access = config.access
    auth = Auth(pin or config.pin or f"{secrets.randbelow(10**6):06d}", config.data_dir / "tokens.json",
                admin_pin=access.admin_pin, idle_days=access.token_idle_days)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(config, clock=clock, store=store)
        await service.start()
        eng = Engine(service, auth)
        auth.session_running = lambda: any(ctl.runner.running for ctl in service.rooms.values())
        stop_watching = auth.on_revoke(eng.sockets.close_device)
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
            stop_watching()
            for hub in eng.hubs.values():
                await hub.stop()
            await service.stop()

    app = RoomctlAPI(
        title="roomctl",
        version="0.1.0",
        description="Lights and music of a treatment room along timed presets, steered from a tablet. "
                    "Pair with POST /api/pair, then send the token as `Authorization: Bearer`. "
                    "POST, PUT and PATCH take `Content-Type: application/json`, with or without a body.",
        lifespan=lifespan,
        docs_url=None,  # served from this machine by add_docs, never from a CDN
        redoc_url=None,
    )
    app.state.auth = auth
    app.state.tls = tls

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

    @app.get("/healthz", tags=["health"], summary="Whether each room's lights and audio answer (open)")
    async def healthz(eng: EngineDep) -> dict[str, Any]:
        rooms = eng.service.health()
        ok = all(part["ok"] for r in rooms.values() for part in r.values())
        return {"ok": ok, "rooms": rooms}

    app.include_router(routes_access.router)
    app.include_router(routes_rooms.router)
    app.include_router(routes_presets.router)
    app.include_router(routes_history.router)
    routes_rooms.register_ws(app)
    add_docs(app, STATIC)
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="tablet")
    # Outermost last: headers on every answer (a refused host's too), then the host check,
    # then JSON only and a bounded body.
    app.add_middleware(RequireJSON)
    app.add_middleware(HostCheck, names=list(hosts) if hosts is not None else service_names(config.listen))
    app.add_middleware(SecurityHeaders, cookie_max_age_s=int(auth.idle_s))
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
    """FastAPI's schema, saying what this app really answers: every 422 is `Invalid`, a body
    that is not UTF-8 JSON at all gets a 400, one not sent as JSON a 415, one too large a 413."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Invalid, ProblemOut, ErrorOut):
        comps.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            if method in ("post", "put", "patch") and path.startswith("/api/"):
                responses.setdefault("415", {"description": "not sent as application/json", "content": error})
                responses.setdefault("413", {"description": "the body is too large", "content": error})
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
