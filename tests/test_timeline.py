"""The pure timeline: every semantic of a session, evaluated at chosen times, no clock."""

import math
from typing import Any

import pytest

from roomctl import units
from roomctl.curves import Fade, blend_looks
from roomctl.events import Event, EventKind, LightsChange, MusicChange
from roomctl.preset import Preset, parse_preset_yaml
from roomctl.room import LightLook, MusicTarget, Safety
from roomctl.timeline import Replay, Status, evaluate, evaluate_many

T0 = 1_000_000.0
M = 60.0  # one minute

PRESET = parse_preset_yaml(
    """
name: Timeline test
phases:
  - id: prep
    kind: preparation
    advance: manual
    planned: 10m
    lights: {brightness: 60, color_temp: 2700K, transition: 30s}
    music: {playlist: arrival, volume: 35, fade_in: 20s, crossfade: 10s}
    cues:
      - {at: 5m, text: Consent checklist}
  - id: dose
    kind: dosing
    duration: 15m
    lights: {brightness: 40, color_temp: 2400K, transition: 2m}
    music: {playlist: dosing, volume: 40, crossfade: 20s}
    cues:
      - {at: 12m, text: Spit the lozenge}
  - id: journey
    kind: journey
    duration: 30m
    lights: {brightness: 10, color: "#8040c0", transition: 5m}
    music: {playlist: journey, volume: 60, crossfade: 30s}
    cues:
      - {since_dose: 20m, text: BP one}
      - {since_dose: 40m, text: BP two}
  - id: return
    kind: return
    duration: 20m
    lights: {brightness: 40, color_temp: 2700K, transition: 10m}
    music: {playlist: return, volume: 35, crossfade: 45s}
  - id: integration
    kind: integration
    advance: manual
    planned: 20m
    lights: {brightness: 55, color_temp: 3000K, transition: 3m}
    music: {playlist: integration, volume: 25, crossfade: 30s}
""",
    "timeline-test.yaml",
)


def ev(kind: EventKind, at_s: float, **payload: Any) -> Event:
    return Event(kind=kind, at=T0 + at_s, **payload)


def started() -> list[Event]:
    return [ev(EventKind.STARTED, 0)]


def at(events: list[Event], t_s: float, preset: Preset = PRESET, safety: Safety | None = None) -> Status:
    return evaluate(preset, events, T0 + t_s, safety)


def dosed(after_prep_s: float = 10 * M) -> list[Event]:
    """Started, then the therapist pressed Next out of preparation at ``after_prep_s``."""
    return [*started(), ev(EventKind.ADVANCED, after_prep_s)]


# --- phases -------------------------------------------------------------------------------


def test_start_is_the_first_phase() -> None:
    s = at(started(), 0)
    assert (s.phase_index, s.phase.id, s.next_phase and s.next_phase.id) == (0, "prep", "dose")
    assert s.started_at == T0 and s.phase_started_at == T0
    assert s.time_in_phase_s == 0 and s.session_time_s == 0
    assert s.time_since_dose_s is None
    assert not s.ended and not s.held and not s.emergency
    assert s.light_target == LightLook(60, color_temp=2700)
    assert s.music == MusicTarget("arrival", 35, True, fade_in_s=20, crossfade_s=10, ramp_s=10)


def test_manual_phase_waits_and_planned_is_only_a_guide() -> None:
    s = at(started(), 3 * 3600)
    assert s.phase.id == "prep"
    assert s.remaining_s is None
    assert s.time_in_phase_s == 3 * 3600
    assert s.next_change_at is None  # its one cue is long past; nothing happens on its own


def test_auto_phase_counts_down_and_advances_after_its_duration() -> None:
    events = dosed(12 * M)
    s = at(events, 12 * M)
    assert s.phase.id == "dose" and s.phase_started_at == T0 + 12 * M
    assert s.remaining_s == 15 * M
    assert at(events, 20 * M).remaining_s == 7 * M
    just_before = at(events, 27 * M - 0.001)
    assert just_before.phase.id == "dose"
    assert just_before.remaining_s == pytest.approx(0.001)
    s = at(events, 27 * M)
    assert s.phase.id == "journey" and s.phase_started_at == T0 + 27 * M
    assert s.time_in_phase_s == 0 and s.remaining_s == 30 * M
    # auto phases chain: journey (30m) then return (20m), then the manual integration waits
    s = at(events, 27 * M + 50 * M + 7 * M)
    assert s.phase.id == "integration"
    assert s.phase_started_at == T0 + 77 * M
    assert s.time_in_phase_s == 7 * M
    assert s.remaining_s is None


