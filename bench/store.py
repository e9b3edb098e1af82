"""What the durable session record costs.

(a) durable events per second: sequential appends through the runner's sink, one
    transaction and one fsync each (WAL, synchronous=FULL), on a file on disk.
(b) command latency: `await runner.set_lights(...)` on the real clock with the simulated room,
    with the store as event sink vs without a sink, interleaved in one run; p50 of each and
    their ratio. The same with synchronous=NORMAL is measured for comparison only: in WAL
    mode NORMAL does not fsync on commit, so a power cut can lose the last acknowledged
    commands; roomctl uses FULL.

(c) repeats (b) without NORMAL in a session that grows to LONG_COMMANDS events, as a
therapist dragging sliders (10 commands a second) produces: a command must not get slower as
the session grows.
(d) what a tablet waits for: the same command as an HTTP request to the real service (uvicorn
on 127.0.0.1), one app with the store and one without, interleaved in one run. This is the
`command_latency_ratio` of the last line; (b)'s engine-only ratio is there too.
Last line: one JSON object.

    .venv/bin/python bench/store.py [data folder]   (default: a temporary folder)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/api.py is named like the `api` package; run as a script, this folder comes first on the path.
# The project root (for the test kit) goes first instead.
sys.path[:] = [str(Path(__file__).resolve().parent.parent),
               *(p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent)]

import httpx

from roomctl.clock import RealClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.events import Event, EventKind, LightsChange
from roomctl.preset import Preset, load_preset
from roomctl.session import Room, Session, SessionRunner
from roomctl.store import SessionStore
from testkit.servers import demo_test_config, running_app

PRESET = Path(__file__).resolve().parent.parent / "roomctl" / "presets" / "kap-intramuscular.yaml"
APPEND_S = 2.0  # time budget per append measurement
COMMANDS = 600  # per variant
SESSION_COMMANDS = 60  # a busy session of taps
LONG_COMMANDS = 400  # slider drags
HTTP_COMMANDS = 400  # per variant


def filesystem_of(path: Path) -> str:
    """The mount's filesystem type (fsync on tmpfs is free, which would flatter the store)."""
    best, fstype = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                _dev, mount, kind, *_ = line.split()
                if str(path).startswith(mount) and len(mount) > len(best):
                    best, fstype = mount, kind
    except OSError:
        pass
    return fstype


def set_synchronous(store: SessionStore, level: str) -> None:
    # Bench-only: the store is always FULL; NORMAL is measured for the comparison.
    store._conn.execute(f"PRAGMA synchronous={level}")


def appends_per_s(store: SessionStore, preset: Preset) -> float:
    session = Session(f"bench-{time.monotonic_ns()}", preset, [])
    sink = store.sink("bench")
    first = Event(kind=EventKind.STARTED, at=time.time())
    sink(session, first)
    session.events.append(first)
    n = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < APPEND_S:
        e = Event(kind=EventKind.LIGHTS_SET, at=time.time(),
                  lights=LightsChange(brightness=float(n % 100)))
        sink(session, e)
        session.events.append(e)
        n += 1
    return n / elapsed


def runner(name: str, clock: RealClock, store: SessionStore | None) -> SessionRunner:
    room = Room(name, SimulatedLights(clock), SimulatedAudio(clock))
    return SessionRunner(room, clock, event_sink=store.sink(name) if store else None)


async def command_latencies(preset: Preset, stores: dict[str, SessionStore | None],
                            commands: int, per_session: int) -> dict[str, list[float]]:
    clock = RealClock()
    runners = {name: runner(name, clock, store) for name, store in stores.items()}
    out: dict[str, list[float]] = {k: [] for k in runners}
    try:
        for i in range(commands):
            if i % per_session == 0:
                for r in runners.values():
                    if r.running:
                        await r.end()
                    await r.start(preset)
            change = LightsChange(brightness=20.0 if i % 2 else 30.0, transition=2.0)
            order = list(runners.items())
            if i % 2:
                order.reverse()  # neither variant always goes first
            for name, r in order:
                t0 = time.perf_counter()
                await r.set_lights(change)
                out[name].append(time.perf_counter() - t0)
    finally:
        for r in runners.values():
            await r.close()
    return out


