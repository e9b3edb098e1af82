"""`roomctl hue discover | pair | lights` against the bridge emulators, and roomctl.toml editing."""

from __future__ import annotations

import argparse
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import ServiceInfo

from roomctl.cli.hue import (
    CLI_REQUEST_TIMEOUT_S,
    HUE_SERVICE,
    ConfigEditError,
    Found,
    bridge_trust,
    describe_found,
    found_bridge,
    read_config,
    register,
    store_bridge_settings,
    store_bridge_username,
    stored_bridge,
)
from roomctl.clock import RealClock
from roomctl.drivers.hue import build_hue_lights
from roomctl.room import LightLook
from testkit.bridge_tls import DEFAULT_BRIDGE_ID, StandInSignify
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator
from testkit.hue_v2_bridge import DEFAULT_APP_KEY as V2_KEY
from testkit.hue_v2_bridge import HueV2BridgeEmulator


def roomctl_hue(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="roomctl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hue", *argv])
    result: int = args.func(args)
    return result


@pytest.fixture
def bridge() -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator(certificate=StandInSignify().issue()) as emulator:
        yield emulator


CLINIC_CONFIG = """\
# Rose Room, second floor. Ask Dana before changing anything here.
[rooms.lights]
kind = "hue"   # the real bulbs
bridge = "10.0.0.2"
group = "1"

[hue_bridges."10.0.0.9"]  # the old bridge in the hall
username = "hall-user"  # paired 2023
"""


