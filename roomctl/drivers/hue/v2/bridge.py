"""aiohue's `HueBridgeV2` held to roomctl's rules: the bridge's certificate checked on every
connection (`roomctl.drivers.hue.tls`) instead of none, one attempt per request (the
scheduler backs off and sends the newest value, where aiohue would re-send a stale one up to
25 times), a request timeout, and errors as `HueError`s."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohue import HueBridgeV2
from aiohue.errors import AiohueException

from roomctl.drivers.hue.errors import (
    BadAnswer,
    BridgeBusy,
    BridgeUnreachable,
    CertificateRefused,
    HueError,
    PairingRequired,
)
from roomctl.drivers.hue.tls import BridgeTrust

# --- aiohue's bridge, held to roomctl's rules --------------------------------------------------


class CertificateCheck(aiohttp.Fingerprint):
    """aiohttp's hook for checking a server's certificate after the handshake (its
    `Fingerprint`), deciding by `BridgeTrust` instead of one fixed fingerprint."""

    def __init__(self, trust: BridgeTrust) -> None:
        super().__init__(bytes(32))  # aiohttp's constructor wants a digest; ours is unused
        self.trust = trust
        self.refused: CertificateRefused | None = None

    def check(self, transport: asyncio.Transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        try:
            if not der:
                raise CertificateRefused(self.trust.host, self.trust.bridge_id, "none",
                                         self.trust.pin)
            self.trust.check(der)
        except CertificateRefused as exc:
            self.refused = exc
            host, port, *_ = transport.get_extra_info("peername")
            raise aiohttp.ServerFingerprintMismatch(
                self.fingerprint, hashlib.sha256(der or b"").digest(), host, port) from exc
        self.refused = None


class RequestFailed(AiohueException):  # type: ignore[misc]  # aiohue ships no type information
    """A `HueError` raised inside aiohue's own calls (a full read, its stream keep-alive),
    which expect aiohue's exceptions; `error` is what went wrong."""

    def __init__(self, error: HueError) -> None:
        super().__init__(str(error))
        self.error = error


class RoomctlBridgeV2(HueBridgeV2):  # type: ignore[misc]  # aiohue ships no type information
    """aiohue's `HueBridgeV2` with the bridge's certificate checked, one attempt per request,
    a request timeout, and errors as `HueError`s (see the module docstring)."""

    _websession: aiohttp.ClientSession | None

    def __init__(self, host: str, app_key: str, *, trust: BridgeTrust, timeout_s: float) -> None:
        super().__init__(host, app_key)
        self.check = CertificateCheck(trust)
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def create_request(self, method: str, path: str, **kwargs: Any
                             ) -> AsyncIterator[aiohttp.ClientResponse]:
        if self._websession is None:
            # As aiohue does: at most 3 connections (the bridge refuses more at once).
            self._websession = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit_per_host=3))
        kwargs["ssl"] = self.check
        kwargs.setdefault("timeout", aiohttp.ClientTimeout(total=self.timeout_s))
        headers = kwargs.setdefault("headers", {})
        headers["hue-application-key"] = self._app_key
        async with self._websession.request(method, f"https://{self._host}/{path}",
                                            **kwargs) as response:
            yield response

    async def send(self, method: str, path: str, body: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
        """One request; the bridge's whole answer (``data`` and ``errors``). Raises `HueError`."""
        try:
            async with self.create_request(method, path, json=body) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except aiohttp.ServerFingerprintMismatch as exc:
            raise self.check.refused or CertificateRefused(
                self._host, None, "?", None) from exc
        except TimeoutError as exc:
            raise BridgeUnreachable(self._host, "timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            raise BridgeUnreachable(self._host, "connection refused" if refused
                                    else exc.os_error.strerror or str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise BridgeUnreachable(self._host, "connection dropped without an answer") from exc
        errors = answer.get("errors") if isinstance(answer, dict) else None
        descriptions = "; ".join(str(e.get("description")) for e in errors or ()
                                 if isinstance(e, dict))
        if status in (429, 503):
            raise BridgeBusy(self._host, status)
        if status == 403:
            raise PairingRequired(self._host, self._app_key)
        if status >= 400 or not isinstance(answer, dict):
            raise BadAnswer(self._host, f"HTTP {status}" + (f": {descriptions}"
                                                            if descriptions else ""))
        return answer

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """aiohue's own requests (full reads, its keep-alive) through `send`."""
        try:
            answer = await self.send(method, path, kwargs.get("json"))
        except HueError as exc:
            raise RequestFailed(exc) from exc
        return answer.get("data", [])

    async def stop_events(self) -> None:
        """Stop the event stream and wait until its tasks have ended (aiohue's own `stop`
        only cancels them, so their connection could outlive the session)."""
        tasks = list(getattr(self.events, "_bg_tasks", ()))  # aiohue keeps them there
        await self.events.stop()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_events()
        await super().close()
        # A TLS connection closes in a round trip with the bridge: let that happen before a
        # caller closes the event loop (else its socket is left unclosed).
        await asyncio.sleep(0.05)

    async def _handle_connect_event(self, event_type: Any, item: Any = None) -> None:
        """aiohue re-reads everything only after a stream gap of over 60 s; `HueV2Link` does
        it once after every reconnect, so this one does nothing (no second re-read)."""
        return None
