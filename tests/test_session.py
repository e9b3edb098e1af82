"""The session runner on a virtual clock, driving the simulated room."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

import pytest

from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import Event, EventKind, LightsChange, MusicChange
from roomctl.gate import Backoff
from roomctl.preset import parse_preset_yaml
from roomctl.room import DriverHealth, LightLook, LightReading, MusicTarget, Safety
from roomctl.session import RETRY_RECORD_S, CommandRejected, RecordFailing, Room, Session, SessionRunner, UnknownPhase
from roomctl.timeline import Status

START = 1_000_000.0  # the `clock` fixture's start

PRESET = parse_preset_yaml(
    """
name: Session test
phases:
  - id: prep
    kind: preparation
    advance: manual
    planned: 5m
    lights: {brightness: 60, color_temp: 2700K, transition: 30s}
    music: {playlist: arrival, volume: 35, fade_in: 20s}
    cues:
      - {at: 1m, text: Consent}
  - id: dose
    kind: dosing
    duration: 10m
    lights: {brightness: 40, color_temp: 2400K, transition: 1m}
    music: {playlist: dosing, volume: 40, crossfade: 15s}
    cues:
      - {at: 2m, text: Spit}
  - id: journey
    kind: journey
    duration: 20m
    lights: {brightness: 10, color: "#ff8a3d", transition: 4m}
    music: {playlist: journey, volume: 45, crossfade: 30s}
  - id: return
    kind: return
    duration: 5m
    lights: {brightness: 40, color_temp: 2700K, transition: 3m}
    music: {playlist: return, volume: 35, crossfade: 20s}
