"""Presets: the timed shape of a session, as clinics write them in YAML.

One frozen, strict pydantic model is used for files and for the API alike. `load_preset`
and `parse_preset` turn every mistake into a `PresetProblem` naming the file, the phase and
the field, and report all of a file's problems at once.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from roomctl import units


def _duration(value: object) -> float:
    return units.parse_duration_s(value)


def _kelvin(value: object) -> int:
    return units.parse_kelvin(value)


# A duration in seconds, written in YAML as "45s", "15m" or "1h30m".
Duration = Annotated[
    float,
    BeforeValidator(_duration),
    PlainSerializer(units.format_duration, return_type=str, when_used="json-unless-none"),
    Field(json_schema_extra={"examples": ["45s", "15m", "1h30m"]}),
]
PositiveDuration = Annotated[Duration, Field(gt=0)]
NonNegativeDuration = Annotated[Duration, Field(ge=0)]
Transition = Annotated[Duration, Field(ge=0, le=units.MAX_TRANSITION_S)]  # a light fade: a day at most
# A number of percent: a JSON/YAML number only ("50" and true are mistakes, not 50 and 1).
Percent = Annotated[float, Field(strict=True, ge=0, le=100)]
Kelvin = Annotated[
    int,
    BeforeValidator(_kelvin),
    PlainSerializer(lambda k: f"{k}K", return_type=str, when_used="json-unless-none"),
    Field(ge=units.KELVIN_MIN, le=units.KELVIN_MAX, json_schema_extra={"examples": ["2700K"]}),
]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#ff9a3c"])]
PhaseId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]

_STRICT = ConfigDict(frozen=True, extra="forbid")

# Limits no preset goes past: real presets have a handful of phases and a few reminders each.
# They bound the work every later step does (validation, charts, timelines, the record).
MAX_PHASES = 100
MAX_CUES = 50  # per phase
MAX_PRESET_CHARS = 200_000  # a preset file or YAML text
MAX_YAML_DEPTH = 20  # a preset nests 6 levels deep (preset > phases > phase > cues > cue > value)


class PhaseKind(StrEnum):
    PREPARATION = "preparation"
    DOSING = "dosing"
    JOURNEY = "journey"
    RETURN = "return"
    INTEGRATION = "integration"
    CUSTOM = "custom"


class Advance(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class PhaseLights(BaseModel):
    model_config = _STRICT

    brightness: Percent
    color_temp: Kelvin | None = None
    color: HexColor | None = None
    transition: Transition = 10.0

    @model_validator(mode="after")
    def _one_colour(self) -> PhaseLights:
        if self.color is not None and self.color_temp is not None:
            raise ValueError("set either color or color_temp, not both")
        return self


class PhaseMusic(BaseModel):
    model_config = _STRICT

    playlist: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    volume: Percent = 50.0
    fade_in: Transition = 10.0
    crossfade: Transition = 8.0


class Check(StrEnum):
    """A structured check a reminder asks for (recorded, never judged: roomctl gives no advice)."""

    VITALS = "vitals"  # blood pressure, heart rate, SpO2 and the clinic's own observations


class Cue(BaseModel):
    """A reminder for the therapist, due `at` after the phase starts, `since_dose` after the
    first dose or `since_last_dose` after the latest one. Shown on the tablet only; never a
    sound in the room. With `check: vitals` it asks for the vitals to be recorded."""

    model_config = _STRICT

    at: NonNegativeDuration | None = None
    since_dose: NonNegativeDuration | None = None
    since_last_dose: NonNegativeDuration | None = None
    text: Annotated[str, Field(min_length=1, max_length=200)]
    check: Check | None = None

    @model_validator(mode="after")
    def _one_anchor(self) -> Cue:
        anchors = [a for a in (self.at, self.since_dose, self.since_last_dose) if a is not None]
        if len(anchors) != 1:
            raise ValueError("give exactly one of at, since_dose or since_last_dose")
        return self

    @property
    def dose_timed(self) -> bool:
        return self.since_dose is not None or self.since_last_dose is not None


class Phase(BaseModel):
    model_config = _STRICT

    id: PhaseId
    kind: PhaseKind
    title: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    advance: Advance = Advance.AUTO
    duration: PositiveDuration | None = None
    planned: PositiveDuration | None = None
    lights: PhaseLights | None = None
    music: PhaseMusic | None = None
    cues: Annotated[tuple[Cue, ...], Field(max_length=MAX_CUES)] = ()

    @property
    def display_title(self) -> str:
        return self.title or self.id.replace("-", " ").replace("_", " ").capitalize()

    @property
    def planned_s(self) -> float | None:
        """How long the phase is expected to last: its duration, or a manual phase's guide."""
        return self.duration if self.advance is Advance.AUTO else self.planned

    @model_validator(mode="after")
    def _timing(self) -> Phase:
        problems = _timing_problems(
            self.advance, self.duration, self.planned,
            [(i, c.at) for i, c in enumerate(self.cues) if c.at is not None],
        )
        if problems:
            raise _Problems(problems)
        return self


