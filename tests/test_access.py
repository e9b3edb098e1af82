"""Clinic-grade access, from outside through the real stack: HTTPS with roomctl's own
certificate authority, allowed hosts, security headers, pairing that cannot be brute-forced,
JSON-only state changes, roles, paired devices, and the input edges (YAML bombs, huge presets,
ids, strict types)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from ui_server import UIServer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from roomctl.cli.serve import CertificateRenewal
from roomctl.tls import fingerprint
from testkit.servers import LOOPBACK_NAMES, PIN, Running, demo_test_config, running_app, running_demo_with_record

QUICK = {
    "name": "Quick",
    "phases": [
        {"id": "prep", "kind": "preparation", "advance": "manual", "planned": "1m",
         "lights": {"brightness": 60, "transition": "0s"}},
        {"id": "journey", "kind": "journey", "duration": "30m", "lights": {"brightness": 10}},
    ],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running_app(demo_test_config(tmp_path / "data")) as srv:
        yield srv


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Running]:
    with running_app(demo_test_config(tmp_path / "data"), tls=True) as srv:
        yield srv


def _start(api: httpx.Client) -> None:
    if api.get("/api/presets/quick").status_code == 404:
        assert api.post("/api/presets", params={"id": "quick"}, json=QUICK).status_code == 201
    r = api.post("/api/rooms/room-1/session", json={"preset": "quick"})
    assert r.status_code == 201, r.text


def _ws_url(srv: Running, room: str = "room-1") -> str:
    return srv.url.replace("https://", "wss://").replace("http://", "ws://") + f"/api/rooms/{room}/live"


def _peak_rss_growth_mb(run: Any) -> tuple[Any, float]:
    """Run ``run()``; how far this process's peak resident memory rose above where it was."""
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current size

    def kib(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        raise AssertionError(field)

    before = kib("VmRSS:")
    result = run()
    return result, (kib("VmHWM:") - before) / 1024


class HealthProbe:
    """Asks /healthz over and over from a thread while something else runs; notes each latency."""

    def __init__(self, url: str, verify: ssl.SSLContext | bool = True) -> None:
        self.url = url
        self.verify = verify
        self.latencies_s: list[float] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10, verify=self.verify) as c:
            c.get("/healthz")  # connected before the measurement starts
            while not self._stop.is_set():
                t0 = time.perf_counter()
                self.statuses.append(c.get("/healthz").status_code)
                self.latencies_s.append(time.perf_counter() - t0)
                time.sleep(0.01)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


# --- input edges --------------------------------------------------------------------------------


