"""`roomctl serve`: load the config (or the demo), print where to open the tablet, run."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from api.app import create_app
from roomctl.config import Config, ConfigError, demo_config, load_config
from roomctl.store import SessionStore, StoreError

log = logging.getLogger(__name__)


def load(config_path: str | None) -> Config:
    return load_config(config_path) if config_path else demo_config()


def serve(config_path: str | None = None, host: str | None = None, port: int | None = None) -> int:
    try:
        config = load(config_path)
    except ConfigError as err:
        print(f"roomctl: the config file has problems:\n{err}", file=sys.stderr)
        return 2
    if host or port is not None:
        config = config.model_copy(update={"listen": config.listen.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None})})
    try:
        store = SessionStore.open(Path(config.data_dir) / "sessions.db")
    except StoreError as err:
        print(f"roomctl: cannot open the session record: {err}", file=sys.stderr)
        return 2
    app = create_app(config, store=store)
    auth = app.state.auth
    shown_host = "127.0.0.1" if config.listen.host in ("0.0.0.0", "::") else config.listen.host
    url = f"http://{shown_host}:{config.listen.port}/"
    print(f"roomctl: open {url} on the tablet", flush=True)
    print(f"roomctl: PIN {auth.pin} — or pair once with {url}#pair={auth.pairing_code}", flush=True)
    print(f"roomctl: data in {config.data_dir}", flush=True)
    try:
        uvicorn.run(app, host=config.listen.host, port=config.listen.port, log_level="info", ws="websockets-sansio",
                    ws_ping_interval=10, ws_ping_timeout=10)
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    return serve(config_path=args.config, host=args.host, port=args.port)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("serve", help="run the service and the tablet page")
    cmd.add_argument("--config", help="roomctl.toml (default: the demo room)")
    cmd.add_argument("--host", help="listen address (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, help="listen port (default 8000)")
    cmd.set_defaults(func=_serve)