def _timing_problems(
    advance: Advance, duration: float | None, planned: float | None, cue_ats: list[tuple[int, float]]
) -> list[str]:
    problems: list[str] = []
    if advance is Advance.AUTO:
        if duration is None:
            problems.append("duration: an auto phase needs a duration (or advance: manual)")
        if planned is not None:
            problems.append("planned: only a manual phase has a planned time; use duration")
    elif duration is not None:
        problems.append("duration: a manual phase waits for the therapist; use planned")
    length = duration if advance is Advance.AUTO else planned
    if length is not None:
        for i, at in cue_ats:
            if at >= length:
                problems.append(
                    f"cues[{i}].at: {units.format_duration(at)} is outside the phase "
                    f"({units.format_duration(length)} long)"
                )
    return problems


ObservationId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=30)]


class Observation(BaseModel):
    """One of the clinic's own observation fields in a vitals check (e.g. sedation, dissociation)."""

    model_config = _STRICT

    id: ObservationId
    label: Annotated[str, Field(min_length=1, max_length=60)]
    kind: Literal["yes_no", "scale"] = "scale"
    scale: tuple[int, int] = (0, 5)  # for a scale: lowest and highest value
    flag_from: int | None = None  # a value at or above this is highlighted (yes_no: yes = 1)

    @model_validator(mode="after")
    def _scale(self) -> Observation:
        low, high = self.scale
        if not low < high <= 100:
            raise ValueError("scale: give [lowest, highest], lowest below highest")
        return self


class Range(BaseModel):
    """Values outside [low, high] are highlighted until acknowledged: the clinic's thresholds."""

    model_config = _STRICT

    low: float | None = None
    high: float | None = None


class Ranges(BaseModel):
    model_config = _STRICT

    systolic: Range | None = None  # mmHg
    diastolic: Range | None = None  # mmHg
    heart_rate: Range | None = None  # beats per minute
    spo2: Range | None = None  # percent


class CheckLook(BaseModel):
    """While a vitals check is due: the lights lift a little and the music dips, gently; recording
    the vitals (or skipping the check) returns the room to the phase."""

    model_config = _STRICT

    brightness: Percent  # the lights come up to at least this (never dimmed for a check)
    color_temp: Kelvin | None = None
    color: HexColor | None = None
    music_volume: Percent | None = None  # at most this loud while the check is due
    transition: Transition = 20.0

    @model_validator(mode="after")
    def _one_colour(self) -> CheckLook:
        if self.color is not None and self.color_temp is not None:
            raise ValueError("set either color or color_temp, not both")
        return self


class Monitoring(BaseModel):
    """What the clinic records along the session (doses, vitals) and how the room helps."""

    model_config = _STRICT

    observe_after_last_dose: PositiveDuration | None = None  # ending earlier asks for a reason
    check_look: CheckLook | None = None
    observations: Annotated[tuple[Observation, ...], Field(max_length=12)] = ()
    ranges: Ranges = Field(default_factory=Ranges)

    @field_validator("observations", mode="after")
    @classmethod
    def _unique(cls, observations: tuple[Observation, ...]) -> tuple[Observation, ...]:
        ids = [o.id for o in observations]
        for i, oid in enumerate(ids):
            if oid in ids[:i] or oid in ("systolic", "diastolic", "heart_rate", "spo2"):
                raise ValueError(f"observation id '{oid}' is used twice")
        return observations


