"""`roomctl hue pair | lights`: setting up a clinic's Philips Hue bridge.

roomctl keeps what it learns in its own TOML config file (default ``./roomctl.toml``): the
username a bridge hands out at pairing goes into a ``[hue_bridges."HOST"]`` table. The file
is edited as text so that a clinic's comments and layout survive, and the result is read
back with tomllib before it replaces the old file.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from roomctl import units
from roomctl.config import HueBridgeConfig
from roomctl.drivers.hue import (
    GAMUTS,
    BridgeTrust,
    BridgeUnreachable,
    HueBridgeClient,
    HueError,
    LightCapabilities,
    LinkButtonNotPressed,
)
from roomctl.drivers.hue.tls import common_name, fingerprint, presented_certificate
from roomctl.drivers.hue.v2 import RequestFailed, RoomctlBridgeV2, V2Caps

DEFAULT_CONFIG = "roomctl.toml"
_BRIDGE = TypeAdapter(HueBridgeConfig)
CLI_REQUEST_TIMEOUT_S = 3.0
HUE_SERVICE = "_hue._tcp.local."

_BRIDGE_HEADER = re.compile(
    r"""^[ \t]*\[[ \t]*hue_bridges[ \t]*\.[ \t]*
        (?:"(?P<basic>(?:[^"\\]|\\.)*)"|'(?P<literal>[^']*)'|(?P<bare>[A-Za-z0-9_-]+))
        [ \t]*\][ \t]*(?:\#.*)?$""", re.VERBOSE)
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|true|false)"""
_TAIL = r"(?P<tail>[ \t]*(?:\#.*)?)$"


def _setting_line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<lead>[ \t]*{re.escape(key)}[ \t]*=[ \t]*){_VALUE}{_TAIL}")


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


def _toml_value(value: str | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else _toml_string(value)


def _with_setting(text: str, bridge: str, key: str, value: str | bool) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    entry = f"{key} = {_toml_value(value)}"
    line_of = _setting_line(key)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        header = _BRIDGE_HEADER.match(line.rstrip("\r\n"))
        if header is None or _header_key(header) != bridge:
            continue
        end = next((j for j in range(i + 1, len(lines)) if _TABLE_START.match(lines[j])),
                   len(lines))
        last = i
        for j in range(i + 1, end):
            body = lines[j].rstrip("\r\n")
            if body.strip() and not body.lstrip().startswith("#"):
                last = j
            old = line_of.match(body)
            if old is not None:
                ending = lines[j][len(body):] or newline
                lines[j] = (f"{old.group('lead')}{_toml_value(value)}{old.group('tail')}"
                            f"{ending}")
                return "".join(lines)
        at = i + 1 if key == "username" else last + 1
        if not lines[at - 1].endswith(("\n", "\r")):
            lines[at - 1] += newline
        lines.insert(at, entry + newline)
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


def stored_bridge(settings: Mapping[str, Any], bridge: str) -> HueBridgeConfig | None:
    """The ``[hue_bridges."BRIDGE"]`` entry of a config file's settings (read with
    `read_config`; the file need not be a whole config yet), by the config's own model; None
    when there is none or it is not usable (e.g. a pairing from before certificates were
    pinned)."""
    bridges = settings.get("hue_bridges", {})
    entry = bridges.get(bridge) if isinstance(bridges, dict) else None
    if entry is None:
        return None
    try:
        return _BRIDGE.validate_python(entry)
    except ValidationError:
        return None


def stored_username(settings: Mapping[str, Any], bridge: str) -> str | None:
    """The username `roomctl hue pair` stored for ``bridge``."""
    entry = stored_bridge(settings, bridge)
    return entry.username if entry is not None else None


def store_bridge_username(path: Path, bridge: str, username: str) -> None:
    """Put ``username`` into ``[hue_bridges."BRIDGE"]`` of the config file at ``path``."""
    store_bridge_settings(path, bridge, {"username": username})


def store_bridge_settings(path: Path, bridge: str, settings: Mapping[str, str | bool]) -> None:
    """Put ``settings`` into ``[hue_bridges."BRIDGE"]`` of the config file at ``path``,
    creating the file or the table if needed and leaving everything else as it was."""
    text = path.read_text("utf-8") if path.exists() else ""
    old = read_config(path)
    new_text = text
    for key, value in settings.items():
        new_text = _with_setting(new_text, bridge, key, value)
    expected = copy.deepcopy(old)
    bridges = expected.setdefault("hue_bridges", {})
    if not isinstance(bridges, dict) or not isinstance(bridges.setdefault(bridge, {}), dict):
        raise ConfigEditError(f"{path}: 'hue_bridges' is not a table of bridges")
    bridges[bridge].update(settings)
    try:
        ok = tomllib.loads(new_text) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        lines = "\n".join(f"{k} = {_toml_value(v)}" for k, v in settings.items())
        raise ConfigEditError(
            f"{path}: could not add the bridge's settings without disturbing the file; add "
            f"these lines to it by hand:\n[hue_bridges.{_toml_string(bridge)}]\n{lines}")
    temporary = path.with_name(f".{path.name}.roomctl-new")
    temporary.write_text(new_text, "utf-8")
    # The username is the bridge's only credential: keep a new file private.
    os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o600)
    os.replace(temporary, path)


# --- pairing ----------------------------------------------------------------------------------


def _devicetype() -> str:
    # Hue allows "<application, 20 chars>#<device, 19 chars>".
    return f"roomctl#{socket.gethostname()[:19]}"


@dataclass(frozen=True)
class Paired:
    """What pairing learned, as it goes into ``[hue_bridges."HOST"]``."""

    username: str
    client_key: str | None
    api: Literal["v1", "v2"]
    bridge_id: str | None
    certificate_sha256: str | None  # None: plain HTTP
    signify: bool  # the certificate is one Signify issued to this bridge

    def settings(self) -> dict[str, str | bool]:
        out: dict[str, str | bool] = {"username": self.username}
        if self.client_key:
            out["client_key"] = self.client_key
        out["api"] = self.api
        if self.bridge_id:
            out["bridge_id"] = self.bridge_id
        if self.certificate_sha256:
            out["certificate_sha256"] = self.certificate_sha256
        else:
            out["plain_http"] = True
        return out


def _unreachable_hint(bridge: str) -> str:
    return (f"Is {bridge} the bridge's address, and is this computer on the bridge's network? "
            "`roomctl hue discover` lists the bridges it can see.")


def pair(bridge: str, *, timeout_s: float = 30.0, interval_s: float = 1.0,
         request_timeout_s: float = CLI_REQUEST_TIMEOUT_S, api: str = "auto",
         plain_http: bool = False, say: Callable[[str], None] = print) -> Paired:
    """Pair with ``bridge``: pin the certificate it presents (trust on first use), then ask for
    a username every ``interval_s`` until its link button is pressed. A bridge that does not
    answer fails at once (`BridgeUnreachable`); `LinkButtonNotPressed` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s

    def left_s() -> float:
        return max(0.2, min(request_timeout_s, deadline - time.monotonic()))

    der = None if plain_http else presented_certificate(bridge, left_s())
    pin = None if der is None else fingerprint(der)
    trust = None if pin is None else BridgeTrust(bridge, pin=pin)
    client = HueBridgeClient(bridge, None, trust=trust, timeout_s=left_s())
    public = client.public_config()
    bridge_id = str(public.get("bridgeid") or "").lower() or None
    named = common_name(der) if der is not None else None
    if named is not None and bridge_id is not None and named.lower() != bridge_id:
        raise HueError(f"Hue bridge {bridge} says it is {bridge_id}, but its certificate names "
                       f"{named}: not paired (something between this computer and the bridge?)")
    signify = der is not None and trust is not None and trust.signify_issued(der) and (
        named is not None)
    client.timeout_s = left_s()
    v2 = api == "v2" or (api == "auto" and not plain_http and client.supports_v2())
    if v2 and plain_http:
        raise HueError("API v2 is HTTPS only: pair without --plain-http")
    model = public.get("modelid", "?")
    where = f"Hue bridge {bridge_id or '?'} ({model}, API {public.get('apiversion', '?')}) at {bridge}"
    if pin is None:
        say(f"{where}: plain HTTP, nothing is checked (old bridges only).")
    else:
        how = ("issued by Signify to this bridge" if signify
               else "not one Signify issued: pinned as it is")
        say(f"{where}: certificate SHA-256 {pin}, {how}.")
    say("Press the link button on the bridge…")
    attempt_at = time.monotonic()
    while True:
        client.timeout_s = left_s()
        try:
            username, client_key = client.register(_devicetype(), client_key=v2)
            return Paired(username, client_key, "v2" if v2 else "v1", bridge_id, pin, signify)
        except LinkButtonNotPressed:
            pass
        attempt_at += interval_s
        if attempt_at > deadline:
            raise LinkButtonNotPressed(bridge)
        time.sleep(max(0.0, attempt_at - time.monotonic()))


