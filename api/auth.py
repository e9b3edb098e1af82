"""Pairing and paired devices: a tablet pairs once with the room PIN (or a one-time link) and
keeps a token. Tokens are stored hashed in the data directory so they survive a restart.

Each paired device has a name, a role (a clinic admin, or a therapist), when and from where
it was last used. Pairing cannot be brute-forced: wrong PINs lock the address that sent them
for a minute, and a budget for the whole service pauses PIN pairing for everyone once it is
spent (the one-time link printed at start keeps working). A pairing lapses after a configured
idle time, but never while a session runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COOKIE = "roomctl_token"
MAX_MISSES = 5  # wrong PINs from one address ...
LOCK_S = 60.0  # ... lock it this long
# Wrong PINs from all addresses together within GLOBAL_WINDOW_S before PIN pairing pauses for
# everyone: 20 per 15 minutes makes a 6-digit PIN last about 260 days on average against
# guessing from any number of addresses.
GLOBAL_MISSES = 20
GLOBAL_WINDOW_S = 900.0
LAST_SEEN_WRITE_S = 60.0  # how stale the stored "last seen" may get (it is kept in memory too)
NAME_MAX = 80


class Role(StrEnum):
    ADMIN = "admin"  # also revokes other devices, deletes records, changes roles
    THERAPIST = "therapist"  # runs sessions, edits the clinic's presets


@dataclass(frozen=True)
class Device:
    """The device a request comes from, as routes see it (and may record)."""

    id: str
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass
class TokenRecord:
    id: str
    hash: str
    name: str
    created_at: float
    last_seen: float | None = None
    role: Role = Role.THERAPIST
    address: str | None = None  # the address it was last used from

    @property
    def device(self) -> Device:
        return Device(self.id, self.name, self.role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _same(given: str, secret: str) -> bool:
    """Constant-time, for any text: str compare_digest refuses non-ASCII (a 500 once)."""
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


def clean_name(text: str) -> str:
    """A device name as shown: printable, single-spaced, at most NAME_MAX characters."""
    printable = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(printable.split())[:NAME_MAX] or "tablet"


class Locked(Exception):
    def __init__(self, retry_after_s: float, *, everyone: bool = False) -> None:
        wait = int(retry_after_s) + 1
        if everyone:
            text = (f"too many wrong PINs on this service: pairing by PIN pauses for {wait} s "
                    "(the one-time pairing link still works)")
        else:
            text = f"too many wrong PINs: try again in {wait} s"
        super().__init__(text)
        self.retry_after_s = retry_after_s


class LastAdmin(Exception):
    """The change would leave the clinic without an admin."""


@dataclass
class _Store:
    devices: dict[str, TokenRecord] = field(default_factory=dict)
    admin_made: bool = False  # an admin was ever set up: a PIN never makes another one


class Auth:
    def __init__(self, pin: str, store: Path, *, admin_pin: str | None = None, idle_days: float = 90.0,
                 session_running: Callable[[], bool] = lambda: False) -> None:
        self.pin = pin
        self.admin_pin = admin_pin
        self.idle_s = idle_days * 86400.0
        self.session_running = session_running
        self._store = store
        self._lock = threading.Lock()
        self._state = self._read()
        self._misses: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._all_misses: list[float] = []
        self._written_seen: dict[str, float] = {}
        self._revoke_listeners: list[Callable[[str], None]] = []
        self.pairing_code = secrets.token_urlsafe(12)  # the one-time link printed at start

    # --- persistence --------------------------------------------------------------------

    def _read(self) -> _Store:
        try:
            raw: Any = json.loads(self._store.read_text(encoding="utf-8"))
            rows = raw if isinstance(raw, list) else raw["devices"]  # a list: the first format
            devices = {}
            for r in rows:
                r = dict(r)
                if "label" in r:
                    r["name"] = r.pop("label")
                r["role"] = Role(r.get("role", Role.THERAPIST))
                rec = TokenRecord(**r)
                devices[rec.id] = rec
            state = _Store(devices, bool(raw.get("admin_made")) if isinstance(raw, dict) else False)
        except FileNotFoundError:
            return _Store()
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            # A damaged token file only means tablets pair again; keep it aside for a look.
            self._store.replace(self._store.with_suffix(".damaged"))
            return _Store()
        if not state.admin_made and state.devices and self.admin_pin is None:
            # Tokens from before roles: the first tablet paired becomes the admin.
            first = min(state.devices.values(), key=lambda r: r.created_at)
            first.role = Role.ADMIN
            state.admin_made = True
        return state

    def _write(self) -> None:
        self._store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._store.parent, prefix=".tokens-")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 2, "admin_made": self._state.admin_made,
                       "devices": [asdict(r) for r in self._state.devices.values()]}, f)
        os.replace(tmp, self._store)

    # --- pairing ------------------------------------------------------------------------

    def pair(self, client: str, *, pin: str | None, code: str | None, label: str) -> str | None:
        """A new token, or None for a wrong PIN/code. Raises Locked after too many misses."""
        now = time.monotonic()
        with self._lock:
            until = self._locked_until.get(client, 0.0)
            if until > now:
                raise Locked(until - now)
            self._all_misses = [t for t in self._all_misses if now - t < GLOBAL_WINDOW_S]
            role: Role | None = None
            if code is not None and self.pairing_code and _same(code, self.pairing_code):
                self.pairing_code = ""  # one time only
                # The link is printed where roomctl runs: it sets up an admin when there is none.
                role = Role.ADMIN if not self._admins() else Role.THERAPIST
            elif pin is not None:
                if len(self._all_misses) >= GLOBAL_MISSES:
                    raise Locked(self._all_misses[0] + GLOBAL_WINDOW_S - now, everyone=True)
                admin_match = self.admin_pin is not None and _same(pin, self.admin_pin)
                therapist_match = _same(pin, self.pin)
                if admin_match:
                    role = Role.ADMIN
                elif therapist_match:
                    first = not self._state.admin_made and self.admin_pin is None
                    role = Role.ADMIN if first else Role.THERAPIST
            if role is None:
                self._miss(client, now)
                return None
            self._misses.pop(client, None)
            token = secrets.token_urlsafe(32)
            rec = TokenRecord(secrets.token_hex(6), _hash(token), clean_name(label), time.time(),
                              time.time(), role, client)
            self._state.devices[rec.id] = rec
            self._state.admin_made = self._state.admin_made or role is Role.ADMIN
            self._write()
            log.info("paired %s '%s' from %s as %s", rec.id, rec.name, client, role.value)
            return token

    def _miss(self, client: str, now: float) -> None:
        self._all_misses.append(now)
        if len(self._all_misses) == GLOBAL_MISSES:
            log.warning("%d wrong PINs within %d min: pairing by PIN pauses", GLOBAL_MISSES,
                        int(GLOBAL_WINDOW_S / 60))
        misses = [t for t in self._misses.get(client, []) if now - t < LOCK_S] + [now]
        self._misses[client] = misses
        if len(misses) >= MAX_MISSES:
            self._locked_until[client] = now + LOCK_S
            self._misses[client] = []
            log.warning("%d wrong PINs from %s: locked for %d s", MAX_MISSES, client, int(LOCK_S))
        if len(self._locked_until) > 10_000:  # many addresses: forget the expired locks
            self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}
            self._misses = {k: v for k, v in self._misses.items() if v and now - v[-1] < LOCK_S}

    # --- checking -----------------------------------------------------------------------

    def check(self, token: str | None, address: str | None = None) -> Device | None:
        """The device a token belongs to, or None (unknown, revoked, or lapsed after the idle
        time: never while a session runs). Notes when and from where it was used."""
        if not token:
            return None
        h = _hash(token)
        now = time.time()
        with self._lock:
            found = next((r for r in self._state.devices.values() if hmac.compare_digest(r.hash, h)), None)
            if found is None:
                return None
            last = found.last_seen or found.created_at
            if now - last > self.idle_s and not self.session_running():
                log.info("the pairing of %s '%s' lapsed: unused for %d days", found.id, found.name,
                         int((now - last) / 86400))
                del self._state.devices[found.id]
                self._write()
                return None
            found.last_seen = now
            moved = address is not None and address != found.address
            if address is not None:
                found.address = address
            if moved or now - self._written_seen.get(found.id, 0.0) > LAST_SEEN_WRITE_S:
                self._written_seen[found.id] = now
                self._write()
            return found.device

    # --- devices ------------------------------------------------------------------------

    def _admins(self) -> list[TokenRecord]:
        return [r for r in self._state.devices.values() if r.role is Role.ADMIN]

    def tokens(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._state.devices.values(), key=lambda r: r.created_at)

    def get(self, device_id: str) -> TokenRecord | None:
        with self._lock:
            return self._state.devices.get(device_id)

    def rename(self, device_id: str, name: str) -> TokenRecord | None:
        with self._lock:
            rec = self._state.devices.get(device_id)
            if rec is None:
                return None
            rec.name = clean_name(name)
            self._write()
            return rec

    def set_role(self, device_id: str, role: Role) -> TokenRecord | None:
        with self._lock:
            rec = self._state.devices.get(device_id)
            if rec is None:
                return None
            if rec.role is Role.ADMIN and role is not Role.ADMIN and len(self._admins()) == 1:
                raise LastAdmin("this is the clinic's only admin: make another device admin first")
            rec.role = role
            self._write()
            return rec

    def revoke(self, device_id: str) -> bool:
        with self._lock:
            rec = self._state.devices.get(device_id)
            if rec is None:
                return False
            if rec.role is Role.ADMIN and len(self._admins()) == 1 and len(self._state.devices) > 1:
                raise LastAdmin("this is the clinic's only admin: make another device admin first")
            del self._state.devices[device_id]
            self._write()
            listeners = list(self._revoke_listeners)
        log.info("revoked %s '%s'", rec.id, rec.name)
        for listener in listeners:
            try:
                listener(device_id)
            except Exception:
                log.exception("a revocation listener failed")
        return True

    def on_revoke(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(device_id)`` after each revocation (from the revoking thread)."""
        self._revoke_listeners.append(listener)
        return lambda: self._revoke_listeners.remove(listener)
