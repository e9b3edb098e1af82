"""Clinical monitoring in the timeline: doses, since-last-dose reminders, vitals checks with the
clinic's ranges, the observation window, and the gentle check look (pure functions of time)."""

from __future__ import annotations

from typing import Any

import pytest

from roomctl.events import Dose, Event, EventKind, Vitals
from roomctl.preset import Preset, parse_preset_yaml
from roomctl.room import LightLook
from roomctl.timeline import SKIPPED, Status, evaluate, evaluate_many

T0 = 1_700_000_000.0
M = 60.0
PRESET = parse_preset_yaml("""
name: Monitored
monitoring:
  observe_after_last_dose: 2h
  check_look: {brightness: 35, music_volume: 20, transition: 10s}
  observations:
    - {id: sedation, label: Sedation, scale: [0, 5], flag_from: 3}
    - {id: dissociation, label: Dissociation, kind: yes_no}
  ranges:
    systolic: {low: 90, high: 160}
    spo2: {low: 93}
phases:
  - id: prep
    kind: preparation
    advance: manual
    planned: 10m
    lights: {brightness: 60, color_temp: 2700K, transition: 0s}
    music: {playlist: arrival, volume: 40}
    cues:
      - {at: 5m, text: Baseline vitals, check: vitals}
  - id: dose
    kind: dosing
    advance: manual
    planned: 10m
    lights: {brightness: 30, color_temp: 2400K, transition: 0s}
    cues:
      - {since_last_dose: 5m, text: Next device}
  - id: journey
    kind: journey
    duration: 1h
    lights: {brightness: 10, color_temp: 2200K, transition: 0s}
    music: {playlist: journey, volume: 50}
    cues:
      - {since_dose: 40m, text: BP at 40 minutes, check: vitals}
      - {since_last_dose: 50m, text: Sedation check}
""", "monitored.yaml")


def ev(kind: EventKind, at_s: float, **payload: Any) -> Event:
    return Event(kind=kind, at=T0 + at_s, **payload)


def at(events: list[Event], t_s: float, preset: Preset = PRESET) -> Status:
    return evaluate(preset, events, T0 + t_s)


def dosed() -> list[Event]:
    """Prep with its baseline check recorded, Next at 10m, two devices at 11m and 16m, Next at 20m."""
    return [ev(EventKind.STARTED, 0),
            ev(EventKind.VITALS_RECORDED, 6 * M, vitals=Vitals(systolic=120, diastolic=80), cue="prep/0"),
            ev(EventKind.ADVANCED, 10 * M),
            ev(EventKind.DOSE_GIVEN, 11 * M, dose=Dose(route="nasal", amount="28 mg")),
            ev(EventKind.DOSE_GIVEN, 16 * M, dose=Dose(route="nasal", amount="28 mg")),
            ev(EventKind.ADVANCED, 20 * M)]


def test_the_dose_clock_counts_from_the_first_and_the_last_dose() -> None:
    s = at(dosed(), 30 * M)
    assert s.time_since_dose_s == 19 * M and s.time_since_last_dose_s == 14 * M
    assert [(d.n, d.given_at - T0, d.route, d.amount) for d in s.doses] == [
        (1, 11 * M, "nasal", "28 mg"), (2, 16 * M, "nasal", "28 mg")]


def test_without_a_recorded_dose_the_dosing_phase_start_counts() -> None:
    events = [ev(EventKind.STARTED, 0), ev(EventKind.ADVANCED, 10 * M)]
    s = at(events, 12 * M)
    assert s.time_since_dose_s == 2 * M == s.time_since_last_dose_s and s.doses == ()


def test_a_dose_recorded_late_counts_from_when_it_was_given() -> None:
    events = [ev(EventKind.STARTED, 0), ev(EventKind.ADVANCED, 10 * M),
              ev(EventKind.DOSE_GIVEN, 15 * M, dose=Dose(given_at=T0 + 11 * M))]
    assert at(events, 15 * M).time_since_dose_s == 4 * M


