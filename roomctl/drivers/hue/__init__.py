"""The `hue` Lights drivers: a room's Philips Hue bulbs, through phue (Hue API v1) or aiohue
(API v2, `roomctl.drivers.hue.v2`: the event stream, changes made outside roomctl).

Both speak HTTPS and check the bridge's certificate on every connection (`tls`: the pin from
pairing, or Signify's root and the bridge id); plain HTTP only for an old v1 bridge, by the
clinic's explicit choice.

From the room down to the wire (v1; v2 is built the same way, on the same scheduler):

- `HueLights` (`lights`) is one room — a Hue group, or a list of light ids — behind `Lights`.
- `HueBridgeLink` (`link`) is one bridge, shared by the rooms on it: what each light should be
  doing (a fade, chained beyond Hue's 109-minute limit; a switch-off after fading to bri 1:
  `fades`), what it last did (for readings), and the bridge's lights and groups.
- `CommandScheduler` (`scheduler`) decides when commands go out (rate limits, latest value
  wins, back-off), on one worker thread for phue, on the event loop for aiohue.
- `HueBridgeClient` (`client`) is phue's Bridge with a short timeout and every answer checked;
  what goes wrong is a `HueError` (`errors`).
- `HueBridges` (`lights`) holds one link per bridge for a service; `build_hue_lights` is the
  factory.

What a look is on one light (gamuts, colour temperature ranges, Hue's units) is `color`.

Units: ``bri`` 1-254, ``ct`` mireds, ``xy`` CIE 1931, ``*_ds`` Hue's 100 ms steps.
"""

from roomctl.drivers.hue.client import DEFAULT_REQUEST_TIMEOUT_S, HueBridgeClient
from roomctl.drivers.hue.color import GAMUTS, HueState, LightCapabilities, hue_target
from roomctl.drivers.hue.errors import (
    BadAnswer,
    BridgeBusy,
    BridgeUnreachable,
    CertificateRefused,
    HueError,
    LinkButtonNotPressed,
    PairingRequired,
)
from roomctl.drivers.hue.fades import MAX_TRANSITION_DS, MAX_TRANSITION_S, blend
from roomctl.drivers.hue.lights import HueBridges, HueLights, build_hue_lights
from roomctl.drivers.hue.link import HueBridgeLink, HueOptions
from roomctl.drivers.hue.scheduler import Backoff, RateLimits
from roomctl.drivers.hue.tls import BridgeTrust

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT_S",
    "GAMUTS",
    "MAX_TRANSITION_DS",
    "MAX_TRANSITION_S",
    "Backoff",
    "BadAnswer",
    "BridgeBusy",
    "BridgeTrust",
    "BridgeUnreachable",
    "CertificateRefused",
    "HueBridgeClient",
    "HueBridgeLink",
    "HueBridges",
    "HueError",
    "HueLights",
    "HueOptions",
    "HueState",
    "LightCapabilities",
    "LinkButtonNotPressed",
    "PairingRequired",
    "RateLimits",
    "blend",
    "build_hue_lights",
    "hue_target",
]