def test_next_from_the_last_phase_ends_the_session() -> None:
    events = dosed(0)  # dose 0-15m, journey 15-45m, return 45-65m, integration from 65m
    s = at(events, 71 * M)
    assert s.phase.id == "integration" and s.next_phase is None
    assert s.phase_started_at == T0 + 65 * M
    ended = [*events, ev(EventKind.ADVANCED, 80 * M)]
    s = at(ended, 90 * M)
    assert s.ended and s.ended_at == T0 + 80 * M
    assert s.phase.id == "integration"
    assert s.time_in_phase_s == 15 * M  # frozen at the end
    assert s.time_since_dose_s == 80 * M
    assert s.remaining_s is None and s.next_change_at is None
    assert s.music.playlist is None and s.music.ramp_s == Safety().end_fade_s


def test_advancing_past_the_last_auto_phase_ends_the_session() -> None:
    preset = parse_preset_yaml("""
name: Short
phases:
  - {id: a, kind: journey, duration: 1m}
  - {id: b, kind: return, duration: 2m}
""")
    events = started()
    assert at(events, 2.5 * M, preset).phase.id == "b"
    assert at(events, 2.5 * M, preset).next_change_at == T0 + 3 * M
    s = at(events, 10 * M, preset)
    assert s.ended and s.ended_at == T0 + 3 * M and s.phase.id == "b"
    assert s.time_in_phase_s == 2 * M


def test_hold_freezes_the_countdown_and_resume_continues_it() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 5 * M)]
    s = at(events, 5 * M)
    assert s.held and s.remaining_s is None and s.countdown_s == 10 * M
    s = at(events, 4 * 3600)
    assert s.phase.id == "dose" and s.held  # no auto advance while held
    assert s.countdown_s == 10 * M  # the countdown is frozen where the hold began
    assert s.time_in_phase_s == 4 * 3600  # time in phase keeps running
    events.append(ev(EventKind.RESUMED, 40 * M))
    s = at(events, 40 * M)
    assert not s.held
    assert s.remaining_s == 10 * M  # exactly what was left when the hold began
    assert at(events, 50 * M - 0.01).phase.id == "dose"
    assert at(events, 50 * M).phase.id == "journey"


def test_two_holds_in_one_phase_add_up() -> None:
    events = [*dosed(0),
              ev(EventKind.HELD, 1 * M), ev(EventKind.RESUMED, 3 * M),
              ev(EventKind.HELD, 5 * M), ev(EventKind.RESUMED, 10 * M)]
    assert at(events, 10 * M).remaining_s == 15 * M - 1 * M - 2 * M  # ran 0-1 and 3-5


def test_hold_does_not_carry_into_the_next_phase() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 5 * M), ev(EventKind.ADVANCED, 6 * M)]
    s = at(events, 6 * M)
    assert s.phase.id == "journey" and not s.held and s.remaining_s == 30 * M


def test_extend_adds_time_to_the_current_phase_only() -> None:
    events = [*dosed(0), ev(EventKind.EXTENDED, 5 * M, seconds=300),
              ev(EventKind.EXTENDED, 6 * M, seconds=60)]
    assert at(events, 6 * M).remaining_s == 15 * M + 6 * M - 6 * M
    assert at(events, 21 * M - 1).phase.id == "dose"
    s = at(events, 21 * M)
    assert s.phase.id == "journey" and s.remaining_s == 30 * M


def test_extend_while_held() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 5 * M), ev(EventKind.EXTENDED, 6 * M, seconds=120),
              ev(EventKind.RESUMED, 8 * M)]
    assert at(events, 8 * M).remaining_s == 12 * M


def test_next_ends_the_phase_now() -> None:
    events = [*dosed(0), ev(EventKind.ADVANCED, 3 * M)]
    s = at(events, 3 * M)
    assert s.phase.id == "journey" and s.phase_started_at == T0 + 3 * M and s.remaining_s == 30 * M


