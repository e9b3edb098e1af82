"""Run the real app under uvicorn on 127.0.0.1 in a background thread: for the tests and the
benchmarks, which talk to it over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.deps import Engine
from roomctl.config import Config, parse_config

PIN = "246810"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def demo_test_config(data_dir: Path, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "rooms": [{"name": "Room 1", "audio": {"kind": "simulated"}}],
        "data_dir": str(data_dir),
        "pin": PIN,
    }
    data.update(extra)
    return parse_config(data)


class Running:
    def __init__(self, url: str, engine_box: dict[str, Engine], app: Any) -> None:
        self.url = url
        self._box = engine_box
        self.app = app

    @property
    def engine(self) -> Engine:
        return self._box["engine"]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def pair(self, pin: str = PIN) -> str:
        with self.client() as c:
            r = c.post("/api/pair", json={"pin": pin})
            r.raise_for_status()
            token: str = r.json()["token"]
            return token


@contextmanager
def running_app(config: Config, **app_kwargs: Any) -> Iterator[Running]:
    box: dict[str, Engine] = {}
    app = create_app(config, on_ready=lambda eng: box.__setitem__("engine", eng), **app_kwargs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", box, app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    if thread.is_alive():
        raise RuntimeError("the service did not stop within 15 s")
