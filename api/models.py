"""Request and response bodies of the API (besides the room state in api.state)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.auth import Role
from api.state import RoomState
from roomctl.events import LightsChange, MusicChange, Vitals

_STRICT = ConfigDict(extra="forbid")

Responses = dict[int | str, dict[str, Any]]  # a route's documented answers besides its own


class ErrorOut(BaseModel):
    detail: str


class ProblemOut(BaseModel):
    file: str | None = None
    phase: str | None = None
    field: str | None = None
    message: str
    text: str


class Invalid(BaseModel):
    """Every 422: a sentence naming the first problem, and each problem with its field."""

    detail: str
    problems: list[ProblemOut]


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pin": "482913"}]})

    pin: Annotated[str, Field(max_length=64)] | None = None
    code: Annotated[str, Field(max_length=64)] | None = None
    label: Annotated[str, Field(max_length=80)] = "tablet"


class PairOut(BaseModel):
    token: str
    token_id: str
    role: Role


class DeviceOut(BaseModel):
    """A paired device as the settings screen lists it."""

    id: str
    name: str
    role: Role
    created_at: float
    last_seen: float | None = None
    address: str | None = None  # where it was last used from
    this: bool = False  # the device asking


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Room 1 iPad"}]})

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    role: Role | None = None  # an admin's change only


class TlsOut(BaseModel):
    """How the tablet reaches roomctl: what to install and the fingerprint to compare with
    the one `roomctl serve` printed."""

    https: bool
    ca_url: str | None = None  # the local certificate authority, to install once per tablet
    ca_fingerprint: str | None = None  # SHA-256
    certificate_expires: float | None = None  # epoch seconds; renewed before


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"preset": "kap-sublingual", "label": "Tue AM"}]})

    preset: Annotated[str, Field(min_length=1, max_length=60)]
    label: Annotated[str, Field(max_length=80)] | None = None


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"seconds": 300}]})

    seconds: Annotated[float, Field(strict=True, gt=0, le=4 * 3600)] = 300.0  # a number: "300" is refused


class JumpIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"phase": "return"}]})

    phase: Annotated[str, Field(min_length=1, max_length=40)]


class EmergencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"on": True}]})

    on: StrictBool  # true or false: 0, 1 and "yes" are refused


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"cue": "journey/0", "note": "BP 128/82"}]})

    cue: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=500)] | None = None
    skipped: bool = False  # a vitals check skipped: the note says why


class VitalsIn(BaseModel):
    """A vitals check, answering a reminder (``cue``) or at any time."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"vitals": {"systolic": 128, "diastolic": 82, "heart_rate": 74, "spo2": 98,
                    "observations": {"sedation": 1}}, "cue": "journey/0"}]})

    vitals: Vitals
    cue: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None


class AlertAckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"alert": "vitals/2"}]})

    alert: Annotated[str, Field(min_length=1, max_length=40)]


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "client stable and collected by a relative"}]})

    reason: Annotated[str, Field(min_length=1, max_length=300)] | None = None


class PlaylistOut(BaseModel):
    name: str
    playable: int
    ok: bool
    problems: list[str]
    measured: int = 0  # playable files whose loudness is known (the rest play at a safe default gain)
    files: int = 0  # playable files (streams are not measured)
    broken: list[str] = []  # "<file>: <why>" for files that do not decode: skipped, costing no playback time


class PreflightOut(BaseModel):
    ok: bool
    lights: dict[str, Any]
    audio: dict[str, Any]
    playlists: list[PlaylistOut]


class StartOut(BaseModel):
    state: RoomState
    preflight: PreflightOut


class RoomSummary(BaseModel):
    id: str
    name: str
    state: RoomState


class PresetSummary(BaseModel):
    id: str
    name: str | None = None
    description: str | None = None
    source: str
    read_only: bool
    phases: int | None = None
    planned_s: float | None = None
    valid: bool
    problems: list[ProblemOut]


class PresetOut(BaseModel):
    id: str
    source: str
    read_only: bool
    preset: dict[str, Any] | None = None
    yaml: str | None = None
    problems: list[ProblemOut]


class ValidateOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]


class YamlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: Annotated[str, Field(max_length=200_000)]
    id: Annotated[str, Field(max_length=60)] | None = None


class DuplicateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(max_length=60)] | None = None


class ByHandIn(BaseModel):
    """The room's lights and music set by hand while no session runs (before a start, after End)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"lights": {"brightness": 30, "color_temp": 2700, "transition": 10}},
        {"lights": {"brightness": 0, "transition": 10}, "music": {"playing": False}}]})

    lights: LightsChange | None = None
    music: MusicChange | None = None

    @model_validator(mode="after")
    def _something(self) -> ByHandIn:
        if self.lights is None and self.music is None:
            raise ValueError("give lights, music or both")
        return self
