"""Live room state for WebSocket clients: one JSON document per change, with a sequence
number, built once and fanned out. A slow client only ever gets the newest state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from api.state import RoomState, room_state
from roomctl.clock import Clock
from roomctl.service import RoomController

log = logging.getLogger(__name__)

TICK_S = 1.0  # timers and fades move on their own: refresh this often while anything is live


class RoomHub:
    def __init__(self, ctl: RoomController, clock: Clock) -> None:
        self.ctl = ctl
        self.clock = clock
        self.seq = 0
        self._latest: tuple[int, str] | None = None
        self._clients: set[asyncio.Queue[str]] = set()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self.ctl.subscribe(lambda _c: self._dirty.set())
        self._task = asyncio.create_task(self._run(), name=f"hub {self.ctl.id}")

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def state(self) -> RoomState:
        """The state now, numbered like the last push (a REST answer is not a new push)."""
        return room_state(self.ctl, self.seq, self.clock.now())

    def current_json(self) -> str:
        if self._latest is None or self._dirty.is_set():
            self._publish()
        assert self._latest is not None
        return self._latest[1]

    def _publish(self) -> None:
        self.seq += 1
        text = room_state(self.ctl, self.seq, self.clock.now()).model_dump_json()
        self._latest = (self.seq, text)
        for q in self._clients:
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(text)

    def _live(self) -> bool:
        st = self.ctl.runner.current()
        snap = self.ctl.room.audio.snapshot()
        return bool((st and not st.ended) or snap.playing or self.ctl.idle_emergency
                    or self.clock.now() < self.ctl.changing_until)

    async def _run(self) -> None:
        while True:
            try:
                timeout = TICK_S if (self._live() and self._clients) else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._dirty.wait()
                self._dirty.clear()
                if self._clients:
                    self._publish()
                else:
                    self._latest = None
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room %s: building the live state failed", self.ctl.id)
                await asyncio.sleep(TICK_S)

    def connect(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        q.put_nowait(self.current_json())
        self._clients.add(q)
        return q

    def disconnect(self, q: asyncio.Queue[str]) -> None:
        self._clients.discard(q)


class DeviceSockets:
    """The open WebSockets of each paired device, so that revoking a device closes them at
    once. `close_device` may be called from any thread (a revocation in the threadpool)."""

    def __init__(self) -> None:
        self._by_device: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, device_id: str) -> asyncio.Event:
        """An event set when ``device_id`` is revoked; `unwatch` it when the socket closes."""
        self._loop = asyncio.get_running_loop()
        revoked = asyncio.Event()
        self._by_device.setdefault(device_id, set()).add(revoked)
        return revoked

    def unwatch(self, device_id: str, revoked: asyncio.Event) -> None:
        events = self._by_device.get(device_id)
        if events is not None:
            events.discard(revoked)
            if not events:
                del self._by_device[device_id]

    def open_count(self, device_id: str) -> int:
        return len(self._by_device.get(device_id, ()))

    def close_device(self, device_id: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def close() -> None:
            for revoked in list(self._by_device.get(device_id, ())):
                revoked.set()

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            close()
        else:
            loop.call_soon_threadsafe(close)
