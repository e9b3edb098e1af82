"""Random sessions: no command sequence yields an impossible state, and a session run live on a
virtual clock is the same session as its events replayed."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomctl import units
from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import Dose, Event, EventKind, LightsChange, MusicChange, Vitals
from roomctl.preset import Preset, load_preset, parse_preset
from roomctl.room import LightLook, Safety
from roomctl.session import CommandRejected, Room, SessionRunner, UnknownPhase
from roomctl.timeline import Status, evaluate, evaluate_many

T0 = 1_000_000.0
BACKDATE = "backdate_s"  # a command's payload key: record the dose as given this long ago
BUNDLED = [load_preset(p) for p in sorted((Path(__file__).parent.parent / "roomctl" / "presets").glob("*.yaml"))]
KINDS = ["preparation", "dosing", "journey", "return", "integration", "custom"]
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- presets ------------------------------------------------------------------------------

_length = st.one_of(st.integers(1, 900).map(float), st.floats(0.2, 900))
_hex = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


@st.composite
def _lights(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    out: dict[str, Any] = {"brightness": draw(st.floats(0, 100)),
                           "transition": draw(st.one_of(st.just(0.0), st.floats(0, 600)))}
    colour = draw(st.sampled_from(["ct", "ct", "color", "none"]))
    if colour == "ct":
        out["color_temp"] = draw(st.integers(units.KELVIN_MIN, units.KELVIN_MAX))
    elif colour == "color":
        out["color"] = draw(_hex)
    return out


@st.composite
def random_presets(draw: st.DrawFn) -> Preset:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    phases: list[dict[str, Any]] = []
    lengths: list[float | None] = []
    for i, kind in enumerate(kinds):
        manual = draw(st.integers(0, 3)) == 0
        length: float | None = draw(_length)
        phase: dict[str, Any] = {"id": f"p{i}", "kind": kind}
        if manual:
            phase["advance"] = "manual"
            if draw(st.booleans()):
                phase["planned"] = length
            else:
                length = None
        else:
            phase["duration"] = length
        if (lights := draw(_lights())) is not None:
            phase["lights"] = lights
        if draw(st.integers(0, 4)):
            phase["music"] = {"playlist": draw(st.sampled_from(["a", "b", "c", None])),
                              "volume": draw(st.floats(0, 100)),
                              "crossfade": draw(st.floats(0, 60)), "fade_in": draw(st.floats(0, 60))}
        cues = []
        if length is not None:
            for at in draw(st.lists(st.floats(0, length, exclude_max=True), max_size=2)):
                cues.append({"at": at, "text": "cue"})
        phase["cues"] = cues
        phases.append(phase)
        lengths.append(length)
    # reminders timed from the dose, inside the planned span of a phase at or after the dose
    dose_i = next((i for i, k in enumerate(kinds) if k == "dosing"), None)
    if dose_i is not None:
        offset = 0.0
        for i in range(dose_i, len(phases)):
            length = lengths[i]
            if length is None:
                break
            for x in draw(st.lists(st.floats(0.05, 0.95), max_size=1)):
                phases[i]["cues"].append({"since_dose": offset + x * length, "text": "dose cue"})
            offset += length
    return parse_preset({"name": "random", "phases": phases}, "random")


presets = st.one_of(st.sampled_from(BUNDLED), random_presets())

safeties = st.builds(
    Safety,
    max_volume=st.floats(10, 100),
    emergency_volume=st.floats(0, 30),
    emergency_fade_s=st.floats(0, 5),
    release_fade_s=st.floats(0, 30),
)

# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    dt: float  # seconds after the previous command
    kind: EventKind
    payload: dict[str, Any]


@st.composite
def _lights_change(draw: st.DrawFn) -> LightsChange:
    brightness = draw(st.one_of(st.none(), st.floats(0, 100)))
    colour = draw(st.sampled_from(["none", "ct", "color"] if brightness is not None else ["ct", "color"]))
    return LightsChange(
        brightness=brightness,
        color_temp=draw(st.integers(units.KELVIN_MIN, units.KELVIN_MAX)) if colour == "ct" else None,
        color=draw(_hex) if colour == "color" else None,
        transition=draw(st.one_of(st.just(0.0), st.floats(0, 60))),
    )


@st.composite
def _music_change(draw: st.DrawFn) -> MusicChange:
    volume = draw(st.one_of(st.none(), st.floats(0, 100)))
    playing = draw(st.one_of(st.none(), st.booleans()))
    skip: Literal["next", "previous"] | None = draw(st.sampled_from([None, "next", "previous"]))
    if volume is None and playing is None and skip is None:
        volume = 50.0
    return MusicChange(volume=volume, playing=playing, skip=skip)


def _cue_ids(preset: Preset) -> list[str]:
    ids = [f"{p.id}/{i}" for p in preset.phases for i in range(len(p.cues))] + ["nope/0"]
    return ids + [f"{p.id}/{i}/dose{k}" for p in preset.phases for i, c in enumerate(p.cues)
                  if c.since_last_dose is not None for k in (1, 2)]


@st.composite
def _vitals(draw: st.DrawFn, preset: Preset) -> Vitals:
    systolic = draw(st.one_of(st.none(), st.integers(80, 200)))
    observations: dict[str, int] = {}
    if preset.monitoring is not None:
        for o in preset.monitoring.observations:
            if draw(st.booleans()):
                low, high = (0, 1) if o.kind == "yes_no" else o.scale
                observations[o.id] = draw(st.integers(low, high))
    spo2 = draw(st.one_of(st.none(), st.integers(85, 100)))
    if systolic is None and not observations and spo2 is None:
        spo2 = 97
    return Vitals(systolic=systolic, diastolic=None if systolic is None else systolic - 40, spo2=spo2,
                  observations=observations)


@st.composite
def commands(draw: st.DrawFn, preset: Preset) -> list[Command]:
    longest = max(p.planned_s or 600.0 for p in preset.phases)
    dt = st.one_of(st.just(0.0), st.floats(0, 5), st.floats(0, longest * 1.2))
    out = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from([k for k in EventKind if k not in (EventKind.STARTED, EventKind.OUTSIDE_CHANGE)]))
        payload: dict[str, Any] = {}
        if kind is EventKind.EXTENDED:
            payload["seconds"] = draw(st.floats(1, 900))
        elif kind is EventKind.JUMPED:
            payload["phase"] = draw(st.sampled_from([p.id for p in preset.phases] + ["no-such-phase"]))
        elif kind is EventKind.LIGHTS_SET:
            payload["lights"] = draw(_lights_change())
        elif kind is EventKind.MUSIC_SET:
            payload["music"] = draw(_music_change())
        elif kind is EventKind.CUE_ACKNOWLEDGED:
            payload["cue"] = draw(st.sampled_from(_cue_ids(preset)))
            payload["note"] = draw(st.one_of(st.none(), st.just("ok")))
        elif kind is EventKind.ENDED:
            payload["reason"] = "test"
        elif kind is EventKind.DOSE_GIVEN:
            payload["dose"] = Dose(route=draw(st.sampled_from([None, "nasal", "IM"])), amount="1 unit")
            payload[BACKDATE] = draw(st.sampled_from([0.0, 0.0, 30.0, 600.0]))
        elif kind is EventKind.VITALS_RECORDED:
            payload["vitals"] = draw(_vitals(preset))
            payload["cue"] = draw(st.one_of(st.none(), st.sampled_from(_cue_ids(preset))))
        elif kind is EventKind.ALERT_ACKNOWLEDGED:
            payload["alert"] = f"vitals/{draw(st.integers(1, 3))}"
        out.append(Command(draw(dt), kind, payload))
    return out


# --- invariants ---------------------------------------------------------------------------


def check_status(s: Status, preset: Preset, safety: Safety) -> None:
    assert 0 <= s.phase_index < len(preset.phases)
    assert s.phase == preset.phases[s.phase_index]
    assert s.time_in_phase_s >= 0
    assert s.phase_started_at >= s.started_at
    assert s.time_since_dose_s is None or s.time_since_dose_s >= 0
    if s.remaining_s is not None:
        assert s.remaining_s >= 0
        assert not (s.held or s.emergency or s.ended)
        assert s.phase.advance == "auto"
    for look in (s.light_target, s.light_now, s.light_fade.start):
        assert 0 <= look.brightness <= 100
        assert (look.color is None) != (look.color_temp is None)
        if look.color_temp is not None:
            assert units.KELVIN_MIN <= look.color_temp <= units.KELVIN_MAX
    assert s.light_fade.duration_s >= 0
    assert 0 <= s.music.volume <= safety.max_volume
    if s.emergency:
        assert s.music.volume <= safety.emergency_volume
        assert s.light_target == LightLook(safety.emergency_brightness,
                                           color_temp=safety.emergency_color_temp)
        assert s.remaining_s is None
    if s.ended:
        assert s.ended_at is not None and s.ended_at <= s.t
        assert s.next_change_at is None and s.remaining_s is None
        assert s.music.playlist is None
    if s.next_change_at is not None:
        assert s.next_change_at > s.t
    if s.remaining_s is not None and s.next_change_at is not None:
        assert s.next_change_at <= s.t + s.remaining_s + 1e-6
    due = {c.id for c in s.cues_due}
    acked = {c.id for c in s.cues_acknowledged}
    assert not due & acked
    assert all(c.due_at <= s.t for c in (*s.cues_due, *s.cues_acknowledged))
    assert all(c.acknowledged_at is not None for c in s.cues_acknowledged)


def as_events(cmds: list[Command]) -> list[Event]:
    events = [Event(kind=EventKind.STARTED, at=T0)]
    t = T0
    for c in cmds:
        t += c.dt
        payload = dict(c.payload)
        if BACKDATE in payload:  # a dose recorded as given a while ago
            back = payload.pop(BACKDATE)
            payload["dose"] = payload["dose"].model_copy(update={"given_at": t - back} if back else {})
        if c.kind is EventKind.UNDONE:  # takes back the event before it, if that changed the phase
            if events[-1].kind not in (EventKind.ADVANCED, EventKind.JUMPED):
                continue
            payload = {"undoes": len(events) - 1}
        events.append(Event(kind=c.kind, at=t, **payload))
    return events


def sample_times(events: list[Event], preset: Preset, safety: Safety) -> list[float]:
    """Every event time, every time the timeline says it next changes, and points between."""
    times = {e.at for e in events}
    t = T0
    event_times = sorted(times)
    for _ in range(400):
        # the next change on its own, or the next event (which may set new boundaries)
        candidates = [x for x in event_times if x > t]
        nxt = evaluate(preset, events, t, safety).next_change_at
        if nxt is not None:
            candidates.append(nxt)
        if not candidates:
            break
        t = min(candidates)
        times.add(t)
    ordered = sorted(times)
    mids = [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
    return sorted({*ordered, *mids, ordered[-1] + 3600.0})


# --- the pure timeline --------------------------------------------------------------------


@SETTINGS
@given(st.data(), presets, safeties)
def test_random_events_never_give_an_impossible_state(data: st.DataObject, preset: Preset,
                                                      safety: Safety) -> None:
    events = as_events(data.draw(commands(preset)))
    times = sample_times(events, preset, safety)
    in_one_pass = evaluate_many(preset, events, times, safety)
    previous: Status | None = None
    for t, s in zip(times, in_one_pass, strict=True):
        assert s == evaluate(preset, events, t, safety)
        check_status(s, preset, safety)
        # the future does not change the past
        assert s == evaluate(preset, [e for e in events if e.at <= t], t, safety)
        if previous is not None:
            check_progress(previous, s, events)
        previous = s


def check_progress(a: Status, b: Status, events: list[Event]) -> None:
    """From one sampled time to the next, the session moves on sensibly (an undo in between
    takes a phase change back, so it may move back: tests/test_timeline.py checks that case)."""
    assert b.t > a.t
    if any(e.kind is EventKind.UNDONE and a.t < e.at <= b.t for e in events):
        return
    assert b.started_at == a.started_at
    assert b.phase_started_at >= a.phase_started_at
    if a.ended:
        assert b.ended and b.ended_at == a.ended_at and b.phase_index == a.phase_index
    dosed = any(e.kind is EventKind.DOSE_GIVEN and a.t < e.at <= b.t for e in events)
    if a.time_since_dose_s is not None and not dosed:  # a recorded dose replaces the phase's start
        assert b.time_since_dose_s is not None and b.time_since_dose_s >= a.time_since_dose_s
    if b.phase_started_at == a.phase_started_at:
        assert b.phase_index == a.phase_index
        assert b.time_in_phase_s >= a.time_in_phase_s
    elif not b.ended or b.phase_started_at > a.t:
        # a new visit began in (a.t, b.t]: one step on, unless the therapist jumped or pressed
        # Next at that very moment (sample times include every boundary, so nothing is skipped)
        at_start = [e for e in events if e.at == b.phase_started_at]
        if not any(e.kind is EventKind.JUMPED for e in at_start):
            nexts = sum(e.kind is EventKind.ADVANCED for e in at_start)
            assert a.phase_index + 1 <= b.phase_index <= a.phase_index + 1 + nexts
    acked_before = {c.id: c for c in a.cues_acknowledged}
    acked_after = {c.id: c for c in b.cues_acknowledged}
    if not dosed:  # a recorded dose moves the reminders timed from the dose
        assert acked_before.items() <= acked_after.items()


@SETTINGS
@given(st.data(), presets)
def test_remaining_time_is_when_the_phase_ends(data: st.DataObject, preset: Preset) -> None:
    events = as_events(data.draw(commands(preset)))
    for t in sample_times(events, preset, Safety()):
        s = evaluate(preset, events, t)
        if s.remaining_s is None:
            continue
        end = t + s.remaining_s
        if any(t < e.at <= end + 1e-6 for e in events):
            continue  # only when no event can interfere before the boundary
        after = evaluate(preset, events, end + 1e-6)
        assert after.phase_started_at > s.phase_started_at or after.ended
        before = evaluate(preset, events, end - 1e-3)
        assert before.phase_started_at == s.phase_started_at and not before.ended


# --- live run versus replay ---------------------------------------------------------------


async def _call(runner: SessionRunner, c: Command) -> None:
    k, p = c.kind, c.payload
    if k is EventKind.ADVANCED:
        await runner.next()
    elif k is EventKind.HELD:
        await runner.hold()
    elif k is EventKind.RESUMED:
        await runner.resume()
    elif k is EventKind.EXTENDED:
        await runner.extend(p["seconds"])
    elif k is EventKind.JUMPED:
        await runner.jump(p["phase"])
    elif k is EventKind.LIGHTS_SET:
        await runner.set_lights(p["lights"])
    elif k is EventKind.MUSIC_SET:
        await runner.set_music(p["music"])
    elif k is EventKind.OVERRIDE_CLEARED:
        await runner.back_to_preset()
    elif k is EventKind.EMERGENCY_ON:
        await runner.emergency_on()
    elif k is EventKind.EMERGENCY_OFF:
        await runner.emergency_off()
    elif k is EventKind.CUE_ACKNOWLEDGED:
        await runner.acknowledge(p["cue"], p["note"])
    elif k is EventKind.ENDED:
        await runner.end(p["reason"])
    elif k is EventKind.UNDONE:
        await runner.undo()
    elif k is EventKind.DOSE_GIVEN:
        back = p[BACKDATE]
        dose = p["dose"].model_copy(update={"given_at": runner.clock.now() - back} if back else {})
        await runner.give_dose(dose)
    elif k is EventKind.VITALS_RECORDED:
        await runner.record_vitals(p["vitals"], cue=p["cue"])
    elif k is EventKind.ALERT_ACKNOWLEDGED:
        await runner.acknowledge_alert(p["alert"])
    else:  # pragma: no cover - every kind is listed
        raise AssertionError(k)


def _mireds(look: LightLook) -> float:
    assert look.color_temp is not None
    return 1e6 / look.color_temp


def assert_room_matches(lights: SimulatedLights, audio: SimulatedAudio, s: Status,
                        trajectory: bool) -> None:
    """What the simulated drivers were told (and show now) is what the timeline says."""
    when, look, transition = lights.commands[-1]
    assert look == s.light_target
    assert abs(when + transition - s.light_fade.end_t) < 1e-6  # the bulbs finish on time
    assert audio.commands[-1][2] == s.music
    if not trajectory:
        return
    shown = lights.readings()[0]
    now = s.light_now
    # The simulated bulbs report brightness to 0.1 %, and the session's start records the room as
    # they report it: two roundings of up to 0.05 each.
    assert abs(shown.brightness - now.brightness) <= 0.1 + 1e-9
    assert (shown.color is None) == (now.color is None)
    if now.color is None:
        assert abs(_mireds(LightLook(0, shown.color_temp)) - _mireds(now)) <= 2
    else:
        assert shown.color is not None
        got, want = units.hex_to_rgb(shown.color), units.hex_to_rgb(now.color)
        assert all(abs(g - w) <= 2 for g, w in zip(got, want, strict=True))


async def run_live(preset: Preset, safety: Safety, cmds: list[Command]) -> None:
    clock = VirtualClock(T0)
    lights = SimulatedLights(clock)
    audio = SimulatedAudio(clock, max_volume=safety.max_volume)
    runner = SessionRunner(Room("prop", lights, audio, safety), clock)
    # the room already shows the first look, as the timeline assumes at the start
    first = evaluate(preset, [Event(kind=EventKind.STARTED, at=T0)], T0, safety).light_target
    await lights.apply(first, 0)
    observed: list[tuple[Status, int]] = []  # with how many events there were then

    async def checkpoint() -> None:
        s = runner.status()
        assert s is not None and runner.session is not None
        check_status(s, preset, safety)
        assert_room_matches(lights, audio, s, trajectory=True)
        observed.append((s, len(runner.session.events)))

    try:
        await runner.start(preset)
        await checkpoint()
        for c in cmds:
            target = clock.now() + c.dt
            # stop half way too, to look at the room mid-fade
            await clock.advance_to(clock.now() + c.dt / 2)
            await checkpoint()
            await clock.advance_to(target)
            await checkpoint()
            sent = len(lights.commands)
            try:
                await _call(runner, c)
            except (CommandRejected, UnknownPhase):
                assert len(lights.commands) == sent  # refused (Lights up too): bulbs untouched
            await checkpoint()
        for _ in range(8):
            await clock.advance(0)  # let the session task go back to sleep on its next deadline
            nxt = clock.next_deadline()
            if nxt is None:
                break
            await clock.advance_to(nxt)
            await checkpoint()
        await clock.advance(4 * 3600)
        await checkpoint()
    finally:
        await runner.close()

    # replaying the recorded events gives every state the live room went through
    assert runner.session is not None
    events = runner.session.events
    assert [e.at for e in events] == sorted(e.at for e in events)
    for s, known in observed:
        if all(e.at > s.t for e in events[known:]):  # not before a command at that same moment
            assert evaluate(preset, events, s.t, safety) == s
    # every light command went out at the moment its fade began (no wake-up came late); of
    # several commands at one moment, the last one counts
    last_at: dict[float, tuple[int, LightLook]] = {}
    for i, (when, look, _) in enumerate(lights.commands[1:], start=1):
        last_at[when] = (i, look)
    for when, (_, look) in last_at.items():
        s = evaluate(preset, events, when, safety)
        assert look == s.light_target
        assert s.light_fade.start_t == when


@SETTINGS
@given(st.data(), presets, safeties)
def test_a_live_session_is_its_events_replayed(data: st.DataObject, preset: Preset,
                                               safety: Safety) -> None:
    cmds = data.draw(commands(preset))
    asyncio.run(run_live(preset, safety, cmds))