def alias_bomb(levels: int = 8) -> str:
    """Billion laughs where the expanded value is used: the phase id is 9**levels strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines += ["name: Bomb", "phases:", f"  - {{id: *l{levels - 1}, kind: journey, duration: 1m}}"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once_with_little_memory(server: Running) -> None:
    token = server.pair()
    with server.client(token) as api, HealthProbe(server.url) as probe:
        time.sleep(0.1)

        def send() -> tuple[httpx.Response, float]:
            t0 = time.perf_counter()
            r = api.post("/api/presets/import", json={"yaml": alias_bomb(), "id": "bomb"}, timeout=120)
            return r, time.perf_counter() - t0

        (r, took_s), growth_mb = _peak_rss_growth_mb(send)
        time.sleep(0.1)
    assert r.status_code == 422, r.text
    assert "aliases" in r.json()["detail"] and "lol" not in r.text
    assert took_s < 1.0, f"answered in {took_s:.2f} s"
    assert growth_mb < 50, f"memory grew {growth_mb:.0f} MB"
    assert probe.statuses and set(probe.statuses) == {200}, "/healthz answered meanwhile"
    assert not (server.engine.service.config.clinic_presets / "bomb.yaml").exists()


def test_deep_yaml_is_refused_while_health_answers_quickly(server: Running) -> None:
    deep = "name: Deep\nphases: " + "[" * 10_000 + "]" * 10_000 + "\n"
    token = server.pair()
    answers: list[httpx.Response] = []
    with server.client(token) as api, HealthProbe(server.url) as probe:
        time.sleep(0.1)
        for _ in range(10):
            answers.append(api.post("/api/presets/validate-yaml", json={"yaml": deep}))
            answers.append(api.post("/api/presets/import", json={"yaml": deep, "id": "deep"}))
        time.sleep(0.1)
    assert {r.status_code for r in answers} == {200, 422}  # validate answers ok=false, import 422
    problem = answers[0].json()["problems"][0]["message"]
    assert "nested more than 20 levels" in problem and "line 2" in problem
    assert answers[1].json()["problems"][0]["message"] == problem
    assert len(probe.latencies_s) >= 5
    median = statistics.median(probe.latencies_s)
    assert median < 0.05, f"/healthz took {median * 1000:.0f} ms (median) during the parses"
    assert max(probe.latencies_s) < 0.5, f"/healthz took up to {max(probe.latencies_s) * 1000:.0f} ms"


def test_a_20000_phase_preset_is_refused_quickly(server: Running) -> None:
    huge = {"name": "Huge", "phases": [{"id": f"p{i}", "kind": "journey", "duration": "1m"} for i in range(20_000)]}
    with server.client(server.pair()) as api:
        t0 = time.perf_counter()
        r = api.post("/api/presets", params={"id": "huge"}, json=huge)
        took_s = time.perf_counter() - t0
        assert r.status_code == 422, r.text[:200]
        assert r.json()["detail"] == "huge.yaml: phases: 20000 phases: at most 100 allowed"
        assert took_s < 2.0, took_s
        many_cues = {**QUICK, "phases": [{**QUICK["phases"][1], "cues": [{"at": "1s", "text": "x"}] * 51}]}  # type: ignore[dict-item]
        r = api.post("/api/presets/validate", json=many_cues)
        assert r.json()["problems"][0]["text"] == "preset: phase 'journey': cues: 51 reminders: at most 50 allowed"
        assert api.get("/api/presets/huge").status_code == 404


def test_a_body_past_the_limit_is_413(server: Running) -> None:
    with server.client(server.pair()) as api:
        r = api.post("/api/presets/validate-yaml", content=b'{"yaml": "' + b"x" * (1024 * 1024) + b'"}',
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "larger than" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"yaml": "'
            for _ in range(20):
                yield b"x" * 65536
            yield b'"}'

        r = api.post("/api/presets/validate-yaml", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413


def test_an_id_ending_in_a_newline_is_refused(server: Running) -> None:
    with server.client(server.pair()) as api:
        r = api.post("/api/presets", params={"id": "abc\n"}, json=QUICK)
        assert r.status_code == 400 and "lower-case letters" in r.json()["detail"]
        yaml_text = "name: Quick\nphases:\n  - {id: journey, kind: journey, duration: 1m}\n"
        assert api.post("/api/presets/import", json={"yaml": yaml_text, "id": "abc\n"}).status_code == 400
        assert api.post("/api/presets/tour/duplicate", json={"id": "abc\n"}).status_code == 400
        assert "abc\n" not in {p["id"] for p in api.get("/api/presets").json()}
        clinic = server.engine.service.config.clinic_presets
        assert not clinic.exists() or not any("\n" in p.name for p in clinic.iterdir())
        phase = {**QUICK, "phases": [{"id": "journey\n", "kind": "journey", "duration": "1m"}]}
        assert api.post("/api/presets/validate", json=phase).json()["ok"] is False


def test_numbers_and_booleans_are_strict_and_durations_bounded(server: Running) -> None:
    with server.client(server.pair()) as api:
        _start(api)
        for body in ({"brightness": "50"}, {"brightness": True}, {"brightness": 20, "transition": 1e30},
                     {"brightness": 20, "transition": "25h"}, {"brightness": 20, "transition": True}):
            r = api.post("/api/rooms/room-1/lights", json=body)
            assert r.status_code == 422, (body, r.text)
        assert api.post("/api/rooms/room-1/lights", json={"brightness": "50"}).json()["detail"] == \
            "brightness: 50 is not a number"
        r = api.post("/api/rooms/room-1/emergency", json={"on": 0})
        assert r.status_code == 422 and r.json()["detail"].startswith("on:")
        assert api.post("/api/rooms/room-1/music", json={"playing": 1}).status_code == 422
        assert api.post("/api/rooms/room-1/session/extend", json={"seconds": "300"}).status_code == 422
        assert api.post("/api/rooms/room-1/session/extend", json={"seconds": 86400}).status_code == 422
        assert api.get("/api/rooms/room-1/state").json()["emergency"] is False  # nothing refused was done
        assert api.post("/api/rooms/room-1/lights", json={"brightness": 50, "transition": "2s"}).status_code == 200


# --- JSON only ---------------------------------------------------------------------------------


def test_a_text_plain_or_form_post_changes_nothing(server: Running) -> None:
    token = server.pair()
    with server.client(token) as api:
        _start(api)
    with server.client() as browser:
        browser.cookies.set("roomctl_token", token)  # what a page on the same address would send along
        for headers, content in (({"Content-Type": "text/plain"}, b""), ({}, None),
                                 ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1"),
                                 ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--")):
            for path in ("session/end", "session/hold", "session/next", "back-to-preset"):
                r = browser.post(f"/api/rooms/room-1/{path}", headers=headers, content=content)
                assert r.status_code == 415, (path, headers, r.status_code)
                assert "application/json" in r.json()["detail"]
        state = browser.get("/api/rooms/room-1/state").json()
    assert state["session"]["ended"] is False and state["session"]["held"] is False
    assert state["session"]["phase"]["id"] == "prep"


# --- pairing --------------------------------------------------------------------------------------


def test_a_non_ascii_pairing_code_or_pin_is_a_plain_miss(server: Running) -> None:
    with server.client() as c:
        for body in ({"code": "ü" * 16}, {"code": "🙂"}, {"pin": "٢٤٦٨١٠"}, {"pin": "ü"}):
            r = c.post("/api/pair", json=body)
            assert r.status_code == 401, (body, r.status_code, r.text)
    code = server.app.state.auth.pairing_code
    with server.client() as c:
        assert c.post("/api/pair", json={"code": code}).status_code == 200  # the real one still works


@pytest.fixture
def served(tmp_path: Path) -> Iterator[UIServer]:
    """A real `roomctl serve` (plain HTTP on loopback), as a clinic runs it."""
    srv = UIServer(tmp_path, tls=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_x_forwarded_for_does_not_reset_the_lockout(served: UIServer) -> None:
    statuses = []
    with httpx.Client(base_url=served.origin, timeout=5) as c:
        for i in range(30):
            r = c.post("/api/pair", json={"pin": "000000"}, headers={"X-Forwarded-For": f"10.9.{i // 250}.{i % 250}"})
            statuses.append(r.status_code)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
        r = c.post("/api/pair", json={"pin": PIN}, headers={"X-Forwarded-For": "10.200.0.1"})
        assert r.status_code == 429 and "token" not in r.json()


def test_a_global_budget_stops_guessing_from_many_addresses(server: Running) -> None:
    """Each address stays under its own lockout; the service's budget stops them together."""
    auth = server.app.state.auth
    for i in range(20):
        assert auth.pair(f"10.0.0.{i}", pin="000000", code=None, label="x") is None
    with server.client() as c:
        r = c.post("/api/pair", json={"pin": PIN})
        assert r.status_code == 429 and "pauses" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 800
        assert c.post("/api/pair", json={"code": auth.pairing_code}).status_code == 200  # the link still works


