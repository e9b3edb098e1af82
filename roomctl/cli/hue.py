"""`roomctl hue pair | lights`: setting up a clinic's Philips Hue bridge.

roomctl keeps what it learns in its own TOML config file (default ``./roomctl.toml``): the
username a bridge hands out at pairing goes into a ``[hue_bridges."HOST"]`` table. The file
is edited as text so that a clinic's comments and layout survive, and the result is read
back with tomllib before it replaces the old file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from roomctl import units
from roomctl.config import HueBridgeConfig
from roomctl.drivers.hue import (
    GAMUTS,
    BridgeUnreachable,
    HueBridgeClient,
    HueError,
    LightCapabilities,
    LinkButtonNotPressed,
)

DEFAULT_CONFIG = "roomctl.toml"
_BRIDGES = TypeAdapter(dict[str, HueBridgeConfig])
CLI_REQUEST_TIMEOUT_S = 5.0

_BRIDGE_HEADER = re.compile(
    r"""^[ \t]*\[[ \t]*hue_bridges[ \t]*\.[ \t]*
        (?:"(?P<basic>(?:[^"\\]|\\.)*)"|'(?P<literal>[^']*)'|(?P<bare>[A-Za-z0-9_-]+))
        [ \t]*\][ \t]*(?:\#.*)?$""", re.VERBOSE)
_USERNAME_LINE = re.compile(
    r"""^(?P<lead>[ \t]*username[ \t]*=[ \t]*)(?:"(?:[^"\\]|\\.)*"|'[^']*')(?P<tail>[ \t]*(?:\#.*)?)$""")
_TABLE_START = re.compile(r"^[ \t]*\[")


class ConfigEditError(Exception):
    """roomctl's config file could not be changed safely; the message says what to do."""


# --- the config file --------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _header_key(match: re.Match[str]) -> str:
    if match.group("basic") is not None:
        return str(json.loads(f'"{match.group("basic")}"'))
    return match.group("literal") if match.group("literal") is not None else match.group("bare")


def _with_username(text: str, bridge: str, username: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    entry = f"username = {_toml_string(username)}"
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        header = _BRIDGE_HEADER.match(line.rstrip("\r\n"))
        if header is None or _header_key(header) != bridge:
            continue
        end = next((j for j in range(i + 1, len(lines)) if _TABLE_START.match(lines[j])),
                   len(lines))
        for j in range(i + 1, end):
            body = lines[j].rstrip("\r\n")
            old = _USERNAME_LINE.match(body)
            if old is not None:
                ending = lines[j][len(body):] or newline
                lines[j] = (f"{old.group('lead')}{_toml_string(username)}{old.group('tail')}"
                            f"{ending}")
                return "".join(lines)
        if not lines[i].endswith(("\n", "\r")):
            lines[i] += newline
        lines.insert(i + 1, entry + newline)
        return "".join(lines)
    if text and not text.endswith(("\n", "\r")):
        text += newline
    gap = newline if text.strip() else ""
    return f"{text}{gap}[hue_bridges.{_toml_string(bridge)}]{newline}{entry}{newline}"


def read_config(path: Path) -> dict[str, Any]:
    """roomctl's config as a dict ({} when the file does not exist yet)."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{path}: not valid TOML ({exc})") from exc


def stored_username(settings: Mapping[str, Any], bridge: str) -> str | None:
    """The username `roomctl hue pair` stored for ``bridge`` in a config file's settings (read
    with `read_config`; the file need not be a whole config yet), by the config's own model."""
    try:
        bridges = _BRIDGES.validate_python(settings.get("hue_bridges", {}))
    except ValidationError:
        return None
    entry = bridges.get(bridge)
    return entry.username if entry is not None else None


def store_bridge_username(path: Path, bridge: str, username: str) -> None:
    """Put ``username`` into ``[hue_bridges."BRIDGE"]`` of the config file at ``path``,
    creating the file or the table if needed and leaving everything else as it was."""
    text = path.read_text("utf-8") if path.exists() else ""
    old = read_config(path)
    new_text = _with_username(text, bridge, username)
    expected = copy.deepcopy(old)
    bridges = expected.setdefault("hue_bridges", {})
    if not isinstance(bridges, dict) or not isinstance(bridges.setdefault(bridge, {}), dict):
        raise ConfigEditError(f"{path}: 'hue_bridges' is not a table of bridges")
    bridges[bridge]["username"] = username
    try:
        ok = tomllib.loads(new_text) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise ConfigEditError(
            f"{path}: could not add the username without disturbing the file; add these "
            f"lines to it by hand:\n[hue_bridges.{_toml_string(bridge)}]\n"
            f"username = {_toml_string(username)}")
    temporary = path.with_name(f".{path.name}.roomctl-new")
    temporary.write_text(new_text, "utf-8")
    # The username is the bridge's only credential: keep a new file private.
    os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o600)
    os.replace(temporary, path)


# --- pairing ----------------------------------------------------------------------------------


def _devicetype() -> str:
    # Hue allows "<application, 20 chars>#<device, 19 chars>".
    return f"roomctl#{socket.gethostname()[:19]}"


