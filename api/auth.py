"""Pairing and tokens: a tablet pairs once with the room PIN (or a one-time link) and keeps
a token. Tokens are stored hashed in the data directory so they survive a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

COOKIE = "roomctl_token"
MAX_MISSES = 5
LOCK_S = 60.0


@dataclass
class TokenRecord:
    id: str
    hash: str
    label: str
    created_at: float
    last_seen: float | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Locked(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many wrong PINs: try again in {int(retry_after_s) + 1} s")
        self.retry_after_s = retry_after_s


class Auth:
    def __init__(self, pin: str, store: Path) -> None:
        self.pin = pin
        self._store = store
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenRecord] = self._read()
        self._misses: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self.pairing_code = secrets.token_urlsafe(12)  # the one-time link printed at start

    # --- persistence --------------------------------------------------------------------

    def _read(self) -> dict[str, TokenRecord]:
        try:
            raw = json.loads(self._store.read_text(encoding="utf-8"))
            return {r["id"]: TokenRecord(**r) for r in raw}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError):
            # A damaged token file only means tablets pair again; keep it aside for a look.
            self._store.replace(self._store.with_suffix(".damaged"))
            return {}

    def _write(self) -> None:
        self._store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._store.parent, prefix=".tokens-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in self._tokens.values()], f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._store)

    # --- pairing ------------------------------------------------------------------------

    def pair(self, client: str, *, pin: str | None, code: str | None, label: str) -> str | None:
        """A new token, or None for a wrong PIN/code. Raises Locked after too many misses."""
        now = time.monotonic()
        with self._lock:
            until = self._locked_until.get(client, 0.0)
            if until > now:
                raise Locked(until - now)
            good = False
            if code is not None and self.pairing_code and hmac.compare_digest(code, self.pairing_code):
                good = True
                self.pairing_code = ""  # one time only
            elif pin is not None and hmac.compare_digest(pin.encode(), self.pin.encode()):
                good = True
            if not good:
                misses = [t for t in self._misses.get(client, []) if now - t < LOCK_S] + [now]
                self._misses[client] = misses
                if len(misses) >= MAX_MISSES:
                    self._locked_until[client] = now + LOCK_S
                    self._misses[client] = []
                return None
            self._misses.pop(client, None)
            token = secrets.token_urlsafe(32)
            rec = TokenRecord(secrets.token_hex(6), _hash(token), label[:80], time.time())
            self._tokens[rec.id] = rec
            self._write()
            return token

    def check(self, token: str | None) -> TokenRecord | None:
        if not token:
            return None
        h = _hash(token)
        with self._lock:
            for rec in self._tokens.values():
                if hmac.compare_digest(rec.hash, h):
                    rec.last_seen = time.time()
                    return rec
        return None

    def tokens(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._tokens.values(), key=lambda r: r.created_at)

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            if self._tokens.pop(token_id, None) is None:
                return False
            self._write()
            return True