""",
    "session-test.yaml",
)
EMERGENCY = LightLook(100, color_temp=4000)


async def test_start_applies_the_first_phase_at_once(runner: SessionRunner, lights: SimulatedLights,
                                                     audio: SimulatedAudio) -> None:
    status = await runner.start(PRESET, session_id="s1", label="Alex")
    assert status.phase.id == "prep" and runner.running
    assert runner.session is not None and runner.session.id == "s1" and runner.session.label == "Alex"
    assert [e.kind for e in runner.session.events] == [EventKind.STARTED]
    assert lights.commands == [(START, LightLook(60, color_temp=2700), 30.0)]
    assert audio.commands == [(START, "fade in", MusicTarget("arrival", 35, True, 20, 8, 8))]


async def test_phase_changes_reach_the_drivers_at_the_exact_times(
        runner: SessionRunner, clock: VirtualClock, lights: SimulatedLights, audio: SimulatedAudio) -> None:
    await runner.start(PRESET)
    await clock.advance_to(START + 200)
    await runner.next()  # dose begins at +200 s
    await clock.advance_to(START + 3 * 3600)
    assert lights.commands == [
        (START, LightLook(60, color_temp=2700), 30.0),
        (START + 200, LightLook(40, color_temp=2400), 60.0),
        (START + 800, LightLook(10, color="#ff8a3d"), 240.0),
        (START + 2000, LightLook(40, color_temp=2700), 180.0),
    ]
    assert [(t - START, how, target.playlist) for t, how, target in audio.commands] == [
        (0, "fade in", "arrival"), (200, "crossfade", "dosing"), (800, "crossfade", "journey"),
        (2000, "crossfade", "return"), (2300, "fade out", None)]
    assert not runner.running
    status = runner.status()
    assert status is not None and status.ended and status.ended_at == START + 2300
    assert lights.readings()[0].brightness == 40 and lights.readings()[0].color_temp == 2700


async def test_the_room_between_boundaries_is_mid_fade(runner: SessionRunner, clock: VirtualClock,
                                                       lights: SimulatedLights) -> None:
    await runner.start(PRESET)
    await clock.advance(60)  # the first look is reached (from dark, over 30 s)
    assert lights.readings()[0].brightness == 60
    await runner.next()
    await clock.advance(30)  # half of the dose phase's one-minute fade from 60 % to 40 %
    assert lights.readings()[0].brightness == 50
    assert lights.readings()[0].color_temp == 2541  # half way in mireds
    status = runner.status()
    assert status is not None and status.light_now == LightLook(50, color_temp=2541)


async def test_overrides_are_applied_at_once(runner: SessionRunner, clock: VirtualClock,
                                             lights: SimulatedLights, audio: SimulatedAudio) -> None:
    await runner.start(PRESET)
    await clock.advance(100)
    status = await runner.set_lights(LightsChange(brightness=20, transition=2))
    assert status.lights_override is not None
    assert lights.commands[-1] == (START + 100, LightLook(20, color_temp=2700), 2.0)
    status = await runner.set_music(MusicChange(volume=15))
    assert audio.commands[-1][0] == START + 100 and audio.commands[-1][2].volume == 15
    await runner.set_music(MusicChange(playing=False))
    assert audio.commands[-1][1] == "pause"
    status = await runner.back_to_preset()
    assert lights.commands[-1] == (START + 100, LightLook(60, color_temp=2700), Safety().release_fade_s)
    assert audio.commands[-1][1] == "play" and audio.commands[-1][2].volume == 35
    assert status.lights_override is None and not status.music_overridden


async def test_music_skip_goes_to_the_driver(runner: SessionRunner, audio: SimulatedAudio) -> None:
    await runner.start(PRESET)
    before = audio.snapshot().now_playing
    await runner.set_music(MusicChange(skip="next"))
    after = audio.snapshot().now_playing
    assert before is not None and after is not None
    assert (before.title, after.title) == ("arrival I", "arrival II")


async def test_emergency_is_applied_at_once_and_released_gently(
        runner: SessionRunner, clock: VirtualClock, lights: SimulatedLights, audio: SimulatedAudio) -> None:
    await runner.start(PRESET)
    await runner.next()
    await clock.advance(60)
    status = await runner.emergency_on()
    assert status.emergency and status.remaining_s is None
    assert lights.commands[-1] == (START + 60, EMERGENCY, 3.0)
    assert audio.commands[-1][0] == START + 60 and audio.commands[-1][2].volume == 10
    await clock.advance(3600)  # the dose phase is held: no phase change while lights are up
    assert lights.commands[-1][0] == START + 60
    status = await runner.emergency_off()
    assert lights.commands[-1] == (START + 3660, LightLook(40, color_temp=2400), 20.0)
    assert status.remaining_s == 9 * 60
    await clock.advance(9 * 60)
    assert lights.commands[-1] == (START + 4200, LightLook(10, color="#ff8a3d"), 240.0)


async def test_lights_up_works_while_the_record_refuses_it_and_is_written_later(
        clock: VirtualClock, lights: SimulatedLights, audio: SimulatedAudio) -> None:
    written: list[EventKind] = []
    failing = [False]

    def sink(_session: Session, event: Event) -> None:
        if failing[0]:
            raise OSError("disk full")
        written.append(event.kind)

    runner = SessionRunner(Room("r", lights, audio), clock, event_sink=sink)
    try:
        await runner.start(PRESET)
        failing[0] = True
        await runner.emergency_on()  # carried out, not refused
        await runner.lights_gate.idle()
        # the emergency look went to the gate before the record was asked, and so reached the bulbs
        assert lights.commands[-1][1:] == (EMERGENCY, 3.0)
        assert runner.emergency and runner.unwritten == 1  # the room follows it; it waits in memory
        with pytest.raises(RecordFailing, match="disk full"):
            await runner.hold()  # any other command is refused, and changes nothing
        await runner.emergency_off()  # released the same way
        assert not runner.emergency and runner.unwritten == 2
        await clock.advance(RETRY_RECORD_S * 3)
        assert runner.unwritten == 2 and written == [EventKind.STARTED]  # still failing: kept, in order
        failing[0] = False
        await clock.advance(RETRY_RECORD_S * 1.5)  # the retry writes them as soon as it can
        assert runner.unwritten == 0
        assert written == [EventKind.STARTED, EventKind.EMERGENCY_ON, EventKind.EMERGENCY_OFF]
    finally:
        await runner.close()


async def test_emergency_reaches_the_lights_even_when_the_timeline_is_stuck(
        runner: SessionRunner, lights: SimulatedLights) -> None:
    await runner.start(PRESET)
    assert runner.session is not None
    events = list(runner.session.events)
    runner.session.events.clear()  # a damaged record: the timeline cannot evaluate it
    await runner.emergency_on()  # recorded and answered, not raised
    await runner.lights_gate.idle()
    assert lights.commands[-1][1:] == (EMERGENCY, 3.0)
    assert runner.timeline_error is not None and "begin with 'started'" in runner.timeline_error
    assert runner.emergency and runner.session.events[-1].kind is EventKind.EMERGENCY_ON
    runner.session.events[:] = [*events, runner.session.events[-1]]  # so that the runner can stop cleanly


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["hold", "hold"], "the phase is already on hold"),
        (["resume"], "the phase is not on hold"),
        (["extend"], "phase 'prep' is manual: it has no countdown to extend"),
        (["ack-spit"], "reminder 'dose/0' is not due"),
        (["ack-unknown"], "reminder 'nope/0' is not due"),
        (["emergency_on", "emergency_on"], "lights up is already on"),
        (["emergency_off"], "lights up is not on"),
        (["back"], "nothing to put back: the room already follows the preset"),
        (["end", "next"], "the session has ended"),
        (["end", "hold"], "the session has ended"),
        (["end", "lights"], "the session has ended"),
        (["end", "emergency_on"], "the session has ended"),
        (["end", "end"], "the session has ended"),
        (["start"], "a session is already running in this room; end it first"),
    ],
)
async def test_commands_that_do_not_fit_are_rejected(runner: SessionRunner, steps: list[str],
                                                     message: str) -> None:
    actions: dict[str, Callable[[], Awaitable[Status]]] = {
        "hold": runner.hold, "resume": runner.resume, "next": runner.next, "end": runner.end,
        "extend": lambda: runner.extend(60), "ack-spit": lambda: runner.acknowledge("dose/0"),
        "ack-unknown": lambda: runner.acknowledge("nope/0"),
        "emergency_on": runner.emergency_on, "emergency_off": runner.emergency_off,
        "back": runner.back_to_preset, "lights": lambda: runner.set_lights(LightsChange(brightness=5)),
        "start": lambda: runner.start(PRESET),
    }
    await runner.start(PRESET)
    for step in steps[:-1]:
        await actions[step]()
    assert runner.session is not None
    recorded = list(runner.session.events)
    with pytest.raises(CommandRejected) as info:
        await actions[steps[-1]]()
    assert str(info.value) == message
    assert runner.session.events == recorded  # a rejected command leaves no trace


async def test_commands_without_a_session_are_rejected(runner: SessionRunner) -> None:
    for command in (runner.next, runner.hold, runner.end, runner.back_to_preset):
        with pytest.raises(CommandRejected, match="no session in this room; start one first"):
            await command()
    assert runner.status() is None and not runner.running


async def test_acknowledging_a_reminder_twice(runner: SessionRunner, clock: VirtualClock) -> None:
    await runner.start(PRESET)
    await clock.advance(61)
    status = await runner.acknowledge("prep/0", "signed")
    assert [(c.id, c.note) for c in status.cues_acknowledged] == [("prep/0", "signed")]
    with pytest.raises(CommandRejected, match="reminder 'prep/0' is already acknowledged"):
        await runner.acknowledge("prep/0")


async def test_a_reminder_can_be_acknowledged_after_the_end(runner: SessionRunner,
                                                            clock: VirtualClock) -> None:
    await runner.start(PRESET)
    await clock.advance(61)
    await runner.end()
    status = await runner.acknowledge("prep/0", "done late")
    assert status.ended and status.cues_acknowledged[0].note == "done late"


async def test_jump_to_an_unknown_phase(runner: SessionRunner) -> None:
    await runner.start(PRESET)
    with pytest.raises(UnknownPhase) as info:
        await runner.jump("nowhere")
    assert info.value.args == ("nowhere",)
    status = await runner.jump("journey")
    assert status.phase.id == "journey"


async def test_start_again_after_the_end(runner: SessionRunner, clock: VirtualClock,
                                         lights: SimulatedLights) -> None:
    await runner.start(PRESET, session_id="first")
    await runner.end()
    await clock.advance(10)
    status = await runner.start(PRESET, session_id="second")
    assert runner.session is not None and runner.session.id == "second"
    assert status.started_at == START + 10 and not status.ended
    assert lights.commands[-1] == (START + 10, LightLook(60, color_temp=2700), 30.0)


async def test_the_event_sink_hears_of_each_event_before_the_command_returns(
        clock: VirtualClock, lights: SimulatedLights, audio: SimulatedAudio) -> None:
    heard: list[tuple[str, EventKind, bool]] = []

    def sink(session: Session, event: Event) -> None:
        heard.append((session.id, event.kind, event in session.events))

    runner = SessionRunner(Room("r", lights, audio), clock, event_sink=sink)
    try:
        await runner.start(PRESET, session_id="s")
        assert heard == [("s", EventKind.STARTED, False)]  # durable before it is in the session
        await runner.hold()
        assert heard[-1] == ("s", EventKind.HELD, False)
        with pytest.raises(CommandRejected):
            await runner.hold()
        assert len(heard) == 2
    finally:
        await runner.close()


async def test_a_failing_sink_fails_the_command_and_records_nothing(
        clock: VirtualClock, lights: SimulatedLights, audio: SimulatedAudio) -> None:
    fail = [False]

    def sink(_session: Session, _event: Event) -> None:
        if fail[0]:
            raise OSError("disk full")

    runner = SessionRunner(Room("r", lights, audio), clock, event_sink=sink)
    try:
        await runner.start(PRESET)
        fail[0] = True
        with pytest.raises(RecordFailing, match="disk full"):
            await runner.hold()
        assert runner.session is not None
        assert [e.kind for e in runner.session.events] == [EventKind.STARTED]
        status = runner.status()
        assert status is not None and not status.held
    finally:
        await runner.close()


async def test_recover_re_applies_the_room_mid_fade(clock: VirtualClock, lights: SimulatedLights,
                                                   audio: SimulatedAudio) -> None:
    # A session that began 17 minutes before now, with Next at 5m: the dose ran 5-15m and the
    # journey began at 15m with a 4-minute fade, so 2 minutes of that fade are left.
    began = START - 17 * 60
    session = Session("old", PRESET, [Event(kind=EventKind.STARTED, at=began),
                                      Event(kind=EventKind.ADVANCED, at=began + 300),
                                      Event(kind=EventKind.MUSIC_SET, at=began + 16 * 60,
                                            music=MusicChange(volume=30))])
    runner = SessionRunner(Room("r", lights, audio), clock)
    try:
        status = await runner.recover(session)
        assert runner.recovered_at == START
        assert status is not None and status.phase.id == "journey" and status.remaining_s == 18 * 60
        assert lights.commands == [(START, LightLook(10, color="#ff8a3d"), 120.0)]
        assert [(t, target.playlist, target.volume) for t, _, target in audio.commands] == [
            (START, "journey", 30)]  # the therapist's volume survives the restart
        assert runner.session is session and len(session.events) == 3  # nothing new recorded
        await clock.advance(18 * 60)
        assert lights.commands[-1] == (START + 18 * 60, LightLook(40, color_temp=2700), 180.0)
    finally:
        await runner.close()


async def test_recover_an_ended_session_does_not_run_it(runner: SessionRunner,
                                                        lights: SimulatedLights) -> None:
    session = Session("done", PRESET, [Event(kind=EventKind.STARTED, at=START - 7200),
                                       Event(kind=EventKind.ENDED, at=START - 3600)])
    status = await runner.recover(session)
    assert status is not None and status.ended and not runner.running
    assert lights.commands[-1][1] == LightLook(60, color_temp=2700)


async def test_subscribers_hear_every_change_until_they_unsubscribe(
        runner: SessionRunner, clock: VirtualClock) -> None:
    seen: list[str] = []

    def listener(r: SessionRunner) -> None:
        status = r.status()
        assert status is not None
        seen.append(status.phase.id)

    def broken(_r: SessionRunner) -> None:
        raise RuntimeError("a listener that fails")

    unsubscribe = runner.subscribe(listener)
    runner.subscribe(broken)  # must not stop the others or the session
    await runner.start(PRESET)
    assert seen and seen[-1] == "prep"
    await runner.next()
    assert seen[-1] == "dose"
    count = len(seen)
    unsubscribe()
    unsubscribe()  # twice is harmless
    await runner.next()
    await clock.advance(60)
    assert len(seen) == count
    status = runner.status()
    assert status is not None and status.phase.id == "journey"


class FailingLights:
    """A misbehaving light driver: every command fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def apply(self, look: LightLook, transition_s: float) -> None:
        self.calls += 1
        raise ConnectionError("bridge unreachable")

    def readings(self) -> list[LightReading]:
        return []

    def health(self) -> DriverHealth:
        return DriverHealth(False, "bridge unreachable")

    async def close(self) -> None:
        return None


