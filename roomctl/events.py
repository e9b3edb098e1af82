"""Session events: the append-only record a session is made of.

Everything the room should do at time t is a pure function of (preset, events, t) — see
`roomctl.timeline`. Phase changes that happen on their own (a countdown running out) are
not events: they follow from the events and the preset.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from roomctl.preset import HexColor, Kelvin, Percent, Transition


class EventKind(StrEnum):
    STARTED = "started"
    ADVANCED = "advanced"
    HELD = "held"
    RESUMED = "resumed"
    EXTENDED = "extended"
    JUMPED = "jumped"
    LIGHTS_SET = "lights_set"
    MUSIC_SET = "music_set"
    OVERRIDE_CLEARED = "override_cleared"
    EMERGENCY_ON = "emergency_on"
    EMERGENCY_OFF = "emergency_off"
    CUE_ACKNOWLEDGED = "cue_acknowledged"
    DOSE_GIVEN = "dose_given"
    VITALS_RECORDED = "vitals_recorded"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"  # a highlighted vitals value was seen by a clinician
    OUTSIDE_CHANGE = "outside_change"  # a lamp changed by something other than roomctl (noted only)
    UNDONE = "undone"  # the therapist took back the phase change at `undoes` (a Next pressed by mistake)
    ENDED = "ended"


class LightsChange(BaseModel):
    """A therapist's change to the lights; unset fields keep the phase's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brightness: Percent | None = None
    color_temp: Kelvin | None = None
    color: HexColor | None = None
    transition: Transition = 1.0

    @model_validator(mode="after")
    def _something(self) -> LightsChange:
        if self.color is not None and self.color_temp is not None:
            raise ValueError("set either color or color_temp, not both")
        if self.brightness is None and self.color is None and self.color_temp is None:
            raise ValueError("give brightness, color_temp or color")
        return self


class MusicChange(BaseModel):
    """A therapist's change to the music: a volume, play/pause, or a track skip."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    volume: Percent | None = None
    playing: StrictBool | None = None  # 0 and "yes" are mistakes, not false and true
    skip: Literal["next", "previous"] | None = None

    @model_validator(mode="after")
    def _something(self) -> MusicChange:
        if self.volume is None and self.playing is None and self.skip is None:
            raise ValueError("give volume, playing or skip")
        return self


class Dose(BaseModel):
    """A dose as the clinician records it: when (default: when recorded), route and amount as
    free text (roomctl records; it never advises)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    given_at: Annotated[float, Field(allow_inf_nan=False)] | None = None  # epoch seconds
    route: Annotated[str, Field(min_length=1, max_length=40)] | None = None  # e.g. "sublingual", "IM"
    amount: Annotated[str, Field(min_length=1, max_length=80)] | None = None  # e.g. "0.5 mg/kg"


# Plausibility, not medicine: a value outside these is a typing mistake (the clinic's own
# ranges, in the preset, decide what is highlighted).
PLAUSIBLE: dict[str, tuple[int, int]] = {
    "systolic": (40, 300), "diastolic": (20, 200), "heart_rate": (20, 250), "spo2": (50, 100)}
VITALS_UNITS: dict[str, str] = {"systolic": "mmHg", "diastolic": "mmHg", "heart_rate": "/min", "spo2": "%"}


class Vitals(BaseModel):
    """One vitals check: blood pressure, heart rate, SpO2, and the clinic's own observations
    (by their id in the preset: a scale value, or 0/1 for yes/no)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    systolic: Annotated[int, Field(ge=PLAUSIBLE["systolic"][0], le=PLAUSIBLE["systolic"][1])] | None = None
    diastolic: Annotated[int, Field(ge=PLAUSIBLE["diastolic"][0], le=PLAUSIBLE["diastolic"][1])] | None = None
    heart_rate: Annotated[int, Field(ge=PLAUSIBLE["heart_rate"][0], le=PLAUSIBLE["heart_rate"][1])] | None = None
    spo2: Annotated[int, Field(ge=PLAUSIBLE["spo2"][0], le=PLAUSIBLE["spo2"][1])] | None = None
    observations: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=30)],
                                 Annotated[int, Field(ge=0, le=100)]], Field(max_length=12)] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _sensible(self) -> Vitals:
        if self.systolic is None and self.diastolic is None and self.heart_rate is None \
                and self.spo2 is None and not self.observations:
            raise ValueError("give at least one value")
        if (self.systolic is None) != (self.diastolic is None):
            raise ValueError("blood pressure needs both systolic and diastolic")
        if self.systolic is not None and self.diastolic is not None and self.diastolic >= self.systolic:
            raise ValueError(f"diastolic {self.diastolic} is not below systolic {self.systolic}")
        return self

    def values(self) -> dict[str, int]:
        """Every value given, vitals first, by field name."""
        out = {k: v for k in PLAUSIBLE if (v := getattr(self, k)) is not None}
        return {**out, **self.observations}


class DeviceRef(BaseModel):
    """Which paired device issued an event, with its name at the time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(max_length=40)]
    name: Annotated[str, Field(max_length=80)] | None = None


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EventKind
    at: float  # clock seconds (epoch seconds on the real clock)
    seconds: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None  # extended
    phase: str | None = None  # jumped
    lights: LightsChange | None = None  # lights_set
    music: MusicChange | None = None  # music_set
    cue: str | None = None  # cue_acknowledged (and vitals_recorded answering a check)
    note: Annotated[str, Field(max_length=500)] | None = None  # cue_acknowledged, vitals_recorded
    reason: str | None = None  # ended, emergency
    preset_id: str | None = None  # started: the library id the preset was started from
    undoes: Annotated[int, Field(ge=1)] | None = None  # undone: the index of the event taken back
    dose: Dose | None = None  # dose_given
    vitals: Vitals | None = None  # vitals_recorded (``cue``: the check it answers, if any)
    alert: str | None = None  # alert_acknowledged: the vitals record's id ("vitals/<index>")
    by: DeviceRef | None = None  # the paired device that issued it (None: the service itself)
    outside: Annotated[str, Field(max_length=300)] | None = None  # outside_change: what changed, what roomctl did
    # The wall clock when recorded, kept only when it differed from `at` (session time) by
    # more than a second: the wall clock was stepped while the session ran.
    wall: float | None = None