def http_latencies(folder: Path) -> dict[str, list[float]]:
    """POST /lights round trips against two live services, one keeping the record."""
    out: dict[str, list[float]] = {"none": [], "full": []}
    store = SessionStore.open(folder / "http" / "sessions.db")
    try:
        with running_app(demo_test_config(folder / "http-none")) as plain, \
                running_app(demo_test_config(folder / "http"), store=store) as kept:
            clients = {}
            for name, srv in (("none", plain), ("full", kept)):
                c = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.pair()}"})
                c.post("/api/rooms/room-1/session", json={"preset": "kap-intramuscular"}).raise_for_status()
                clients[name] = c
            try:
                for i in range(HTTP_COMMANDS):
                    order = list(clients.items())
                    if i % 2:
                        order.reverse()
                    for name, c in order:
                        t0 = time.perf_counter()
                        r = c.post("/api/rooms/room-1/lights",
                                   json={"brightness": 20 if i % 2 else 30, "transition": 2})
                        out[name].append(time.perf_counter() - t0)
                        r.raise_for_status()
            finally:
                for c in clients.values():
                    c.close()
    finally:
        store.close()
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if q < 100 else max(values)


def main() -> None:
    preset = load_preset(PRESET)
    with tempfile.TemporaryDirectory(prefix="roomctl-bench-",
                                     dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        folder = Path(tmp)
        print(f"data folder {folder} on {filesystem_of(folder.resolve())}; "
              f"sqlite3 module on SQLite {__import__('sqlite3').sqlite_version}; "
              f"{os.cpu_count()} CPUs")
        full = SessionStore.open(folder / "full" / "roomctl.db")
        normal = SessionStore.open(folder / "normal" / "roomctl.db")
        set_synchronous(normal, "NORMAL")
        try:
            eps_full = appends_per_s(full, preset)
            eps_normal = appends_per_s(normal, preset)
            print(f"(a) durable appends, synchronous=FULL:   {eps_full:8.0f} events/s "
                  f"({1000 / eps_full:.2f} ms each)")
            print(f"    for comparison, synchronous=NORMAL:  {eps_normal:8.0f} events/s "
                  f"({1000 / eps_normal:.2f} ms each; not durable on power loss)")

            lat = asyncio.run(command_latencies(
                preset, {"none": None, "full": full, "normal": normal}, COMMANDS, SESSION_COMMANDS))
            p50 = {k: statistics.median(v) * 1e3 for k, v in lat.items()}
            p90 = {k: p(v, 90) * 1e3 for k, v in lat.items()}
            print(f"(b) set_lights latency over {COMMANDS} commands each, interleaved "
                  f"(sessions of {SESSION_COMMANDS} commands):")
            for k, label in (("none", "no sink"), ("full", "store, FULL"),
                             ("normal", "store, NORMAL")):
                print(f"    {label:<15} p50 {p50[k]:6.3f} ms   p90 {p90[k]:6.3f} ms")
            ratio = p50["full"] / p50["none"]
            ratio_normal = p50["normal"] / p50["none"]
            print(f"    ratio p50 FULL/no sink {ratio:.2f}, NORMAL/no sink {ratio_normal:.2f}; "
                  f"FULL adds {p50['full'] - p50['none']:.3f} ms per command")

            long = asyncio.run(command_latencies(
                preset, {"none": None, "full": full}, LONG_COMMANDS, LONG_COMMANDS))
            tail = {k: statistics.median(v[-100:]) * 1e3 for k, v in long.items()}
            ratio_long = tail["full"] / tail["none"]
            print(f"(c) one session growing to {LONG_COMMANDS} events, p50 of the last 100: "
                  f"no sink {tail['none']:.3f} ms, store FULL {tail['full']:.3f} ms, "
                  f"ratio {ratio_long:.2f}")
            http = http_latencies(folder)
            http_p50 = {k: statistics.median(v) * 1e3 for k, v in http.items()}
            http_ratio = http_p50["full"] / http_p50["none"]
            print(f"(d) POST /lights over HTTP, {HTTP_COMMANDS} each, interleaved: no record "
                  f"p50 {http_p50['none']:.3f} ms, with the record {http_p50['full']:.3f} ms, "
                  f"ratio {http_ratio:.2f}")
        finally:
            full.close()
            normal.close()
    print(json.dumps({
        "durable_events_per_s": round(eps_full),
        "command_latency_ratio": round(http_ratio, 2),
        "http_command_p50_ms": {k: round(v, 3) for k, v in http_p50.items()},
        "engine_command_latency_ratio": round(ratio, 2),
        "command_p50_ms": {k: round(v, 3) for k, v in p50.items()},
        "events_per_s_normal": round(eps_normal),
        "command_latency_ratio_normal": round(ratio_normal, 2),
        "command_latency_ratio_long_session": round(ratio_long, 2),
    }))


if __name__ == "__main__":
    main()
