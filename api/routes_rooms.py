"""Rooms: live state, sessions and the therapist's controls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, HTTPException, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Device
from api.deps import Authed, EngineDep, RoomDep, ws_device
from api.models import (
    AckIn,
    AlertAckIn,
    ByHandIn,
    EmergencyIn,
    EndIn,
    ErrorOut,
    ExtendIn,
    Invalid,
    JumpIn,
    PlaylistOut,
    PreflightOut,
    Responses,
    RoomSummary,
    StartIn,
    StartOut,
    VitalsIn,
)
from api.state import RoomState
from roomctl.events import DeviceRef, Dose, LightsChange, MusicChange
from roomctl.library import PresetNotFound
from roomctl.preset import Preset, PresetError
from roomctl.service import Preflight, RoomController
from roomctl.session import BadValue, CommandRejected, RecordFailing, TimelineUnavailable, UnknownPhase
from roomctl.timeline import Status

E404: Responses = {404: {"model": ErrorOut, "description": "unknown room (or phase)"}}
E409: Responses = {409: {"model": ErrorOut, "description": "does not fit the room's state"}}
E503: Responses = {503: {"model": ErrorOut, "description": "the session record cannot be written now: "
                         "nothing was done (Lights up still works)"}}
AUTH: Responses = {401: {"model": ErrorOut, "description": "not paired"}}
CMD: Responses = {**AUTH, **E404, **E409, **E503}
CMD_422: Responses = {**CMD, 422: {"model": Invalid, "description": "a value that cannot be right"}}
RETRY_AFTER_S = 5  # what a refused command's answer suggests: the record is watched every second

router = APIRouter(prefix="/api/rooms", tags=["rooms"], responses=AUTH)


def _state(eng: EngineDep, room_id: str) -> Any:
    """The room state, serialized once here: FastAPI would validate and serialize it again."""
    return Response(eng.hubs[room_id].state().model_dump_json(), media_type="application/json")


def device(who: Device) -> DeviceRef:
    """The paired device a command came from, as the record keeps it."""
    return DeviceRef(id=who.id, name=who.name or None)


async def _run(call: Awaitable[Status | None]) -> None:
    try:
        await call
    except TimelineUnavailable:
        return  # recorded; the room's state says what cannot be worked out
    except BadValue as err:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", *err.field.split(".")),
                                       "msg": err.message, "input": None,
                                       "ctx": {"error": err.message}}]) from None
    except CommandRejected as err:
        raise HTTPException(409, str(err)) from None
    except RecordFailing as err:
        raise HTTPException(503, str(err), headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    except UnknownPhase as err:
        raise HTTPException(404, f"no phase '{err.args[0]}' in this session's preset") from None


async def _command(eng: EngineDep, ctl: RoomController, call: Awaitable[Status | None]) -> Any:
    """Run a therapist's command; answer with the room's state after it."""
    await _run(call)
    return _state(eng, ctl.id)


async def _preset(eng: EngineDep, preset_id: str) -> Preset:
    """The preset, read and parsed in the threadpool: never a file read or a YAML parse on the loop."""
    try:
        return await run_in_threadpool(eng.service.library.get, preset_id)
    except PresetNotFound:
        raise HTTPException(404, f"no preset '{preset_id}'") from None
    except PresetError as err:
        raise HTTPException(409, f"preset '{preset_id}' has problems: {err.problems[0]}") from None


def _preflight(p: Preflight) -> PreflightOut:
    return PreflightOut(
        ok=p.ok,
        lights={"ok": p.lights.ok, "detail": p.lights.detail},
        audio={"ok": p.audio.ok, "detail": p.audio.detail},
        playlists=[PlaylistOut(name=r.name, playable=r.playable, ok=r.ok, problems=list(r.problems),
                               measured=r.measured, files=r.files, broken=list(r.broken))
                   for r in p.playlists],
    )


@router.get("", response_model=list[RoomSummary], summary="Rooms and their live state")
async def list_rooms(eng: EngineDep, _: Authed) -> list[RoomSummary]:
    return [RoomSummary(id=rid, name=ctl.config.name, state=eng.hubs[rid].state())
            for rid, ctl in eng.service.rooms.items()]


@router.get("/{room_id}/state", response_model=RoomState, responses=E404, summary="A room's live state")
async def get_state(ctl: RoomDep, eng: EngineDep, _: Authed) -> Any:
    return _state(eng, ctl.id)


@router.get("/{room_id}/preflight", response_model=PreflightOut, responses=E404,
            summary="Check that this room can play a preset (lights answer, playlists found)")
async def preflight(ctl: RoomDep, eng: EngineDep, _: Authed, preset: str) -> PreflightOut:
    return _preflight(await ctl.preflight(await _preset(eng, preset)))


@router.post("/{room_id}/session", response_model=StartOut, status_code=201, responses=CMD,
             summary="Start a session from a preset; answers with the preflight report")
async def start_session(body: StartIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> StartOut:
    preset = await _preset(eng, body.preset)
    report = await ctl.preflight(preset)
    await _run(ctl.start(body.preset, preset, body.label, by=device(who)))
    return StartOut(state=eng.hubs[ctl.id].state(), preflight=_preflight(report))


@router.post("/{room_id}/session/next", response_model=RoomState, responses=CMD,
             summary="End the current phase now")
async def next_phase(ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.next(by=device(who)))


@router.post("/{room_id}/session/undo", response_model=RoomState, responses=CMD,
             summary="Take back the last Next or phase jump (within 10 s), as if it never happened")
async def undo(ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.undo(by=device(who)))


@router.post("/{room_id}/session/hold", response_model=RoomState, responses=CMD,
             summary="Freeze the current phase's countdown")
async def hold(ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.hold(by=device(who)))


@router.post("/{room_id}/session/resume", response_model=RoomState, responses=CMD,
             summary="Continue a held countdown")
async def resume(ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.resume(by=device(who)))


@router.post("/{room_id}/session/extend", response_model=RoomState, responses=CMD,
             summary="Add time to the current phase")
async def extend(body: ExtendIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.extend(body.seconds, by=device(who)))


@router.post("/{room_id}/session/jump", response_model=RoomState, responses=CMD,
             summary="Go to any phase")
async def jump(body: JumpIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.jump(body.phase, by=device(who)))


@router.post("/{room_id}/session/end", response_model=RoomState, responses=CMD,
             summary="End the session (inside the preset's observation window, give the reason)")
async def end(ctl: RoomDep, eng: EngineDep, who: Authed, body: EndIn | None = None) -> Any:
    reason = body.reason if body is not None else None
    return await _command(eng, ctl, ctl.runner.end(reason, by=device(who)))


@router.post("/{room_id}/lights", response_model=RoomState, responses=CMD,
             summary="Set the lights (overrides the phase until the next phase or back to preset)",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": {"brightness": 30, "color_temp": 2400, "transition": 2}}}}})
async def set_lights(body: LightsChange, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.set_lights(body, by=device(who)))


@router.post("/{room_id}/music", response_model=RoomState, responses=CMD,
             summary="Set the music: volume, play/pause, next/previous track",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": {"volume": 35}}}}})
async def set_music(body: MusicChange, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.set_music(body, by=device(who)))


@router.post("/{room_id}/back-to-preset", response_model=RoomState, responses=CMD,
             summary="Drop the therapist's light and music changes; follow the preset again")
async def back_to_preset(ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.back_to_preset(by=device(who)))


@router.post("/{room_id}/by-hand", response_model=RoomState, responses=CMD,
             summary="Set the lights and music by hand while no session runs (before a start, after End)",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": {"lights": {"brightness": 30, "color_temp": 2700, "transition": 10}}}}}})
async def by_hand(body: ByHandIn, ctl: RoomDep, eng: EngineDep, _: Authed) -> Any:
    try:
        if body.lights is not None and ctl.emergency:  # refused whole: nothing half done
            raise CommandRejected("lights up is on: bring the lights down first")
        if body.music is not None:
            ctl.set_music_by_hand(body.music)
        if body.lights is not None:
            ctl.set_lights_by_hand(body.lights)
    except CommandRejected as err:
        raise HTTPException(409, str(err)) from None
    return _state(eng, ctl.id)


@router.post("/{room_id}/emergency", response_model=RoomState, responses={**AUTH, **E404},
             summary="Lights up (on) or release it (off); works with or without a session")
async def emergency(body: EmergencyIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    # Idempotent on purpose: a therapist pressing Lights up twice must never see an error.
    if body.on and not ctl.emergency:
        await _run(ctl.emergency_on(by=device(who)))
    elif not body.on and ctl.emergency:
        await _run(ctl.emergency_off(by=device(who)))
    return _state(eng, ctl.id)


@router.post("/{room_id}/cues/ack", response_model=RoomState, responses=CMD,
             summary="Acknowledge a reminder, with an optional short note (e.g. a blood pressure)")
async def acknowledge(body: AckIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.acknowledge(body.cue, body.note, skipped=body.skipped,
                                                           by=device(who)))


@router.post("/{room_id}/doses", response_model=RoomState, responses=CMD_422,
             summary="Record a dose (now, or when it was given), with route and amount as free text",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": {"route": "sublingual", "amount": "200 mg"}}}}})
async def give_dose(body: Dose, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.give_dose(body, by=device(who)))


@router.post("/{room_id}/vitals", response_model=RoomState, responses=CMD_422,
             summary="Record vitals (answering a check reminder, or at any time)")
async def record_vitals(body: VitalsIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.record_vitals(body.vitals, cue=body.cue, note=body.note,
                                                             by=device(who)))


@router.post("/{room_id}/alerts/ack", response_model=RoomState, responses=CMD_422,
             summary="Acknowledge highlighted vitals (values outside the clinic's ranges)")
async def acknowledge_alert(body: AlertAckIn, ctl: RoomDep, eng: EngineDep, who: Authed) -> Any:
    return await _command(eng, ctl, ctl.runner.acknowledge_alert(body.alert, by=device(who)))


def same_origin(ws: WebSocket) -> bool:
    """A browser's WebSocket must come from the tablet page itself: its Origin is this very
    scheme, host and port (the Host was checked against the allowed hosts before). Clients
    that are not browsers send no Origin."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if ws.url.scheme == "wss" else "http"
    host = ws.headers.get("host", "")
    return origin.lower() == f"{scheme}://{host}".lower()


