"""Run the real app under uvicorn on 127.0.0.1 in a background thread: for the tests and the
benchmarks, which talk to it over real HTTP, or over real HTTPS with the certificate
authority roomctl makes (``running_app(config, tls=True)``)."""

from __future__ import annotations

import socket
import ssl
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
from roomctl.cli.serve import uvicorn_config
from roomctl.config import Config, parse_config
from roomctl.store import SessionStore
from roomctl.tls import ServerTLS, local_tls

PIN = "246810"
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"]


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


def json_when_bodyless(request: httpx.Request) -> None:
    """A POST, PUT or PATCH without a body goes as ``application/json`` (the service refuses
    any other type, 415)."""
    if request.method in ("POST", "PUT", "PATCH") and "content-type" not in request.headers:
        request.headers["Content-Type"] = "application/json"


class Running:
    def __init__(self, url: str, engine_box: dict[str, Engine], app: Any, tls: ServerTLS | None = None,
                 server: uvicorn.Server | None = None) -> None:
        self.url = url
        self._box = engine_box
        self.app = app
        self.tls = tls
        self.server = server

    @property
    def engine(self) -> Engine:
        return self._box["engine"]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting only the service's certificate authority (None on HTTP)."""
        if self.tls is None or self.tls.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls.ca_file))

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An API client; with a token, one that sends its body-less POSTs as JSON, as the
        service asks of every program (a client without a token stands for a browser and
        sends exactly what the test gives it)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = self.ssl_context() or True
        if token:
            kwargs.setdefault("event_hooks", {"request": [json_when_bodyless]})
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=verify, **kwargs)

    def pair(self, pin: str = PIN) -> str:
        with self.client() as c:
            r = c.post("/api/pair", json={"pin": pin})
            r.raise_for_status()
            token: str = r.json()["token"]
            return token


@contextmanager
def running_app(config: Config, *, tls: bool = False, **app_kwargs: Any) -> Iterator[Running]:
    """The app under uvicorn, configured as `roomctl serve` configures it, on a free port of
    127.0.0.1; with ``tls`` over HTTPS, the local certificate authority made in the config's
    data directory for the loopback names."""
    box: dict[str, Engine] = {}
    served = local_tls(config.data_dir / "tls", LOOPBACK_NAMES) if tls else None
    app = create_app(config, on_ready=lambda eng: box.__setitem__("engine", eng), tls=served, **app_kwargs)
    port = free_port()
    listen = config.listen.model_copy(update={"host": "127.0.0.1", "port": port})
    server = uvicorn.Server(uvicorn_config(app, config.model_copy(update={"listen": listen}), served,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    scheme = "https" if served else "http"
    try:
        yield Running(f"{scheme}://127.0.0.1:{port}", box, app, served, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    if thread.is_alive():
        raise RuntimeError("the service did not stop within 15 s")


@contextmanager
def running_demo_with_record(data: Path) -> Iterator[Running]:
    """The demo room (`demo_test_config`) under uvicorn, with its session record in
    ``data``/sessions.db, closed after the app."""
    store = SessionStore.open(data / "sessions.db")
    try:
        with running_app(demo_test_config(data), store=store) as srv:
            yield srv
    finally:
        store.close()
