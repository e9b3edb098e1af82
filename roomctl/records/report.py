"""A picture of a session for the record: phases, light and music over time, the therapist's
adjustments, Lights up and reminders, as one self-contained SVG.

Everything is derived from (preset, events) by the pure timeline, so the picture of a
recorded session is exactly what the room was told to do. Dark, low-glare colours: the
report is read on the tablet in a dim room as well as printed into notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from roomctl import units
from roomctl.events import Event, EventKind
from roomctl.preset import PhaseKind, Preset
from roomctl.room import Safety
from roomctl.timeline import Status, evaluate, evaluate_many

SAMPLES = 400

_BG = "#101214"
_PLOT_BG = "#15181b"
_GRID = "#2a2f35"
_TEXT = "#8f99a3"
_TEXT_STRONG = "#b7c0c8"
_BRIGHTNESS = "#d9a35e"  # warm amber
_VOLUME = "#6aa9ad"  # muted teal
_EMERGENCY = "#b8433a"
_REMINDER = "#a395cf"
_FLOW = "#aeb4ba"
_PHASE_FILL: dict[PhaseKind, str] = {
    PhaseKind.PREPARATION: "#2c3a48",
    PhaseKind.DOSING: "#453a2c",
    PhaseKind.JOURNEY: "#382c48",
    PhaseKind.RETURN: "#2c4338",
    PhaseKind.INTEGRATION: "#41412c",
    PhaseKind.CUSTOM: "#33373b",
}
_MARK_COLOUR: dict[EventKind, str] = {
    EventKind.LIGHTS_SET: _BRIGHTNESS,
    EventKind.MUSIC_SET: _VOLUME,
}
ADJUSTMENTS = frozenset({
    EventKind.LIGHTS_SET, EventKind.MUSIC_SET, EventKind.OVERRIDE_CLEARED, EventKind.HELD,
    EventKind.RESUMED, EventKind.EXTENDED, EventKind.ADVANCED, EventKind.JUMPED,
})
_KIND_LABEL: dict[EventKind, str] = {
    EventKind.STARTED: "Started",
    EventKind.ADVANCED: "Next phase",
    EventKind.HELD: "Hold",
    EventKind.RESUMED: "Resume",
    EventKind.EXTENDED: "Extend",
    EventKind.JUMPED: "Jump",
    EventKind.LIGHTS_SET: "Lights",
    EventKind.MUSIC_SET: "Music",
    EventKind.OVERRIDE_CLEARED: "Back to preset",
    EventKind.EMERGENCY_ON: "Lights up",
    EventKind.EMERGENCY_OFF: "Lights up released",
    EventKind.CUE_ACKNOWLEDGED: "Reminder acknowledged",
    EventKind.UNDONE: "Phase change taken back",
    EventKind.OUTSIDE_CHANGE: "Changed outside roomctl",
    EventKind.DOSE_GIVEN: "Dose",
    EventKind.VITALS_RECORDED: "Vitals",
    EventKind.ALERT_ACKNOWLEDGED: "Highlighted vitals seen",
    EventKind.ENDED: "Ended",
}


# --- describing events ----------------------------------------------------------------------


def describe_event(event: Event, preset: Preset) -> str:
    """An event's details in a few words ("brightness 30%, over 1s"), for tables and charts."""
    k = event.kind
    parts: list[str] = []
    if k is EventKind.EXTENDED and event.seconds:
        parts.append(f"by {units.format_duration(round(event.seconds, 1))}")
    elif k is EventKind.JUMPED and event.phase:
        title = next((p.display_title for p in preset.phases if p.id == event.phase), event.phase)
        parts.append(f"to {title}")
    elif k is EventKind.LIGHTS_SET and event.lights is not None:
        lc = event.lights
        if lc.brightness is not None:
            parts.append(f"brightness {lc.brightness:g}%")
        if lc.color_temp is not None:
            parts.append(f"{lc.color_temp}K")
        if lc.color is not None:
            parts.append(f"colour {lc.color}")
        parts.append(f"over {units.format_duration(round(lc.transition, 1))}")
    elif k is EventKind.MUSIC_SET and event.music is not None:
        mc = event.music
        if mc.volume is not None:
            parts.append(f"volume {mc.volume:g}%")
        if mc.playing is not None:
            parts.append("play" if mc.playing else "pause")
        if mc.skip is not None:
            parts.append(f"skip to {mc.skip} track")
    elif k is EventKind.CUE_ACKNOWLEDGED and event.cue:
        parts.append(f"{cue_text(preset, event.cue)} [{event.cue}]")
    elif k is EventKind.UNDONE and event.undoes is not None:
        parts.append(f"event {event.undoes} taken back")
    elif k is EventKind.DOSE_GIVEN and event.dose is not None:
        d = event.dose
        parts.extend(x for x in (d.route, d.amount) if x)
        if d.given_at is not None and abs(d.given_at - event.at) >= 60:
            parts.append(f"given {units.format_clock(event.at - d.given_at)} before it was recorded")
    elif k is EventKind.VITALS_RECORDED and event.vitals is not None:
        parts.extend(f"{key} {value}" for key, value in event.vitals.values().items())
        if event.cue:
            parts.append(f"for {cue_text(preset, event.cue)} [{event.cue}]")
    elif k is EventKind.ALERT_ACKNOWLEDGED and event.alert:
        parts.append(event.alert)
    elif k is EventKind.OUTSIDE_CHANGE and event.outside:
        parts.append(event.outside)
    if event.reason and k is not EventKind.CUE_ACKNOWLEDGED:
        parts.append(event.reason)
    if k is EventKind.CUE_ACKNOWLEDGED and event.reason:
        parts.append(f"check {event.reason}")
    if event.by is not None:
        parts.append(f"by {event.by.name or event.by.id}")
    return ", ".join(parts)