def test_since_last_dose_reminders_follow_each_dose() -> None:
    events = dosed()
    due = {c.id: c.due_at - T0 for c in at(events, 25 * M).cues_due}
    # after the first device the "next device" reminder was superseded by the second
    assert due == {"dose/0/dose2": 21 * M}
    later = {c.id: c.due_at - T0 for c in at(events, 70 * M).cues_due}
    assert later["journey/0"] == 51 * M  # 40 m after the FIRST dose
    assert later["journey/1/dose2"] == 66 * M  # 50 m after the LAST dose


def test_the_observation_window_runs_from_the_last_dose() -> None:
    assert at(dosed(), 30 * M).observe_until == T0 + 16 * M + 2 * 3600
    assert at([ev(EventKind.STARTED, 0)], 1).observe_until is None


def test_vitals_outside_the_clinics_ranges_are_highlighted_until_acknowledged() -> None:
    events = [*dosed(), ev(EventKind.VITALS_RECORDED, 30 * M, vitals=Vitals(
        systolic=172, diastolic=96, spo2=95, observations={"sedation": 3, "dissociation": 1}))]
    s = at(events, 31 * M)
    (alert,) = s.alerts
    assert alert.id == "vitals/2" and alert.flagged == ("systolic", "sedation")
    assert alert.values == {"systolic": 172, "diastolic": 96, "spo2": 95, "sedation": 3, "dissociation": 1}
    events.append(ev(EventKind.ALERT_ACKNOWLEDGED, 32 * M, alert="vitals/2"))
    s = at(events, 33 * M)
    assert s.alerts == () and s.vitals[-1].acknowledged_at == T0 + 32 * M


def test_a_due_check_lifts_the_lights_and_dips_the_music_until_it_is_recorded() -> None:
    events = dosed()
    before = at(events, 50 * M)  # journey: 10 % light, music 50 %
    assert before.light_target == LightLook(10, color_temp=2200) and before.music.volume == 50
    due = at(events, 51 * M)  # the 40-minute check comes due on its own
    assert due.check_active and [c.id for c in due.cues_due if c.check] == ["journey/0"]
    assert due.light_target == LightLook(35, color_temp=2200) and due.light_fade.duration_s == 10
    assert due.music.volume == 20
    events.append(ev(EventKind.VITALS_RECORDED, 53 * M, vitals=Vitals(systolic=130, diastolic=85),
                     cue="journey/0"))
    after = at(events, 53 * M + 5)
    assert not after.check_active and after.music.volume == 50
    assert after.light_target == LightLook(10, color_temp=2200)
    assert after.light_fade.start_t == T0 + 53 * M and after.light_fade.duration_s == 10  # gently
    assert [c.vitals for c in after.cues_acknowledged if c.id == "journey/0"] == ["vitals/2"]


def test_a_skipped_check_returns_the_room_too_and_keeps_the_reason() -> None:
    events = [*dosed(), ev(EventKind.CUE_ACKNOWLEDGED, 52 * M, cue="journey/0", note="client asleep",
                           reason=SKIPPED)]
    s = at(events, 52 * M + 1)
    assert not s.check_active
    (ack,) = [c for c in s.cues_acknowledged if c.id == "journey/0"]
    assert ack.skipped and ack.note == "client asleep"


def test_checks_never_dim_a_bright_phase() -> None:
    s = at([ev(EventKind.STARTED, 0)], 5 * M + 1)  # prep is at 60 %; the check look says 35
    assert s.check_active and s.light_target.brightness == 60 and s.music.volume == 20


def test_evaluating_in_one_pass_is_the_same_as_one_at_a_time() -> None:
    events = [*dosed(), ev(EventKind.VITALS_RECORDED, 53 * M, vitals=Vitals(spo2=91), cue="journey/0")]
    times = [T0 + m * M for m in (1, 5, 5.5, 11, 17, 50, 51, 52, 53, 54, 70, 200)]
    assert evaluate_many(PRESET, events, times) == [evaluate(PRESET, events, t) for t in times]


@pytest.mark.parametrize("vitals", [
    {"systolic": 30, "diastolic": 20}, {"systolic": 120}, {"systolic": 80, "diastolic": 90},
    {"heart_rate": 400}, {"spo2": 101}, {}, {"systolic": "120", "diastolic": 80}])
def test_implausible_vitals_are_refused(vitals: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Vitals.model_validate(vitals)