def test_jump_goes_back_and_forward() -> None:
    events = [*dosed(0), ev(EventKind.JUMPED, 3 * M, phase="integration")]
    s = at(events, 4 * M)
    assert s.phase.id == "integration" and s.phase_index == 4 and s.time_in_phase_s == 1 * M
    events.append(ev(EventKind.JUMPED, 5 * M, phase="dose"))
    s = at(events, 6 * M)
    assert s.phase.id == "dose" and s.remaining_s == 14 * M
    # the dose is timed from the first time the dosing phase began, not the second
    assert s.time_since_dose_s == 6 * M
    events.append(ev(EventKind.JUMPED, 7 * M, phase="prep"))
    s = at(events, 8 * M)
    assert s.phase.id == "prep" and s.phase_index == 0 and s.remaining_s is None


def test_end_stops_everything_and_later_events_are_ignored() -> None:
    events = [*dosed(0), ev(EventKind.ENDED, 5 * M, reason="client unwell"),
              ev(EventKind.ADVANCED, 6 * M), ev(EventKind.HELD, 7 * M),
              ev(EventKind.LIGHTS_SET, 8 * M, lights=LightsChange(brightness=90)),
              ev(EventKind.EMERGENCY_ON, 9 * M)]
    s = at(events, 60 * M)
    assert s.ended and s.ended_at == T0 + 5 * M
    assert s.phase.id == "dose" and s.time_in_phase_s == 5 * M
    assert not s.held and not s.emergency and s.lights_override is None
    assert s.light_target == LightLook(40, color_temp=2400)
    assert s.music.playlist is None and s.next_change_at is None


def test_time_since_dose_starts_at_the_first_dosing_phase() -> None:
    events = dosed(12 * M)
    assert at(events, 11 * M).time_since_dose_s is None
    assert at(events, 12 * M).time_since_dose_s == 0
    assert at(events, 50 * M).time_since_dose_s == 38 * M


def test_an_undone_next_is_as_if_it_never_happened_from_then_on() -> None:
    # Next out of preparation at 2m by mistake, taken back 4 s later.
    events = [*started(), ev(EventKind.ADVANCED, 2 * M), ev(EventKind.UNDONE, 2 * M + 4, undoes=1)]
    assert at(events, 2 * M + 2).phase.id == "dose"  # the record keeps what happened meanwhile
    now = at(events, 2 * M + 5)
    assert now.phase.id == "prep" and now.time_since_dose_s is None
    assert now.phase_started_at == T0 and now.time_in_phase_s == 2 * M + 5
    assert now.light_target == LightLook(60, color_temp=2700)
    # Dosing entered for real later: the dose clock and its reminders count from then.
    events.append(ev(EventKind.ADVANCED, 10 * M))
    later = at(events, 30 * M)
    assert later.phase.id == "journey" and later.time_since_dose_s == 20 * M
    assert [c.text for c in later.cues_due] == ["Consent checklist", "Spit the lozenge", "BP one"]
    assert evaluate_many(PRESET, events, [T0 + 2 * M + 2, T0 + 2 * M + 5, T0 + 30 * M]) == [
        at(events, 2 * M + 2), at(events, 2 * M + 5), later]


def test_replay_follows_an_undo_appended_live() -> None:
    replay = Replay(PRESET)
    events = [*started(), ev(EventKind.ADVANCED, 60)]
    assert replay.status(events, T0 + 61).phase.id == "dose"
    events.append(ev(EventKind.UNDONE, 62, undoes=1))
    assert replay.status(events, T0 + 63).phase.id == "prep"
    assert replay.status(events, T0 + 63) == at(events, 63)


def test_events_after_t_are_not_seen() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 5 * M)]
    assert at(events, 4 * M).held is False
    assert at(events, 4 * M).remaining_s == 11 * M


def test_evaluate_needs_a_started_event() -> None:
    with pytest.raises(ValueError, match="begin with 'started'"):
        evaluate(PRESET, [], T0)
    with pytest.raises(ValueError, match="begin with 'started'"):
        evaluate(PRESET, [ev(EventKind.HELD, 0)], T0)


# --- lights -------------------------------------------------------------------------------