def event_text(event: Event, preset: Preset) -> str:
    """What an event was, in a few words for a therapist ("Lights: brightness 30%, over 1s")."""
    details = describe_event(event, preset)
    return f"{_KIND_LABEL[event.kind]}: {details}" if details else _KIND_LABEL[event.kind]


def cue_text(preset: Preset, cue_id: str) -> str:
    """The text of reminder ``cue_id`` ("<phase id>/<index>", or "…/dose<k>" for a reminder timed
    from the latest dose)."""
    if cue_id.rpartition("/")[2].startswith("dose"):
        cue_id = cue_id.rpartition("/")[0]
    phase_id, _, index = cue_id.rpartition("/")
    for p in preset.phases:
        if p.id == phase_id and index.isdigit() and int(index) < len(p.cues):
            return p.cues[int(index)].text
    return "reminder"


# --- what happened when -------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A stretch of the session spent in one phase."""

    phase_index: int
    start_t: float
    end_t: float


def phase_visits(preset: Preset, events: Sequence[Event], end_t: float,
                 safety: Safety | None = None) -> list[Visit]:
    """Every phase visit up to ``end_t``, in order, with exact boundaries. A phase begins at an
    event or when the phase before it runs out, so evaluate at every event, then at every
    countdown's end found so far, until no new ones turn up (a pass per auto phase at most)."""
    start = events[0].at
    seen: dict[float, Status] = {}
    todo = sorted({start, *(e.at for e in events if start <= e.at <= end_t)})
    for _ in range(2 * len(preset.phases) + 2):
        if not todo:
            break
        found = evaluate_many(preset, events, todo, safety)
        seen.update(zip(todo, found, strict=True))
        ends: set[float] = set()
        for t, st in zip(todo, found, strict=True):
            if st.remaining_s is None:
                continue
            end = t + st.remaining_s
            if end <= t:
                end = math.nextafter(t, math.inf)  # rounding left us a hair before the end
            if end < end_t and end not in seen:
                ends.add(end)
        todo = sorted(ends)
    starts: list[tuple[int, float]] = []
    ended_at: float | None = None
    for t in sorted(seen):
        st = seen[t]
        if st.ended_at is not None:
            ended_at = st.ended_at
        key = (st.phase_index, st.phase_started_at)
        if not starts or starts[-1] != key:
            starts.append(key)
    stop = min(end_t, ended_at) if ended_at is not None else end_t
    return [Visit(idx, s, max(s, starts[n + 1][1] if n + 1 < len(starts) else stop))
            for n, (idx, s) in enumerate(starts)]


