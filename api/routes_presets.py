"""Presets: list, read, write (the clinic's own), validate, import/export, charts.

Plain `def` routes: they read files, parse YAML or query the store, so FastAPI runs them in
its threadpool, never on the event loop that runs the rooms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import Authed, EngineDep
from api.models import (
    DuplicateIn,
    ErrorOut,
    Invalid,
    PresetOut,
    PresetSummary,
    ProblemOut,
    Responses,
    ValidateOut,
    YamlIn,
)
from roomctl.library import PresetEntry, PresetExists, PresetLimit, PresetNotFound, PresetReadOnly, valid_id
from roomctl.preset import Preset, PresetError, PresetProblem, parse_preset, parse_preset_yaml, preset_to_yaml
from roomctl.records.chart import Chart, chart

router = APIRouter(prefix="/api/presets", tags=["presets"],
                   responses={401: {"model": ErrorOut, "description": "not paired"}})

E404: Responses = {404: {"model": ErrorOut, "description": "no such preset"}}
E422: Responses = {422: {"model": Invalid, "description": "the preset has problems; each names phase and field"}}
EXAMPLE = {
    "name": "Short journey",
    "description": "A small example.",
    "phases": [
        {"id": "preparation", "kind": "preparation", "advance": "manual", "planned": "10m",
         "lights": {"brightness": 60, "color_temp": "2700K", "transition": "30s"},
         "music": {"playlist": "arrival", "volume": 35}},
        {"id": "journey", "kind": "journey", "duration": "40m",
         "lights": {"brightness": 12, "color": "#ff8a3d", "transition": "5m"},
         "music": {"playlist": "journey", "volume": 45},
         "cues": [{"at": "20m", "text": "Check blood pressure"}]},
    ],
}
PresetBody = Annotated[dict[str, Any], Body(examples=[EXAMPLE])]


def _problems(problems: list[PresetProblem] | tuple[PresetProblem, ...]) -> list[ProblemOut]:
    return [ProblemOut(file=p.file, phase=p.phase, field=p.field, message=p.message, text=str(p))
            for p in problems]


def _invalid(err: PresetError) -> JSONResponse:
    body = Invalid(detail=str(err.problems[0]) if len(err.problems) == 1
                         else f"{len(err.problems)} problems: {err.problems[0]} …",
                         problems=_problems(err.problems))
    return JSONResponse(body.model_dump(), status_code=422)


def _out(entry: PresetEntry) -> PresetOut:
    return PresetOut(
        id=entry.id, source=entry.source, read_only=entry.read_only,
        preset=entry.preset.model_dump(mode="json", exclude_none=True) if entry.preset else None,
        yaml=preset_to_yaml(entry.preset) if entry.preset else None,
        problems=_problems(entry.problems),
    )


def _entry(eng: EngineDep, preset_id: str) -> PresetEntry:
    try:
        return eng.service.library.entry(preset_id)
    except PresetNotFound:
        raise HTTPException(404, f"no preset '{preset_id}'") from None


def _chart_out(preset: Preset, points: int) -> Chart:
    return chart(preset, points)  # a dataclass: FastAPI documents and serializes it as it is


@router.get("", response_model=list[PresetSummary], summary="All presets: the clinic's, then bundled")
def list_presets(eng: EngineDep, _: Authed) -> list[PresetSummary]:
    out = []
    for e in eng.service.library.entries():
        p = e.preset
        out.append(PresetSummary(
            id=e.id, name=p.name if p else None, description=p.description if p else None,
            source=e.source, read_only=e.read_only, phases=len(p.phases) if p else None,
            planned_s=p.planned_total_s() if p else None, valid=p is not None,
            problems=_problems(e.problems)))
    return out


@router.post("/validate", response_model=ValidateOut, summary="Check a preset without saving it")
def validate(body: PresetBody, _: Authed) -> ValidateOut:
    try:
        parse_preset(body, "preset")
    except PresetError as err:
        return ValidateOut(ok=False, problems=_problems(err.problems))
    return ValidateOut(ok=True, problems=[])


@router.post("/validate-yaml", response_model=ValidateOut, summary="Check preset YAML without saving it")
def validate_yaml(body: YamlIn, _: Authed) -> ValidateOut:
    try:
        parse_preset_yaml(body.yaml, f"{body.id or 'preset'}.yaml")
    except PresetError as err:
        return ValidateOut(ok=False, problems=_problems(err.problems))
    return ValidateOut(ok=True, problems=[])


@router.post("/chart", response_model=Chart, responses=E422,
             summary="Sample an unsaved preset's timeline for a chart")
def chart_unsaved(body: PresetBody, _: Authed,
                        points: Annotated[int, Query(ge=10, le=2000)] = 300) -> Any:
    try:
        preset = parse_preset(body, "preset")
    except PresetError as err:
        return _invalid(err)
    return _chart_out(preset, points)


@router.post("", response_model=PresetOut, status_code=201,
             responses={**E422, 409: {"model": ErrorOut, "description": "the id is taken"}},
             summary="Save a new preset in the clinic's folder")
def create(body: PresetBody, eng: EngineDep, _: Authed,
                 id: Annotated[str | None, Query(max_length=60)] = None) -> Any:
    try:
        preset = parse_preset(body, f"{id or 'preset'}.yaml")
    except PresetError as err:
        return _invalid(err)
    preset_id = id or eng.service.library.free_id(preset.name)
    return _save(eng, preset_id, preset, create=True)


def _save(eng: EngineDep, preset_id: str, preset: Preset, *, create: bool) -> PresetOut:
    if not valid_id(preset_id):
        raise HTTPException(400, f"preset id '{preset_id}' must be lower-case letters, digits and -")
    try:
        return _out(eng.service.library.save(preset_id, preset, create=create))
    except PresetReadOnly:
        raise HTTPException(403, f"'{preset_id}' is a bundled preset: duplicate it to change it") from None
    except PresetExists:
        raise HTTPException(409, f"a preset '{preset_id}' exists already") from None
    except PresetLimit as err:
        raise HTTPException(409, str(err)) from None
    except PresetNotFound:
        raise HTTPException(404, f"no preset '{preset_id}'") from None


@router.post("/import", response_model=PresetOut, status_code=201,
             responses={**E422, 409: {"model": ErrorOut, "description": "the id is taken"}},
             summary="Save a preset from YAML text")
def import_yaml(body: YamlIn, eng: EngineDep, _: Authed) -> Any:
    try:
        preset = parse_preset_yaml(body.yaml, f"{body.id or 'preset'}.yaml")
    except PresetError as err:
        return _invalid(err)
    return _save(eng, body.id or eng.service.library.free_id(preset.name), preset, create=True)


@router.get("/{preset_id}", response_model=PresetOut, responses=E404, summary="One preset")
def get_preset(preset_id: str, eng: EngineDep, _: Authed) -> PresetOut:
    return _out(_entry(eng, preset_id))


@router.get("/{preset_id}/yaml", response_class=Response,
            responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}},
                             "description": "the preset file"},
                       404: {"content": {"application/json": {
                           "schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                           "description": "no such preset"}},
            summary="Export a preset as YAML")
def export_yaml(preset_id: str, eng: EngineDep, _: Authed) -> PlainTextResponse:
    entry = _entry(eng, preset_id)
    text = entry.path.read_text(encoding="utf-8")
    return PlainTextResponse(text, media_type="application/yaml",
                             headers={"Content-Disposition": f'attachment; filename="{entry.id}.yaml"'})


@router.get("/{preset_id}/chart", response_model=Chart,
            responses={**E404, 409: {"model": ErrorOut, "description": "the preset file has problems"}},
            summary="A preset's whole timeline sampled for a chart")
def chart_saved(preset_id: str, eng: EngineDep, _: Authed,
                      points: Annotated[int, Query(ge=10, le=2000)] = 300) -> Chart:
    entry = _entry(eng, preset_id)
    if entry.preset is None:
        raise HTTPException(409, f"preset '{preset_id}' has problems: {entry.problems[0]}")
    return _chart_out(entry.preset, points)


@router.put("/{preset_id}", response_model=PresetOut,
            responses={**E404, **E422, 403: {"model": ErrorOut, "description": "bundled, read-only"}},
            summary="Replace a clinic preset")
def update(preset_id: str, body: PresetBody, eng: EngineDep, _: Authed) -> Any:
    try:
        preset = parse_preset(body, f"{preset_id}.yaml")
    except PresetError as err:
        return _invalid(err)
    return _save(eng, preset_id, preset, create=False)


@router.delete("/{preset_id}", status_code=204,
               responses={**E404, 403: {"model": ErrorOut, "description": "bundled, read-only"}},
               summary="Delete a clinic preset")
def delete(preset_id: str, eng: EngineDep, _: Authed) -> Response:
    try:
        eng.service.library.delete(preset_id)
    except PresetNotFound:
        raise HTTPException(404, f"no preset '{preset_id}'") from None
    except PresetReadOnly:
        raise HTTPException(403, f"'{preset_id}' is a bundled preset and cannot be deleted") from None
    return Response(status_code=204)


@router.post("/{preset_id}/duplicate", response_model=PresetOut, status_code=201,
             responses={**E404, 409: {"model": ErrorOut, "description": "id taken or preset broken"}},
             summary="Copy a preset (bundled ones too) into the clinic's folder")
def duplicate(preset_id: str, eng: EngineDep, _: Authed,
                    body: DuplicateIn | None = None) -> PresetOut:
    entry = _entry(eng, preset_id)
    if entry.preset is None:
        raise HTTPException(409, f"preset '{preset_id}' has problems: {entry.problems[0]}")
    new_id = body.id if body and body.id else None
    if new_id is not None and not valid_id(new_id):
        raise HTTPException(400, f"preset id '{new_id}' must be lower-case letters, digits and -")
    try:
        return _out(eng.service.library.duplicate(preset_id, new_id))
    except PresetExists:
        raise HTTPException(409, f"a preset '{new_id}' exists already") from None
    except PresetLimit as err:
        raise HTTPException(409, str(err)) from None