# --- roles ------------------------------------------------------------------------------------------


def test_a_therapist_cannot_purge_delete_or_revoke_others(tmp_path: Path) -> None:
    with running_demo_with_record(tmp_path / "data") as srv:
        admin, therapist = srv.pair(), srv.pair()
        with srv.client(admin) as a, srv.client(therapist) as t:
            _start(t)  # a therapist runs sessions and writes the clinic's presets
            assert t.post("/api/rooms/room-1/session/end", json={}).status_code == 200
            sessions = t.get("/api/sessions").json()
            assert len(sessions) == 1
            r = t.post("/api/sessions/purge", json={"older_than_days": 1})
            assert r.status_code == 403 and "admin" in r.json()["detail"]
            assert t.delete(f"/api/sessions/{sessions[0]['id']}").status_code == 403
            assert len(t.get("/api/sessions").json()) == 1  # nothing was deleted
            devices = {d["role"]: d for d in t.get("/api/devices").json()}
            assert t.delete(f"/api/devices/{devices['admin']['id']}").status_code == 403
            r = t.patch(f"/api/devices/{devices['therapist']['id']}", json={"role": "admin"})
            assert r.status_code == 403
            r = t.patch(f"/api/devices/{devices['therapist']['id']}", json={"name": "Room 1\niPad  "})
            assert r.status_code == 200 and r.json()["name"] == "Room 1 iPad"  # its own name
            assert a.post("/api/sessions/purge", json={"older_than_days": 1e-9}).status_code == 422
            assert a.post("/api/sessions/purge", json={"older_than_days": 1}).json() == {"deleted": 0}
            assert a.delete(f"/api/sessions/{sessions[0]['id']}").status_code == 204
            # the only admin stays one; another can be made
            r = a.patch(f"/api/devices/{devices['admin']['id']}", json={"role": "therapist"})
            assert r.status_code == 409 and "only admin" in r.json()["detail"]
            assert a.patch(f"/api/devices/{devices['therapist']['id']}", json={"role": "admin"}).status_code == 200
            assert t.post("/api/sessions/purge", json={"older_than_days": 1}).status_code == 200