async def live(ws: WebSocket, room_id: str) -> None:
    """The room state, pushed whole on every change; the first message is the state now.
    Closed (4401) as soon as the device is revoked."""
    eng = ws.app.state.engine
    if not same_origin(ws):
        await ws.close(code=4403, reason="only the tablet page may connect")
        return
    device = ws_device(ws, eng)
    if device is None:
        await ws.close(code=4401, reason="pair this tablet first")
        return
    hub = eng.hubs.get(room_id)
    if hub is None:
        await ws.close(code=4404, reason=f"no room '{room_id}'")
        return
    await ws.accept()
    queue = hub.connect()
    revoked = eng.sockets.watch(device.id)

    async def drain_incoming() -> None:
        while True:
            await ws.receive_text()  # clients send nothing we act on; this notices a close

    reader = asyncio.create_task(drain_incoming())
    watcher = asyncio.create_task(revoked.wait())
    try:
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            if watcher in done:
                getter.cancel()
                await ws.close(code=4401, reason="this tablet's pairing was revoked")
                break
            await ws.send_text(getter.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.disconnect(queue)
        eng.sockets.unwatch(device.id, revoked)
        watcher.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, Exception):
            await reader


def register_ws(app: Any) -> None:
    app.add_api_websocket_route("/api/rooms/{room_id}/live", live)