def test_pairing_pins_the_certificate_waits_for_the_button_and_stores_it_all(
        bridge: HueBridgeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    config.write_text(CLINIC_CONFIG)
    press = threading.Timer(1.5, bridge.press_link_button)  # between the 2nd and 3rd try
    press.start()
    try:
        assert roomctl_hue("pair", "--bridge", bridge.host, "--config", str(config),
                           "--timeout", "10") == 0
    finally:
        press.join()
    out = capsys.readouterr().out
    cert = bridge.certificate
    assert cert is not None
    assert out.startswith(f"Hue bridge {DEFAULT_BRIDGE_ID} (BSB002, API 1.62.0) at {bridge.host}: "
                          f"certificate SHA-256 {cert.sha256}, not one Signify issued: pinned "
                          "as it is.\nPress the link button on the bridge…\n")
    registrations = [r for r in bridge.requests if r.method == "POST"]
    assert [r.status for r in registrations] == [200, 200, 200]  # at 0, 1 and 2 s
    assert [r.body for r in registrations] == [{"devicetype": registrations[0].body["devicetype"]}] * 3
    assert registrations[0].body["devicetype"].startswith("roomctl#")
    assert 0.9 < registrations[1].arrival_s - registrations[0].arrival_s < 1.2
    username = registrations[-1].response[0]["success"]["username"]
    text = config.read_text()
    assert text.startswith(CLINIC_CONFIG)  # every comment and line kept as it was
    assert text.endswith(f'\n[hue_bridges."{bridge.host}"]\nusername = "{username}"\n'
                         f'api = "v1"\nbridge_id = "{DEFAULT_BRIDGE_ID}"\n'
                         f'certificate_sha256 = "{cert.sha256}"\n')
    parsed = tomllib.loads(text)
    assert parsed["hue_bridges"]["10.0.0.9"] == {"username": "hall-user"}
    settings = read_config(config)
    entry = stored_bridge(settings, bridge.host)
    assert entry is not None and entry.certificate_sha256 == cert.sha256


def test_pairing_a_v2_bridge_stores_the_application_key_and_client_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    with HueV2BridgeEmulator(StandInSignify().issue()) as v2:
        v2.press_link_button()
        assert roomctl_hue("pair", "--bridge", v2.host, "--config", str(config)) == 0
        [registration] = [r for r in v2.requests if r.method == "POST"]
    assert registration.body["generateclientkey"] is True
    success = registration.response[0]["success"]
    entry = stored_bridge(read_config(config), v2.host)
    assert entry is not None
    assert (entry.username, entry.client_key, entry.api, entry.bridge_id) == (
        success["username"], success["clientkey"], "v2", DEFAULT_BRIDGE_ID)
    assert entry.certificate_sha256 == v2.certificate.sha256
    assert "(API v2)" in capsys.readouterr().out


def test_pairing_gives_up_after_the_timeout(bridge: HueBridgeEmulator, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    assert roomctl_hue("pair", "--bridge", bridge.host, "--config", str(config),
                       "--timeout", "1.5") == 1
    assert "link button was not pressed within 1.5 s" in capsys.readouterr().err
    assert not config.exists()
    assert len([r for r in bridge.requests if r.method == "POST"]) == 2


def test_pairing_with_a_bridge_that_is_not_there_fails_at_once(
        bridge: HueBridgeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bridge.go_down()
    started = time.monotonic()
    assert roomctl_hue("pair", "--bridge", bridge.host, "--config",
                       str(tmp_path / "roomctl.toml"), "--timeout", "30") == 1
    assert time.monotonic() - started < 2.0
    captured = capsys.readouterr()
    assert "Press the link button" not in captured.out
    assert captured.err.strip() == (
        f"Hue bridge {bridge.host} not answering: connection refused. Is {bridge.host} the "
        "bridge's address, and is this computer on the bridge's network? `roomctl hue "
        "discover` lists the bridges it can see.")


def test_pairing_with_an_address_that_accepts_and_never_answers_fails_quickly(
        bridge: HueBridgeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bridge.hang()
    started = time.monotonic()
    try:
        assert roomctl_hue("pair", "--bridge", bridge.host, "--config",
                           str(tmp_path / "roomctl.toml"), "--timeout", "30") == 1
    finally:
        bridge.come_back()
    assert time.monotonic() - started < CLI_REQUEST_TIMEOUT_S + 2.0  # one request's timeout
    assert "not answering: timed out" in capsys.readouterr().err


def test_pairing_an_old_bridge_over_plain_http_only_when_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    with HueBridgeEmulator() as old:
        assert roomctl_hue("pair", "--bridge", old.host, "--config", str(config),
                           "--timeout", "0.5") == 1
        assert "no HTTPS here" in capsys.readouterr().err
        old.press_link_button()
        assert roomctl_hue("pair", "--bridge", old.host, "--config", str(config),
                           "--plain-http") == 0
    entry = stored_bridge(read_config(config), old.host)
    assert entry is not None and entry.plain_http and entry.certificate_sha256 is None
    assert "plain HTTP, nothing is checked" in capsys.readouterr().out


def test_a_new_config_file_is_created_private(tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    store_bridge_username(config, "192.168.1.20", "abc123")
    assert config.read_text() == '[hue_bridges."192.168.1.20"]\nusername = "abc123"\n'
    assert config.stat().st_mode & 0o777 == 0o600


def test_pairing_again_replaces_the_username_in_place(tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    config.write_text(CLINIC_CONFIG + "\n[audio]\nmax_volume = 80\n")
    config.chmod(0o640)
    store_bridge_username(config, "10.0.0.9", "new-user")
    expected = CLINIC_CONFIG.replace('username = "hall-user"  # paired 2023',
                                     'username = "new-user"  # paired 2023')
    assert config.read_text() == expected + "\n[audio]\nmax_volume = 80\n"
    assert config.stat().st_mode & 0o777 == 0o640


def test_a_table_without_a_username_gets_one(tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    config.write_text("[hue_bridges.'10.0.0.2'] # front desk\nnote = \"x\"\n[rooms]\n")
    store_bridge_username(config, "10.0.0.2", "u1")
    assert config.read_text() == ("[hue_bridges.'10.0.0.2'] # front desk\nusername = \"u1\"\n"
                                  "note = \"x\"\n[rooms]\n")


def test_a_config_it_cannot_edit_safely_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    original = 'hue_bridges = { "10.0.0.2" = { username = "old" } }\n'
    config.write_text(original)
    with pytest.raises(ConfigEditError, match="add these lines to it by hand"):
        store_bridge_username(config, "10.0.0.2", "new")
    assert config.read_text() == original
    config.write_text("[rooms\n")
    with pytest.raises(ConfigEditError, match="not valid TOML"):
        store_bridge_username(config, "10.0.0.2", "new")


def paired(config: Path, bridge: HueBridgeEmulator, username: str = DEFAULT_USER) -> None:
    """What `roomctl hue pair` would have stored for this emulator."""
    cert = bridge.certificate
    assert cert is not None
    store_bridge_settings(config, bridge.host, {"username": username, "api": "v1",
                                                "bridge_id": bridge.bridge_id,
                                                "certificate_sha256": cert.sha256})


def test_lights_lists_lights_and_groups(bridge: HueBridgeEmulator, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    paired(config, bridge)
    assert roomctl_hue("lights", "--bridge", bridge.host, "--config", str(config)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Lights on Hue bridge {bridge.host}:"
    assert out[1].split() == ["id", "name", "type", "colour", "temperature", "gamut",
                              "reachable"]
    assert out[2].split() == ["1", "Couch", "lamp", "Extended", "color", "light", "153-500",
                              "mireds", "(2000-6536", "K)", "C", "yes"]
    assert out[4].split() == ["3", "Ceiling", "Color", "temperature", "light", "153-454",
                              "mireds", "(2203-6536", "K)", "-", "yes"]
    assert out[7:9] == ["Groups:", "  id  name          type  lights"]
    assert out[9].split() == ["1", "Therapy", "room", "Room", "1,", "2,", "3,", "4"]
    assert f'  bridge = "{bridge.host}"' in out and '  group = "1"' in out


def test_lights_on_a_v2_bridge_lists_lights_rooms_and_zones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    with HueV2BridgeEmulator(StandInSignify().issue()) as v2:
        store_bridge_settings(config, v2.host, {
            "username": V2_KEY, "api": "v2", "bridge_id": v2.bridge_id,
            "certificate_sha256": v2.certificate.sha256})
        assert roomctl_hue("lights", "--bridge", v2.host, "--config", str(config)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Lights on Hue bridge {v2.host} (API v2):"
    assert out[2].split()[:5] == ["1", "Couch", "lamp", "2000-6536", "K"]
    assert any(line.split()[:4] == ["2", "Couch", "corner", "zone"] for line in out)
    assert '  group = "Therapy room"' in out


def test_lights_without_pairing_says_what_to_do(bridge: HueBridgeEmulator, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    assert roomctl_hue("lights", "--bridge", bridge.host, "--config", str(config)) == 1
    assert f"run `roomctl hue pair --bridge {bridge.host}` first" in capsys.readouterr().err
    paired(config, bridge, "forgotten")
    assert roomctl_hue("lights", "--bridge", bridge.host, "--config", str(config)) == 1
    assert "pair again with" in capsys.readouterr().err


def test_discovery_reads_what_an_announced_bridge_says_of_itself(
        bridge: HueBridgeEmulator) -> None:
    """mDNS itself is multicast and leaves the loopback range, so it is not exercised here;
    what is done with a bridge's announcement (zeroconf's own `ServiceInfo`) is."""
    info = ServiceInfo(HUE_SERVICE, "Hue Bridge - 000001._hue._tcp.local.",
                       addresses=[socket.inet_aton("127.0.0.1")], port=bridge.port,
                       properties={"bridgeid": DEFAULT_BRIDGE_ID, "modelid": "BSB002"},
                       server="hue-bridge.local.")
    found = found_bridge(info)
    assert found == Found(DEFAULT_BRIDGE_ID, bridge.host, "BSB002", "1.62.0", False)
    with HueV2BridgeEmulator(StandInSignify().issue()) as v2:
        port = int(v2.host.rsplit(":", 1)[1])
        info = ServiceInfo(HUE_SERVICE, "Hue Bridge - 000002._hue._tcp.local.",
                           addresses=[socket.inet_aton("127.0.0.1")], port=port,
                           properties={"bridgeid": "001788fffe000002", "modelid": "BSB002"},
                           server="hue-bridge-2.local.")
        second = found_bridge(info)
    assert second is not None and second.v2 and second.api_version == "1.70.0"
    table = describe_found([found, second]).splitlines()
    assert table[0] == "Hue bridges on this network:"
    assert table[2].split() == [DEFAULT_BRIDGE_ID, bridge.host, "BSB002", "1.62.0", "v1"]
    assert table[3].split()[-1] == "v2"
    assert "No Hue bridge answered" in describe_found([])


async def test_a_room_from_the_config_file_drives_the_bridge(bridge: HueBridgeEmulator,
                                                            tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    config.write_text(f'[rooms.lights]\nkind = "hue"\nbridge = "{bridge.host}"\ngroup = "1"\n')
    paired(config, bridge)
    settings = read_config(config)
    lights = settings["rooms"]["lights"]
    entry = stored_bridge(settings, lights["bridge"])
    assert entry is not None and entry.username == DEFAULT_USER
    room = build_hue_lights(lights["bridge"], entry.username, lights["group"], None, RealClock(),
                            trust=bridge_trust(lights["bridge"], entry))
    try:
        await room.apply(LightLook(40, 2700), 0)
        await room.drain()
    finally:
        await room.close()
    assert [p.path for p in bridge.group_puts()] == [f"/api/{DEFAULT_USER}/groups/1/action"]