class Preset(BaseModel):
    """A session's shape: phases in order, each with lights, music and reminders."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=80)]
    description: Annotated[str, Field(max_length=2000)] = ""
    phases: Annotated[tuple[Phase, ...], Field(min_length=1, max_length=MAX_PHASES)]
    monitoring: Monitoring | None = None

    @field_validator("phases", mode="after")
    @classmethod
    def _unique_ids(cls, phases: tuple[Phase, ...]) -> tuple[Phase, ...]:
        seen: set[str] = set()
        for p in phases:
            if p.id in seen:
                raise ValueError(f"phase id '{p.id}' is used twice")
            seen.add(p.id)
        return phases

    @model_validator(mode="after")
    def _dose_cues(self) -> Preset:
        problems = _dose_cue_problems(self.phases)
        if problems:
            raise _Problems(problems)
        return self

    def phase_index(self, phase_id: str) -> int:
        for i, p in enumerate(self.phases):
            if p.id == phase_id:
                return i
        raise KeyError(phase_id)

    @property
    def dosing_index(self) -> int | None:
        return next((i for i, p in enumerate(self.phases) if p.kind is PhaseKind.DOSING), None)

    def planned_total_s(self) -> float:
        return sum(p.planned_s or 0.0 for p in self.phases)

    def playlists(self) -> list[str]:
        names = [p.music.playlist for p in self.phases if p.music and p.music.playlist]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class _PhaseOutline:
    """What the cross-phase rules need of a phase; built from models or, best effort, raw data."""

    id: str
    is_dosing: bool
    planned_s: float | None
    dose_cues: tuple[tuple[int, float], ...]  # (cue index, since_dose seconds)
    last_dose_cues: tuple[int, ...] = ()  # cue indexes timed since_last_dose


def _dose_cue_problems(phases: tuple[Phase, ...]) -> list[str]:
    return _outline_problems([
        _PhaseOutline(p.id, p.kind is PhaseKind.DOSING, p.planned_s,
                      tuple((i, c.since_dose) for i, c in enumerate(p.cues) if c.since_dose is not None),
                      tuple(i for i, c in enumerate(p.cues) if c.since_last_dose is not None))
        for p in phases
    ])


def _outline_problems(phases: list[_PhaseOutline]) -> list[str]:
    """`since_dose` cues need a dosing phase, and must fall inside their phase's planned span."""
    problems: list[str] = []
    dose_i = next((i for i, p in enumerate(phases) if p.is_dosing), None)
    for phase in phases:
        for ci in phase.last_dose_cues:
            if dose_i is None:
                problems.append(f"phase '{phase.id}': cues[{ci}].since_last_dose: the preset has no dosing phase")
    for pi, phase in enumerate(phases):
        for ci, since_dose in phase.dose_cues:
            where = f"phase '{phase.id}': cues[{ci}].since_dose"
            if dose_i is None:
                problems.append(f"{where}: the preset has no dosing phase")
                continue
            if pi < dose_i:
                problems.append(f"{where}: the phase comes before the dose")
                continue
            length = phase.planned_s
            if length is None or any(p.planned_s is None for p in phases[dose_i:pi]):
                continue  # the phase's span is unknown: it or a phase since the dose has no length
            # From the dose to the phase's start, summed over the phases between them (exactly 0
            # for the dosing phase itself: no rounding of absolute starts moves a cue out).
            lo = sum(p.planned_s or 0.0 for p in phases[dose_i:pi])
            offset = since_dose - lo
            if not 0 <= offset < length:
                problems.append(
                    f"{where}: {units.format_duration(since_dose)} after the dose falls outside "
                    f"the phase (planned from {units.format_duration(lo)} "
                    f"to {units.format_duration(lo + length)} after the dose)"
                )
    return problems


def _try(fn: Any, value: object) -> Any:
    try:
        return fn(value)
    except (ValueError, TypeError):
        return None


def _raw_seconds(value: object, *, positive: bool = False) -> float | None:
    """A raw duration when it is valid, else None (an invalid value has its own problem)."""
    seconds = _try(units.parse_duration_s, value)
    if seconds is None or seconds < 0 or (positive and seconds == 0):
        return None
    return float(seconds)


def _raw_rule_problems(data: dict[str, Any], file: str) -> list[PresetProblem]:
    """Best-effort rule checks on raw data, so that a field error elsewhere does not hide them."""
    raw_phases = data.get("phases")
    if not isinstance(raw_phases, list):
        return []
    out: list[PresetProblem] = []
    outlines: list[_PhaseOutline] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_phases):
        if not isinstance(raw, dict):
            continue
        pid = _phase_label(raw, i)
        if pid in seen:
            out.append(PresetProblem(file, None, "phases", f"phase id '{pid}' is used twice"))
        seen.add(pid)
        advance = _try(Advance, raw.get("advance", "auto"))
        duration = _raw_seconds(raw["duration"], positive=True) if "duration" in raw else None
        planned = _raw_seconds(raw["planned"], positive=True) if "planned" in raw else None
        raw_cues = raw.get("cues")
        cues: list[Any] = raw_cues if isinstance(raw_cues, list) else []
        ats: list[tuple[int, float]] = []
        dose: list[tuple[int, float]] = []
        last_dose: list[int] = []
        for ci, c in enumerate(cues):
            if isinstance(c, dict) and "since_last_dose" in c:
                last_dose.append(ci)
            if isinstance(c, dict) and "at" in c and (at := _raw_seconds(c["at"])) is not None:
                ats.append((ci, at))
            if isinstance(c, dict) and "since_dose" in c:
                sd = _raw_seconds(c["since_dose"])
                if sd is not None:
                    dose.append((ci, sd))
        if advance is not None:
            for msg in _timing_problems(advance, duration, planned, ats):
                fld, _, text = msg.partition(": ")
                if fld == "duration" and duration is None and raw.get("duration") is not None:
                    continue  # a duration is given but invalid: its own problem says why
                out.append(PresetProblem(file, pid, fld, text))
        length = duration if advance is Advance.AUTO else planned
        outlines.append(_PhaseOutline(pid, raw.get("kind") == "dosing", length, tuple(dose), tuple(last_dose)))
    out.extend(PresetProblem(file, None, None, msg) for msg in _outline_problems(outlines))
    return out