def emergency_spans(events: Sequence[Event], end_t: float) -> list[tuple[float, float]]:
    """Lights up, from on to off (or to ``end_t`` if never released)."""
    spans: list[tuple[float, float]] = []
    on: float | None = None
    for e in events:
        if e.kind is EventKind.EMERGENCY_ON and on is None:
            on = e.at
        elif e.kind is EventKind.EMERGENCY_OFF and on is not None:
            spans.append((on, e.at))
            on = None
    if on is not None:
        spans.append((on, max(on, end_t)))
    return spans


def _volume(st: Status) -> float:
    m = st.music
    return m.volume if m.playlist is not None and m.playing else 0.0


# --- drawing --------------------------------------------------------------------------------


def _hmm(seconds: float) -> str:
    total = max(0, round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}"


def _tick_step(span_s: float) -> float:
    for step in (60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400):
        if span_s / step <= 10:
            return float(step)
    return 28800.0


def _f(x: float) -> str:
    return f"{x:.1f}"


def _attr(value: str) -> str:
    return quoteattr(value)


def session_report_svg(preset: Preset, events: Sequence[Event], safety: Safety | None = None,
                       *, end_t: float | None = None, width: int = 960, height: int = 360,
                       fit: bool = False) -> str:
    """The session as an SVG chart, up to ``end_t`` (clock seconds; by default its last event,
    which for a recorded session is its end: pass now for a live session). The time axis spans
    at least a minute.

    ``fit``: sized to whatever shows it (an <img> as wide as its box, or the whole browser
    window when opened on its own), the dark background reaching every edge, so that a report
    opened by itself in a dim room is not a small dark picture on a white page."""
    if not events or events[0].kind is not EventKind.STARTED:
        raise ValueError("a session's events begin with 'started'")
    safety = safety or Safety()
    start = events[0].at
    end_t = max(start, events[-1].at if end_t is None else end_t)
    final = evaluate(preset, events, end_t, safety)
    ended_at = final.ended_at  # None: not ended by end_t
    stop = end_t if ended_at is None else ended_at
    span = max(end_t, start + 60.0) - start

    left, right, top = 44.0, 14.0, 40.0
    lanes_h = 30.0
    bottom = 22.0 + lanes_h
    px0, px1 = left, width - right
    py0, py1 = top, height - bottom
    lane_marks, lane_cues = py1 + 10.0, py1 + 23.0

    def x(t: float) -> float:
        return px0 + (min(max(t, start), start + span) - start) / span * (px1 - px0)

    def y(percent: float) -> float:
        return py1 - min(max(percent, 0.0), 100.0) / 100.0 * (py1 - py0)

    out: list[str] = []
    add = out.append
    title = f"Session report: {preset.name}"
    size = ('width="100%" height="100%" preserveAspectRatio="xMidYMin meet"' if fit
            else f'width="{width}" height="{height}"')
    add(f'<svg xmlns="http://www.w3.org/2000/svg" {size} '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={_attr(title)} '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11">')
    add(f"<title>{escape(title)}</title>")
    if fit:  # beyond the picture, to the window's edges: the viewBox does not clip it
        add(f'<rect x="{-20 * width}" y="{-20 * height}" width="{41 * width}" height="{41 * height}" fill="{_BG}"/>')
    else:
        add(f'<rect width="{width}" height="{height}" fill="{_BG}"/>')
    length = units.format_clock(stop - start)
    state = "" if ended_at is not None else " (not ended)"
    add(f'<text x="{_f(px0)}" y="18" fill="{_TEXT_STRONG}" font-size="13">'
        f"{escape(preset.name)} · {length}{escape(state)}</text>")
    _legend(add, px1)
    add(f'<rect x="{_f(px0)}" y="{_f(py0)}" width="{_f(px1 - px0)}" height="{_f(py1 - py0)}" '
        f'fill="{_PLOT_BG}"/>')

    # Phase bands, with their titles where they fit.
    visits = phase_visits(preset, events, end_t, safety)
    add('<g class="phases">')
    for v in visits:
        p = preset.phases[v.phase_index]
        bx0, bx1 = x(v.start_t), x(v.end_t)
        tip = (f"{p.display_title} ({p.kind}): {units.format_clock(v.start_t - start)}"
               f" to {units.format_clock(v.end_t - start)}")
        add(f'<g class="phase" data-phase={_attr(p.id)}><title>{escape(tip)}</title>'
            f'<rect class="phase-band" x="{_f(bx0)}" y="{_f(py0)}" width="{_f(max(bx1 - bx0, 0.5))}" '
            f'height="{_f(py1 - py0)}" fill="{_PHASE_FILL[p.kind]}" fill-opacity="0.55"/>'
            f'<line x1="{_f(bx0)}" y1="{_f(py0)}" x2="{_f(bx0)}" y2="{_f(py1)}" stroke="{_GRID}"/>')
        label = _fit(p.display_title, bx1 - bx0 - 8)
        if label:
            add(f'<text x="{_f(bx0 + 4)}" y="{_f(py0 + 13)}" fill="{_TEXT_STRONG}">'
                f"{escape(label)}</text>")
        add("</g>")
    add("</g>")

    # Grid: brightness/volume percent and time ticks.
    for pct in (0, 50, 100):
        add(f'<line x1="{_f(px0)}" y1="{_f(y(pct))}" x2="{_f(px1)}" y2="{_f(y(pct))}" '
            f'stroke="{_GRID}" stroke-dasharray="2 4"/>'
            f'<text x="{_f(px0 - 6)}" y="{_f(y(pct) + 4)}" fill="{_TEXT}" '
            f'text-anchor="end">{pct}%</text>')
    step = _tick_step(span)
    add('<g class="ticks">')
    k = 0
    while k * step <= span + 1e-9:
        tx = x(start + k * step)
        add(f'<line x1="{_f(tx)}" y1="{_f(py1)}" x2="{_f(tx)}" y2="{_f(py1 + 4)}" stroke="{_TEXT}"/>'
            f'<text x="{_f(tx)}" y="{_f(height - 6)}" fill="{_TEXT}" text-anchor="middle">'
            f"{_hmm(k * step)}</text>")
        k += 1
    add("</g>")

    # Lights up, under the curves.
    for on, off in emergency_spans([e for e in events if e.at <= end_t], stop):
        tip = f"Lights up {units.format_clock(on - start)} to {units.format_clock(off - start)}"
        add(f'<rect class="emergency" x="{_f(x(on))}" y="{_f(py0)}" '
            f'width="{_f(max(x(off) - x(on), 2.0))}" height="{_f(py1 - py0)}" fill="{_EMERGENCY}" '
            f'fill-opacity="0.35"><title>{escape(tip)}</title></rect>')

    # The curves: evenly sampled, plus both sides of every change so steps stay steps.
    changes = {e.at for e in events} | {v.start_t for v in visits}
    times = {start + (end_t - start) * i / (SAMPLES - 1) for i in range(SAMPLES)}
    times |= {c for c in changes if start <= c <= end_t}
    times |= {c - 1e-3 for c in changes if start < c - 1e-3 <= end_t}
    bri_pts: list[str] = []
    vol_pts: list[str] = []
    ordered = sorted(times)
    for t, st in zip(ordered, evaluate_many(preset, events, ordered, safety), strict=True):
        for pts, value in ((bri_pts, st.light_now.brightness), (vol_pts, _volume(st))):
            point = f"{_f(x(t))} {_f(y(value))}"
            if not pts or pts[-1] != point:  # the same pixel again adds nothing
                pts.append(point)
    for cls, colour, pts in (("volume", _VOLUME, vol_pts), ("brightness", _BRIGHTNESS, bri_pts)):
        add(f'<path class="{cls}" d="M{" L".join(pts)}" fill="none" stroke="{colour}" '
            f'stroke-width="2" stroke-linejoin="round"><title>{cls}</title></path>')

    # The therapist's adjustments, in a lane under the chart. A slider drag sends a command
    # every 100 ms: a run of one kind within a few pixels is one mark.
    add('<g class="adjustments">')
    for group in _mark_groups([e for e in events if e.kind in ADJUSTMENTS], x):
        first, last = group[0], group[-1]
        ex = x(first.at)
        details = describe_event(last, preset)
        when = units.format_clock(first.at - start)
        if len(group) > 1:
            when += f" to {units.format_clock(last.at - start)}"
        label = _KIND_LABEL[first.kind] + (f" ({len(group)} changes)" if len(group) > 1 else "")
        tip = f"{when} {label}" + (f": {details}" if details else "")
        colour = _MARK_COLOUR.get(first.kind, _FLOW)
        add(f'<g class="mark" data-kind="{first.kind.value}" data-count="{len(group)}">'
            f"<title>{escape(tip)}</title>"
            f'<line x1="{_f(ex)}" y1="{_f(py1)}" x2="{_f(ex)}" y2="{_f(lane_marks - 4)}" '
            f'stroke="{colour}" stroke-opacity="0.6"/>'
            f'<path d="M{_f(ex)} {_f(lane_marks - 4)} l4 7 h-8 z" fill="{colour}"/></g>')
    add("</g>")

    # Reminders: a diamond when acknowledged (a faint line back to when it came due), a
    # hollow one for a reminder that came due and was never acknowledged.
    add('<g class="reminders">')
    for c in final.cues_acknowledged:
        assert c.acknowledged_at is not None
        ax, dx = x(c.acknowledged_at), x(c.due_at)
        tip = (f"{c.text} — due {units.format_clock(c.due_at - start)}, acknowledged "
               f"{units.format_clock(c.acknowledged_at - start)}" + (f". Note: {c.note}" if c.note else ""))
        add(f'<g class="reminder" data-cue={_attr(c.id)}><title>{escape(tip)}</title>'
            f'<line x1="{_f(dx)}" y1="{_f(lane_cues)}" x2="{_f(ax)}" y2="{_f(lane_cues)}" '
            f'stroke="{_REMINDER}" stroke-opacity="0.5"/>'
            f'<path d="M{_f(ax)} {_f(lane_cues - 5)} l5 5 l-5 5 l-5 -5 z" fill="{_REMINDER}"/></g>')
    for c in final.cues_due:
        dx = x(c.due_at)
        tip = f"{c.text} — due {units.format_clock(c.due_at - start)}, not acknowledged"
        add(f'<g class="reminder-missed" data-cue={_attr(c.id)}><title>{escape(tip)}</title>'
            f'<path d="M{_f(dx)} {_f(lane_cues - 5)} l5 5 l-5 5 l-5 -5 z" fill="none" '
            f'stroke="{_REMINDER}"/></g>')
    add("</g>")

    if ended_at is not None:
        ex = x(ended_at)
        add(f'<line class="end" x1="{_f(ex)}" y1="{_f(py0)}" x2="{_f(ex)}" y2="{_f(py1)}" '
            f'stroke="{_TEXT_STRONG}" stroke-dasharray="3 3"><title>Ended '
            f"{units.format_clock(ended_at - start)}</title></line>")
    add("</svg>")
    return "\n".join(out) + "\n"


