"""What hostile input costs the service, and what HTTPS costs a tablet.

(a) a YAML alias bomb imported as a preset (the expanded value used as a phase id): how long
    until it is answered, the process's peak memory growth, /healthz latency meanwhile;
(b) a 10,000-deep YAML list, sent 20 times: per answer, and /healthz latency meanwhile,
    against /healthz alone just before (the ratio);
(c) a 20,000-phase preset: how long until it is answered;
(d) GET /api/rooms over HTTPS (keep-alive) vs plain HTTP, interleaved in one run, and a
    new HTTPS connection (handshake included).

The service runs in this process (uvicorn in a thread, as the tests run it). Last line: one
JSON object.

    .venv/bin/python bench/access.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test kit

import httpx

from testkit.servers import Running, demo_test_config, running_app

ROUNDS = 200


def alias_bomb(levels: int = 8) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines += ["name: Bomb", "phases:", f"  - {{id: *l{levels - 1}, kind: journey, duration: 1m}}"]
    return "\n".join(lines) + "\n"


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise KeyError(field)


def health_during(srv: Running, work: Callable[[], Any]) -> tuple[Any, list[float]]:
    """Run ``work()`` while another thread asks /healthz again and again; its latencies (ms)."""
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with srv.client() as c:
            c.get("/healthz")
            while not stop.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                latencies.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.005)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.2)
    try:
        result = work()
    finally:
        time.sleep(0.1)
        stop.set()
        thread.join(timeout=30)
    return result, latencies


def idle_health(srv: Running, n: int = 50) -> list[float]:
    out = []
    with srv.client() as c:
        c.get("/healthz")
        for _ in range(n):
            t0 = time.perf_counter()
            c.get("/healthz")
            out.append((time.perf_counter() - t0) * 1000)
    return out


def inputs(srv: Running) -> dict[str, Any]:
    token = srv.pair()
    out: dict[str, Any] = {}
    with srv.client(token) as api:
        api.timeout = httpx.Timeout(300)
        api.post("/api/presets/validate-yaml", json={"yaml": "name: warm-up"})  # the route's first call
        Path("/proc/self/clear_refs").write_text("5")
        before = kib("VmRSS:")

        def bomb() -> tuple[int, float]:
            t0 = time.perf_counter()
            r = api.post("/api/presets/import", json={"yaml": alias_bomb(), "id": "bomb"})
            return r.status_code, (time.perf_counter() - t0) * 1000

        (status, ms), lat = health_during(srv, bomb)
        out["alias_bomb"] = {"status": status, "answer_ms": round(ms, 1),
                             "peak_rss_growth_mb": round((kib("VmHWM:") - before) / 1024, 1),
                             "healthz_max_ms": round(max(lat), 1) if lat else None}
        print(f"(a) alias bomb: {status} in {ms:.0f} ms, peak memory +{out['alias_bomb']['peak_rss_growth_mb']} MB, "
              f"/healthz at most {out['alias_bomb']['healthz_max_ms']} ms meanwhile")

        deep = "name: Deep\nphases: " + "[" * 10_000 + "]" * 10_000 + "\n"
        idle = idle_health(srv)

        statuses: list[int] = []

        def parses() -> list[float]:
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                try:
                    statuses.append(api.post("/api/presets/validate-yaml", json={"yaml": deep}).status_code)
                except httpx.TransportError:
                    statuses.append(0)  # the connection dropped: no answer at all
                times.append((time.perf_counter() - t0) * 1000)
            return times

        times, lat = health_during(srv, parses)
        out["deep_yaml"] = {"statuses": sorted(set(statuses)), "answer_ms_median": round(statistics.median(times), 1),
                            "healthz_idle_median_ms": round(statistics.median(idle), 2),
                            "healthz_during_median_ms": round(statistics.median(lat), 2),
                            "healthz_during_max_ms": round(max(lat), 1),
                            "ratio_during_vs_idle": round(statistics.median(lat) / statistics.median(idle), 2)}
        print(f"(b) deep YAML: {out['deep_yaml']['statuses']} in {out['deep_yaml']['answer_ms_median']} ms "
              "(median of 20); /healthz "
              f"{out['deep_yaml']['healthz_during_median_ms']} ms median, {out['deep_yaml']['healthz_during_max_ms']} "
              f"ms max meanwhile vs {out['deep_yaml']['healthz_idle_median_ms']} ms idle")

        huge = {"name": "Huge", "phases": [{"id": f"p{i}", "kind": "journey", "duration": "1m"}
                                           for i in range(20_000)]}
        t0 = time.perf_counter()
        r = api.post("/api/presets", params={"id": "huge"}, json=huge)
        out["phases_20000"] = {"status": r.status_code, "answer_ms": round((time.perf_counter() - t0) * 1000, 1)}
        print(f"(c) 20,000 phases: {r.status_code} in {out['phases_20000']['answer_ms']} ms")
    return out


def https_cost(plain: Running, secure: Running) -> dict[str, Any]:
    times: dict[str, list[float]] = {"http": [], "https": []}
    with plain.client(plain.pair()) as h, secure.client(secure.pair()) as s:
        h.get("/api/rooms")
        s.get("/api/rooms")
        for i in range(ROUNDS):
            order = [("http", h), ("https", s)] if i % 2 else [("https", s), ("http", h)]
            for name, c in order:
                t0 = time.perf_counter()
                c.get("/api/rooms").raise_for_status()
                times[name].append((time.perf_counter() - t0) * 1000)
    handshakes = []
    for _ in range(20):
        t0 = time.perf_counter()
        with secure.client() as c:
            c.get("/healthz").raise_for_status()
        handshakes.append((time.perf_counter() - t0) * 1000)
    out = {"http_median_ms": round(statistics.median(times["http"]), 2),
           "https_median_ms": round(statistics.median(times["https"]), 2),
           "https_vs_http": round(statistics.median(times["https"]) / statistics.median(times["http"]), 2),
           "new_https_connection_median_ms": round(statistics.median(handshakes), 1)}
    print(f"(d) GET /api/rooms: HTTPS {out['https_median_ms']} ms vs HTTP {out['http_median_ms']} ms "
          f"({out['https_vs_http']}x); a new HTTPS connection {out['new_https_connection_median_ms']} ms")
    return out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roomctl-bench-access-") as tmp:
        base = Path(tmp)
        with running_app(demo_test_config(base / "a")) as plain:
            result = inputs(plain)
            try:
                with running_app(demo_test_config(base / "b"), tls=True) as secure:
                    result["https"] = https_cost(plain, secure)
            except TypeError:  # a test kit without TLS (an older roomctl): (d) is not measured
                result["https"] = None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