def test_light_fade_brightness_linear_and_colour_temperature_in_mireds() -> None:
    events = dosed(0)  # prep 60 % 2700 K -> dose 40 % 2400 K over 2 minutes
    s = at(events, 1 * M)
    assert s.light_fade.start == LightLook(60, color_temp=2700)
    assert s.light_fade.duration_s == 2 * M and s.light_fade.start_t == T0
    assert s.light_target == LightLook(40, color_temp=2400)
    now = s.light_now
    assert now.brightness == pytest.approx(50)
    mid_mireds = (1e6 / 2700 + 1e6 / 2400) / 2  # even steps to the eye are even in mireds
    assert now.color_temp == pytest.approx(1e6 / mid_mireds, abs=3)
    assert now.color_temp != (2700 + 2400) / 2  # not linear in Kelvin
    quarter = at(events, 30).light_now
    assert quarter.brightness == pytest.approx(55)
    assert at(events, 2 * M).light_now == LightLook(40, color_temp=2400)
    assert at(events, 10 * M).light_now == LightLook(40, color_temp=2400)


def test_light_fade_to_a_colour_blends_in_rgb() -> None:
    events = dosed(0)  # dose 40 % 2400 K -> journey 10 % #8040c0 over 5 minutes from 15m
    s = at(events, 15 * M + 2.5 * M)
    assert s.light_target == LightLook(10, color="#8040c0")
    now = s.light_now
    assert now.brightness == pytest.approx(25)
    assert now.color is not None and now.color_temp is None
    start = units.kelvin_to_rgb(2400)
    end = units.hex_to_rgb("#8040c0")
    got = units.hex_to_rgb(now.color)
    for g, a, b in zip(got, start, end, strict=True):
        assert abs(g - (a + b) / 2) <= 1


def test_a_new_change_mid_fade_starts_from_where_the_light_is() -> None:
    events = [*dosed(0), ev(EventKind.LIGHTS_SET, 1 * M, lights=LightsChange(brightness=80, transition=10))]
    s = at(events, 1 * M)
    assert s.light_fade.start.brightness == pytest.approx(50)
    assert s.light_fade.start == at(dosed(0), 1 * M).light_now
    assert s.light_fade.start_t == T0 + 1 * M and s.light_fade.duration_s == 10
    # the override sets brightness; the colour stays the phase's
    assert s.light_target == LightLook(80, color_temp=2400)
    assert at(events, 1 * M + 5).light_now.brightness == pytest.approx((50 + 80) / 2)


def test_lights_override_lasts_until_the_next_phase() -> None:
    events = [*dosed(0), ev(EventKind.LIGHTS_SET, 5 * M, lights=LightsChange(brightness=70)),
              ev(EventKind.LIGHTS_SET, 6 * M, lights=LightsChange(color="#ff0000", transition=2))]
    s = at(events, 10 * M)
    assert s.lights_override == LightsChange(brightness=70, color="#ff0000", transition=2)
    assert s.light_target == LightLook(70, color="#ff0000")
    s = at(events, 15 * M)  # the journey begins: its own look, no override
    assert s.lights_override is None
    assert s.light_target == LightLook(10, color="#8040c0")
    assert s.light_fade.start == LightLook(70, color="#ff0000")
    assert s.light_fade.duration_s == 5 * M


def test_back_to_preset_returns_gently_to_the_phase_look() -> None:
    events = [*dosed(0), ev(EventKind.LIGHTS_SET, 5 * M, lights=LightsChange(brightness=90, transition=0)),
              ev(EventKind.OVERRIDE_CLEARED, 6 * M)]
    s = at(events, 6 * M)
    assert s.lights_override is None
    assert s.light_target == LightLook(40, color_temp=2400)
    assert s.light_fade.start == LightLook(90, color_temp=2400)
    assert s.light_fade.duration_s == Safety().release_fade_s


def test_back_to_preset_never_cuts_the_phase_fade_short() -> None:
    # journey fades over 5 minutes from 15m; clearing an override 30 s in keeps that pace
    events = [*dosed(0), ev(EventKind.LIGHTS_SET, 15 * M + 10, lights=LightsChange(brightness=30)),
              ev(EventKind.OVERRIDE_CLEARED, 15 * M + 30)]
    s = at(events, 15 * M + 30)
    assert s.light_fade.end_t == T0 + 20 * M


