"""`roomctl hue pair | lights` against the bridge emulator, and roomctl.toml editing."""

from __future__ import annotations

import argparse
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomctl.cli.hue import ConfigEditError, read_config, register, store_bridge_username, stored_username
from roomctl.clock import RealClock
from roomctl.drivers.hue import build_hue_lights
from roomctl.room import LightLook
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator


def roomctl_hue(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="roomctl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hue", *argv])
    result: int = args.func(args)
    return result


@pytest.fixture
def bridge() -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator() as emulator:
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


def test_pairing_waits_for_the_button_and_stores_the_username(
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
    assert out.startswith("Press the link button on the bridge…\n")
    registrations = [r for r in bridge.requests if r.method == "POST"]
    assert [r.status for r in registrations] == [200, 200, 200]  # at 0, 1 and 2 s
    assert [r.body["devicetype"].split("#")[0] for r in registrations] == ["roomctl"] * 3
    assert 0.9 < registrations[1].arrival_s - registrations[0].arrival_s < 1.2
    username = registrations[-1].response[0]["success"]["username"]
    text = config.read_text()
    assert text.startswith(CLINIC_CONFIG)  # every comment and line kept as it was
    assert text.endswith(f'\n[hue_bridges."{bridge.host}"]\nusername = "{username}"\n')
    parsed = tomllib.loads(text)
    assert parsed["hue_bridges"][bridge.host] == {"username": username}
    assert parsed["hue_bridges"]["10.0.0.9"] == {"username": "hall-user"}


def test_pairing_gives_up_after_the_timeout(bridge: HueBridgeEmulator, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    assert roomctl_hue("pair", "--bridge", bridge.host, "--config", str(config),
                       "--timeout", "1.5") == 1
    assert "link button was not pressed within 1.5 s" in capsys.readouterr().err
    assert not config.exists()
    assert len([r for r in bridge.requests if r.method == "POST"]) == 2


def test_pairing_with_a_bridge_that_is_not_there(bridge: HueBridgeEmulator, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bridge.go_down()
    assert roomctl_hue("pair", "--bridge", bridge.host, "--config",
                       str(tmp_path / "roomctl.toml"), "--timeout", "0.5") == 1
    assert capsys.readouterr().err.strip() == (
        f"Hue bridge {bridge.host} not answering: connection refused")


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


def test_lights_lists_lights_and_groups(bridge: HueBridgeEmulator, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    store_bridge_username(config, bridge.host, DEFAULT_USER)
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


def test_lights_without_pairing_says_what_to_do(bridge: HueBridgeEmulator, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "roomctl.toml"
    assert roomctl_hue("lights", "--bridge", bridge.host, "--config", str(config)) == 1
    assert f"run `roomctl hue pair --bridge {bridge.host}` first" in capsys.readouterr().err
    store_bridge_username(config, bridge.host, "forgotten")
    assert roomctl_hue("lights", "--bridge", bridge.host, "--config", str(config)) == 1
    assert "pair again with" in capsys.readouterr().err


async def test_a_room_from_the_config_file_drives_the_bridge(bridge: HueBridgeEmulator,
                                                            tmp_path: Path) -> None:
    config = tmp_path / "roomctl.toml"
    config.write_text(f'[rooms.lights]\nkind = "hue"\nbridge = "{bridge.host}"\ngroup = "1"\n')
    store_bridge_username(config, bridge.host, DEFAULT_USER)
    settings = read_config(config)
    lights = settings["rooms"]["lights"]
    username = stored_username(settings, lights["bridge"])
    assert username == DEFAULT_USER
    room = build_hue_lights(lights["bridge"], username, lights["group"], None, RealClock(),
                            trust=None)
    try:
        await room.apply(LightLook(40, 2700), 0)
        await room.drain()
    finally:
        await room.close()
    assert [p.path for p in bridge.group_puts()] == [f"/api/{DEFAULT_USER}/groups/1/action"]
