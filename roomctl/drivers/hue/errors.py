"""What goes wrong with a Hue bridge, as exceptions worded for a clinic.

A bridge reports most errors as data in an HTTP 200 answer (``[{"error": {"type": N, ...}}]``);
the client turns the types below, and transport failures, into these classes.
"""

from __future__ import annotations

# Hue API v1 error types roomctl acts on (the ``type`` of an ``{"error": ...}`` result).
UNAUTHORIZED_USER = 1  # -> PairingRequired
RESOURCE_NOT_AVAILABLE = 3  # e.g. a light deleted since the bridge was last read
LINK_BUTTON_NOT_PRESSED = 101  # -> LinkButtonNotPressed


class HueError(Exception):
    """A Hue bridge problem, worded so that a clinic can act on it."""


class PairingRequired(HueError):
    """The bridge does not know roomctl's username (Hue error 1)."""

    def __init__(self, host: str, username: str | None) -> None:
        who = f"user {_short(username)}" if username else "roomctl"
        super().__init__(f"Hue bridge {host} does not know {who}: pair again with "
                         f"`roomctl hue pair --bridge {host}`")
        self.host = host


class BridgeUnreachable(HueError):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"Hue bridge {host} not answering: {reason}")
        self.host, self.reason = host, reason


class BridgeBusy(HueError):
    def __init__(self, host: str, status: int = 503) -> None:
        why = "refuses commands as too many" if status == 429 else "is overloaded"
        super().__init__(f"Hue bridge {host} {why} (HTTP {status}); sending more slowly")
        self.host, self.status = host, status


class BadAnswer(HueError):
    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"Hue bridge {host} gave an answer roomctl cannot use: {detail}")
        self.host = host


class CertificateRefused(HueError):
    """The bridge's HTTPS certificate is neither the one pinned at pairing nor one Signify
    issued to this bridge: roomctl does not talk to it."""

    def __init__(self, host: str, bridge_id: str | None, got: str, pinned: str | None) -> None:
        which = f"Hue bridge {host}" + (f" (id {bridge_id})" if bridge_id else "")
        was = f"the one pinned at pairing ({_short_fp(pinned)})" if pinned else "pinned at pairing"
        issued = f"one Signify issued to bridge {bridge_id}" if bridge_id else "one Signify issued"
        super().__init__(
            f"{which} presented a certificate (SHA-256 {_short_fp(got)}) that is not {was} "
            f"and not {issued}: refused. If the bridge was replaced or reset, pair again with "
            f"`roomctl hue pair --bridge {host}`; if not, something on the network is "
            "pretending to be the bridge.")
        self.host, self.got, self.pinned = host, got, pinned


class LinkButtonNotPressed(HueError):
    def __init__(self, host: str) -> None:
        super().__init__(f"the link button on Hue bridge {host} has not been pressed")
        self.host = host


def _short_fp(fingerprint: str | None) -> str:
    return "none" if not fingerprint else fingerprint[:23] + "…"


def _short(username: str) -> str:
    return f"'{username[:8]}…'" if len(username) > 8 else f"'{username}'"