def test_the_admin_pin_makes_admins_and_the_pin_therapists(tmp_path: Path) -> None:
    config = demo_test_config(tmp_path / "data", access={"admin_pin": "13579135"})
    with running_app(config) as srv, srv.client() as c:
        assert c.post("/api/pair", json={"pin": PIN}).json()["role"] == "therapist"
        assert c.post("/api/pair", json={"pin": "13579135"}).json()["role"] == "admin"


def test_a_pairing_lapses_after_its_idle_time_but_never_in_a_session(tmp_path: Path) -> None:
    config = demo_test_config(tmp_path / "data", access={"token_idle_days": 1})
    with running_app(config) as srv:
        auth = srv.app.state.auth
        admin, idle = srv.pair(), srv.pair()
        with srv.client(admin) as a:
            _start(a)
            for rec in auth.tokens():
                rec.last_seen = time.time() - 2 * 86400
            with srv.client(idle) as c:
                assert c.get("/api/rooms").status_code == 200  # a session runs: it stays
                for rec in auth.tokens():
                    rec.last_seen = time.time() - 2 * 86400
                assert a.post("/api/rooms/room-1/session/end", json={}).status_code == 200
                for rec in auth.tokens():
                    rec.last_seen = time.time() - 2 * 86400
                assert c.get("/api/rooms").status_code == 401
        cookie = next(v for k, v in httpx.post(srv.url + "/api/pair", json={"pin": PIN}).headers.multi_items()
                      if k == "set-cookie")
        assert "Max-Age=86400" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_the_cookie_is_renewed_on_use_for_as_long_as_the_pairing_lasts(server: Running) -> None:
    with server.client() as c:
        assert c.post("/api/pair", json={"pin": PIN}).status_code == 200
        renewed = c.get("/api/rooms").headers["set-cookie"]
        assert "Max-Age=7776000" in renewed and "HttpOnly" in renewed  # 90 days from this use, not 10 years
        assert "set-cookie" not in c.get("/api/rooms", headers={"Authorization": "Bearer nope"}).headers


# --- hosts and headers ----------------------------------------------------------------------------