def test_colour_temperature_carries_over_a_phase_that_sets_only_brightness() -> None:
    preset = parse_preset_yaml("""
name: Carry
phases:
  - {id: a, kind: journey, duration: 1m, lights: {brightness: 20, color_temp: 2200K}}
  - {id: b, kind: return, duration: 1m, lights: {brightness: 50}}
  - {id: c, kind: return, duration: 1m, lights: {brightness: 50, color: "#102030"}}
  - {id: d, kind: return, duration: 1m, lights: {brightness: 70}}
""")
    assert at(started(), 1 * M, preset).light_target == LightLook(50, color_temp=2200)
    assert at(started(), 3 * M, preset).light_target == LightLook(70, color="#102030")


# --- music --------------------------------------------------------------------------------


def test_phase_music_crossfades_at_the_boundary() -> None:
    s = at(dosed(0), 0)
    assert s.music == MusicTarget("dosing", 40, True, fade_in_s=10, crossfade_s=20, ramp_s=20)
    assert not s.music_overridden


def test_music_override_lasts_until_the_next_phase_or_back_to_preset() -> None:
    events = [*dosed(0), ev(EventKind.MUSIC_SET, 1 * M, music=MusicChange(volume=20)),
              ev(EventKind.MUSIC_SET, 2 * M, music=MusicChange(playing=False))]
    s = at(events, 2 * M)
    assert s.music.volume == 20 and s.music.playing is False and s.music.playlist == "dosing"
    assert s.music_overridden and s.music.ramp_s == 1.5
    s = at(events, 15 * M)
    assert s.music.playlist == "journey" and s.music.volume == 60 and s.music.playing
    assert not s.music_overridden
    cleared = [*events, ev(EventKind.OVERRIDE_CLEARED, 3 * M)]
    s = at(cleared, 3 * M)
    assert s.music.volume == 40 and s.music.playing and not s.music_overridden
    assert s.music.ramp_s == 5.0
    assert s.lights_override is None and s.light_target == LightLook(40, color_temp=2400)


def test_a_skip_alone_is_not_an_override() -> None:
    events = [*dosed(0), ev(EventKind.MUSIC_SET, 1 * M, music=MusicChange(skip="next"))]
    s = at(events, 1 * M)
    assert not s.music_overridden and s.music.volume == 40


def test_max_volume_caps_phase_music_and_overrides() -> None:
    safety = Safety(max_volume=30)
    assert at(dosed(0), 0, safety=safety).music.volume == 30
    events = [*dosed(0), ev(EventKind.MUSIC_SET, 1 * M, music=MusicChange(volume=100))]
    assert at(events, 1 * M, safety=safety).music.volume == 30
    assert at(events, 1 * M).music.volume == Safety().max_volume
    assert at(started(), 0, safety=safety).music.volume == 30  # 35 % preparation


# --- Lights up ----------------------------------------------------------------------------


def test_emergency_brightens_quietens_and_holds_the_countdown() -> None:
    safety = Safety()
    events = [*dosed(0), ev(EventKind.EMERGENCY_ON, 1 * M)]
    s = at(events, 1 * M)
    assert s.emergency
    assert s.light_target == LightLook(safety.emergency_brightness, color_temp=safety.emergency_color_temp)
    assert s.light_fade.duration_s == safety.emergency_fade_s <= 5
    assert s.light_fade.start.brightness == pytest.approx(50)  # from where the fade was
    assert s.music.volume == safety.emergency_volume and s.music.ramp_s == safety.emergency_fade_s
    assert s.music.playlist == "dosing"
    assert s.remaining_s is None
    assert at(events, 6 * M).next_change_at == T0 + 12 * M  # reminders still come due
    s = at(events, 5 * 3600)
    assert s.phase.id == "dose" and s.emergency  # auto advance is held
    assert s.next_change_at is None


def test_emergency_overrides_a_lights_override_and_a_louder_music_override() -> None:
    events = [*dosed(0), ev(EventKind.LIGHTS_SET, 1 * M, lights=LightsChange(brightness=5)),
              ev(EventKind.MUSIC_SET, 1 * M, music=MusicChange(volume=80)),
              ev(EventKind.EMERGENCY_ON, 2 * M),
              ev(EventKind.LIGHTS_SET, 3 * M, lights=LightsChange(brightness=1)),
              ev(EventKind.MUSIC_SET, 3 * M, music=MusicChange(volume=90))]
    s = at(events, 3 * M)
    assert s.light_target == LightLook(100, color_temp=4000)
    assert s.music.volume == Safety().emergency_volume


