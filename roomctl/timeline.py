"""The pure timeline: (preset, events, t) -> what the room should be doing at t.

No clocks, no drivers, no I/O. Auto-advances are derived, not recorded, so a session
replayed from its events is the same session. Events that do not fit the state (resume
when not held, anything after the end) are ignored here; the runner refuses them earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from roomctl.curves import Fade
from roomctl.events import PLAUSIBLE, Event, EventKind, LightsChange
from roomctl.preset import Advance, CheckLook, Phase, PhaseKind, Preset
from roomctl.room import DEFAULT_KELVIN, LightLook, MusicTarget, Safety


@dataclass(frozen=True)
class CueState:
    id: str  # "<phase id>/<index>", and "…/dose<k>" for a since_last_dose cue after dose k
    phase: str
    text: str
    due_at: float
    acknowledged_at: float | None = None
    note: str | None = None
    check: str | None = None  # "vitals": the reminder asks for a vitals check
    skipped: bool = False  # acknowledged without the check (the note says why)
    vitals: str | None = None  # the vitals record that answered it


@dataclass(frozen=True)
class DoseState:
    n: int  # 1 for the first dose, 2 for the next...
    given_at: float
    recorded_at: float
    route: str | None
    amount: str | None
    by: str | None  # the device's name (or id)


@dataclass(frozen=True)
class VitalsState:
    id: str  # "vitals/<n>"
    at: float
    values: dict[str, int]
    cue: str | None
    note: str | None
    flagged: tuple[str, ...]  # the values outside the clinic's ranges
    by: str | None
    acknowledged_at: float | None = None  # when a clinician acknowledged the highlighted values


@dataclass(frozen=True)
class Status:
    """Everything the room should be doing at ``t``."""

    t: float
    started_at: float
    ended: bool
    ended_at: float | None
    phase_index: int
    phase: Phase
    next_phase: Phase | None
    phase_started_at: float
    time_in_phase_s: float
    remaining_s: float | None  # None while manual, held or in emergency
    countdown_s: float | None  # an auto phase's time left, frozen while held (None: manual/ended)
    held: bool
    time_since_dose_s: float | None  # since the first dose (or the dosing phase's start)
    time_since_last_dose_s: float | None
    doses: tuple[DoseState, ...]
    observe_until: float | None  # the observation window after the last dose, if the preset sets one
    vitals: tuple[VitalsState, ...]
    alerts: tuple[VitalsState, ...]  # highlighted values not yet acknowledged
    check_active: bool  # a vitals check is due and the room shows the preset's check look
    light_fade: Fade
    lights_override: LightsChange | None
    music: MusicTarget
    music_overridden: bool
    emergency: bool
    cues_due: tuple[CueState, ...]
    cues_acknowledged: tuple[CueState, ...]
    next_cue: CueState | None  # the next reminder to come due (as far as the session is known)
    next_change_at: float | None  # when this status next changes on its own (advance or cue)

    @property
    def session_time_s(self) -> float:
        return self.t - self.started_at

    @property
    def light_target(self) -> LightLook:
        return self.light_fade.end

    @property
    def light_now(self) -> LightLook:
        return self.light_fade.value_at(self.t)


@dataclass
class _Walk:
    """Mutable state while walking the events; never leaves this module."""

    preset: Preset
    safety: Safety
    started_at: float
    idx: int = 0
    entered_at: float = 0.0
    extra_s: float = 0.0
    frozen_total_s: float = 0.0  # held or emergency time in this phase
    frozen_since: float | None = None
    held: bool = False
    emergency: bool = False
    ended_at: float | None = None
    dose_fallback_at: float | None = None  # the dosing phase's first start: the dose when none is recorded
    doses: list[DoseState] = field(default_factory=list)
    vitals: list[VitalsState] = field(default_factory=list)
    alerts_acked: dict[str, float] = field(default_factory=dict)
    checks_fired: set[str] = field(default_factory=set)
    checks_open: set[str] = field(default_factory=set)
    has_checks: bool = False  # the preset has check reminders (else nothing to look for)
    phase_look: LightLook = field(default_factory=lambda: LightLook(0.0, DEFAULT_KELVIN))
    phase_fade_end_t: float = 0.0
    fade: Fade | None = None
    lights_override: LightsChange | None = None
    music_base: MusicTarget = field(default_factory=lambda: MusicTarget(None, 0.0))
    music_volume: float | None = None
    music_playing: bool | None = None
    music_ramp_s: float = 2.0
    visits: list[tuple[int, float, float | None]] = field(default_factory=list)
    # cue id -> (when, note, skipped, the vitals record that answered it)
    acked: dict[str, tuple[float, str | None, bool, str | None]] = field(default_factory=dict)

    # --- time ---------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.preset.phases[self.idx]

    def frozen(self) -> bool:
        return self.held or self.emergency

    def auto_end_t(self) -> float | None:
        """When the current phase ends on its own, or None (manual, held, ended)."""
        p = self.phase
        if self.ended_at is not None or p.advance is Advance.MANUAL or self.frozen():
            return None
        assert p.duration is not None
        return self.entered_at + p.duration + self.extra_s + self.frozen_total_s

    def run_auto(self, until: float) -> None:
        """Everything that happens on its own up to ``until``: phases ending, checks coming due."""
        while True:
            end = self.auto_end_t()
            check = self.next_check(until)
            if check is not None and (end is None or check[0] <= end):
                self.fire_check(check[1], check[0])
            elif end is not None and end <= until:
                self.advance(end)
            else:
                return

    def copy(self) -> _Walk:
        """A copy that can walk on without changing this one."""
        return replace(self, visits=list(self.visits), acked=dict(self.acked), doses=list(self.doses),
                       vitals=list(self.vitals), alerts_acked=dict(self.alerts_acked),
                       checks_fired=set(self.checks_fired), checks_open=set(self.checks_open))

    # --- doses and checks -----------------------------------------------------------

    @property
    def dose_at(self) -> float | None:
        """The first dose: the first recorded one, else the dosing phase's start."""
        return self.doses[0].given_at if self.doses else self.dose_fallback_at

    @property
    def last_dose_at(self) -> float | None:
        return self.doses[-1].given_at if self.doses else self.dose_fallback_at

    def next_check(self, until: float) -> tuple[float, str] | None:
        """The next vitals check due by ``until`` that has not come due yet: (due, cue id)."""
        if self.ended_at is not None or not self.has_checks:
            return None
        due = [(c.due_at, c.id) for c in self.cue_schedule() if c.check and c.id not in self.checks_fired
               and c.due_at <= until]
        return min(due) if due else None

    def fire_check(self, cue_id: str, t: float) -> None:
        self.checks_fired.add(cue_id)
        if cue_id in self.acked:
            return
        self.checks_open.add(cue_id)
        look = self.check_look
        if look is not None and len(self.checks_open) == 1 and not self.emergency:
            self.refade(t, look.transition)
            self.music_ramp_s = look.transition

    def close_check(self, cue_id: str, t: float) -> None:
        if cue_id not in self.checks_open:
            return
        self.checks_open.discard(cue_id)
        look = self.check_look
        if look is not None and not self.checks_open and not self.emergency:
            self.refade(t, look.transition)  # back to the phase, as gently as it lifted
            self.music_ramp_s = look.transition

    @property
    def check_look(self) -> CheckLook | None:
        m = self.preset.monitoring
        return m.check_look if m is not None else None

    def flagged(self, values: dict[str, int]) -> tuple[str, ...]:
        m = self.preset.monitoring
        if m is None:
            return ()
        out = []
        for key, value in values.items():
            rng = getattr(m.ranges, key, None) if key in PLAUSIBLE else None
            if rng is not None and ((rng.low is not None and value < rng.low)
                                    or (rng.high is not None and value > rng.high)):
                out.append(key)
            obs = next((o for o in m.observations if o.id == key), None)
            if obs is not None and obs.flag_from is not None and value >= obs.flag_from:
                out.append(key)
        return tuple(out)

    def set_freeze(self, t: float, held: bool | None = None, emergency: bool | None = None) -> None:
        was = self.frozen()
        if held is not None:
            self.held = held
        if emergency is not None:
            self.emergency = emergency
        now = self.frozen()
        if now and not was:
            self.frozen_since = t
        elif was and not now and self.frozen_since is not None:
            self.frozen_total_s += t - self.frozen_since
            self.frozen_since = None

    # --- phases -------------------------------------------------------------------

    def advance(self, t: float) -> None:
        if self.idx + 1 >= len(self.preset.phases):
            self.end(t)
        else:
            self.enter(self.idx + 1, t)

    def end(self, t: float) -> None:
        self.close_visit(t)
        self.ended_at = t
        self.music_base = replace(self.music_base, playlist=None)
        self.music_ramp_s = self.safety.end_fade_s

    def close_visit(self, t: float) -> None:
        if self.visits and self.visits[-1][2] is None:
            i, start, _ = self.visits[-1]
            self.visits[-1] = (i, start, t)

    def enter(self, idx: int, t: float) -> None:
        self.close_visit(t)
        self.idx, self.entered_at, self.extra_s = idx, t, 0.0
        self.frozen_total_s = 0.0
        self.held = False
        self.frozen_since = t if self.emergency else None
        self.visits.append((idx, t, None))
        p = self.phase
        if p.kind is PhaseKind.DOSING and self.dose_fallback_at is None:
            self.dose_fallback_at = t
        self.lights_override = None
        self.music_volume = self.music_playing = None
        if p.lights is not None:
            colour_temp = p.lights.color_temp
            if p.lights.color is None and colour_temp is None and self.phase_look.color is None:
                colour_temp = self.phase_look.color_temp
            self.phase_look = LightLook(
                p.lights.brightness,
                color_temp=colour_temp if p.lights.color is None else None,
                color=p.lights.color if p.lights.color is not None
                else (self.phase_look.color if colour_temp is None else None),
            )
            if self.phase_look.color is None and self.phase_look.color_temp is None:
                self.phase_look = replace(self.phase_look, color_temp=DEFAULT_KELVIN)
            self.phase_fade_end_t = t + p.lights.transition
            self.refade(t, p.lights.transition)
        if p.music is not None:
            self.music_base = MusicTarget(
                playlist=p.music.playlist,
                volume=p.music.volume,
                fade_in_s=p.music.fade_in,
                crossfade_s=p.music.crossfade,
                ramp_s=p.music.crossfade,
            )
            self.music_ramp_s = p.music.crossfade

    # --- lights -------------------------------------------------------------------

    def desired_look(self) -> LightLook:
        if self.emergency:
            return self.safety.emergency_look
        look = self.phase_look
        check = self.check_look
        if check is not None and self.checks_open:  # lifted a little for the check, never dimmed
            brightness = max(self.override_look(look).brightness, check.brightness)
            if check.color is not None:
                return LightLook(brightness, color=check.color)
            if check.color_temp is not None:
                return LightLook(brightness, color_temp=check.color_temp)
            return replace(self.override_look(look), brightness=brightness)
        return self.override_look(look)

    def override_look(self, look: LightLook) -> LightLook:
        """``look`` with the therapist's light changes over it."""
        o = self.lights_override
        if o is not None:
            if o.brightness is not None:
                look = replace(look, brightness=o.brightness)
            if o.color_temp is not None:
                look = replace(look, color_temp=o.color_temp, color=None)
            if o.color is not None:
                look = replace(look, color=o.color, color_temp=None)
        return look

    def refade(self, t: float, duration_s: float) -> None:
        start = self.fade.value_at(t) if self.fade is not None else self.desired_look()
        self.fade = Fade(start, self.desired_look(), t, max(0.0, duration_s))

    def back_from(self, where: LightLook, t: float) -> None:
        """After an undo: the bulbs go gently from ``where`` back to the look the phase wants."""
        if not self.emergency:
            self.fade = Fade(where, self.desired_look(), t, self.back_to_phase_fade_s(t))
        else:
            self.fade = Fade(where, self.desired_look(), t, self.safety.emergency_fade_s)

    def back_to_phase_fade_s(self, t: float) -> float:
        """Returning to the phase's own look: gently, and never faster than its own fade."""
        return max(self.safety.release_fade_s, self.phase_fade_end_t - t)

    # --- events -------------------------------------------------------------------

    def apply(self, e: Event) -> None:
        t, k = e.at, e.kind
        if self.ended_at is not None:
            if k is EventKind.CUE_ACKNOWLEDGED and e.cue:
                self.acked.setdefault(e.cue, (t, e.note, e.reason == SKIPPED, None))
            elif k is EventKind.ALERT_ACKNOWLEDGED and e.alert:
                self.alerts_acked.setdefault(e.alert, t)
            return
        if k is EventKind.ADVANCED:
            self.advance(t)
        elif k is EventKind.JUMPED and e.phase is not None:
            try:
                self.enter(self.preset.phase_index(e.phase), t)
            except KeyError:
                return
        elif k is EventKind.HELD and not self.held:
            self.set_freeze(t, held=True)
        elif k is EventKind.RESUMED and self.held:
            self.set_freeze(t, held=False)
        elif k is EventKind.EXTENDED and e.seconds:
            self.extra_s += e.seconds
        elif k is EventKind.LIGHTS_SET and e.lights is not None:
            self.lights_override = _merge_lights(self.lights_override, e.lights)
            if not self.emergency:
                self.refade(t, e.lights.transition)
        elif k is EventKind.MUSIC_SET and e.music is not None:
            if e.music.volume is not None:
                self.music_volume = e.music.volume
                self.music_ramp_s = 1.5
            if e.music.playing is not None:
                self.music_playing = e.music.playing
        elif k is EventKind.OVERRIDE_CLEARED:
            had_lights = self.lights_override is not None
            self.lights_override = None
            self.music_volume = self.music_playing = None
            self.music_ramp_s = 5.0
            if had_lights and not self.emergency:
                self.refade(t, self.back_to_phase_fade_s(t))
        elif k is EventKind.EMERGENCY_ON and not self.emergency:
            self.set_freeze(t, emergency=True)
            self.music_ramp_s = self.safety.emergency_fade_s
            self.refade(t, self.safety.emergency_fade_s)
        elif k is EventKind.EMERGENCY_OFF and self.emergency:
            self.set_freeze(t, emergency=False)
            self.music_ramp_s = self.safety.release_fade_s
            self.refade(t, self.back_to_phase_fade_s(t))
        elif k is EventKind.CUE_ACKNOWLEDGED and e.cue:
            self.acked.setdefault(e.cue, (t, e.note, e.reason == SKIPPED, None))
            self.close_check(e.cue, t)
        elif k is EventKind.DOSE_GIVEN and e.dose is not None:
            given = e.dose.given_at if e.dose.given_at is not None else t
            self.doses.append(DoseState(len(self.doses) + 1, given, t, e.dose.route, e.dose.amount, _who(e)))
            self.doses.sort(key=lambda d: d.given_at)
            self.run_checks_due(t)  # a dose recorded late may make checks due at once
        elif k is EventKind.VITALS_RECORDED and e.vitals is not None:
            values = e.vitals.values()
            vid = f"vitals/{len(self.vitals) + 1}"
            self.vitals.append(VitalsState(vid, t, values, e.cue, e.note, self.flagged(values), _who(e)))
            if e.cue:
                self.acked.setdefault(e.cue, (t, e.note, False, vid))
                self.close_check(e.cue, t)
        elif k is EventKind.ALERT_ACKNOWLEDGED and e.alert:
            self.alerts_acked.setdefault(e.alert, t)
        elif k is EventKind.ENDED:
            self.end(t)

    # --- results ------------------------------------------------------------------

    def music(self) -> MusicTarget:
        base = self.music_base
        volume = base.volume if self.music_volume is None else self.music_volume
        playing = base.playing if self.music_playing is None else self.music_playing
        check = self.check_look
        if check is not None and check.music_volume is not None and self.checks_open:
            volume = min(volume, check.music_volume)
        if self.emergency:
            volume = min(volume, self.safety.emergency_volume)
        volume = min(volume, self.safety.max_volume)
        return replace(base, volume=volume, playing=playing, ramp_s=self.music_ramp_s)

    def cue_schedule(self) -> list[CueState]:
        """Every reminder as far as the session is known: those of each phase visit (timed from
        the visit's start), those timed from the first dose, and one per dose of those timed
        from the latest dose (superseded by the next dose)."""
        out: dict[str, CueState] = {}
        end_of_session = self.ended_at if self.ended_at is not None else float("inf")
        for pi, start, left in self.visits:
            phase = self.preset.phases[pi]
            for ci, cue in enumerate(phase.cues):
                if cue.at is None:
                    continue
                cid = f"{phase.id}/{ci}"
                due = start + cue.at
                if cid in out or due >= (left if left is not None else float("inf")):
                    continue
                out[cid] = CueState(cid, phase.id, cue.text, due, check=cue.check)
        first = self.dose_at
        dose_times = [d.given_at for d in self.doses] or ([first] if first is not None else [])
        for phase in self.preset.phases:
            for ci, cue in enumerate(phase.cues):
                cid = f"{phase.id}/{ci}"
                if cue.since_dose is not None and first is not None:
                    due = first + cue.since_dose
                    if due < end_of_session:
                        out[cid] = CueState(cid, phase.id, cue.text, due, check=cue.check)
                elif cue.since_last_dose is not None:
                    for k, given in enumerate(dose_times):
                        due = given + cue.since_last_dose
                        following = dose_times[k + 1] if k + 1 < len(dose_times) else float("inf")
                        if due < min(end_of_session, following):
                            kid = f"{cid}/dose{k + 1}"
                            out[kid] = CueState(kid, phase.id, cue.text, due, check=cue.check)
        return list(out.values())

    def run_checks_due(self, t: float) -> None:
        """Checks that are due already when they become known (a dose recorded late) come due now."""
        for c in sorted(self.cue_schedule(), key=lambda c: c.due_at):
            if c.check and c.id not in self.checks_fired and c.due_at <= t and self.ended_at is None:
                self.fire_check(c.id, t)

    def cues(self, t: float) -> tuple[list[CueState], list[CueState]]:
        """Cues that have come due by t (with acknowledgements), and those still to come."""
        fired: list[CueState] = []
        upcoming: list[CueState] = []
        for cs in self.cue_schedule():
            if cs.due_at > t:
                upcoming.append(cs)
                continue
            ack = self.acked.get(cs.id)
            if ack is not None:
                cs = replace(cs, acknowledged_at=ack[0], note=ack[1], skipped=ack[2], vitals=ack[3])
            fired.append(cs)
        fired.sort(key=lambda c: c.due_at)
        return fired, upcoming