class _Problems(ValueError):
    """Several rule violations found by one validator; messages start with their field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- errors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PresetProblem:
    file: str
    phase: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.phase:
            parts.append(f"phase '{self.phase}'")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)

    def as_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "phase": self.phase, "field": self.field,
                "message": self.message, "text": str(self)}


class PresetError(ValueError):
    def __init__(self, problems: list[PresetProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_MODEL_FIELDS: dict[str, type[BaseModel]] = {
    "": Preset, "phases": Phase, "lights": PhaseLights, "music": PhaseMusic, "cues": Cue,
    "monitoring": Monitoring, "check_look": CheckLook, "observations": Observation, "ranges": Ranges,
    "systolic": Range, "diastolic": Range, "heart_rate": Range, "spo2": Range,
}


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else shown(value)


def _phase_label(raw: object, index: int) -> str:
    """How a message names a raw phase: its id when that is a string, else its position. Never
    str() of anything else: a YAML alias can make an id a structure of a billion items."""
    pid = raw.get("id") if isinstance(raw, dict) else None
    return shown(pid) if isinstance(pid, str) else f"#{index + 1}"


def shown(value: object, limit: int = 40) -> str:
    """A value as a message may quote it: short, so a huge value never fills an answer."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        try:
            text = repr(value)
        except ValueError:  # an integer with thousands of digits
            return "a very large number"
    else:
        return f"a {type(value).__name__}"  # never the repr of a structure: it may be huge
    return text if len(text) <= limit else text[: limit - 1] + "…"


def friendly_message(err: Any) -> str:
    """One pydantic error as a sentence a clinic can act on (without its location)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "less_than_equal":
        return f"{_num(value)} is above {_num(ctx['le'])}"
    if kind == "greater_than_equal":
        return f"{_num(value)} is below {_num(ctx['ge'])}"
    if kind == "greater_than":
        return f"{_num(value)} must be more than {_num(ctx['gt'])}"
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch":
        if err["loc"] and err["loc"][-1] == "color":
            return f"{shown(value)!r} is not a colour (use \"#rrggbb\")"
        return f"{shown(value)!r} must be lower-case letters, digits, - or _"
    if kind == "enum":
        return f"{shown(value)!r} is not one of {ctx.get('expected')}"
    if kind == "too_short" and err["loc"] and err["loc"][-1] == "phases":
        return "a preset needs at least one phase"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} allowed"
    if kind in ("float_type", "bool_type", "int_type"):
        what = {"float_type": "a number", "bool_type": "true or false", "int_type": "a whole number"}[kind]
        return f"{shown(value)} is not {what}"
    if kind == "value_error":
        error = ctx.get("error")
        return str(error) if error is not None else err["msg"]
    return str(err["msg"])


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    key = shown(loc[-1])
    parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
    model = _MODEL_FIELDS.get(parent, Preset)
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}; known: {', '.join(model.model_fields)}"


def problems_from_validation(err: ValidationError, data: Any, file: str) -> list[PresetProblem]:
    """Turn pydantic's errors into problems that name file, phase id and field."""
    out: list[PresetProblem] = []
    raw_phases = data.get("phases") if isinstance(data, dict) else None
    errors = err.errors()
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "too_short" and loc == ("phases",) and len(errors) > 1:
            continue  # pydantic's echo of a phase that failed; that phase's own error says why
        phase: str | None = None
        rest = loc
        if len(loc) >= 2 and loc[0] == "phases" and isinstance(loc[1], int):
            i = loc[1]
            raw = raw_phases[i] if isinstance(raw_phases, list) and i < len(raw_phases) else None
            phase = _phase_label(raw, i)
            rest = loc[2:]
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in rest).replace(".[", "[")
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, _Problems):
            for msg in error.problems:
                sub, _, text = msg.partition(": ")
                if sub.startswith("phase '"):
                    out.append(PresetProblem(file, None, None, msg))
                else:
                    full = f"{field}.{sub}" if field else sub
                    out.append(PresetProblem(file, phase, full, text))
            continue
        message = _unknown_key_message(loc) if e["type"] == "extra_forbidden" else friendly_message(e)
        out.append(PresetProblem(file, phase, field or None, message))
    return out


