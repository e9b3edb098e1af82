"""The record: past sessions per room, their events, exports, a report picture, retention.

Plain `def` routes: they read files, parse YAML or query the store, so FastAPI runs them in
its threadpool, never on the event loop that runs the rooms. Reads use the store's reading
connections (never the lock its writes take), and the report and the CSV export, which replay
a whole session, are drawn in a worker process (`roomctl.records.worker`): pure Python work
in a thread would hold the interpreter lock against the loop.

A session whose record cannot be read back is listed with ``damaged`` saying why, and its
detail and exports answer 409 with that reason; its damaged events are named in ``damaged``
and left out. A store that cannot be read answers 503 with its message (`api.app`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Device
from api.deps import AdminDevice, Authed, Engine, EngineDep
from api.models import ErrorOut, Responses
from roomctl.records.export import session_json
from roomctl.records.monitoring import CONTENT_SECURITY_POLICY as MONITORING_CSP
from roomctl.records.monitoring import monitoring_csv, monitoring_html, monitoring_record
from roomctl.records.worker import Kind
from roomctl.store import AuditAction, AuditEntry, DamagedSession, SessionStore, SessionSummary, StoredSession

router = APIRouter(prefix="/api/sessions", tags=["history"],
                   responses={401: {"model": ErrorOut, "description": "not paired"},
                              409: {"model": ErrorOut, "description": "no record is kept, the "
                                    "session is running, or its record is damaged"},
                              503: {"model": ErrorOut, "description": "the record cannot be read now"}})
E404: Responses = {404: {"model": ErrorOut, "description": "no such session"}}
ADMIN: Responses = {403: {"model": ErrorOut, "description": "only a clinic admin may do this"}}


class SessionSummaryOut(BaseModel):
    id: str
    room: str
    preset_name: str
    label: str | None = None
    started_at: float
    ended_at: float | None = None
    end_reason: str | None = None
    duration_s: float | None = None
    event_count: int
    damaged: str | None = None  # why this session cannot be read back (None: it can)


class SessionDetailOut(SessionSummaryOut):
    preset: dict[str, Any]
    events: list[dict[str, Any]]
    damaged_events: list[str] = []  # records of it that could not be read, left out of events


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "Tue 9:00"}]})

    label: Annotated[str, Field(max_length=80)] | None = None


class PurgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"older_than_days": 365}]})

    older_than_days: Annotated[float, Field(strict=True, ge=1, le=36500)]  # a day at least: today's records stay


class PurgeOut(BaseModel):
    deleted: int


def _store(eng: Engine) -> SessionStore:
    if eng.store is None:
        raise HTTPException(409, "this service keeps no session record")
    return eng.store


def _summary(eng: Engine, session_id: str) -> SessionSummary:
    summary = _store(eng).summary(session_id)
    if summary is None:
        raise HTTPException(404, f"no session '{session_id}'")
    return summary


def _stored(eng: Engine, session_id: str) -> StoredSession:
    try:
        stored = _store(eng).get(session_id)
    except DamagedSession as err:
        raise HTTPException(409, str(err)) from None
    if stored is None:
        raise HTTPException(404, f"no session '{session_id}'")
    return stored


def _rendered(eng: Engine, session_id: str, kind: Kind) -> str:
    store = _store(eng)
    stored = store.summary(session_id)
    if stored is None:
        raise HTTPException(404, f"no session '{session_id}'")
    ctl = eng.service.rooms.get(stored.room)
    safety = ctl.room.safety if ctl else None
    end_t = None if stored.ended_at is not None else eng.service.clock.now()
    records = eng.service.records
    assert records is not None  # a store is kept (checked above), so it has its renderer
    try:
        text = records.render(kind, session_id, safety, end_t)
    except DamagedSession as err:
        raise HTTPException(409, str(err)) from None
    if text is None:
        raise HTTPException(404, f"no session '{session_id}'")
    return text


def _by(eng: Engine, who: Device, session_id: str = "", action: AuditAction = "export.json") -> AuditEntry:
    return AuditEntry(at=eng.service.clock.now(), session_id=session_id, action=action,
                      device_id=who.id, device_name=who.name or None)


def _audited(eng: Engine, who: Device, session_id: str, action: AuditAction) -> None:
    """An export or printout is on the audit list before the record leaves (a store that cannot
    write answers 503 and hands nothing out)."""
    _store(eng).record_audit(_by(eng, who, session_id, action))


def _running(eng: Engine, session_id: str) -> bool:
    return any(ctl.runner.running and ctl.runner.session is not None and ctl.runner.session.id == session_id
               for ctl in eng.service.rooms.values())


@router.get("", response_model=list[SessionSummaryOut], summary="Past and running sessions, newest first")
def list_sessions(eng: EngineDep, _: Authed, room: Annotated[str | None, Query(max_length=60)] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[SessionSummaryOut]:
    rows = _store(eng).list_sessions(room, limit, offset)
    return [SessionSummaryOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/audit", response_model=list[AuditEntry], summary="The audit list of every record, deleted ones "
            "included: exports, printouts, labels, deletions, newest first")
def audit_all(eng: EngineDep, _: Authed, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AuditEntry]:
    return _store(eng).audit(None, limit)


@router.get("/{session_id}", response_model=SessionDetailOut, responses=E404,
            summary="A session with its preset snapshot and every event")
def get_session(session_id: str, eng: EngineDep, _: Authed) -> SessionDetailOut:
    summary = _summary(eng, session_id)
    stored = _stored(eng, session_id)
    data = session_json(stored)
    return SessionDetailOut(**SessionSummaryOut.model_validate(summary, from_attributes=True).model_dump(),
                            preset=data["preset"], events=data["events"], damaged_events=list(stored.damaged))


@router.get("/{session_id}/export.json", responses=E404, summary="The whole record as JSON")
def export_json(session_id: str, eng: EngineDep, who: Authed) -> Response:
    body = json.dumps(session_json(_stored(eng, session_id)), indent=1, ensure_ascii=False)
    _audited(eng, who, session_id, "export.json")
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="session-{session_id}.json"'})


@router.get("/{session_id}/export.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "one row per event"},
    **E404}, summary="The events as CSV: session time, wall time, kind, phase, details, note")
def export_csv(session_id: str, eng: EngineDep, who: Authed) -> Response:
    text = _rendered(eng, session_id, "export.csv")
    _audited(eng, who, session_id, "export.csv")
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="session-{session_id}.csv"'})


@router.get("/{session_id}/report.svg", response_class=Response, responses={
    200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "the report"},
    **E404}, summary="The session as a picture: phases, brightness, volume, adjustments, reminders")
def report(session_id: str, eng: EngineDep, _: Authed) -> Response:
    return Response(_rendered(eng, session_id, "report.svg"), media_type="image/svg+xml")


@router.get("/{session_id}/monitoring.html", response_class=Response, responses={
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "a printable page"},
    **E404}, summary="The monitoring record: doses, vitals, observation, who was there (to print)")
def monitoring_page(session_id: str, eng: EngineDep, who: Authed) -> Response:
    record = monitoring_record(_stored(eng, session_id), eng.service.clock.now())
    _audited(eng, who, session_id, "monitoring.html")
    return Response(monitoring_html(record), media_type="text/html",
                    headers={"Content-Security-Policy": MONITORING_CSP})


@router.get("/{session_id}/monitoring.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "one row per record"},
    **E404}, summary="The monitoring record as CSV")
def monitoring_export(session_id: str, eng: EngineDep, who: Authed) -> Response:
    record = monitoring_record(_stored(eng, session_id), eng.service.clock.now())
    _audited(eng, who, session_id, "monitoring.csv")
    return Response(monitoring_csv(record), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="monitoring-{session_id}.csv"'})


@router.patch("/{session_id}", response_model=SessionSummaryOut, responses=E404,
              summary="Set or clear the therapist's label (no client names)")
def set_label(session_id: str, body: LabelIn, eng: EngineDep, who: Authed) -> SessionSummaryOut:
    _summary(eng, session_id)
    _store(eng).set_label(session_id, body.label, by=_by(eng, who, session_id, "label"))
    return SessionSummaryOut.model_validate(_summary(eng, session_id), from_attributes=True)


@router.delete("/{session_id}", status_code=204, responses={**E404, **ADMIN},
               summary="Delete a session's record (a clinic admin)")
def delete_session(session_id: str, eng: EngineDep, who: AdminDevice) -> Response:
    _summary(eng, session_id)
    if _running(eng, session_id):
        raise HTTPException(409, "the session is running: end it first")
    _store(eng).delete(session_id, by=_by(eng, who, session_id, "deleted"))
    return Response(status_code=204)


@router.post("/purge", response_model=PurgeOut, responses=ADMIN,
             summary="Delete ended sessions older than N days (a clinic admin)")
def purge(body: PurgeIn, eng: EngineDep, who: AdminDevice) -> PurgeOut:
    return PurgeOut(deleted=_store(eng).purge_older_than(body.older_than_days, eng.service.clock.now(),
                                                          by=_by(eng, who, action="purged")))


@router.get("/{session_id}/audit", response_model=list[AuditEntry], responses=E404,
            summary="Who exported, printed, renamed this record, newest first")
def audit_session(session_id: str, eng: EngineDep, _: Authed,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AuditEntry]:
    entries = _store(eng).audit(session_id, limit)
    if not entries:
        _summary(eng, session_id)  # 404 for a session that never was
    return entries
