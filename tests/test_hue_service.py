"""A session driven through the service to the v2 bridge emulator, end to end: the config as
`roomctl hue pair` writes it, two rooms sharing one bridge connection, phase fades with their
durations, Lights up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roomctl.config import parse_config
from roomctl.drivers.hue.v2 import HueV2Lights
from roomctl.preset import Preset
from roomctl.service import Service
from testkit.bridge_tls import StandInSignify
from testkit.hue_drive import until
from testkit.hue_v2_bridge import (
    DEFAULT_APP_KEY,
    AreaSpec,
    HueV2BridgeEmulator,
    color_lamp,
    white_ambiance,
)

LAMPS = [color_lamp("Couch lamp", "1"), color_lamp("Window lamp", "2"),
         white_ambiance("Ceiling", "3"), white_ambiance("Desk lamp", "4")]
AREAS = [AreaSpec("Rose room", "1", ("1", "2")), AreaSpec("Iris room", "2", ("3", "4"))]

SHORT = Preset.model_validate({
    "name": "Short",
    "phases": [
        {"id": "preparation", "kind": "preparation", "advance": "manual",
         "lights": {"brightness": 70, "color_temp": "3000K", "transition": "3s"}},
        {"id": "dosing", "kind": "dosing", "duration": "4s",
         "lights": {"brightness": 40, "color_temp": "2400K", "transition": "2s"}},
        {"id": "journey", "kind": "journey", "duration": "30s",
         "lights": {"brightness": 15, "color": "#ff8a3d", "transition": "1s"}},
    ],
})


@pytest.fixture
def bridge() -> Iterator[HueV2BridgeEmulator]:
    with HueV2BridgeEmulator(StandInSignify().issue(), LAMPS, AREAS) as emulator:
        yield emulator


def config(bridge: HueV2BridgeEmulator, tmp_path: Path) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path),
        "hue_bridges": {bridge.host: {"username": DEFAULT_APP_KEY, "api": "v2",
                                      "bridge_id": bridge.bridge_id,
                                      "certificate_sha256": bridge.certificate.sha256}},
        "rooms": [
            {"name": "Rose", "audio": {"kind": "simulated"},
             "lights": {"kind": "hue", "bridge": bridge.host, "group": "Rose room",
                        "powerup": "soft-warm"}},
            {"name": "Iris", "audio": {"kind": "simulated"},
             "lights": {"kind": "hue", "bridge": bridge.host, "group": "Iris room",
                        "outside_changes": "follow"}},
        ],
    }


async def test_a_session_through_the_service_to_a_v2_bridge(bridge: HueV2BridgeEmulator,
                                                            tmp_path: Path) -> None:
    service = Service(parse_config(config(bridge, tmp_path)))
    await service.start()
    try:
        rose, iris = service.rooms["rose"], service.rooms["iris"]
        assert isinstance(rose.room.lights, HueV2Lights) and rose.room.lights.health().ok
        assert isinstance(iris.room.lights, HueV2Lights)
        assert iris.room.lights.outside_policy == "follow"
        # One connection for both rooms: one full read, one event stream.
        await until(lambda: len(bridge.stream_connects) >= 1, 3.0)
        await asyncio.sleep(0.3)
        assert len(bridge.full_reads()) == 1 and len(bridge.stream_connects) == 1
        await rose.start("short", SHORT)
        await asyncio.sleep(0.3)
        await rose.runner.next()
        await asyncio.sleep(4.6)  # dosing (4 s), then the journey
        started = time.monotonic()
        await rose.emergency_on()
        await asyncio.sleep(0.1)
        await until(lambda: all(bridge.output(i).brightness == 100.0 for i in "12"), 3.0)
        lights_up = [p for p in bridge.requests[-10:] if p.method == "PUT"
                     and p.body.get("dimming") == {"brightness": 100.0}]
        assert lights_up and lights_up[0].arrival_s - started <= 1.0
    finally:
        await service.stop()
    mine = {("grouped_light", bridge.grouped_light_id("1")), ("light", bridge.light_id("1")),
            ("light", bridge.light_id("2"))}
    fades = [p for p in bridge.requests if p.method == "PUT" and p.status == 200
             and p.resource in mine and "dimming" in p.body]
    for brightness, transition_ms in ((70.0, 3000), (40.0, 2000), (15.0, 1000)):
        phase = [p for p in fades if p.body["dimming"] == {"brightness": brightness}]
        assert phase, f"no command for the {brightness} % phase"
        assert transition_ms - 200 <= phase[0].body["dynamics"]["duration"] <= transition_ms
        ends = [p.arrival_s + p.body["dynamics"]["duration"] / 1000 for p in phase]
        assert max(ends) - min(ends) <= 0.25  # sent one after another, ending together
    others = {("grouped_light", bridge.grouped_light_id("2")), ("light", bridge.light_id("3")),
              ("light", bridge.light_id("4"))}
    assert [p for p in bridge.requests if p.method == "PUT" and p.resource in others] == []
    powerups = [p for p in bridge.light_puts() if "powerup" in p.body]
    assert {p.resource[1] for p in powerups if p.resource} == {
        bridge.light_id("1"), bridge.light_id("2")}  # only the room that asked for it


async def test_a_lamp_changed_outside_roomctl_is_recorded_and_handled_by_the_room_policy(
        bridge: HueV2BridgeEmulator, tmp_path: Path) -> None:
    service = Service(parse_config(config(bridge, tmp_path)))
    await service.start()
    try:
        rose, iris = service.rooms["rose"], service.rooms["iris"]  # restore / follow
        for ctl in (rose, iris):
            await ctl.start("short", SHORT)
        await asyncio.sleep(3.5)  # the preparation fades (3 s) are done
        bridge.change_light("1", brightness=95.0)  # the Hue app, in the restoring room
        bridge.change_light("3", brightness=95.0)  # and in the following room
        noticed = time.monotonic()

        def noted(ctl: Any) -> bool:
            session = ctl.runner.session
            return any(e.kind.value == "outside_change" for e in session.events)

        await until(lambda: noted(rose) and noted(iris), 3.0)
        assert time.monotonic() - noticed <= 2.5
        assert rose.runner.session is not None
        note = next(e for e in rose.runner.session.events if e.kind.value == "outside_change")
        assert note.outside is not None and "Couch lamp" in note.outside and "put back" in note.outside
        await until(lambda: abs(bridge.output("1").brightness - 70.0) < 1.0, 6.0)  # restored
        assert bridge.output("3").brightness > 90.0  # followed: left alone in this phase
        await iris.runner.next()  # the next phase takes the lamp back
        await until(lambda: abs(bridge.output("3").brightness - 40.0) < 1.0, 6.0)
    finally:
        await service.stop()
