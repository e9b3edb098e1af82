"""Run a whole session on a virtual clock against the simulated room, printing what happens.

Used by `roomctl simulate` so a clinic can read a preset as it will play out. A simulated
therapist advances each manual phase after its planned time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from roomctl import units
from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import Vitals
from roomctl.preset import Advance, Preset
from roomctl.room import LightLook, MusicTarget, Safety
from roomctl.session import Room, SessionRunner

START = 1_000_000.0  # an arbitrary epoch for the virtual clock
CHECK_TAKES_S = 120.0  # the simulated clinician records a vitals check this long after it is due
EXAMPLE_VITALS = Vitals(systolic=124, diastolic=80, heart_rate=72, spo2=98)


def _describe_look(look: LightLook) -> str:
    colour = f"{look.color_temp}K" if look.color_temp is not None else look.color
    return f"{look.brightness:g}% {colour}"


async def simulate(preset: Preset, out: Callable[[str], None], *, speed: float | None = None,
                   safety: Safety | None = None) -> float:
    """Run ``preset`` to its end; ``speed`` None runs instantly, else N x real time.
    Returns the session's length in (virtual) seconds."""
    clock = VirtualClock(START)

    def say(what: str, text: str) -> None:
        out(f"{units.format_clock(clock.now() - START)}  {what:<8} {text}")

    def on_lights(look: LightLook, transition_s: float) -> None:
        say("lights", f"{_describe_look(look)} over {units.format_duration(round(transition_s, 1))}")

    def on_music(how: str, target: MusicTarget) -> None:
        if target.playlist is None:
            say("music", f"fade out over {units.format_duration(target.ramp_s)}")
        else:
            state = "" if target.playing else " (paused)"
            say("music", f"{how}: {target.playlist} at {target.volume:g}%{state}")

    room = Room("simulated", SimulatedLights(clock, listener=on_lights),
                SimulatedAudio(clock, listener=on_music), safety or Safety())
    runner = SessionRunner(room, clock)
    seen_visits: set[tuple[int, float]] = set()
    seen_cues: set[str] = set()
    checks: list[tuple[float, str]] = []  # (when the simulated clinician records it, cue id)

    def on_change(r: SessionRunner) -> None:
        st = r.status()
        if st is None:
            return
        visit = (st.phase_index, st.phase_started_at)
        if visit not in seen_visits and not st.ended:
            seen_visits.add(visit)
            p = st.phase
            plan = p.planned_s
            how = "auto" if p.advance is Advance.AUTO else "manual"
            length = f", {units.format_duration(plan)}" if plan else ""
            say("phase", f"{p.id} — {p.display_title} ({p.kind}, {how}{length})")
        for cue in st.cues_due:
            if cue.id not in seen_cues:
                seen_cues.add(cue.id)
                if cue.check:
                    say("check", f"{cue.check}: {cue.text}  [{cue.id}]")
                    checks.append((clock.now() + CHECK_TAKES_S, cue.id))
                else:
                    say("cue", f"{cue.text}  [{cue.id}]")

    runner.subscribe(on_change)
    await runner.start(preset)
    try:
        while runner.running:
            await clock.advance(0)  # let the session task settle and set its next deadline
            st = runner.status()
            assert st is not None
            deadlines = [d for d in (clock.next_deadline(),) if d is not None]
            deadlines += [when for when, _ in checks]
            manual_due: float | None = None
            if st.phase.advance is Advance.MANUAL:
                manual_due = st.phase_started_at + (st.phase.planned or 0.0)
                deadlines.append(manual_due)
            if not deadlines:
                break
            target = min(deadlines)
            if speed is not None and target > clock.now():
                await asyncio.sleep((target - clock.now()) / speed)
            await clock.advance_to(target)
            for when, cue_id in [c for c in checks if c[0] <= clock.now()]:
                checks.remove((when, cue_id))
                await runner.record_vitals(EXAMPLE_VITALS, cue=cue_id, note="simulated")
                say("vitals", f"recorded for {cue_id} (simulated values)")
            st = runner.status()
            if (manual_due is not None and st is not None and not st.ended
                    and st.phase.advance is Advance.MANUAL and clock.now() >= manual_due):
                await runner.next()
        for gate in (runner.lights_gate, runner.audio_gate):  # what the end sends, then the end
            await gate.idle()
        say("end", "session complete")
        return clock.now() - START
    finally:
        await runner.close()


def run_simulation(preset: Preset, *, speed: float | None = None) -> float:
    began = time.perf_counter()
    length = asyncio.run(simulate(preset, print, speed=speed))
    print(f"-- simulated {units.format_clock(length)} of session in "
          f"{time.perf_counter() - began:.2f} s")
    return length
