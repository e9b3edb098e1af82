"""The bridge's HTTP API through phue: `HueBridgeClient`, every answer checked.

Blocking calls only: the bridge link runs them on its scheduler's worker thread, the CLI
directly.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
from collections.abc import Mapping
from typing import Any

import phue

from roomctl.drivers.hue.errors import (
    LINK_BUTTON_NOT_PRESSED,
    UNAUTHORIZED_USER,
    BadAnswer,
    BridgeBusy,
    BridgeUnreachable,
    CertificateRefused,
    LinkButtonNotPressed,
    PairingRequired,
)
from roomctl.drivers.hue.tls import BridgeTrust, unverified_context

# The whole driver logs as "roomctl.drivers.hue" (the bridge link too).
logger = logging.getLogger("roomctl.drivers.hue")

DEFAULT_REQUEST_TIMEOUT_S = 2.0
_JSON_HEADERS = {"Content-Type": "application/json"}


class HueBridgeClient(phue.Bridge):  # type: ignore[misc]  # phue ships no type information
    """phue's `Bridge`, held to roomctl's rules.

    - `request` speaks HTTPS, checking the bridge's certificate on every connection
      (`roomctl.drivers.hue.tls`), or plain HTTP only when ``trust`` is None (an old bridge,
      by the clinic's explicit choice); it has a short timeout (phue's own is a fixed 10 s)
      and turns every transport failure into a `HueError` that says what happened.
    - `connect` does nothing: roomctl keeps usernames in its own config file, so phue never
      reads, writes or registers through ``~/.python_hue``.
    - answers are checked: Hue reports errors as data in HTTP 200 answers.

    Blocking: call it only from the bridge's worker thread (or a CLI command).
    """

    def __init__(self, host: str, username: str | None, *, trust: BridgeTrust | None,
                 timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.trust = trust
        self._context = unverified_context() if trust is not None else None
        super().__init__(ip=host, username=username, config_file_path=os.devnull)

    def connect(self) -> None:
        return None

    @property
    def host(self) -> str:
        return str(self.ip)

    def request(self, mode: str = "GET", address: str | None = None, data: Any = None) -> Any:
        status, raw = self.exchange(mode, address or "/", data)
        if status == 503:
            raise BridgeBusy(self.host)
        if status in (301, 302, 307, 308) and self.trust is None:
            raise BadAnswer(self.host, f"HTTP {status} to HTTPS: this bridge no longer "
                                       "speaks plain HTTP; remove plain_http from its settings")
        if status != 200:
            raise BadAnswer(self.host, f"HTTP {status}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadAnswer(self.host, "not JSON") from exc

    def exchange(self, mode: str, address: str, data: Any = None) -> tuple[int, bytes]:
        """One request: (HTTP status, body). Raises `HueError` when there is no answer."""
        payload = None if data is None else json.dumps(data)
        connection = self._connection()
        try:
            self._verify(connection)
            connection.request(mode, address, body=payload,
                               headers=_JSON_HEADERS if payload is not None else {})
            response = connection.getresponse()
            raw = response.read()
        except TimeoutError as exc:
            raise BridgeUnreachable(self.host, "timed out") from exc
        except ConnectionRefusedError as exc:
            raise BridgeUnreachable(self.host, "connection refused") from exc
        except ssl.SSLError as exc:
            raise BridgeUnreachable(self.host, f"no HTTPS here ({exc.reason or exc}); an old "
                                               "bridge needs plain_http = true") from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise BridgeUnreachable(self.host, "connection dropped without an answer") from exc
        except OSError as exc:
            raise BridgeUnreachable(self.host, exc.strerror or str(exc)) from exc
        finally:
            connection.close()
        logger.debug("%s %s %s -> %s", mode, address, payload, response.status)
        return response.status, raw

    def supports_v2(self) -> bool:
        """Whether the bridge speaks API v2 (it refuses ``/clip/v2`` without a key with 403)."""
        status, _ = self.exchange("GET", "/clip/v2/resource")
        return status == 403

    def _connection(self) -> http.client.HTTPConnection:
        if self._context is None:
            return http.client.HTTPConnection(self.ip, timeout=self.timeout_s)
        return http.client.HTTPSConnection(self.ip, timeout=self.timeout_s, context=self._context)

    def _verify(self, connection: http.client.HTTPConnection) -> None:
        """Open the connection and check the certificate before anything is sent on it."""
        if self.trust is None:
            return
        connection.connect()
        sock = connection.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if not der:
            raise CertificateRefused(self.host, self.trust.bridge_id, "none", self.trust.pin)
        self.trust.check(der)

    def lights_now(self) -> dict[str, Any]:
        """Every light with its state and capabilities. Early firmware and some clones answer
        ``GET /lights`` with names only: each such light is then read on its own."""
        lights = self._object(self.request("GET", f"/api/{self.username}/lights"))
        for light_id, obj in lights.items():
            if not isinstance(obj, dict) or "state" not in obj:
                lights[light_id] = self._object(
                    self.request("GET", f"/api/{self.username}/lights/{light_id}"))
        return lights

    def groups_now(self) -> dict[str, Any]:
        """Every group with its lights; a group listed by name only is read on its own."""
        groups = self._object(self.request("GET", f"/api/{self.username}/groups"))
        for group_id, obj in groups.items():
            if not isinstance(obj, dict) or "lights" not in obj:
                groups[group_id] = self._object(
                    self.request("GET", f"/api/{self.username}/groups/{group_id}"))
        return groups

    def config_now(self) -> dict[str, Any]:
        """The bridge's config (a cheap read: is the bridge there, does it know us?)."""
        return self._object(self.request("GET", f"/api/{self.username}/config"))

    def public_config(self) -> dict[str, Any]:
        """What the bridge tells anyone: ``bridgeid``, ``modelid``, ``apiversion``, ``name``."""
        return self._object(self.request("GET", "/api/config"))

    # Not phue's set_light/set_group: they look a string id up by name (an extra request),
    # write transitiontime into the caller's dict, and log bridge errors with the deprecated
    # Logger.warn, whose DeprecationWarning becomes an exception under `-W error` after the
    # bridge has already acted. roomctl reads every answer itself.

    def put_light_state(self, light_id: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._list(self.request("PUT", f"/api/{self.username}/lights/{light_id}/state",
                                       dict(body)))

    def put_group_action(self, group_id: str, body: Mapping[str, Any]
                         ) -> list[dict[str, Any]]:
        return self._list(self.request("PUT", f"/api/{self.username}/groups/{group_id}/action",
                                       dict(body)))

    def register(self, devicetype: str, *, client_key: bool = False) -> tuple[str, str | None]:
        """``POST /api``: a new username (the v2 application key) once the link button has been
        pressed, and with ``client_key`` the client key too (``generateclientkey``)."""
        body: dict[str, Any] = {"devicetype": devicetype}
        if client_key:
            body["generateclientkey"] = True
        for entry in self._list(self.request("POST", "/api", body)):
            success = entry.get("success")
            username = success.get("username") if isinstance(success, dict) else None
            if isinstance(username, str):
                key = success.get("clientkey") if isinstance(success, dict) else None
                return username, key if isinstance(key, str) else None
            error = entry.get("error")
            if isinstance(error, dict):
                if error.get("type") == LINK_BUTTON_NOT_PRESSED:
                    raise LinkButtonNotPressed(self.host)
                raise BadAnswer(self.host, str(error.get("description")))
        raise BadAnswer(self.host, "no username in the pairing answer")

    def _object(self, answer: Any) -> dict[str, Any]:
        if isinstance(answer, list):
            self._list(answer)
            errors = [e["error"].get("description") for e in answer if "error" in e]
            raise BadAnswer(self.host, "; ".join(map(str, errors)) or "a list, not an object")
        if not isinstance(answer, dict):
            raise BadAnswer(self.host, f"expected an object, got {type(answer).__name__}")
        return answer

    def _list(self, answer: Any) -> list[dict[str, Any]]:
        if not isinstance(answer, list) or not all(isinstance(e, dict) for e in answer):
            raise BadAnswer(self.host, "expected a list of results")
        for entry in answer:
            error = entry.get("error")
            if isinstance(error, dict) and error.get("type") == UNAUTHORIZED_USER:
                raise PairingRequired(self.host, self.username)
        return answer