# --- files --------------------------------------------------------------------------------


def parse_preset(data: Any, file: str = "<preset>") -> Preset:
    """Validate already-parsed data (from YAML or JSON). Raises PresetError with every problem."""
    if not isinstance(data, dict):
        raise PresetError([PresetProblem(file, None, None, "a preset must be a mapping with name and phases")])
    _check_sizes(data, file)
    try:
        return Preset.model_validate(data)
    except ValidationError as err:
        problems = problems_from_validation(err, data, file)
    for extra in _raw_rule_problems(data, file):
        if str(extra) not in {str(p) for p in problems}:
            problems.append(extra)
    raise PresetError(problems)


def _check_sizes(data: dict[str, Any], file: str) -> None:
    """Refuse an oversized preset before validating it: pydantic checks a tuple's length only
    after validating every item, so 20,000 phases would cost seconds before the refusal."""
    phases = data.get("phases")
    if isinstance(phases, list | tuple):
        if len(phases) > MAX_PHASES:
            raise PresetError([PresetProblem(file, None, "phases",
                                             f"{len(phases)} phases: at most {MAX_PHASES} allowed")])
        for i, phase in enumerate(phases):
            cues = phase.get("cues") if isinstance(phase, dict) else None
            if isinstance(cues, list | tuple) and len(cues) > MAX_CUES:
                raise PresetError([PresetProblem(file, _phase_label(phase, i),
                                                 "cues", f"{len(cues)} reminders: at most {MAX_CUES} allowed")])


class _PresetYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with two refusals, checked while the document is composed, before
    any value is built: aliases (``*name``: a few lines can expand to gigabytes, and a preset
    never needs them) and nesting deeper than `MAX_YAML_DEPTH` (composing recurses)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # PyYAML's name
        # Refused while scanning: for "[[[[…" the scanner looks ahead up to 1,024 characters
        # for a possible key at every level, and that alone costs 0.4 s per 10,000 brackets.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise _YamlRefused(f"nested more than {MAX_YAML_DEPTH} levels deep", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves it untyped
            raise _YamlRefused(f"YAML aliases (*{shown(event.anchor, 20)}) are not allowed in a preset: "
                               "write the value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
                raise _YamlRefused(f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _YamlRefused(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"


def parse_preset_yaml(text: str, file: str = "<preset>") -> Preset:
    """Parse preset YAML (bounded: size, depth, no aliases) and validate it. A blocking call:
    run it in a thread when an event loop is waiting."""
    if len(text) > MAX_PRESET_CHARS:
        raise PresetError([PresetProblem(file, None, None,
                                         f"{len(text):,} characters: a preset has at most {MAX_PRESET_CHARS:,}")])
    loader: _PresetYamlLoader | None = None
    try:
        loader = _PresetYamlLoader(text)  # reads the text: a non-printable character raises here
        data = loader.get_single_data()
    except _YamlRefused as err:
        raise PresetError([PresetProblem(file, None, None, f"YAML at {_where(err.mark)}: {err}")]) from None
    except yaml.MarkedYAMLError as err:
        raise PresetError([PresetProblem(file, None, None,
                                         f"YAML syntax error at {_where(err.problem_mark)}: {err.problem}")]) from None
    except yaml.YAMLError as err:
        raise PresetError([PresetProblem(file, None, None, f"YAML error: {shown(str(err), 200)}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return parse_preset(data, file)


def load_preset(path: str | Path) -> Preset:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > 4 * MAX_PRESET_CHARS:  # UTF-8 takes at most 4 bytes a character
            raise PresetError([PresetProblem(p.name, None, None, f"{size:,} bytes: too large for a preset")])
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PresetError([PresetProblem(p.name, None, None, f"cannot read: {err}")]) from None
    return parse_preset_yaml(text, p.name)


def preset_to_yaml(preset: Preset) -> str:
    data = preset.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    for phase in data["phases"]:
        if not phase.get("cues"):
            phase.pop("cues", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def save_preset(preset: Preset, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".preset-", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(preset_to_yaml(preset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def preset_files(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
