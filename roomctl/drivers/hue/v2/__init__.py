"""The `hue` Lights driver for Hue API v2 (CLIP v2), on aiohue's `HueBridgeV2`.

From the room down to the wire:

- `HueV2Lights` (`lights`) is one room — a Hue room or zone, or a list of lights — behind
  `Lights`, plus what v2 adds: changes made outside roomctl (`subscribe_outside_changes`,
  the ``restore`` / ``follow`` policy, `take_back`). `HueV2Bridges` holds a service's links.
- `HueV2Link` (`link`) is one bridge, shared by the rooms on it: what each light should be
  doing (a `V2Fade`, chained past the longest ``dynamics.duration`` a bulb takes), what the
  bridge reports (through the event stream), and the `Plant` the shared `CommandScheduler`
  drives (rate limits, latest value wins, back-off), its calls run on the event loop.
- `RoomctlBridgeV2` (`bridge`) is aiohue's bridge with roomctl's TLS check
  (`roomctl.drivers.hue.tls`) instead of none, one attempt per request (the scheduler backs
  off and sends the newest value, where aiohue would re-send a stale one up to 25 times),
  and errors as `HueError`s.
- A light's state in v2 units, its fades and the command bodies are `state`.

Units: ``brightness`` percent (0-100, float), ``mirek`` (mireds), ``xy`` CIE 1931,
``dynamics.duration`` milliseconds.
"""

from roomctl.drivers.hue.v2.bridge import CertificateCheck, RequestFailed, RoomctlBridgeV2
from roomctl.drivers.hue.v2.lights import HueV2Bridges, HueV2Lights
from roomctl.drivers.hue.v2.link import HueV2Link, V2Options, V2Room
from roomctl.drivers.hue.v2.state import (
    MAX_DURATION_MS,
    MAX_DURATION_S,
    OutsidePolicy,
    V2Caps,
    V2Fade,
    V2State,
    v2_target,
    what_changed,
)

__all__ = [
    "MAX_DURATION_MS",
    "MAX_DURATION_S",
    "CertificateCheck",
    "HueV2Bridges",
    "HueV2Lights",
    "HueV2Link",
    "OutsidePolicy",
    "RequestFailed",
    "RoomctlBridgeV2",
    "V2Caps",
    "V2Fade",
    "V2Options",
    "V2Room",
    "V2State",
    "v2_target",
    "what_changed",
]
