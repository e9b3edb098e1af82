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
(e) start-up: `roomctl serve` as a process, from its start to the first answer of a room's
state with a recovered session, with a small record and with one of a million events.
(f) acknowledged means durable: `roomctl serve` killed with SIGKILL in the middle of 8
clients' commands, again and again; every command that was answered must be in the record.
Last line: one JSON object.

    .venv/bin/python bench/store.py [data folder]   (default: a temporary folder)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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
BIG_RECORD_EVENTS = 1_000_000
KILL_RUNS = 13
KILL_CLIENTS = 8
KILL_AFTER_S = 2.0  # commands flow this long before the SIGKILL
TOKEN = "bench-token"  # a paired tablet, written into the data folder before the service starts


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


def serve_folder(folder: Path) -> tuple[Path, int]:
    """A config for `roomctl serve` in ``folder`` (one simulated room) with a paired token."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "tokens.json").write_text(json.dumps([{
        "id": "bench", "hash": hashlib.sha256(TOKEN.encode()).hexdigest(), "label": "bench",
        "created_at": time.time(), "last_seen": None}]))
    config = folder / "roomctl.toml"
    config.write_text(f'listen = {{ host = "127.0.0.1", port = {port} }}\ndata_dir = "data"\npin = "135790"\n'
                      '[[rooms]]\nname = "Room 1"\n  [rooms.lights]\n  kind = "simulated"\n'
                      '  [rooms.audio]\n  kind = "simulated"\n')
    return config, port


def start_serve(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "roomctl.cli", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=config.parent)


def first_state(port: int, proc: subprocess.Popen[bytes], started: float,
                timeout_s: float = 60) -> tuple[float, dict[str, Any]]:
    """Seconds from ``started`` to the first answer of the room's state, and that state."""
    url = f"http://127.0.0.1:{port}/api/rooms/room-1/state"
    while time.perf_counter() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"roomctl serve exited with {proc.returncode}")
        try:
            r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=1)
            if r.status_code == 200:
                return time.perf_counter() - started, r.json()
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError("roomctl serve did not answer")


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def startup_s(folder: Path, events: int) -> float:
    """Start-up to the first state answer with a session to recover, beside ``events`` events
    of ended sessions (written straight into the file)."""
    config, port = serve_folder(folder)
    proc = start_serve(config)
    first_state(port, proc, time.perf_counter())
    h = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}/api/rooms/room-1"
    httpx.post(f"{base}/session", json={"preset": "kap-sublingual"}, headers=h).raise_for_status()
    for i in range(20):
        httpx.post(f"{base}/lights", json={"brightness": 10 + i}, headers=h).raise_for_status()
    kill(proc)
    if events:
        conn = sqlite3.connect(folder / "data" / "sessions.db")
        with conn:
            preset = json.dumps(load_preset(PRESET).model_dump())
            per = 12_600
            for k in range(events // per + 1):
                n = min(per, events - k * per)
                if n <= 0:
                    break
                start = 1_600_000_000.0 + k * 86400
                conn.execute("INSERT INTO sessions (id, room, preset_json, started_at, ended_at, end_reason)"
                             " VALUES (?, 'room-1', ?, ?, ?, 'completed')", (f"old{k}", preset, start, start + n))
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", [
                    (f"old{k}", i, start + i, "started" if i == 0 else "lights_set",
                     "{}" if i == 0 else json.dumps({"lights": {"brightness": i % 100, "transition": 1}}))
                    for i in range(n)])
        conn.close()
    proc = start_serve(config)
    took, state = first_state(port, proc, time.perf_counter())
    kill(proc)
    assert state["session"] is not None and state["session"]["recovered_at"] is not None, state
    return took


def kill_runs(folder: Path, runs: int, clients: int) -> tuple[int, int, int]:
    """(acknowledged, lost, written-but-unanswered) over ``runs`` SIGKILLs with ``clients``
    clients sending commands."""
    config, port = serve_folder(folder)
    h = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}/api/rooms/room-1"
    acked: set[float] = set()
    lock = threading.Lock()
    counter = iter(range(10**9))
    for _ in range(runs):
        proc = start_serve(config)
        _, state = first_state(port, proc, time.perf_counter())
        if state["session"] is None:
            httpx.post(f"{base}/session", json={"preset": "kap-sublingual"}, headers=h).raise_for_status()
        stop = threading.Event()

        def client(stop: threading.Event = stop) -> None:
            with httpx.Client(headers=h, timeout=5) as http:
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    value = round(1 + (n % 990_000) / 10_000, 4)  # a brightness no other command uses
                    try:
                        r = http.post(f"{base}/lights", json={"brightness": value, "transition": 0})
                    except httpx.TransportError:
                        return  # killed under it: not acknowledged
                    if r.status_code == 200:
                        with lock:
                            acked.add(value)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(KILL_AFTER_S)
        kill(proc)
        stop.set()
        for t in threads:
            t.join()
    conn = sqlite3.connect(f"file:{folder / 'data' / 'sessions.db'}?mode=ro", uri=True)
    try:
        stored = {round(json.loads(p)["lights"]["brightness"], 4) for (p,) in conn.execute(
            "SELECT payload_json FROM events WHERE kind = 'lights_set'")}
    finally:
        conn.close()
    return len(acked), len(acked - stored), len(stored - acked)


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
        small = startup_s(folder / "startup-small", 0)
        big = startup_s(folder / "startup-big", BIG_RECORD_EVENTS)
        size_mb = (folder / "startup-big" / "data" / "sessions.db").stat().st_size / 1e6
        print(f"(e) roomctl serve to the first state answer with a recovered session: {small:.2f} s "
              f"(small record), {big:.2f} s (a record of {BIG_RECORD_EVENTS:,} events, {size_mb:.0f} MB)")
        acked, lost, unanswered = kill_runs(folder / "kill", KILL_RUNS, KILL_CLIENTS)
        print(f"(f) {KILL_RUNS} SIGKILLs under {KILL_CLIENTS} clients: {acked} commands acknowledged, "
              f"{lost} of them lost; {unanswered} recorded but never answered (in flight at the kill)")
    print(json.dumps({
        "startup_s": round(small, 2),
        "startup_big_record_s": round(big, 2),
        "kill_runs": KILL_RUNS,
        "acknowledged": acked,
        "acknowledged_lost": lost,
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