def _pair_command(args: argparse.Namespace) -> int:
    path = Path(args.config)
    try:
        read_config(path)  # a broken file is reported before anyone walks to the bridge
        paired = pair(args.bridge, timeout_s=args.timeout, api=args.api,
                      plain_http=args.plain_http)
        store_bridge_settings(path, args.bridge, paired.settings())
    except LinkButtonNotPressed:
        print(f"The link button was not pressed within {args.timeout:g} s. Press it, then run "
              f"`roomctl hue pair --bridge {args.bridge}` again within 30 s.", file=sys.stderr)
        return 1
    except BridgeUnreachable as exc:
        print(f"{exc}. {_unreachable_hint(args.bridge)}", file=sys.stderr)
        return 1
    except (HueError, ConfigEditError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Paired with Hue bridge {args.bridge} (API {paired.api}); the username and the "
          f"certificate pin are saved in {path} under [hue_bridges.{_toml_string(args.bridge)}].")
    print(f"Next: `roomctl hue lights --bridge {args.bridge}` lists its lights and groups.")
    return 0


# --- discovery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A bridge seen on the network."""

    bridge_id: str
    address: str  # host or host:port, as `roomctl hue pair --bridge` takes it
    model: str
    api_version: str | None  # None: it did not answer
    v2: bool