SKIPPED = "skipped"  # a cue_acknowledged event's reason when a check was skipped (its note says why)


def _who(e: Event) -> str | None:
    return (e.by.name or e.by.id) if e.by is not None else None


def _merge_lights(old: LightsChange | None, new: LightsChange) -> LightsChange:
    if old is None:
        return new
    colour_from = new if (new.color is not None or new.color_temp is not None) else old
    return LightsChange(
        brightness=new.brightness if new.brightness is not None else old.brightness,
        transition=new.transition,
        color=colour_from.color,
        color_temp=colour_from.color_temp,
    )


def evaluate(preset: Preset, events: Sequence[Event], t: float, safety: Safety | None = None) -> Status:
    """The room at time ``t``. ``events`` must start with ``started`` and be in time order."""
    return evaluate_many(preset, events, (t,), safety)[0]


def evaluate_many(preset: Preset, events: Sequence[Event], times: Sequence[float],
                  safety: Safety | None = None) -> list[Status]:
    """`evaluate` at each of ``times`` (ascending) in one pass over the events: charts and
    exports of long sessions would be quadratic evaluating each time afresh."""
    if not events or events[0].kind is not EventKind.STARTED:
        raise ValueError("a session's events begin with 'started'")
    safety = safety or Safety()
    w = _begin(preset, safety, events[0])
    cancelled: set[int] = set()
    out: list[Status] = []
    i, previous = 1, float("-inf")
    for t in times:
        if t < previous:
            raise ValueError("times must be in ascending order")
        previous = t
        w, i = _walk_until(preset, safety, events, w, i, t, cancelled)
        w.run_auto(t)
        out.append(_status(w, preset, t))
    return out