def test_emergency_volume_never_raises_quiet_music() -> None:
    events = [*dosed(0), ev(EventKind.MUSIC_SET, 1 * M, music=MusicChange(volume=4)),
              ev(EventKind.EMERGENCY_ON, 2 * M)]
    assert at(events, 2 * M).music.volume == 4


def test_emergency_release_fades_back_and_the_countdown_continues() -> None:
    safety = Safety()
    events = [*dosed(0), ev(EventKind.EMERGENCY_ON, 5 * M), ev(EventKind.EMERGENCY_OFF, 30 * M)]
    s = at(events, 30 * M)
    assert not s.emergency
    assert s.light_target == LightLook(40, color_temp=2400)
    assert s.light_fade.start == LightLook(100, color_temp=4000)
    assert s.light_fade.duration_s == safety.release_fade_s
    assert s.music.volume == 40 and s.music.ramp_s == safety.release_fade_s
    assert s.remaining_s == 10 * M
    assert at(events, 40 * M).phase.id == "journey"


def test_emergency_stays_on_across_phase_changes() -> None:
    events = [*dosed(0), ev(EventKind.EMERGENCY_ON, 5 * M), ev(EventKind.ADVANCED, 6 * M)]
    s = at(events, 7 * M)
    assert s.phase.id == "journey" and s.emergency
    assert s.light_target == LightLook(100, color_temp=4000)
    assert s.music.playlist == "journey" and s.music.volume == Safety().emergency_volume
    assert s.remaining_s is None
    events.append(ev(EventKind.EMERGENCY_OFF, 10 * M))
    s = at(events, 10 * M)
    assert s.remaining_s == 30 * M  # the journey's countdown starts when the emergency ends
    assert s.light_target == LightLook(10, color="#8040c0")


def test_emergency_and_hold_together() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 1 * M), ev(EventKind.EMERGENCY_ON, 2 * M),
              ev(EventKind.EMERGENCY_OFF, 3 * M)]
    s = at(events, 4 * M)
    assert s.held and s.remaining_s is None
    events.append(ev(EventKind.RESUMED, 5 * M))
    assert at(events, 5 * M).remaining_s == 14 * M
    events2 = [*dosed(0), ev(EventKind.EMERGENCY_ON, 1 * M), ev(EventKind.HELD, 2 * M),
               ev(EventKind.EMERGENCY_OFF, 3 * M), ev(EventKind.RESUMED, 5 * M)]
    assert at(events2, 5 * M).remaining_s == 14 * M


# --- reminders ----------------------------------------------------------------------------


def test_phase_cue_comes_due_at_phase_start_plus_at() -> None:
    events = dosed(10 * M)
    assert at(events, 4 * M).cues_due == ()
    assert at(events, 4 * M).next_change_at == T0 + 5 * M
    (cue,) = at(events, 5 * M).cues_due
    assert (cue.id, cue.phase, cue.text, cue.due_at) == ("prep/0", "prep", "Consent checklist", T0 + 5 * M)
    assert cue.acknowledged_at is None
    s = at(events, 22 * M + 1)
    assert [c.id for c in s.cues_due] == ["prep/0", "dose/0"]
    assert s.cues_due[1].due_at == T0 + 22 * M


def test_since_dose_cues_are_timed_from_the_dose() -> None:
    events = [*dosed(10 * M), ev(EventKind.HELD, 11 * M)]  # hold the dose phase: wall time still runs
    s = at(events, 30 * M)
    assert [c.id for c in s.cues_due] == ["prep/0", "dose/0", "journey/0"]
    assert s.cues_due[-1].due_at == T0 + 30 * M and s.phase.id == "dose"
    assert s.next_change_at == T0 + 50 * M


