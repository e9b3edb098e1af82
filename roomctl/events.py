"""Session events: the append-only record a session is made of.

Everything the room should do at time t is a pure function of (preset, events, t) — see
`roomctl.timeline`. Phase changes that happen on their own (a countdown running out) are
not events: they follow from the events and the preset.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    playing: bool | None = None
    skip: Literal["next", "previous"] | None = None

    @model_validator(mode="after")
    def _something(self) -> MusicChange:
        if self.volume is None and self.playing is None and self.skip is None:
            raise ValueError("give volume, playing or skip")
        return self


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EventKind
    at: float  # clock seconds (epoch seconds on the real clock)
    seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None  # extended
    phase: str | None = None  # jumped
    lights: LightsChange | None = None  # lights_set
    music: MusicChange | None = None  # music_set
    cue: str | None = None  # cue_acknowledged
    note: Annotated[str, Field(max_length=500)] | None = None  # cue_acknowledged
    reason: str | None = None  # ended, emergency
    preset_id: str | None = None  # started: the library id the preset was started from
    undoes: Annotated[int, Field(ge=1)] | None = None  # undone: the index of the event taken back
    # The wall clock when recorded, kept only when it differed from `at` (session time) by
    # more than a second: the wall clock was stepped while the session ran.
    wall: float | None = None