async def test_a_failing_driver_does_not_stop_the_session(clock: VirtualClock,
                                                          audio: SimulatedAudio) -> None:
    bad = FailingLights()
    runner = SessionRunner(Room("r", bad, audio), clock, backoff=Backoff(first_s=0.01, max_s=0.02))
    try:
        status = await runner.start(PRESET)
        assert status.phase.id == "prep"
        assert runner.last_error == "lights: bridge unreachable"
        await runner.next()
        status = await runner.emergency_on()
        assert status.emergency
        await runner.emergency_off()
        await clock.advance(10 * 60)
        now = runner.status()
        assert now is not None and now.phase.id == "journey"
        await asyncio.sleep(0.3)  # real time: the gate keeps retrying the failing lights
        assert bad.calls >= 5
        assert audio.commands[-1][2].playlist == "journey"  # the music carried on
    finally:
        await runner.close()


class SkipFailingAudio(SimulatedAudio):
    async def skip(self, direction: Literal["next", "previous"]) -> None:
        raise RuntimeError("no such track")


async def test_a_failing_skip_is_recorded_not_raised(clock: VirtualClock, lights: SimulatedLights) -> None:
    runner = SessionRunner(Room("r", lights, SkipFailingAudio(clock)), clock)
    try:
        await runner.start(PRESET)
        await runner.set_music(MusicChange(skip="next"))
        assert runner.last_error == "music skip: no such track"
    finally:
        await runner.close()