def test_a_phase_cue_is_skipped_when_the_phase_is_left_before_it() -> None:
    events = dosed(4 * M)
    s = at(events, 3 * 3600)
    assert "prep/0" not in {c.id for c in s.cues_due}
    assert s.cues_due[0].id == "dose/0"
    # the same cue comes due if the phase is visited again and lasts long enough
    back = [*events, ev(EventKind.JUMPED, 10 * M, phase="prep")]
    assert "prep/0" in {c.id for c in at(back, 15 * M).cues_due}
    assert at(back, 15 * M).cues_due[-1].due_at == T0 + 15 * M


def test_no_cues_after_the_end() -> None:
    events = [*dosed(0), ev(EventKind.ENDED, 1 * M)]
    s = at(events, 5 * 3600)
    assert s.cues_due == () and s.next_change_at is None


def test_acknowledged_cue_moves_with_its_note() -> None:
    events = [*started(), ev(EventKind.CUE_ACKNOWLEDGED, 6 * M, cue="prep/0", note="120/80")]
    s = at(events, 6 * M)
    assert s.cues_due == ()
    (ack,) = s.cues_acknowledged
    assert (ack.id, ack.acknowledged_at, ack.note, ack.due_at) == ("prep/0", T0 + 6 * M, "120/80", T0 + 5 * M)
    # a second acknowledgement does not overwrite the first
    again = [*events, ev(EventKind.CUE_ACKNOWLEDGED, 7 * M, cue="prep/0", note="other")]
    assert at(again, 8 * M).cues_acknowledged[0].note == "120/80"


def test_cue_acknowledged_after_the_end_is_recorded() -> None:
    events = [*started(), ev(EventKind.ENDED, 6 * M),
              ev(EventKind.CUE_ACKNOWLEDGED, 7 * M, cue="prep/0", note="late")]
    s = at(events, 8 * M)
    assert s.cues_due == ()
    assert [(c.id, c.note) for c in s.cues_acknowledged] == [("prep/0", "late")]


def test_next_change_at_is_the_next_boundary_or_cue() -> None:
    events = dosed(10 * M)
    assert at(events, 10 * M).next_change_at == T0 + 22 * M  # dose cue before the boundary at 25m
    assert at(events, 22 * M).next_change_at == T0 + 25 * M  # then the boundary
    assert at(events, 25 * M).next_change_at == T0 + 30 * M  # BP one, 20m after the dose
    assert at(events, 30 * M).next_change_at == T0 + 50 * M  # BP two
    assert at(events, 50 * M).next_change_at == T0 + 55 * M  # journey ends
    assert at(events, 55 * M).next_change_at == T0 + 75 * M  # return ends
    assert at(events, 75 * M).next_change_at is None  # manual integration, no cues


# --- events that do not fit -----------------------------------------------------------------


def test_events_that_do_not_fit_the_state_are_ignored() -> None:
    base = dosed(0)
    expected = at(base, 20 * M)
    noise = [
        ev(EventKind.RESUMED, 1 * M),  # not held
        ev(EventKind.EMERGENCY_OFF, 2 * M),  # not on
        ev(EventKind.JUMPED, 3 * M, phase="no-such-phase"),
        ev(EventKind.CUE_ACKNOWLEDGED, 4 * M, cue="nope/7"),
    ]
    s = at([*base, *noise], 20 * M)
    assert (s.phase.id, s.phase_started_at, s.remaining_s, s.held, s.emergency) == (
        expected.phase.id, expected.phase_started_at, expected.remaining_s, False, False)
    assert s.cues_acknowledged == ()


def test_a_second_hold_does_not_restart_the_freeze() -> None:
    events = [*dosed(0), ev(EventKind.HELD, 5 * M), ev(EventKind.HELD, 8 * M), ev(EventKind.RESUMED, 10 * M)]
    assert at(events, 10 * M).remaining_s == 10 * M


def test_a_second_emergency_on_does_not_restart_the_fade() -> None:
    events = [*dosed(0), ev(EventKind.EMERGENCY_ON, 5 * M), ev(EventKind.EMERGENCY_ON, 5 * M + 2)]
    assert at(events, 5 * M + 2).light_fade.start_t == T0 + 5 * M


def test_extending_a_manual_phase_changes_nothing() -> None:
    events = [*started(), ev(EventKind.EXTENDED, 1 * M, seconds=600)]
    s = at(events, 2 * M)
    assert s.remaining_s is None and s.phase.id == "prep"
    events.append(ev(EventKind.ADVANCED, 3 * M))
    assert at(events, 3 * M).remaining_s == 15 * M  # the extension stayed with its phase


