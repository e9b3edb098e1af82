"""The settings file: every mistake stops start-up with a message naming the key."""

from pathlib import Path
from typing import Any

import pytest

from roomctl.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parent.parent / "roomctl.example.toml"


def test_the_example_config_is_valid_and_complete() -> None:
    config = load_config(EXAMPLE)
    assert [r.name for r in config.rooms] == ["Room 1", "Room 2"]
    assert config.rooms[0].lights.kind == "hue" and config.hue_username(config.rooms[0])
    assert config.safety.max_volume == 80 and config.safety.emergency_color_temp == 4000
    assert config.config_dir == EXAMPLE.parent
    assert config.listen.https and config.listen.hosts == ["roomctl.clinic.lan"]
    assert config.access.admin_pin == "90817263" and config.access.token_idle_days == 90


@pytest.mark.parametrize(("data", "message"), [
    ({"rooms": [{"name": "A", "lights": {"kind": "hue", "bridg": "x"}}]},
     "rooms[0] ('A').lights.bridg: unknown key"),
    ({"rooms": [{"name": "A", "lights": {"kind": "hue", "bridge": "10.0.0.2"}}]},
     "a hue room needs a group id or a list of light ids"),
    ({"rooms": [{"name": "A"}], "safety": {"max_volume": 120}}, "safety.max_volume:"),
    ({"rooms": []}, "rooms:"),
    ({"rooms": [{"name": "A"}, {"name": "a"}]}, "two rooms are called 'a'"),
    ({"rooms": [{"name": "A", "audio": {"playlists": {"journey": {"foldr": "/x"}}}}]},
     "rooms[0] ('A').audio.playlists.journey: a playlist needs exactly one of"),
    ({"rooms": [{"name": "A"}], "pin": "12"}, "pin:"),
    ({"rooms": [{"name": "A"}], "pin": "٢٤٦٨"}, "pin:"),  # digits, but not 0-9
    ({"rooms": [{"name": "A"}], "listen": {"cert_file": "c.pem"}}, "give both cert_file and key_file"),
    ({"rooms": [{"name": "A"}], "listen": {"tls": "off", "cert_file": "c.pem", "key_file": "k.pem"}},
     "a certificate is configured but tls is \"off\""),
    ({"rooms": [{"name": "A"}], "listen": {"hosts": ["*.clinic.lan"]}}, "listen.hosts[0]:"),
    ({"rooms": [{"name": "A"}], "listen": {"tls": "sometimes"}}, "listen.tls:"),
    ({"rooms": [{"name": "A"}], "pin": "123456", "access": {"admin_pin": "123456"}}, "must differ from pin"),
    ({"rooms": [{"name": "A"}], "access": {"token_idle_days": 0}}, "access.token_idle_days:"),
    ({"rooms": [{"name": "A"}], "hue_bridges": {"10.0.0.2": {"username": "u"}}},
     'hue_bridges.10.0.0.2: certificate_sha256: no certificate pinned for this bridge: pair '
     'again with `roomctl hue pair`'),
    ({"rooms": [{"name": "A"}], "hue_bridges": {"10.0.0.2": {
        "username": "u", "certificate_sha256": "AB:CD"}}},
     "hue_bridges.10.0.0.2.certificate_sha256: 'AB:CD' is not a SHA-256 fingerprint"),
    ({"rooms": [{"name": "A"}], "hue_bridges": {"10.0.0.2": {
        "username": "u", "plain_http": True, "api": "v3"}}}, "hue_bridges.10.0.0.2.api:"),
    ({"rooms": [{"name": "A", "lights": {"kind": "hue", "bridge": "b", "group": "1",
                                         "outside_changes": "ignore"}}]},
     "rooms[0] ('A').lights.outside_changes:"),
])
def test_mistakes_name_their_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


def test_a_toml_syntax_error_and_a_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "roomctl.toml"
    bad.write_text("[[rooms]\nname = 'A'\n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "roomctl.toml"
    cfg.parent.mkdir()
    cfg.write_text('data_dir = "data"\npresets_dir = "presets"\n[[rooms]]\nname = "A"\n')
    config = load_config(cfg)
    assert config.data_dir == cfg.parent / "data"
    assert config.clinic_presets == cfg.parent / "presets"


def test_serve_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "roomctl.toml"
    cfg.write_text('[[rooms]]\nname = "A"\n[rooms.lights]\nkind = "hue"\nbrige = "x"\n')
    proc = subprocess.run([sys.executable, "-m", "roomctl.cli", "serve", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "rooms[0] ('A').lights.brige: unknown key" in proc.stderr