async def test_the_session_ends_on_its_own_and_the_task_stops(runner: SessionRunner,
                                                             clock: VirtualClock) -> None:
    await runner.start(PRESET)
    await runner.next()
    await clock.advance(35 * 60)
    assert not runner.running
    assert clock.next_deadline() is None  # nothing left asleep


async def test_start_records_how_the_room_looked_and_predicts_the_first_fade_from_it(
        runner: SessionRunner, clock: VirtualClock, lights: SimulatedLights) -> None:
    await lights.apply(LightLook(20, color_temp=3000), 0)
    await runner.start(PRESET)
    assert runner.session is not None
    assert runner.session.events[0].lights == LightsChange(brightness=20, color_temp=3000, transition=0)
    await clock.advance_to(START + 15)  # half way through the 30 s fade from 20 % to 60 %
    status = runner.status()
    assert status is not None
    assert status.light_now.brightness == pytest.approx(40)
    assert [r.brightness for r in lights.readings()] == [pytest.approx(40, abs=0.1)] * 4


async def test_a_session_task_that_fails_is_started_again(runner: SessionRunner, clock: VirtualClock,
                                                          lights: SimulatedLights) -> None:
    await runner.start(PRESET)
    await runner.next()
    update = runner._update_drivers
    fails = [1]

    def flaky() -> Status | None:  # a bug in one pass of the session task
        if fails[0]:
            fails[0] -= 1
            raise RuntimeError("one bad pass")
        return update()

    runner._update_drivers = flaky  # type: ignore[method-assign]  # the fault, inside the runner itself
    await clock.advance(10 * 60)  # the dose phase ends: the task wakes, and fails
    assert fails == [0]
    assert runner.task_error is not None and "one bad pass" in runner.task_error
    await asyncio.sleep(0.7)  # (real time) the watchman starts it again
    await clock.advance(1)
    assert lights.commands[-1][1] == LightLook(10, color="#ff8a3d")  # the journey reached the lights


async def test_undo_takes_back_a_next_pressed_by_mistake(runner: SessionRunner, clock: VirtualClock,
                                                       lights: SimulatedLights) -> None:
    await runner.start(PRESET)
    await clock.advance(90)
    await runner.next()
    await clock.advance(3)
    status = await runner.undo()
    assert status.phase.id == "prep" and status.time_since_dose_s is None
    assert lights.commands[-1][1] == LightLook(60, color_temp=2700)
    with pytest.raises(CommandRejected, match="nothing to undo"):
        await runner.undo()
    await runner.next()
    await clock.advance(11)
    with pytest.raises(CommandRejected, match="too late to undo"):
        await runner.undo()
    assert runner.session is not None
    assert [e.kind for e in runner.session.events][1:] == [EventKind.ADVANCED, EventKind.UNDONE,
                                                           EventKind.ADVANCED]
    assert runner.session.events[2].undoes == 1