# --- Fade and blend -----------------------------------------------------------------------


def test_fade_value_at_and_remaining() -> None:
    a, b = LightLook(0, color_temp=2000), LightLook(100, color_temp=6500)
    fade = Fade(a, b, 10.0, 4.0)
    assert fade.end_t == 14.0
    assert fade.value_at(9) == a and fade.value_at(10) == a
    assert fade.value_at(14) == b and fade.value_at(99) == b
    assert fade.value_at(11).brightness == 25
    assert fade.remaining_s(11) == 3 and fade.remaining_s(20) == 0
    assert Fade(a, b, 10.0, 0.0).value_at(10) == b


def test_blend_stays_between_its_ends() -> None:
    a, b = LightLook(0, color_temp=2000), LightLook(100, color_temp=6500)
    for i in range(11):
        x = i / 10
        look = blend_looks(a, b, x)
        assert look.brightness == pytest.approx(100 * x)
        assert look.color_temp is not None and 2000 <= look.color_temp <= 6500
        assert look.color is None
    mid = blend_looks(a, b, 0.5).color_temp
    assert mid == round(1e6 / ((500 + 154) / 2))
    assert not math.isclose(mid or 0, 4250, abs_tol=50)


def test_a_preset_that_sets_no_lights_at_first_still_has_a_look() -> None:
    preset = parse_preset_yaml("""
name: Music first
phases:
  - {id: a, kind: preparation, duration: 1m, music: {playlist: x}}
  - {id: b, kind: journey, duration: 1m, lights: {brightness: 30, color_temp: 2200K, transition: 10s}}
""")
    s = at(started(), 0, preset)
    assert s.light_target == LightLook(0, color_temp=2700)  # the timeline's default look
    assert s.light_fade.duration_s == 0
    s = at(started(), 1 * M + 5, preset)
    assert s.light_fade.start == LightLook(0, color_temp=2700)
    assert s.light_now.brightness == pytest.approx(15)


# --- incremental replay ---------------------------------------------------------------------


def test_incremental_replay_matches_a_fresh_evaluation() -> None:
    """The runner's `Replay` keeps its walk between calls; it must agree with `evaluate` at every
    time, including times before the last event and after events are appended."""
    script = [
        ev(EventKind.ADVANCED, 10 * M),
        ev(EventKind.LIGHTS_SET, 12 * M, lights=LightsChange(brightness=20, transition=5)),
        ev(EventKind.HELD, 14 * M),
        ev(EventKind.RESUMED, 16 * M),
        ev(EventKind.EMERGENCY_ON, 30 * M),
        ev(EventKind.EMERGENCY_OFF, 31 * M),
        ev(EventKind.MUSIC_SET, 40 * M, music=MusicChange(volume=15)),
        ev(EventKind.JUMPED, 50 * M, phase="prep"),
        ev(EventKind.ADVANCED, 52 * M),
    ]
    events = started()
    replay = Replay(PRESET)
    checked = 0
    for e in script:
        events.append(e)
        for t_s in (e.at - T0 - 90, e.at - T0, e.at - T0 + 1, e.at - T0 + 7 * M, e.at - T0 + 45 * M):
            if t_s < 0:
                continue
            assert replay.status(events, T0 + t_s) == evaluate(PRESET, events, T0 + t_s)
            checked += 1
    assert checked > 40
    # a list that was not simply appended to (a different session) starts over
    other = [*started(), ev(EventKind.JUMPED, 1 * M, phase="journey")]
    assert replay.status(other, T0 + 2 * M) == evaluate(PRESET, other, T0 + 2 * M)


def test_the_first_fade_starts_from_the_look_recorded_at_start() -> None:
    dark = [Event(kind=EventKind.STARTED, at=T0, lights=LightsChange(brightness=0, color_temp=2700))]
    assert at(dark, 0).light_now.brightness == 0
    assert at(dark, 15).light_now.brightness == pytest.approx(30)  # half of the 30 s fade to 60 %
    assert at(dark, 30).light_now.brightness == 60
    # without a recorded look the room is taken to show the first phase already
    assert at(started(), 15).light_now.brightness == 60