def _walk_until(preset: Preset, safety: Safety, events: Sequence[Event], w: _Walk, i: int, t: float,
                cancelled: set[int]) -> tuple[_Walk, int]:
    """Apply ``events[i:]`` up to time ``t``; returns the walk and the next index. An `undone`
    event takes back an earlier phase change from its own time on: the walk is made again
    without it, as if it had never happened (before the undo, history stays as it was)."""
    while i < len(events) and events[i].at <= t:
        e = events[i]
        if e.kind is EventKind.UNDONE:
            if e.undoes is not None and 0 < e.undoes < i and e.undoes not in cancelled:
                cancelled.add(e.undoes)
                w.run_auto(e.at)
                assert w.fade is not None
                where = w.fade.value_at(e.at)  # the lights are here when the change is taken back
                w = _begin(preset, safety, events[0])
                for j in range(1, i):
                    if j not in cancelled and events[j].kind is not EventKind.UNDONE:
                        w.run_auto(events[j].at)
                        w.apply(events[j])
                w.run_auto(e.at)
                w.back_from(where, e.at)
            w.run_auto(e.at)
        elif i not in cancelled:
            w.run_auto(e.at)
            w.apply(e)
        i += 1
    return w, i


def _status(w: _Walk, preset: Preset, t: float) -> Status:
    assert w.fade is not None
    p = w.phase
    remaining: float | None = None
    if w.ended_at is None and not w.frozen() and p.advance is Advance.AUTO:
        end = w.auto_end_t()
        assert end is not None
        remaining = max(0.0, end - t)
    countdown: float | None = None
    if w.ended_at is None and p.advance is Advance.AUTO and p.duration is not None:
        frozen_now = t - w.frozen_since if w.frozen_since is not None else 0.0
        active = (t - w.entered_at) - w.frozen_total_s - frozen_now
        countdown = max(0.0, p.duration + w.extra_s - active)
    fired, upcoming = w.cues(t)
    vitals = tuple(replace(v, acknowledged_at=w.alerts_acked.get(v.id)) for v in w.vitals)
    auto_end = w.auto_end_t()
    wakeups = [x for x in [auto_end, *(c.due_at for c in upcoming)] if x is not None and x > t]
    coming = sorted((c for c in upcoming if c.id not in w.acked), key=lambda c: c.due_at)
    now_t = t if w.ended_at is None else w.ended_at
    return Status(
        t=t,
        started_at=w.started_at,
        ended=w.ended_at is not None,
        ended_at=w.ended_at,
        phase_index=w.idx,
        phase=p,
        next_phase=preset.phases[w.idx + 1] if w.idx + 1 < len(preset.phases) else None,
        phase_started_at=w.entered_at,
        time_in_phase_s=max(0.0, now_t - w.entered_at),
        remaining_s=remaining,
        countdown_s=countdown,
        held=w.held,
        time_since_dose_s=None if w.dose_at is None else max(0.0, now_t - w.dose_at),
        time_since_last_dose_s=None if w.last_dose_at is None else max(0.0, now_t - w.last_dose_at),
        doses=tuple(w.doses),
        observe_until=_observe_until(w),
        vitals=vitals,
        alerts=tuple(v for v in vitals if v.flagged and v.acknowledged_at is None),
        check_active=bool(w.checks_open) and w.check_look is not None and not w.emergency,
        light_fade=w.fade,
        lights_override=w.lights_override,
        music=w.music(),
        music_overridden=w.music_volume is not None or w.music_playing is not None,
        emergency=w.emergency,
        cues_due=tuple(c for c in fired if c.acknowledged_at is None),
        cues_acknowledged=tuple(c for c in fired if c.acknowledged_at is not None),
        next_cue=coming[0] if coming and w.ended_at is None else None,
        next_change_at=min(wakeups) if wakeups and w.ended_at is None else None,
    )