def test_a_wrong_host_gets_400_over_http_and_websocket(server: Running) -> None:
    token = server.pair()
    with server.client(token) as c:
        for path in ("/api/rooms", "/healthz", "/", "/api/tls"):
            r = c.get(path, headers={"Host": f"evil.example:{server.port}"})
            assert r.status_code == 400, path
        r = c.post("/api/pair", json={"pin": "000000"}, headers={"Host": "evil.example"})
        assert r.status_code == 400
        assert c.get("/api/rooms", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    # The WebSocket handshake by hand: a client library sends its own Host header.
    def upgrade(host: str) -> str:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall((f"GET /api/rooms/room-1/live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
            return s.recv(4096).decode("latin-1").split("\r\n")[0]

    assert upgrade(f"evil.example:{server.port}") == "HTTP/1.1 400 Bad Request"
    assert upgrade(f"127.0.0.1:{server.port}") == "HTTP/1.1 101 Switching Protocols"


def test_the_websocket_refuses_another_origin(server: Running) -> None:
    token = server.pair()
    auth = {"Authorization": f"Bearer {token}"}
    for origin in ("http://evil.example", f"http://127.0.0.1:{server.port + 1}", f"https://127.0.0.1:{server.port}"):
        with pytest.raises((InvalidStatus, ConnectionClosed)), \
                connect(_ws_url(server), additional_headers=auth, origin=Origin(origin)) as ws:
            ws.recv(timeout=5)
    with connect(_ws_url(server), additional_headers=auth, origin=Origin(server.url)) as ws:
        assert json.loads(ws.recv(timeout=5))["room"] == "room-1"


EXPECTED_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def _check_headers(r: httpx.Response, https: bool) -> None:
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    for k, v in EXPECTED_HEADERS.items():
        assert r.headers[k] == v, k
    assert ("strict-transport-security" in r.headers) is https


def test_every_answer_carries_the_security_headers(server: Running) -> None:
    with server.client(server.pair()) as c:
        for r in (c.get("/"), c.get("/app.js"), c.get("/api/rooms"), c.get("/healthz"), c.get("/nope"),
                  c.post("/api/rooms/room-1/session/end", content=b"x"), c.get("/", headers={"Host": "evil"})):
            _check_headers(r, https=False)
        assert c.get("/api/rooms").headers["cache-control"] == "no-store"
        # The API docs are served from this service itself (no CDN), under the same policy.
        docs = c.get("/docs")
        assert docs.status_code == 200
        _check_headers(docs, https=False)
        assert "http://" not in docs.text and "https://" not in docs.text


# --- over real TLS ----------------------------------------------------------------------------------


def test_pairing_a_session_and_the_websocket_over_tls(tls_server: Running) -> None:
    srv = tls_server
    assert srv.url.startswith("https://")
    with httpx.Client(base_url=srv.url, timeout=5, verify=True) as untrusting, \
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get("/healthz")  # only a tablet that installed the CA trusts it
    with srv.client() as c:
        r = c.post("/api/pair", json={"pin": PIN, "label": "iPad"})
        assert r.status_code == 200
        token = r.json()["token"]
        assert "Secure" in r.headers["set-cookie"]
        _check_headers(c.get("/"), https=True)
        _check_headers(r, https=True)
        info = c.get("/api/tls").json()
        assert info["https"] is True and info["ca_url"] == "/roomctl-ca.crt"
        der = c.get("/roomctl-ca.crt")
        assert der.headers["content-type"] == "application/x-x509-ca-cert"
        ca = x509.load_der_x509_certificate(der.content)
        assert fingerprint(ca) == info["ca_fingerprint"] == srv.tls.ca_fingerprint  # type: ignore[union-attr]
    with srv.client(token) as api:
        _start(api)
        ctx = srv.ssl_context()
        with connect(_ws_url(srv), additional_headers={"Authorization": f"Bearer {token}"}, ssl=ctx) as ws:
            first = json.loads(ws.recv(timeout=5))
            assert first["session"]["phase"]["id"] == "prep"
            api.post("/api/rooms/room-1/session/next", json={})
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv(timeout=5))
                if msg["session"]["phase"]["id"] == "journey":
                    break
            else:
                raise AssertionError("the phase change was not pushed")
        assert api.post("/api/rooms/room-1/session/end", json={}).json()["session"]["ended"] is True


def test_a_revoked_devices_websocket_closes_within_a_second(tls_server: Running) -> None:
    srv = tls_server
    admin, tablet = srv.pair(), srv.pair()
    with srv.client(admin) as a:
        them = next(d for d in a.get("/api/devices").json() if not d["this"])
        with connect(_ws_url(srv), additional_headers={"Authorization": f"Bearer {tablet}"},
                     ssl=srv.ssl_context()) as ws:
            json.loads(ws.recv(timeout=5))
            t0 = time.monotonic()
            assert a.delete(f"/api/devices/{them['id']}").status_code == 204
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=5)
            closed_s = time.monotonic() - t0
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        assert closed_s < 1.0, f"closed after {closed_s:.2f} s"
        with pytest.raises(InvalidStatus), connect(_ws_url(srv), additional_headers={
                "Authorization": f"Bearer {tablet}"}, ssl=srv.ssl_context()) as ws:
            ws.recv(timeout=5)


def _served_certificate(srv: Running) -> x509.Certificate:
    ctx = srv.ssl_context()
    assert ctx is not None
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_the_certificate_is_renewed_while_running(tls_server: Running) -> None:
    srv = tls_server
    assert srv.server is not None and srv.tls is not None
    first = _served_certificate(srv)
    names = {*(str(n) for n in first.extensions.get_extension_for_class(x509.SubjectAlternativeName)
               .value.get_values_for_type(x509.IPAddress))}
    assert names == {"127.0.0.1", "::1"}
    renewal = CertificateRenewal(srv.server.config, srv.tls.certfile.parent, LOOPBACK_NAMES, srv.tls)
    assert renewal.check() is False  # a year to go: kept
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    assert renewal.check(later) is True
    second = _served_certificate(srv)
    assert second.serial_number != first.serial_number
    assert second.not_valid_after_utc > first.not_valid_after_utc + dt.timedelta(days=300)
    with srv.client() as c:  # the same CA: the tablets notice nothing
        assert c.get("/healthz").status_code == 200


# --- roomctl serve ---------------------------------------------------------------------------------


def test_serve_on_a_lan_address_speaks_https_and_keeps_the_data_private(tmp_path: Path) -> None:
    srv = UIServer(tmp_path, tls=True)
    srv.start()
    try:
        log = srv.log_path.read_text()
        assert "https://127.0.0.1:" in log and "SHA-256 fingerprint" in log
        ca = x509.load_pem_x509_certificate(srv.ca_file.read_bytes())
        assert fingerprint(ca) in log
        with httpx.Client(base_url=srv.origin, verify=srv.verify(), timeout=5) as c:
            assert c.get("/healthz").status_code == 200
            token = c.post("/api/pair", json={"pin": PIN}).json()["token"]
            c.headers["Authorization"] = f"Bearer {token}"
            assert c.get("/api/rooms").status_code == 200
        for path in [srv.data, srv.data / "tls"]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        for path in [srv.data / "sessions.db", srv.data / "tokens.json", srv.data / "tls" / "ca-key.pem",
                     srv.data / "tls" / "server-key.pem"]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        srv.stop()


def test_serve_refuses_plain_http_on_a_lan_address_unless_asked(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "roomctl.toml"
    config.write_text('data_dir = "data"\nlisten = { host = "0.0.0.0", tls = "off" }\n'
                      '[[rooms]]\nname = "Room 1"\n[rooms.audio]\nkind = "simulated"\n')
    r = subprocess.run([sys.executable, "-m", "roomctl.cli", "serve", "--config", str(config)],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": "."})
    assert r.returncode == 2 and "plain_http = true" in r.stderr


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    from api.app import create_app
    from roomctl.cli.serve import uvicorn_config

    plain = demo_test_config(tmp_path)
    assert uvicorn_config(create_app(plain), plain, None).proxy_headers is False
    proxied = demo_test_config(tmp_path, listen={"trusted_proxies": ["10.0.0.2"]})
    cfg = uvicorn_config(create_app(proxied), proxied, None)
    assert cfg.proxy_headers is True and cfg.forwarded_allow_ips == ["10.0.0.2"]