def pair(bridge: str, *, timeout_s: float = 30.0, interval_s: float = 1.0,
         request_timeout_s: float = CLI_REQUEST_TIMEOUT_S,
         say: Callable[[str], None] = print) -> str:
    """Ask the bridge for a username every ``interval_s`` until its link button is pressed;
    raises `HueError` after ``timeout_s``."""
    client = HueBridgeClient(bridge, None, trust=None, timeout_s=request_timeout_s)
    say("Press the link button on the bridge…")
    deadline = time.monotonic() + timeout_s
    attempt_at = time.monotonic()
    last: HueError = LinkButtonNotPressed(bridge)
    while True:
        try:
            return client.register(_devicetype())[0]
        except (LinkButtonNotPressed, BridgeUnreachable) as exc:
            last = exc
        attempt_at += interval_s
        if attempt_at > deadline:
            raise last
        time.sleep(max(0.0, attempt_at - time.monotonic()))


def _pair_command(args: argparse.Namespace) -> int:
    path = Path(args.config)
    try:
        read_config(path)  # a broken file is reported before anyone walks to the bridge
        username = pair(args.bridge, timeout_s=args.timeout)
        store_bridge_username(path, args.bridge, username)
    except LinkButtonNotPressed:
        print(f"The link button was not pressed within {args.timeout:g} s. Press it, then run "
              f"`roomctl hue pair --bridge {args.bridge}` again within 30 s.", file=sys.stderr)
        return 1
    except (HueError, ConfigEditError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Paired with Hue bridge {args.bridge}; the username is saved in {path} under "
          f'[hue_bridges.{_toml_string(args.bridge)}].')
    print(f"Next: `roomctl hue lights --bridge {args.bridge}` lists its lights and groups.")
    return 0


# --- listing lights ---------------------------------------------------------------------------


def _gamut_name(caps: LightCapabilities, light: Mapping[str, Any]) -> str:
    named = light.get("capabilities", {}).get("control", {}).get("colorgamuttype")
    if isinstance(named, str):
        return named
    if caps.gamut is None:
        return "-"
    return next((k for k, g in GAMUTS.items() if g == caps.gamut), "custom")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]]


def describe_bridge(bridge: str, lights: Mapping[str, Any], groups: Mapping[str, Any]) -> str:
    """The lights and groups of a bridge as a clinic reads them when writing the room config."""
    light_rows = []
    for light_id, light in sorted(lights.items(), key=lambda kv: int(kv[0])
                                  if kv[0].isdigit() else 0):
        caps = LightCapabilities.from_api(light)
        ct = "-"
        if caps.ct_range is not None:
            low, high = caps.ct_range
            ct = (f"{low}-{high} mireds ({units.mireds_to_kelvin(high)}-"
                  f"{units.mireds_to_kelvin(low)} K)")
        reachable = light.get("state", {}).get("reachable", True)
        light_rows.append((light_id, str(light.get("name", "")), str(light.get("type", "")), ct,
                           _gamut_name(caps, light), "yes" if reachable else "NO"))
    group_rows = [(gid, str(g.get("name", "")), str(g.get("type", "")),
                   ", ".join(map(str, g.get("lights", []))))
                  for gid, g in sorted(groups.items(), key=lambda kv: int(kv[0])
                                       if kv[0].isdigit() else 0)]
    out = [f"Lights on Hue bridge {bridge}:"]
    out += _table(("id", "name", "type", "colour temperature", "gamut", "reachable"),
                  light_rows) if light_rows else ["  (none)"]
    out += ["", "Groups:"]
    out += _table(("id", "name", "type", "lights"), group_rows) if group_rows else ["  (none)"]
    example = group_rows[0][0] if group_rows else None
    out += ["", "A room's lights in roomctl.toml (a group, or lights = [\"1\", \"2\"]):",
            "  [rooms.lights]", '  kind = "hue"', f"  bridge = {_toml_string(bridge)}",
            f'  group = "{example}"' if example else '  lights = ["1"]']
    return "\n".join(out)


def _lights_command(args: argparse.Namespace) -> int:
    path = Path(args.config)
    try:
        username = stored_username(read_config(path), args.bridge)
    except ConfigEditError as exc:
        print(exc, file=sys.stderr)
        return 1
    if username is None:
        print(f"{path} has no username for Hue bridge {args.bridge}: run `roomctl hue pair "
              f"--bridge {args.bridge}` first.", file=sys.stderr)
        return 1
    client = HueBridgeClient(args.bridge, username, trust=None, timeout_s=CLI_REQUEST_TIMEOUT_S)
    try:
        lights, groups = client.lights_now(), client.groups_now()
    except HueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(describe_bridge(args.bridge, lights, groups))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``roomctl hue pair | lights`` to the ``roomctl`` command's subcommands."""
    hue = subparsers.add_parser("hue", help="pair with a Philips Hue bridge, list its lights")
    commands = hue.add_subparsers(dest="hue_command", required=True)

    pair_cmd = commands.add_parser(
        "pair", help="pair roomctl with a bridge (press its link button when asked)")
    pair_cmd.add_argument("--bridge", required=True, help="the bridge's address, e.g. 192.168.1.20")
    pair_cmd.add_argument("--config", default=DEFAULT_CONFIG,
                          help=f"roomctl's config file to store the username in "
                               f"(default: ./{DEFAULT_CONFIG})")
    pair_cmd.add_argument("--timeout", type=float, default=30.0,
                          help="seconds to wait for the link button (default 30)")
    pair_cmd.set_defaults(func=_pair_command)

    lights_cmd = commands.add_parser("lights", help="list a paired bridge's lights and groups")
    lights_cmd.add_argument("--bridge", required=True, help="the bridge's address")
    lights_cmd.add_argument("--config", default=DEFAULT_CONFIG,
                            help=f"roomctl's config file (default: ./{DEFAULT_CONFIG})")
    lights_cmd.set_defaults(func=_lights_command)
