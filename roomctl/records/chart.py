"""A preset's whole timeline sampled for charts: phase bands, light and music curves, cues.

Manual phases are drawn at their planned length, as `roomctl simulate` plays them.
"""

from __future__ import annotations

from dataclasses import dataclass

from roomctl.events import Event, EventKind
from roomctl.preset import Advance, Preset
from roomctl.room import Safety
from roomctl.timeline import evaluate_many


@dataclass(frozen=True)
class Band:
    id: str
    title: str
    kind: str
    advance: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Sample:
    t_s: float
    brightness: float
    color_temp: int | None
    rgb: str
    volume: float
    playlist: str | None


@dataclass(frozen=True)
class CueMark:
    t_s: float
    id: str
    phase: str
    text: str


@dataclass(frozen=True)
class Chart:
    total_s: float
    phases: list[Band]
    samples: list[Sample]
    cues: list[CueMark]


MANUAL_FALLBACK_S = 600.0  # a manual phase with no planned time is drawn 10 minutes long


def planned_events(preset: Preset) -> tuple[list[Event], list[float]]:
    """Events of a session played as planned, and each phase's start (seconds)."""
    events = [Event(kind=EventKind.STARTED, at=0.0)]
    starts, t = [], 0.0
    for p in preset.phases:
        starts.append(t)
        length = p.planned_s or MANUAL_FALLBACK_S
        t += length
        if p.advance is Advance.MANUAL:
            events.append(Event(kind=EventKind.ADVANCED, at=t))
    starts.append(t)
    return events, starts


def chart(preset: Preset, points: int = 300, safety: Safety | None = None) -> Chart:
    events, starts = planned_events(preset)
    total = starts[-1]
    bands = [
        Band(p.id, p.display_title, str(p.kind), str(p.advance), starts[i], starts[i + 1])
        for i, p in enumerate(preset.phases)
    ]
    times = sorted({total * i / points for i in range(points + 1)} | set(starts))
    # One pass over the events for every sample (evaluating each afresh would be quadratic).
    at: list[float] = []
    for t in times:
        at.append(max(at[-1] if at else 0.0, min(t, total - 1e-6) if t >= total else t))
    *statuses, final = evaluate_many(preset, events, [*at, max(total, at[-1] if at else total)], safety)
    samples = []
    for t, st in zip(times, statuses, strict=True):
        look = st.light_now
        vol = st.music.volume if st.music.playlist and st.music.playing else 0.0
        samples.append(Sample(round(t, 3), round(look.brightness, 2), look.color_temp,
                              look.display_rgb(), round(vol, 2), st.music.playlist))
    cues = [CueMark(round(c.due_at, 3), c.id, c.phase, c.text)
            for c in (*final.cues_due, *final.cues_acknowledged)]
    return Chart(total, bands, samples, sorted(cues, key=lambda c: c.t_s))