def _mark_groups(events: Sequence[Event], x: Callable[[float], float],
                 px: float = 4.0) -> list[list[Event]]:
    groups: list[list[Event]] = []
    for e in events:
        g = groups[-1] if groups else None
        if g is not None and g[0].kind is e.kind and x(e.at) - x(g[0].at) < px:
            g.append(e)
        else:
            groups.append([e])
    return groups


def _legend(add: Callable[[str], None], right_x: float) -> None:
    items = (("brightness", _BRIGHTNESS, "line"), ("volume", _VOLUME, "line"),
             ("Lights up", _EMERGENCY, "box"), ("reminder", _REMINDER, "diamond"))
    xx = right_x
    parts: list[str] = []
    for text, colour, shape in reversed(items):
        w = 6.6 * len(text) + 34
        xx -= w
        if shape == "line":
            sym = (f'<line x1="{_f(xx)}" y1="14" x2="{_f(xx + 14)}" y2="14" stroke="{colour}" '
                   'stroke-width="2"/>')
        elif shape == "box":
            sym = (f'<rect x="{_f(xx)}" y="9" width="14" height="10" fill="{colour}" '
                   'fill-opacity="0.35"/>')
        else:
            sym = f'<path d="M{_f(xx + 7)} 9 l5 5 l-5 5 l-5 -5 z" fill="{colour}"/>'
        parts.append(f'{sym}<text x="{_f(xx + 18)}" y="18" fill="{_TEXT}">{escape(text)}</text>')
    add('<g class="legend">' + "".join(parts) + "</g>")


def _fit(text: str, width_px: float, char_px: float = 6.3) -> str:
    """The title, shortened with an ellipsis to fit ``width_px``; empty when nothing fits."""
    n = int(width_px // char_px)
    if n >= len(text):
        return text
    if n < 4:
        return ""
    return text[: n - 1] + "…"