def found_bridge(info: ServiceInfo, timeout_s: float = CLI_REQUEST_TIMEOUT_S) -> Found | None:
    """A bridge from its mDNS announcement, with what it says of itself over HTTPS (read only,
    nothing is trusted or stored)."""
    addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
    if not addresses:
        return None
    props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    port = info.port or 443
    host = addresses[0] if port == 443 else f"{addresses[0]}:{port}"
    bridge_id = props.get("bridgeid", "").lower()
    api_version, v2 = None, False
    client = HueBridgeClient(host, None, trust=_ANYONE, timeout_s=timeout_s)
    try:
        public = client.public_config()
        api_version = str(public.get("apiversion") or "") or None
        bridge_id = bridge_id or str(public.get("bridgeid", "")).lower()
        v2 = client.supports_v2()
    except HueError:
        pass
    return Found(bridge_id or "?", host, props.get("modelid", "?"), api_version, v2)


class _AnyCertificate(BridgeTrust):
    """Discovery only reads what any bridge tells anyone; nothing is sent that needs trust."""

    def check(self, der: bytes) -> Literal["pinned", "signify"]:
        return "pinned"


_ANYONE = _AnyCertificate("discovery")


def discover(timeout_s: float = 3.0) -> list[Found]:
    """The Hue bridges announcing themselves by mDNS (``_hue._tcp``) within ``timeout_s``."""
    names: list[str] = []

    def seen(zeroconf: Zeroconf, service_type: str, name: str,
             state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added and name not in names:
            names.append(name)

    zeroconf = Zeroconf(ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zeroconf, HUE_SERVICE, handlers=[seen])
        time.sleep(timeout_s)
        browser.cancel()
        infos = [zeroconf.get_service_info(HUE_SERVICE, name, timeout=2000) for name in names]
    finally:
        zeroconf.close()
    found = [found_bridge(info) for info in infos if info is not None]
    return sorted((f for f in found if f is not None), key=lambda f: f.bridge_id)


def describe_found(found: Sequence[Found]) -> str:
    if not found:
        return ("No Hue bridge answered on this network. Is this computer on the same network "
                "(not a guest Wi-Fi)? The Hue app shows the bridge's address under Settings.")
    rows = [(f.bridge_id, f.address, f.model, f.api_version or "(no answer)",
             "v2" if f.v2 else "v1") for f in found]
    out = ["Hue bridges on this network:"]
    out += _table(("id", "address", "model", "API version", "roomctl uses"), rows)
    out += ["", "Pair with one: roomctl hue pair --bridge ADDRESS"]
    return "\n".join(out)


def _discover_command(args: argparse.Namespace) -> int:
    print(describe_found(discover(args.timeout)))
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


def bridge_trust(bridge: str, entry: HueBridgeConfig) -> BridgeTrust | None:
    """Which certificate the bridge must present (None: plain HTTP, by the config's choice)."""
    if entry.plain_http:
        return None
    return BridgeTrust(bridge, pin=entry.certificate_sha256, bridge_id=entry.bridge_id)


async def _v2_inventory(bridge: str, entry: HueBridgeConfig, trust: BridgeTrust) -> str:
    hub = RoomctlBridgeV2(bridge, entry.username, trust=trust, timeout_s=CLI_REQUEST_TIMEOUT_S)
    try:
        try:
            await hub.fetch_full_state()
        except RequestFailed as exc:
            raise exc.error from exc
        return describe_v2_bridge(bridge, hub)
    finally:
        await hub.close()


def describe_v2_bridge(bridge: str, hub: RoomctlBridgeV2) -> str:
    """A v2 bridge's lights, rooms and zones, for writing the room config."""
    rows = []
    for light in sorted(hub.lights, key=lambda x: (len(x.id_v1 or ""), x.id_v1 or "", x.id)):
        caps = V2Caps.of(light)
        ct = "-"
        if caps.ct_range is not None:
            low, high = caps.ct_range
            ct = f"{units.mireds_to_kelvin(high)}-{units.mireds_to_kelvin(low)} K"
        rows.append(((light.id_v1 or "").rsplit("/", 1)[-1] or "-", light.metadata.name, ct,
                     "yes" if caps.gamut is not None else "-", light.id))
    areas = []
    for kind, controller in (("room", hub.groups.room), ("zone", hub.groups.zone)):
        for area in controller:
            names = ", ".join(sorted(x.metadata.name for x in controller.get_lights(area.id)))
            areas.append(((area.id_v1 or "").rsplit("/", 1)[-1] or "-", area.metadata.name, kind,
                          names))
    out = [f"Lights on Hue bridge {bridge} (API v2):"]
    out += _table(("v1 id", "name", "colour temperature", "colour", "id"), rows) if rows else [
        "  (none)"]
    out += ["", "Rooms and zones:"]
    out += _table(("v1 id", "name", "kind", "lights"), areas) if areas else ["  (none)"]
    example = areas[0][1] if areas else None
    out += ["", "A room's lights in roomctl.toml (a room or zone by name, or lights = [...]):",
            "  [rooms.lights]", '  kind = "hue"', f"  bridge = {_toml_string(bridge)}",
            f"  group = {_toml_string(example)}" if example else '  lights = ["1"]']
    return "\n".join(out)


def _lights_command(args: argparse.Namespace) -> int:
    path = Path(args.config)
    try:
        entry = stored_bridge(read_config(path), args.bridge)
    except ConfigEditError as exc:
        print(exc, file=sys.stderr)
        return 1
    if entry is None:
        print(f"{path} has no usable pairing for Hue bridge {args.bridge}: run `roomctl hue "
              f"pair --bridge {args.bridge}` first.", file=sys.stderr)
        return 1
    trust = bridge_trust(args.bridge, entry)
    try:
        if entry.api == "v2" and trust is not None:
            print(asyncio.run(_v2_inventory(args.bridge, entry, trust)))
            return 0
        client = HueBridgeClient(args.bridge, entry.username, trust=trust,
                                 timeout_s=CLI_REQUEST_TIMEOUT_S)
        lights, groups = client.lights_now(), client.groups_now()
    except HueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(describe_bridge(args.bridge, lights, groups))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``roomctl hue discover | pair | lights`` to the ``roomctl`` command's subcommands."""
    hue = subparsers.add_parser("hue", help="find and pair Philips Hue bridges, list lights")
    commands = hue.add_subparsers(dest="hue_command", required=True)

    pair_cmd = commands.add_parser(
        "pair", help="pair roomctl with a bridge (press its link button when asked)")
    pair_cmd.add_argument("--bridge", required=True, help="the bridge's address, e.g. 192.168.1.20")
    pair_cmd.add_argument("--config", default=DEFAULT_CONFIG,
                          help=f"roomctl's config file to store the username in "
                               f"(default: ./{DEFAULT_CONFIG})")
    pair_cmd.add_argument("--timeout", type=float, default=30.0,
                          help="seconds to wait for the link button (default 30)")
    pair_cmd.add_argument("--api", choices=("auto", "v2", "v1"), default="auto",
                          help="the bridge's API to use (default: v2 when the bridge has it)")
    pair_cmd.add_argument("--plain-http", action="store_true",
                          help="an old bridge without HTTPS (nothing is checked then)")
    pair_cmd.set_defaults(func=_pair_command)

    discover_cmd = commands.add_parser("discover", help="find the Hue bridges on this network")
    discover_cmd.add_argument("--timeout", type=float, default=3.0,
                              help="seconds to listen for bridges (default 3)")
    discover_cmd.set_defaults(func=_discover_command)

    lights_cmd = commands.add_parser("lights", help="list a paired bridge's lights and groups")
    lights_cmd.add_argument("--bridge", required=True, help="the bridge's address")
    lights_cmd.add_argument("--config", default=DEFAULT_CONFIG,
                            help=f"roomctl's config file (default: ./{DEFAULT_CONFIG})")
    lights_cmd.set_defaults(func=_lights_command)
