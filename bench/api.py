"""What the service adds on top of the hardware, and what it costs to keep running.

(a) a light change from HTTP request to the Hue bridge emulator receiving the PUT, through
    the whole service (uvicorn on 127.0.0.1, auth, the session runner, the driver gate, the hue
    driver), vs a direct phue `set_light` call to the same emulator, vs the floor a user would
    otherwise build: a minimal FastAPI route (its own uvicorn process) calling phue directly;
    interleaved in one run.
(b) 50 WebSocket clients on one room: from a command's request to every client holding the
    new state; p50/p99 over many commands.
(c) the idle service's resident memory with one VLC room loaded (the demo media room), and
    its start-up time (process start to /healthz answering), as `roomctl serve` subprocesses.

Last line: one JSON object.

    .venv/bin/python bench/api.py
"""

from __future__ import annotations

import asyncio
import http.client as http_client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

# This file is named like the `api` package; run as a script its folder comes first on the path.
# The project root (for the test kit) goes first instead.
sys.path[:] = [str(Path(__file__).resolve().parent.parent),
               *(p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent)]

import httpx
import phue
from websockets.asyncio.client import connect

from roomctl import units
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator, RecordedRequest
from testkit.servers import PIN, free_port

PAIRS = 60
PAIR_S = 0.15  # more than the driver's light-command interval: measure latency, not the limiter
CLIENTS = 50
FANOUT_COMMANDS = 40


def _is_put(r: RecordedRequest) -> bool:
    return r.method == "PUT"


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


class Served(NamedTuple):
    url: str
    token: str
    pid: int
    startup_s: float  # process start to /healthz answering


MINIMAL_APP = """
import phue
from fastapi import FastAPI

app = FastAPI()
bridge = phue.Bridge({host!r}, {user!r}, config_file_path={config!r})


@app.post("/lights")
def set_light(body: dict) -> dict:
    bridge.set_light(1, {{"on": True, "bri": body["bri"], "ct": 370, "transitiontime": 0}})
    return {{"ok": True}}
"""


@contextmanager
def minimal_fastapi(folder: Path, bridge: HueBridgeEmulator) -> Iterator[tuple[str, int]]:
    """The minimal FastAPI + phue service, as its own uvicorn process; yields (host, port)."""
    folder.mkdir()
    (folder / "minimal_app.py").write_text(MINIMAL_APP.format(host=bridge.host, user=DEFAULT_USER,
                                                              config=str(folder / "phue.json")))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "minimal_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the minimal FastAPI app did not start")
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.01)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def served(folder: Path, rooms_toml: str) -> Iterator[Served]:
    """`roomctl serve` as its own process (its own interpreter, as in a clinic), paired."""
    port = free_port()
    config = folder / "roomctl.toml"
    config.write_text(f'listen = {{ host = "127.0.0.1", port = {port} }}\n'
                      f'data_dir = "{folder / "data"}"\npin = "{PIN}"\n{rooms_toml}')
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "roomctl.cli", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("roomctl serve did not start")
            try:
                if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.01)
        startup = time.perf_counter() - t0
        token = httpx.post(url + "/api/pair", json={"pin": PIN}).json()["token"]
        yield Served(url, token, proc.pid, startup)
    finally:
        proc.terminate()
        proc.wait(10)


def light_change(folder: Path) -> tuple[list[float], list[float], list[float]]:
    with HueBridgeEmulator() as bridge:
        rooms = f"""
[[rooms]]
name = "Room 1"
  [rooms.lights]
  kind = "hue"
  bridge = "{bridge.host}"
  username = "{DEFAULT_USER}"
  lights = ["1"]
  [rooms.audio]
  kind = "simulated"
"""
        client = phue.Bridge(bridge.host, DEFAULT_USER, config_file_path=str(folder / "phue.json"))
        service_s: list[float] = []
        direct_s: list[float] = []
        minimal_s: list[float] = []
        (folder / "a").mkdir()
        with served(folder / "a", rooms) as (url, bearer, _, _), \
                minimal_fastapi(folder / "minimal", bridge) as (min_host, min_port), \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {bearer}"}) as http:
            http.post("/api/rooms/room-1/session", json={"preset": "kap-sublingual"}).raise_for_status()
            time.sleep(0.5)
            token = http.headers["Authorization"]
            host, port = url.removeprefix("http://").split(":")

            def through_service(i: int) -> float:
                # http.client, as phue uses: both sides pay the same for being a client
                after = len(bridge.requests)
                body = json.dumps({"brightness": 10 + i % 80, "transition": 0})
                t0 = time.monotonic()
                conn = http_client.HTTPConnection(host, int(port), timeout=5)
                conn.request("POST", "/api/rooms/room-1/lights", body,
                             {"Authorization": token, "Content-Type": "application/json"})
                status = conn.getresponse().status
                conn.close()
                assert status == 200, status
                req = bridge.wait_for(_is_put, 2.0, after)
                assert req is not None, "the service's PUT never reached the bridge"
                return req.arrival_s - t0

            def through_minimal(i: int) -> float:
                after = len(bridge.requests)
                body = json.dumps({"bri": units.percent_to_bri(12 + i % 80)})
                t0 = time.monotonic()
                conn = http_client.HTTPConnection(min_host, min_port, timeout=5)
                conn.request("POST", "/lights", body, {"Content-Type": "application/json"})
                status = conn.getresponse().status
                conn.close()
                assert status == 200, status
                req = bridge.wait_for(_is_put, 2.0, after)
                assert req is not None, "the minimal app's PUT never reached the bridge"
                return req.arrival_s - t0

            def direct(i: int) -> float:
                after = len(bridge.requests)
                body = {"on": True, "bri": units.percent_to_bri(11 + i % 80), "ct": 370, "transitiontime": 0}
                t0 = time.monotonic()
                client.set_light(1, body)
                req = bridge.wait_for(_is_put, 2.0, after)
                assert req is not None
                return req.arrival_s - t0

            for i in range(PAIRS):
                ways = [(service_s, through_service), (direct_s, direct), (minimal_s, through_minimal)]
                ways = ways[i % 3:] + ways[:i % 3]  # each goes first in turn
                for out, fn in ways:
                    out.append(fn(i))
                    time.sleep(PAIR_S)
    return service_s, direct_s, minimal_s


