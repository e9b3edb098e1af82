"""The Hue bridge emulator, spoken to by phue itself over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import phue
import pytest

from roomctl import units
from testkit.hue_bridge import (
    DEFAULT_USER,
    GAMUT_C,
    GroupSpec,
    HueBridgeEmulator,
    color_lamp,
    white_ambiance,
)


class ManualClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bridge(clock: ManualClock) -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator(clock=clock) as emulator:
        yield emulator


def hue(bridge: HueBridgeEmulator, username: str = DEFAULT_USER) -> phue.Bridge:
    return phue.Bridge(bridge.host, username, config_file_path="/nonexistent/phue-config")


def raw(bridge: HueBridgeEmulator, method: str, path: str, body: bytes | None = None,
        timeout_s: float = 2.0) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(bridge.host, timeout=timeout_s)
    try:
        connection.request(method, path, body)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode()


def test_pairing_waits_for_the_link_button(bridge: HueBridgeEmulator) -> None:
    client = hue(bridge, username="")
    refused = client.request("POST", "/api", {"devicetype": "roomctl#test"})
    assert refused == [{"error": {"type": 101, "address": "",
                                  "description": "link button not pressed"}}]

    bridge.press_link_button()
    answer = client.request("POST", "/api", {"devicetype": "roomctl#test"})
    username = answer[0]["success"]["username"]
    assert len(username) == 40
    assert username in hue(bridge, username).request("GET", f"/api/{username}/config")["whitelist"]


def test_reads_what_phue_reads(bridge: HueBridgeEmulator) -> None:
    client = hue(bridge)
    lights = client.get_light()
    assert set(lights) == {"1", "2", "3", "4"}
    lamp = client.get_light(1)
    assert lamp["type"] == "Extended color light"
    assert lamp["capabilities"]["control"]["ct"] == {"min": 153, "max": 500}
    assert lamp["capabilities"]["control"]["colorgamuttype"] == "C"
    ambiance = client.get_light(3)
    assert ambiance["productname"] == "Hue white ambiance"
    assert ambiance["capabilities"]["control"]["ct"] == {"max": 454, "min": 153}
    assert "xy" not in ambiance["state"]
    assert client.get_group(1)["lights"] == ["1", "2", "3", "4"]
    assert set(client.get_group()) == {"1"}
    assert set(client.get_api()) >= {"lights", "groups", "config"}
    assert client.name == "Philips hue"


def test_a_put_answers_one_success_per_attribute(bridge: HueBridgeEmulator) -> None:
    answer = hue(bridge).set_light(1, {"on": True, "bri": 200, "ct": 300, "transitiontime": 0})
    assert answer == [[{"success": {"/lights/1/state/on": True}},
                       {"success": {"/lights/1/state/bri": 200}},
                       {"success": {"/lights/1/state/ct": 300}},
                       {"success": {"/lights/1/state/transitiontime": 0}}]]
    state = bridge.light_state("1")
    assert (state["bri"], state["ct"], state["colormode"]) == (200, 300, "ct")


def error_types(answer: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["error"]["type"], e["error"]["address"]) for e in answer if "error" in e]


def test_bridge_errors_come_back_as_data(bridge: HueBridgeEmulator) -> None:
    client = hue(bridge)
    user = DEFAULT_USER
    # phue's set_light logs such answers with the deprecated Logger.warn (an error under this
    # suite's warning filters), so bodies that draw errors go through phue's request().
    assert error_types(client.request("GET", "/api/stranger/lights")) == [(1, "/lights")]
    assert error_types(client.request("PUT", "/api/stranger/lights/1/state", {"bri": 5})) == [
        (1, "/lights/1/state")]
    assert raw(bridge, "PUT", f"/api/{user}/lights/1/state", b"{not json")[1] == [
        {"error": {"type": 2, "address": "/lights/1/state",
                   "description": "body contains invalid json"}}]
    assert error_types(client.request("PUT", f"/api/{user}/lights/9/state", {"bri": 5})) == [
        (3, "/lights/9/state")]
    assert error_types(client.request("GET", f"/api/{user}/groups/7")) == [(3, "/groups/7")]
    for body, field in [({"bri": 0}, "bri"), ({"bri": 255}, "bri"), ({"ct": 455}, "ct"),
                        ({"ct": 152}, "ct"), ({"transitiontime": 65536}, "transitiontime")]:
        answer = client.request("PUT", f"/api/{user}/lights/3/state", body)
        assert error_types(answer) == [(7, f"/lights/3/state/{field}")], body
    answer = client.request("PUT", f"/api/{user}/lights/1/state", {"xy": [1.2, 0.3]})
    assert error_types(answer) == [(7, "/lights/1/state/xy")]
    answer = client.request("PUT", f"/api/{user}/lights/3/state", {"xy": [0.3, 0.3]})
    assert error_types(answer) == [(6, "/lights/3/state/xy")]
    assert bridge.light_state("3")["bri"] == 200  # nothing invalid was applied

    client.set_light(2, {"on": False})
    answer = client.request("PUT", f"/api/{user}/lights/2/state", {"bri": 100, "ct": 300})
    assert error_types(answer) == [(201, "/lights/2/state/bri"), (201, "/lights/2/state/ct")]
    answer = client.request("PUT", f"/api/{user}/lights/2/state", {"on": True, "bri": 100})
    assert error_types(answer) == []


def test_a_fade_runs_in_time_and_a_new_command_stops_it_where_it_is(
        bridge: HueBridgeEmulator, clock: ManualClock) -> None:
    client = hue(bridge)
    client.set_light(1, {"bri": 100, "ct": 400, "transitiontime": 100})  # from bri 200, ct 366
    clock.t += 5
    halfway = bridge.light_state("1")
    assert (halfway["bri"], halfway["ct"]) == (150, 383)
    client.set_light(1, {"ct": 300, "transitiontime": 0})  # no bri: the fade stops at 150
    clock.t += 10
    assert (bridge.light_state("1")["bri"], bridge.light_state("1")["ct"]) == (150, 300)


def test_default_transition_is_four_tenths(bridge: HueBridgeEmulator,
                                           clock: ManualClock) -> None:
    hue(bridge).set_light(3, {"bri": 100})
    clock.t += 0.2
    assert bridge.light_state("3")["bri"] == 150
    clock.t += 0.2
    assert bridge.light_state("3")["bri"] == 100


def test_switching_on_fades_up_from_dark(bridge: HueBridgeEmulator, clock: ManualClock) -> None:
    client = hue(bridge)
    client.set_light(1, {"on": False})
    assert bridge.light_state("1")["on"] is False
    client.set_light(1, {"on": True, "bri": 201, "transitiontime": 20})
    clock.t += 1
    assert bridge.light_state("1")["bri"] == 101


def test_group_action_reaches_each_bulb_as_it_can(bridge: HueBridgeEmulator) -> None:
    answer = hue(bridge).set_group(1, {"bri": 50, "ct": 500, "transitiontime": 0})
    assert answer == [[{"success": {"/groups/1/action/bri": 50}},
                       {"success": {"/groups/1/action/ct": 500}},
                       {"success": {"/groups/1/action/transitiontime": 0}}]]
    assert [bridge.light_state(i)["ct"] for i in "1234"] == [500, 500, 454, 454]
    hue(bridge).set_group(1, {"xy": [0.6, 0.3], "transitiontime": 0})
    assert bridge.light_state("1")["colormode"] == "xy"
    assert bridge.light_state("3")["colormode"] == "ct"  # a white bulb ignores a colour


def test_colours_outside_the_gamut_are_clamped(bridge: HueBridgeEmulator) -> None:
    hue(bridge).set_light(1, {"xy": [0.1, 0.8], "transitiontime": 0})
    x, y = units.clamp_xy_to_gamut((0.1, 0.8), GAMUT_C)
    assert bridge.light_state("1")["xy"] == [round(x, 4), round(y, 4)]
    assert (x, y) != (0.1, 0.8)


def test_every_request_is_recorded(bridge: HueBridgeEmulator) -> None:
    before = time.monotonic()
    hue(bridge).set_light(4, {"bri": 10, "transitiontime": 0})
    after = time.monotonic()
    [put] = bridge.light_puts()
    assert (put.method, put.path, put.body) == (
        "PUT", f"/api/{DEFAULT_USER}/lights/4/state", {"bri": 10, "transitiontime": 0})
    assert before <= put.arrival_s <= after
    assert put.clock_s == 100.0
    assert put.light_id == "4" and put.status == 200
    assert bridge.wait_for(lambda r: r.method == "PUT", 0.1) == put


def test_down_refuses_connections_until_it_comes_back(bridge: HueBridgeEmulator) -> None:
    port = bridge.port
    bridge.go_down()
    with pytest.raises(ConnectionRefusedError):
        hue(bridge).get_light(1)
    bridge.come_back()
    assert bridge.port == port
    assert hue(bridge).get_light(1)["name"] == "Couch lamp"


def test_a_hanging_bridge_never_answers(bridge: HueBridgeEmulator) -> None:
    bridge.hang()
    with pytest.raises(TimeoutError):
        raw(bridge, "GET", f"/api/{DEFAULT_USER}/lights", timeout_s=0.3)
    [hung] = bridge.requests
    assert hung.status is None
    bridge.come_back()
    assert raw(bridge, "GET", f"/api/{DEFAULT_USER}/lights/1")[0] == 200


def test_rate_limits_answer_503(bridge: HueBridgeEmulator, clock: ManualClock) -> None:
    bridge.set_rate_limit(light_puts_per_s=2, group_puts_per_s=1)
    path = f"/api/{DEFAULT_USER}/lights/1/state"
    statuses = [raw(bridge, "PUT", path, b'{"bri": 20}')[0] for _ in range(3)]
    assert statuses == [200, 200, 503]
    group = f"/api/{DEFAULT_USER}/groups/1/action"
    assert [raw(bridge, "PUT", group, b'{"bri": 20}')[0] for _ in range(2)] == [200, 503]
    clock.t += 1.0
    assert raw(bridge, "PUT", path, b'{"bri": 20}')[0] == 200
    assert len(bridge.light_puts()) == 3  # a 503 is not a delivered command


def test_lights_and_groups_are_configurable() -> None:
    lights = {"7": color_lamp("Lamp", on=False), "8": white_ambiance("Spot", bri=1)}
    with HueBridgeEmulator(lights, {"2": GroupSpec("Room", ("7", "8"))}) as bridge:
        assert hue(bridge).get_group(2)["state"] == {"all_on": False, "any_on": True}
        assert bridge.light_state("7")["on"] is False
        assert bridge.light_state("8")["bri"] == 1
