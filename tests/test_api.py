"""The API through the real stack: uvicorn on 127.0.0.1, httpx and a WebSocket client, auth on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from testkit.servers import PIN, Running, demo_test_config, running_app

QUICK = {
    "name": "Quick",
    "description": "short phases for tests",
    "phases": [
        {"id": "prep", "kind": "preparation", "advance": "manual", "planned": "1m",
         "lights": {"brightness": 60, "color_temp": "2700K", "transition": "0s"},
         "music": {"playlist": "arrival", "volume": 40},
         "cues": [{"at": "1s", "text": "Check blood pressure"}]},
        {"id": "dose", "kind": "dosing", "duration": "10m",
         "lights": {"brightness": 30, "transition": "1s"}},
        {"id": "journey", "kind": "journey", "duration": "30m",
         "lights": {"brightness": 10, "color": "#ff8a3d", "transition": "2s"},
         "music": {"playlist": "journey", "volume": 50}},
    ],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running_app(demo_test_config(tmp_path / "data")) as srv:
        yield srv


@pytest.fixture
def api(server: Running) -> Iterator[httpx.Client]:
    with server.client(server.pair()) as c:
        yield c


def ws_url(server: Running, room: str = "room-1") -> str:
    return server.url.replace("http://", "ws://") + f"/api/rooms/{room}/live"


def start(api: httpx.Client, preset: str = "quick") -> dict[str, Any]:
    if preset == "quick" and api.get("/api/presets/quick").status_code == 404:
        assert api.post("/api/presets", params={"id": "quick"}, json=QUICK).status_code == 201
    r = api.post("/api/rooms/room-1/session", json={"preset": preset, "label": "test"})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


# --- auth ---------------------------------------------------------------------------------


def test_every_route_needs_a_token_except_pairing_and_health(server: Running) -> None:
    schema = server.app.openapi()
    open_paths = {("/api/pair", "post"), ("/healthz", "get"), ("/api/tls", "get"), ("/roomctl-ca.crt", "get")}
    checked = 0
    with server.client() as anon, server.client("not-a-token") as wrong:
        for path, ops in schema["paths"].items():
            for method in ops:
                if (path, method) in open_paths:
                    continue
                url = path.replace("{room_id}", "room-1").replace("{preset_id}", "tour") \
                    .replace("{device_id}", "x").replace("{session_id}", "x")
                for client in (anon, wrong):
                    r = client.request(method.upper(), url, json={})
                    assert r.status_code == 401, (method, url, r.status_code)
                    assert "pair" in r.json()["detail"]
                checked += 1
    assert checked >= 25


def test_health_is_open_and_reports_each_room(server: Running) -> None:
    with server.client() as c:
        body = c.get("/healthz").json()
    assert body["ok"] is True
    assert body["rooms"]["room-1"]["lights"] == {"ok": True, "detail": "simulated lights"}


def test_pairing_sets_an_httponly_strict_cookie_that_authenticates(server: Running) -> None:
    with server.client() as c:
        r = c.post("/api/pair", json={"pin": PIN, "label": "tablet A"})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        # httpx keeps the cookie: the next request is authenticated by it alone
        assert c.get("/api/rooms").status_code == 200


def test_wrong_pins_lock_the_address_for_a_minute(server: Running) -> None:
    with server.client() as c:
        for _ in range(5):
            r = c.post("/api/pair", json={"pin": "000000"})
            assert r.status_code == 401 and r.json()["detail"] == "wrong PIN"
        r = c.post("/api/pair", json={"pin": PIN})  # even the right PIN waits now
        assert r.status_code == 429
        assert "try again" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 50


def test_one_time_pairing_code_works_once(server: Running) -> None:
    code = server.app.state.auth.pairing_code
    with server.client() as c:
        assert c.post("/api/pair", json={"code": code}).status_code == 200
        assert c.post("/api/pair", json={"code": code}).status_code == 401
        r = c.post("/api/pair", json={})
        assert r.status_code == 400 and "PIN" in r.json()["detail"]


def test_devices_are_listed_and_revoked(server: Running, api: httpx.Client) -> None:
    other = server.pair()
    devices = api.get("/api/devices").json()
    assert len(devices) == 2
    me = next(d for d in devices if d["this"])
    them = next(d for d in devices if not d["this"])
    assert me["role"] == "admin" and them["role"] == "therapist"  # the first paired is the admin
    assert them["address"] == "127.0.0.1" and them["last_seen"] is not None
    with server.client(other) as c:
        assert c.get("/api/rooms").status_code == 200
        assert api.delete(f"/api/devices/{them['id']}").status_code == 204
        assert c.get("/api/rooms").status_code == 401
    assert api.delete("/api/devices/nope").status_code == 404


def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    config = demo_test_config(tmp_path / "data")
    with running_app(config) as srv:
        token = srv.pair()
    with running_app(config) as srv, srv.client(token) as c:
        assert c.get("/api/rooms").status_code == 200


# --- rooms and sessions ---------------------------------------------------------------------


def test_rooms_and_unknown_room(api: httpx.Client) -> None:
    rooms = api.get("/api/rooms").json()
    assert [r["id"] for r in rooms] == ["room-1"]
    assert rooms[0]["state"]["session"] is None
    assert len(rooms[0]["state"]["lights"]["lights"]) == 4
    r = api.get("/api/rooms/nope/state")
    assert r.status_code == 404 and "room-1" in r.json()["detail"]
    assert api.post("/api/rooms/nope/session/next", json={}).status_code == 404


def test_commands_with_no_session_are_409(api: httpx.Client) -> None:
    for path, body in [("session/next", None), ("session/hold", None), ("session/end", None),
                       ("session/extend", {"seconds": 60}), ("lights", {"brightness": 20}),
                       ("music", {"volume": 20}), ("back-to-preset", None),
                       ("cues/ack", {"cue": "x/0"})]:
        r = api.post(f"/api/rooms/room-1/{path}", json=body if body is not None else {})
        assert r.status_code == 409, path
        assert "no session" in r.json()["detail"]


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def lights_now(api: httpx.Client) -> list[float]:
    return [light["brightness"] if light["on"] else 0.0
            for light in api.get("/api/rooms/room-1/state").json()["lights"]["lights"]]


def test_the_room_by_hand_before_a_start_and_after_end(api: httpx.Client) -> None:
    r = api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 30, "color_temp": 2700, "transition": 0}})
    assert r.status_code == 200, r.text
    wait_for(lambda: lights_now(api) == [30.0] * len(lights_now(api)))
    r = api.post("/api/rooms/room-1/by-hand", json={"music": {"playing": True}})
    assert r.status_code == 409 and "no playlist" in r.json()["detail"]
    assert api.post("/api/rooms/room-1/by-hand", json={}).status_code == 422
    assert api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 140}}).status_code == 422

    start(api)
    r = api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 10}})
    assert r.status_code == 409 and "session is running" in r.json()["detail"]
    api.post("/api/rooms/room-1/session/end")
    # After End the bulbs no longer stay where the last phase left them: room off, room soft.
    assert api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 0, "transition": 0}}).status_code == 200
    wait_for(lambda: max(lights_now(api)) == 0.0)
    assert api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 25, "transition": 0},
                                                         "music": {"playing": True, "volume": 20}}).status_code == 200
    wait_for(lambda: min(lights_now(api)) == 25.0)
    music = api.get("/api/rooms/room-1/state").json()["music"]
    assert music["playlist"] == "arrival" and music["playing"] is True  # the last playlist the session played

    # Lights up with no session: lights by hand wait until it is released, which goes back gently.
    assert api.post("/api/rooms/room-1/emergency", json={"on": True}).status_code == 200
    r = api.post("/api/rooms/room-1/by-hand", json={"lights": {"brightness": 5}, "music": {"volume": 5}})
    assert r.status_code == 409 and "lights up" in r.json()["detail"]
    assert api.get("/api/rooms/room-1/state").json()["music"]["playing"] is True, "refused whole"
    wait_for(lambda: min(lights_now(api)) > 90)
    assert api.post("/api/rooms/room-1/emergency", json={"on": False}).status_code == 200
    wait_for(lambda: max(lights_now(api)) == 25.0, timeout_s=20)


def test_start_reports_preflight_and_refuses_a_second_session(api: httpx.Client) -> None:
    body = start(api, "tour")
    assert body["state"]["session"]["phase"]["id"] == "preparation"
    assert body["preflight"]["ok"] is True
    assert {p["name"] for p in body["preflight"]["playlists"]} >= {"arrival", "journey"}
    r = api.post("/api/rooms/room-1/session", json={"preset": "tour"})
    assert r.status_code == 409 and "already running" in r.json()["detail"]
    assert api.post("/api/rooms/room-1/session", json={"preset": "nope"}).status_code == 404
    r = api.get("/api/rooms/room-1/preflight", params={"preset": "tour"})
    assert r.status_code == 200 and r.json()["lights"]["ok"] is True


def test_phase_commands(api: httpx.Client) -> None:
    start(api)
    s = api.post("/api/rooms/room-1/session/next", json={}).json()["session"]
    assert s["phase"]["id"] == "dose" and s["time_since_dose_s"] is not None
    assert s["remaining_s"] == pytest.approx(600, abs=2)
    held = api.post("/api/rooms/room-1/session/hold", json={}).json()["session"]
    assert held["held"] is True and held["remaining_s"] is None
    r = api.post("/api/rooms/room-1/session/hold", json={})
    assert r.status_code == 409 and "already on hold" in r.json()["detail"]
    resumed = api.post("/api/rooms/room-1/session/resume", json={}).json()["session"]
    assert resumed["held"] is False
    r = api.post("/api/rooms/room-1/session/resume", json={})
    assert r.status_code == 409 and "not on hold" in r.json()["detail"]
    ext = api.post("/api/rooms/room-1/session/extend", json={"seconds": 300}).json()["session"]
    assert ext["remaining_s"] == pytest.approx(900, abs=3)
    r = api.post("/api/rooms/room-1/session/extend", json={"seconds": -5})
    assert r.status_code == 422 and r.json()["detail"] == "seconds: -5 must be more than 0"
    j = api.post("/api/rooms/room-1/session/jump", json={"phase": "journey"}).json()["session"]
    assert j["phase"]["id"] == "journey" and j["next_phase"] is None
    r = api.post("/api/rooms/room-1/session/jump", json={"phase": "nowhere"})
    assert r.status_code == 404 and "nowhere" in r.json()["detail"]
    back = api.post("/api/rooms/room-1/session/jump", json={"phase": "prep"}).json()["session"]
    assert back["phase"]["id"] == "prep" and back["remaining_s"] is None
    r = api.post("/api/rooms/room-1/session/extend", json={"seconds": 60})
    assert r.status_code == 409 and "manual" in r.json()["detail"]
    ended = api.post("/api/rooms/room-1/session/end", json={}).json()["session"]
    assert ended["ended"] is True
    r = api.post("/api/rooms/room-1/session/next", json={})
    assert r.status_code == 409 and "ended" in r.json()["detail"]
    # a new session may start once the last one ended
    assert api.post("/api/rooms/room-1/session", json={"preset": "quick"}).status_code == 201


def test_lights_override_reaches_the_room_and_back_to_preset(api: httpx.Client) -> None:
    start(api)
    r = api.post("/api/rooms/room-1/lights", json={"brightness": 140})
    assert r.status_code == 422 and r.json()["detail"] == "brightness: 140 is above 100"
    r = api.post("/api/rooms/room-1/lights", json={"color": "#ff0000", "color_temp": 3000})
    assert r.status_code == 422 and "not both" in json.dumps(r.json())
    st = api.post("/api/rooms/room-1/lights", json={"brightness": 20, "transition": 0}).json()
    assert st["lights"]["overridden"] is True
    assert st["lights"]["target"]["brightness"] == 20
    assert {light["brightness"] for light in st["lights"]["lights"]} == {20}
    st = api.post("/api/rooms/room-1/back-to-preset", json={}).json()
    assert st["lights"]["overridden"] is False and st["lights"]["target"]["brightness"] == 60
    r = api.post("/api/rooms/room-1/back-to-preset", json={})
    assert r.status_code == 409 and "already follows" in r.json()["detail"]


def test_music_controls(api: httpx.Client) -> None:
    start(api)
    st = api.post("/api/rooms/room-1/music", json={"volume": 20}).json()
    assert st["music"]["target_volume"] == 20 and st["music"]["overridden"] is True
    st = api.post("/api/rooms/room-1/music", json={"playing": False}).json()
    assert st["music"]["playing"] is False
    first = st["music"]["now_playing"]["title"]
    st = api.post("/api/rooms/room-1/music", json={"skip": "next"}).json()
    assert st["music"]["now_playing"]["title"] != first
    assert api.post("/api/rooms/room-1/music", json={}).status_code == 422
    assert api.post("/api/rooms/room-1/music", json={"skip": "sideways"}).status_code == 422


def test_lights_up_with_and_without_a_session(api: httpx.Client) -> None:
    st = api.post("/api/rooms/room-1/emergency", json={"on": True}).json()
    assert st["emergency"] is True
    time.sleep(3.2)  # the emergency fade is 3 s
    st = api.get("/api/rooms/room-1/state").json()
    assert {light["brightness"] for light in st["lights"]["lights"]} == {100}
    assert api.post("/api/rooms/room-1/emergency", json={"on": False}).json()["emergency"] is False
    start(api)
    st = api.post("/api/rooms/room-1/emergency", json={"on": True}).json()
    assert st["emergency"] is True and st["session"]["emergency"] is True
    assert st["lights"]["target"]["brightness"] == 100 and st["music"]["target_volume"] <= 10
    again = api.post("/api/rooms/room-1/emergency", json={"on": True})
    assert again.status_code == 200 and again.json()["emergency"] is True  # pressing twice is fine
    st = api.post("/api/rooms/room-1/emergency", json={"on": False}).json()
    assert st["emergency"] is False and st["lights"]["target"]["brightness"] == 60


def test_reminders_are_acknowledged_with_a_note(api: httpx.Client) -> None:
    start(api)
    r = api.post("/api/rooms/room-1/cues/ack", json={"cue": "prep/0"})
    assert r.status_code == 409 and "not due" in r.json()["detail"]
    time.sleep(1.2)
    st = api.get("/api/rooms/room-1/state").json()
    assert [c["id"] for c in st["session"]["cues_due"]] == ["prep/0"]
    st = api.post("/api/rooms/room-1/cues/ack", json={"cue": "prep/0", "note": "BP 124/80"}).json()
    assert st["session"]["cues_due"] == []
    assert st["session"]["cues_acknowledged"][0]["note"] == "BP 124/80"
    r = api.post("/api/rooms/room-1/cues/ack", json={"cue": "prep/0"})
    assert r.status_code == 409 and "already" in r.json()["detail"]


# --- live state ---------------------------------------------------------------------------


def test_websocket_needs_a_token(server: Running) -> None:
    with pytest.raises(Exception) as info, connect(ws_url(server)) as ws:
        ws.recv(timeout=5)
    assert "4401" in str(info.value) or isinstance(info.value, InvalidStatus)


def test_websocket_pushes_the_state_on_connect_and_on_every_change(server: Running,
                                                                   api: httpx.Client) -> None:
    token = api.headers["Authorization"].split()[1]
    headers = {"Authorization": f"Bearer {token}"}
    with connect(ws_url(server), additional_headers=headers) as a, \
            connect(ws_url(server) + f"?token={token}") as b:
        first_a = json.loads(a.recv(timeout=5))
        first_b = json.loads(b.recv(timeout=5))
        assert first_a["session"] is None and first_b["room"] == "room-1"
        start(api)
        api.post("/api/rooms/room-1/lights", json={"brightness": 25, "transition": 0})

        def until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg: dict[str, Any] = json.loads(ws.recv(timeout=5))
                if pred(msg):
                    return msg
            raise AssertionError("no such state pushed")

        def has_override(m: dict[str, Any]) -> bool:
            return bool(m["session"] and m["lights"]["target"] and m["lights"]["target"]["brightness"] == 25)

        got_a, got_b = until(a, has_override), until(b, has_override)
        assert got_a["seq"] > first_a["seq"] and got_b["seq"] > first_b["seq"]
    # a client that reconnects gets the current state at once
    with connect(ws_url(server), additional_headers=headers) as c:
        again = json.loads(c.recv(timeout=5))
        assert again["lights"]["target"]["brightness"] == 25


def test_websocket_unknown_room(server: Running, api: httpx.Client) -> None:
    token = api.headers["Authorization"].split()[1]
    with pytest.raises(Exception) as info, connect(ws_url(server, "nope") + f"?token={token}") as ws:
        ws.recv(timeout=5)
    assert "4404" in str(info.value) or isinstance(info.value, InvalidStatus)


# --- presets --------------------------------------------------------------------------------


def test_preset_list_get_export_and_chart(api: httpx.Client) -> None:
    listed = {p["id"]: p for p in api.get("/api/presets").json()}
    assert {"kap-sublingual", "kap-intramuscular", "ketamine-infusion", "psilocybin-long", "tour"} <= set(listed)
    assert listed["tour"]["read_only"] is True and listed["tour"]["valid"] is True
    one = api.get("/api/presets/kap-sublingual").json()
    assert one["preset"]["phases"][0]["planned"] == "15m"
    assert api.get("/api/presets/nope").status_code == 404
    y = api.get("/api/presets/tour/yaml")
    assert y.status_code == 200 and y.text.startswith("# A 3-minute tour")
    chart = api.get("/api/presets/kap-sublingual/chart", params={"points": 50}).json()
    assert next(b["id"] for b in chart["phases"]) == "preparation"
    assert chart["total_s"] == 7500 and len(chart["samples"]) >= 50
    assert api.get("/api/presets/tour/chart", params={"points": 5}).status_code == 422


def test_preset_create_update_delete(server: Running, api: httpx.Client) -> None:
    r = api.post("/api/presets", params={"id": "quick"}, json=QUICK)
    assert r.status_code == 201 and r.json()["source"] == "clinic"
    clinic = server.engine.service.config.clinic_presets
    assert (clinic / "quick.yaml").read_text().startswith("name: Quick")
    assert api.post("/api/presets", params={"id": "quick"}, json=QUICK).status_code == 409
    changed = {**QUICK, "name": "Quick 2"}
    assert api.put("/api/presets/quick", json=changed).json()["preset"]["name"] == "Quick 2"
    assert api.put("/api/presets/tour", json=changed).status_code == 403
    assert api.put("/api/presets/nope", json=changed).status_code == 404
    bad = json.loads(json.dumps(QUICK))
    bad["phases"][2]["lights"]["brightness"] = 140
    r = api.put("/api/presets/quick", json=bad)
    assert r.status_code == 422
    assert r.json()["problems"][0]["text"] == "quick.yaml: phase 'journey': lights.brightness: 140 is above 100"
    assert "Quick 2" in (clinic / "quick.yaml").read_text()  # the bad version was not written
    assert api.delete("/api/presets/tour").status_code == 403
    assert api.delete("/api/presets/quick").status_code == 204
    assert api.delete("/api/presets/quick").status_code == 404


def test_preset_validate_import_duplicate(api: httpx.Client) -> None:
    ok = api.post("/api/presets/validate", json=QUICK).json()
    assert ok == {"ok": True, "problems": []}
    bad = json.loads(json.dumps(QUICK))
    bad["phases"][1]["duration"] = "0s"
    bad["phases"][0]["lights"]["colour"] = "#fff000"
    problems = api.post("/api/presets/validate", json=bad).json()["problems"]
    assert {(p["phase"], p["field"]) for p in problems} == {("dose", "duration"), ("prep", "lights.colour")}
    r = api.post("/api/presets/validate-yaml", json={"yaml": "name: x\nphases: [\n"})
    assert "line" in r.json()["problems"][0]["message"]
    text = api.get("/api/presets/tour/yaml").text
    r = api.post("/api/presets/import", json={"yaml": text, "id": "my-tour"})
    assert r.status_code == 201 and r.json()["id"] == "my-tour"
    assert api.post("/api/presets/import", json={"yaml": "name: [", "id": "x"}).status_code == 422
    dup = api.post("/api/presets/kap-sublingual/duplicate", json={})
    assert dup.status_code == 201 and dup.json()["read_only"] is False
    assert dup.json()["preset"]["name"] == "KAP sublingual (copy)"
    assert api.post("/api/presets/kap-sublingual/duplicate", json={"id": "Bad Id"}).status_code == 400
    assert api.post("/api/presets/chart", json=QUICK).json()["total_s"] == 60 + 600 + 1800
    assert api.post("/api/presets/chart", json=bad).status_code == 422
