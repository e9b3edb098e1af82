"""`roomctl serve`: load the config (or the demo), print where to open the tablet, run.

Beyond loopback the service speaks HTTPS: with the local certificate authority roomctl
makes on first start (renewed while it runs), or with the clinic's own certificate. Plain
HTTP there only with ``listen.plain_http = true``, and a warning.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from roomctl.config import Config, ConfigError, demo_config, is_loopback, load_config
from roomctl.store import SessionStore, StoreError
from roomctl.tls import WILDCARD, ServerTLS, TLSError, clinic_tls, local_tls, service_names

log = logging.getLogger(__name__)

RENEW_CHECK_S = 12 * 3600.0  # how often a running service looks at its certificate's age
WS_MAX_BYTES = 64 * 1024  # tablets send nothing on the live socket; a ping or a close fits


def load(config_path: str | None) -> Config:
    return load_config(config_path) if config_path else demo_config()


def tls_folder(config: Config) -> Path:
    return config.data_dir / "tls"


def prepare_tls(config: Config, names: list[str] | None = None) -> ServerTLS | None:
    """The certificate to serve, or None for plain HTTP. Makes the local CA when needed."""
    listen = config.listen
    if not listen.https:
        return None
    if listen.cert_file is not None and listen.key_file is not None:
        return clinic_tls(listen.cert_file, listen.key_file)
    return local_tls(tls_folder(config), names if names is not None else service_names(listen))


def uvicorn_config(app: Any, config: Config, tls: ServerTLS | None, *, log_level: str = "info") -> uvicorn.Config:
    """How roomctl runs under uvicorn; `roomctl serve` and the test servers alike.

    X-Forwarded-For is believed only from the configured trusted proxies: uvicorn's default
    (believe 127.0.0.1) would let any local page give every guess a new address."""
    proxies = config.listen.trusted_proxies
    return uvicorn.Config(
        app, host=config.listen.host, port=config.listen.port, log_level=log_level,
        ws="websockets-sansio", ws_ping_interval=10, ws_ping_timeout=10, ws_max_size=WS_MAX_BYTES,
        proxy_headers=bool(proxies), forwarded_allow_ips=list(proxies) if proxies else None,
        server_header=False,
        ssl_certfile=tls.certfile if tls else None, ssl_keyfile=tls.keyfile if tls else None,
        lifespan="on",
    )


class CertificateRenewal:
    """Keeps a running server's certificate current: every `RENEW_CHECK_S` it issues a new
    one when the old one is a month from expiry, and new handshakes get it at once (the TLS
    context is swapped in the SNI callback, which runs for every handshake)."""

    def __init__(self, server_config: uvicorn.Config, folder: Path, names: list[str], tls: ServerTLS) -> None:
        self.folder = folder
        self.names = names
        self.tls = tls
        if not server_config.loaded:
            server_config.load()
        base = server_config.ssl
        assert base is not None, "the server has no TLS context to renew"
        self._current: ssl.SSLContext | None = None
        base.sni_callback = self._pick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pick(self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self._current
        if current is not None:
            conn.context = current

    def check(self, now: dt.datetime | None = None) -> bool:
        """Renew when due; True when a new certificate is now served."""
        if not self.tls.needs_renewal(now):
            return False
        fresh = local_tls(self.folder, self.names, now)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(fresh.certfile, fresh.keyfile)
        self._current, self.tls = ctx, fresh
        log.info("renewed the server certificate: valid until %s", fresh.not_after.date().isoformat())
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="certificate renewal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(RENEW_CHECK_S):
            try:
                self.check()
            except Exception:
                log.exception("renewing the server certificate failed; the current one is kept")


def private_data_dir(data_dir: Path) -> None:
    """The data folder holds health records, tokens and the CA's key: this user only. Files
    made from now on are 0600 (umask), existing ones are narrowed once."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        data_dir.chmod(0o700)
        for name in ("sessions.db", "sessions.db-wal", "sessions.db-shm", "tokens.json"):
            path = data_dir / name
            if path.exists():
                path.chmod(0o600)


def _shown_host(config: Config, names: list[str]) -> str:
    """The address to print for the tablets: a configured name, else this machine's LAN address."""
    listen = config.listen
    if listen.host not in WILDCARD:
        host = listen.host
    else:
        outside = [n for n in names if not is_loopback(n)]
        ipv4 = [n for n in outside if n.count(".") == 3 and n.replace(".", "").isdigit()]
        host = (listen.hosts or ipv4 or outside or ["127.0.0.1"])[0]
    return f"[{host}]" if ":" in host else host


def serve(config_path: str | None = None, host: str | None = None, port: int | None = None) -> int:
    try:
        config = load(config_path)
    except ConfigError as err:
        print(f"roomctl: the config file has problems:\n{err}", file=sys.stderr)
        return 2
    if host or port is not None:
        config = config.model_copy(update={"listen": config.listen.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None})})
    listen = config.listen
    if not listen.https and not listen.loopback and not listen.plain_http:
        print(f"roomctl: listening on {listen.host} beyond this computer needs HTTPS (tls = \"auto\" or \"on\"); "
              "plain HTTP there only with listen.plain_http = true", file=sys.stderr)
        return 2
    private_data_dir(config.data_dir)
    names = service_names(listen)
    try:
        tls = prepare_tls(config, names)
    except TLSError as err:
        print(f"roomctl: HTTPS cannot start: {err}", file=sys.stderr)
        return 2
    try:
        store = SessionStore.open(Path(config.data_dir) / "sessions.db")
    except StoreError as err:
        print(f"roomctl: cannot open the session record: {err}", file=sys.stderr)
        return 2
    app = create_app(config, store=store, tls=tls, hosts=names)
    auth = app.state.auth
    scheme = "https" if tls else "http"
    url = f"{scheme}://{_shown_host(config, names)}:{listen.port}/"
    print(f"roomctl: open {url} on the tablet", flush=True)
    print(f"roomctl: PIN {auth.pin} — or pair once with {url}#pair={auth.pairing_code}", flush=True)
    if tls is not None and tls.ca_fingerprint:
        print(f"roomctl: install the certificate authority once on each tablet: {url}roomctl-ca.crt", flush=True)
        print(f"roomctl: its SHA-256 fingerprint (compare on the tablet): {tls.ca_fingerprint}", flush=True)
        for name in tls.uncovered:
            print(f"roomctl: WARNING: the certificate authority was made before '{name}' was configured and "
                  f"cannot vouch for it: move {tls_folder(config)}/ca*.pem aside to make a new one", flush=True)
    elif tls is not None:
        print(f"roomctl: HTTPS with the clinic's certificate {listen.cert_file} "
              f"(valid until {tls.not_after.date().isoformat()})", flush=True)
    elif not listen.loopback:
        print(f"roomctl: WARNING: plain HTTP on {listen.host}: anyone on this network can read the tablets' "
              "tokens and every note; set tls = \"auto\" to use HTTPS", flush=True)
    print(f"roomctl: answers for {', '.join(names)}", flush=True)
    print(f"roomctl: data in {config.data_dir}", flush=True)
    server_config = uvicorn_config(app, config, tls)
    renewal = None
    if tls is not None and tls.ca_file is not None:
        renewal = CertificateRenewal(server_config, tls_folder(config), names, tls)
        renewal.start()
    try:
        # uvicorn re-raises Ctrl-C (SIGINT) once it has shut down cleanly, as uvicorn.run swallows it.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(server_config).run()
    finally:
        if renewal is not None:
            renewal.stop()
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