def _observe_until(w: _Walk) -> float | None:
    m = w.preset.monitoring
    if m is None or m.observe_after_last_dose is None or w.last_dose_at is None:
        return None
    return w.last_dose_at + m.observe_after_last_dose


class Replay:
    """`evaluate` for a session whose events only grow: the walk up to the last event is kept,
    so the room at "now" costs the same after ten events or ten thousand. Asking about a time
    before the last event, or about events that were not simply appended, replays afresh."""

    def __init__(self, preset: Preset, safety: Safety | None = None) -> None:
        self.preset = preset
        self.safety = safety or Safety()
        self._walk: _Walk | None = None
        self._seen: list[Event] = []
        self._cancelled: set[int] = set()

    def status(self, events: Sequence[Event], t: float) -> Status:
        if not events or events[0].kind is not EventKind.STARTED:
            raise ValueError("a session's events begin with 'started'")
        n = len(self._seen)
        if (self._walk is None or len(events) < n or (n and events[n - 1] is not self._seen[-1])
                or events[0] is not self._seen[0]):
            self._restart(events[0])
        assert self._walk is not None
        last_at = self._seen[-1].at
        if t < last_at or any(e.at > t for e in events[len(self._seen):]):
            return evaluate(self.preset, events, t, self.safety)
        self._walk, _ = _walk_until(self.preset, self.safety, events, self._walk, len(self._seen), t,
                                    self._cancelled)
        self._seen.extend(events[len(self._seen):])
        w = self._walk
        view = w.copy()
        view.run_auto(t)
        return _status(view, self.preset, t)

    def _restart(self, started: Event) -> None:
        self._walk, self._seen = _begin(self.preset, self.safety, started), [started]
        self._cancelled.clear()


def _begin(preset: Preset, safety: Safety, started: Event) -> _Walk:
    """The walk at the start. The `started` event may say how the room looked then, so that
    the first phase's fade is predicted from there rather than from its own end."""
    w = _Walk(preset, safety, started_at=started.at,
              has_checks=any(c.check is not None for p in preset.phases for c in p.cues))
    o = started.lights
    if o is not None and o.brightness is not None:
        before = LightLook(o.brightness, color_temp=o.color_temp if o.color is None else None,
                           color=o.color)
        if before.color is None and before.color_temp is None:
            before = replace(before, color_temp=DEFAULT_KELVIN)
        w.fade = Fade(before, before, started.at, 0.0)
    w.enter(0, started.at)
    if w.fade is None:  # the first phase sets no lights: the default look until something does
        w.refade(w.started_at, 0.0)
    return w
