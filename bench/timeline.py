"""How late do phase changes and reminders fire on the real clock, and does lateness add up?

A preset of many short auto phases (with reminders) runs on `RealClock` through a
`SessionRunner` and the simulated room. Each phase change is timed when the lights are told
(a listener on `SimulatedLights` records `time.time()`), each reminder when the runner first
publishes it as due. Ideal times come from the `started` event plus the phase durations,
exactly as the timeline computes them, so a runner that chained sleeps would show drift.

Run: .venv/bin/python bench/timeline.py   (about 20 s; last line is one JSON object)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

from roomctl.clock import RealClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.preset import Preset, parse_preset
from roomctl.room import LightLook
from roomctl.session import Room, SessionRunner

PHASES = 60
PHASE_S = 0.3
CUE_AT_S = 0.15
DOSE_CUE_EVERY = 10  # every 10th phase also has a reminder timed from the dose


def build_preset() -> Preset:
    phases = []
    for i in range(PHASES):
        cues: list[dict[str, object]] = [{"at": CUE_AT_S, "text": f"reminder {i}"}]
        if i and i % DOSE_CUE_EVERY == 0:
            cues.append({"since_dose": i * PHASE_S + 0.05, "text": f"dose reminder {i}"})
        phases.append({
            "id": f"p{i:02d}",
            "kind": "dosing" if i == 0 else "journey",
            "duration": PHASE_S,
            # a different look per phase, so every phase change reaches the lights
            "lights": {"brightness": 10 + (i % 2) * 40, "color_temp": 2200 + 10 * i, "transition": 0.1},
            "music": {"playlist": f"list {i % 3}", "volume": 30},
            "cues": cues,
        })
    return parse_preset({"name": "Timing bench", "phases": phases}, "bench")


def ideal_times(preset: Preset, t0: float) -> tuple[list[float], dict[str, float]]:
    """When each phase after the first should begin, and each reminder come due."""
    starts = [t0]
    for p in preset.phases:
        starts.append(starts[-1] + (p.duration or 0.0))
    cues: dict[str, float] = {}
    for i, p in enumerate(preset.phases):
        for ci, cue in enumerate(p.cues):
            cid = f"{p.id}/{ci}"
            cues[cid] = starts[i] + cue.at if cue.at is not None else t0 + (cue.since_dose or 0.0)
    return starts[1:-1], cues


async def run(preset: Preset) -> tuple[float, list[float], dict[str, float]]:
    clock = RealClock()
    applied: list[float] = []
    cue_seen: dict[str, float] = {}
    done = asyncio.Event()

    def on_lights(_look: LightLook, _transition_s: float) -> None:
        applied.append(time.time())

    runner = SessionRunner(Room("bench", SimulatedLights(clock, listener=on_lights),
                                SimulatedAudio(clock)), clock)

    def on_change(r: SessionRunner) -> None:
        now = time.time()
        status = r.status(now)
        if status is not None:
            for cue in status.cues_due:
                cue_seen.setdefault(cue.id, now)
            if status.ended:
                done.set()

    runner.subscribe(on_change)
    await runner.start(preset)
    assert runner.session is not None
    t0 = runner.session.events[0].at
    await asyncio.wait_for(done.wait(), timeout=PHASES * PHASE_S + 5)
    await runner.close()
    # the first apply is the start itself
    return t0, applied[1:], cue_seen


def main() -> None:
    preset = build_preset()
    began = time.perf_counter()
    t0, applied, cue_seen = asyncio.run(run(preset))
    phase_ideal, cue_ideal = ideal_times(preset, t0)
    if len(applied) != len(phase_ideal):
        raise SystemExit(f"expected {len(phase_ideal)} phase changes at the lights, saw {len(applied)}")
    missing = set(cue_ideal) - set(cue_seen)
    if missing:
        raise SystemExit(f"reminders never came due: {sorted(missing)}")
    phase_late = [(a - b) * 1000 for a, b in zip(applied, phase_ideal, strict=True)]
    cue_late = {c: (cue_seen[c] - cue_ideal[c]) * 1000 for c in cue_ideal}
    every = phase_late + list(cue_late.values())
    # (ideal time, lateness ms, what) for every firing, in the order they were due
    timeline = sorted([(t, late, f"phase {i + 1}") for i, (t, late)
                       in enumerate(zip(phase_ideal, phase_late, strict=True))]
                      + [(cue_ideal[c], late, f"reminder {c}") for c, late in cue_late.items()])
    late_in_time_order = [late for _, late, _ in timeline]
    # medians, so that one scheduler hiccup does not pass for a trend
    drift = statistics.median(late_in_time_order[-10:]) - statistics.median(late_in_time_order[:10])
    early = min(every)
    worst = sorted(timeline, key=lambda x: -x[1])[:3]
    print(f"{PHASES} phases of {PHASE_S} s with {len(cue_ideal)} reminders on the real clock, "
          f"{time.perf_counter() - began:.1f} s")
    print(f"phase changes: median {statistics.median(phase_late):.2f} ms late, "
          f"worst {max(phase_late):.2f} ms")
    print(f"reminders:     median {statistics.median(cue_late.values()):.2f} ms late, "
          f"worst {max(cue_late.values()):.2f} ms")
    print("latest: " + ", ".join(f"{what} at {t - t0:.2f} s: {late:.1f} ms" for t, late, what in worst))
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"earliest: {early:.2f} ms (negative would mean firing before its time)")
    print(f"drift (median of the last 10 minus median of the first 10): {drift:.2f} ms")
    print(json.dumps({"median_late_ms": round(statistics.median(every), 3),
                      "worst_late_ms": round(max(every), 3),
                      "drift_ms": round(drift, 3)}))


if __name__ == "__main__":
    main()