async def fanout(url: str, token: str, http: httpx.AsyncClient) -> list[float]:
    ws_url = url.replace("http://", "ws://") + f"/api/rooms/room-1/live?token={token}"
    clients = [await connect(ws_url, max_size=2**22) for _ in range(CLIENTS)]
    delays: list[float] = []
    try:
        for ws in clients:
            await ws.recv()
        await http.post("/api/rooms/room-1/session", json={"preset": "kap-sublingual"})
        await asyncio.sleep(0.3)
        for i in range(FANOUT_COMMANDS):
            want = 10 + i  # distinct brightness each time
            t0 = time.perf_counter()

            async def until_seen(ws: object, want: int = want, t0: float = t0) -> float:
                while True:
                    msg = json.loads(await ws.recv())  # type: ignore[attr-defined]
                    target = msg["lights"]["target"]
                    if target and target["brightness"] == want:
                        return time.perf_counter() - t0

            waiting = [asyncio.create_task(until_seen(ws)) for ws in clients]
            r = await http.post("/api/rooms/room-1/lights", json={"brightness": want, "transition": 0})
            r.raise_for_status()
            seen = await asyncio.wait_for(asyncio.gather(*waiting), 10)
            delays.append(max(seen))
            await asyncio.sleep(0.05)
    finally:
        for ws in clients:
            await ws.close()
    return delays


def fanout_run(folder: Path) -> list[float]:
    (folder / "b").mkdir()
    rooms = '[[rooms]]\nname = "Room 1"\n  [rooms.audio]\n  kind = "simulated"\n'
    with served(folder / "b", rooms) as (url, token, _, _):

        async def go() -> list[float]:
            async with httpx.AsyncClient(base_url=url,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
                return await fanout(url, token, http)

        return asyncio.run(go())


def idle_service(folder: Path) -> tuple[float, float]:
    """Start-up time and idle RSS (MB) with one VLC room, median of 3 starts."""
    rooms = '[[rooms]]\nname = "Room 1"\n  [rooms.audio]\n  kind = "vlc"\n  demo_media = true\n'
    (folder / "c").mkdir()
    with served(folder / "c", rooms):
        pass  # the first start generates the demo media
    runs = []
    for _ in range(3):
        with served(folder / "c", rooms) as srv:
            time.sleep(3.0)
            with open(f"/proc/{srv.pid}/status", encoding="utf-8") as f:
                rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            runs.append((srv.startup_s, rss_kb / 1024))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="roomctl-bench-api-") as tmp:
        folder = Path(tmp)
        service_s, direct_s, minimal_s = light_change(folder)
        s50, d50, m50 = (statistics.median(v) for v in (service_s, direct_s, minimal_s))
        print(f"(a) light change: service p50 {s50 * 1e3:.2f} ms (p99 {p99(service_s) * 1e3:.2f}), "
              f"minimal FastAPI + phue p50 {m50 * 1e3:.2f} ms (p99 {p99(minimal_s) * 1e3:.2f}), "
              f"direct phue p50 {d50 * 1e3:.2f} ms (p99 {p99(direct_s) * 1e3:.2f}); n={PAIRS}")
        delays = fanout_run(folder)
        print(f"(b) {CLIENTS} WebSocket clients: command to all holding the state p50 "
              f"{statistics.median(delays) * 1e3:.1f} ms, p99 {p99(delays) * 1e3:.1f} ms "
              f"over {len(delays)} commands")
        startup, rss = idle_service(folder)
        print(f"(c) roomctl serve with one vlc room: start-up {startup:.2f} s, idle RSS {rss:.1f} MB "
              f"(median of 3 starts; {os.cpu_count()} CPUs)")
    print(json.dumps({
        "light_change_ratio_p50": round(s50 / d50, 2),
        "light_change_vs_minimal_fastapi_p50": round(s50 / m50, 2),
        "light_change_p99_ms": round(p99(service_s) * 1e3, 2),
        "ws_fanout_p99_ms": round(p99(delays) * 1e3, 1),
        "idle_rss_mb": round(rss, 1),
        "startup_s": round(startup, 2),
    }))


if __name__ == "__main__":
    main()
