"""A real `roomctl serve` for the browser tests and the UI bench.

It writes a config with a known PIN and a data folder under a base directory, picks a free
127.0.0.1 port, and can be stopped and started again on the same port and data (to see the
tablet reconnect). Output goes to a log file so a chatty server never blocks on a full pipe.
By default it serves HTTPS (``tls = "on"`` even on loopback) with the certificate authority
roomctl makes in the data folder: `ca_file` is what a client trusts.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

PIN = "246810"

# A preset that reaches its reminder in 2 s, so a test need not wait for the bundled tour's 10 s.
UI_CHECK_PRESET = """\
name: UI check
description: A short preset for the tablet's tests; a reminder 2 s into the first phase.
phases:
  - id: settle
    kind: preparation
    title: Settle in
    advance: manual
    planned: 5m
    lights: {brightness: 60, color_temp: 2700K, transition: 1s}
    music: {playlist: arrival, volume: 40, fade_in: 2s}
    cues:
      - {at: 2s, text: Check blood pressure}
  - id: journey
    kind: journey
    duration: 20m
    lights: {brightness: 15, color: "#ff8a3d", transition: 5s}
    music: {playlist: journey, volume: 45, crossfade: 4s}
  - id: return
    kind: return
    duration: 10m
    lights: {brightness: 45, color_temp: 2700K, transition: 1m}
    music: {playlist: return, volume: 35}
"""

# A dosing phase between two manual phases (for Undo and the dose clock), then a journey whose
# two reminders come due 1 s and 2 s in (for the night-mode suggestion beside reminders).
UI_DOSE_PRESET = """\
name: UI dose
description: A preset for the tablet's tests with a dosing phase and a journey with two quick reminders.
phases:
  - id: arrive
    kind: preparation
    title: Arrive
    advance: manual
    planned: 5m
    lights: {brightness: 50, color_temp: 2700K, transition: 1s}
    music: {playlist: arrival, volume: 40, fade_in: 2s}
  - id: dose
    kind: dosing
    title: Dosing
    advance: manual
    planned: 10m
    lights: {brightness: 35, color_temp: 2400K, transition: 1s}
  - id: journey
    kind: journey
    title: Journey
    duration: 20m
    lights: {brightness: 15, color: "#ff8a3d", transition: 1s}
    music: {playlist: journey, volume: 45, crossfade: 2s}
    cues:
      - {at: 1s, text: Check blood pressure}
      - {at: 2s, text: Offer water}
  - id: return
    kind: return
    duration: 10m
    lights: {brightness: 45, color_temp: 2700K, transition: 1m}
"""


# Monitoring on the tablet: two vitals checks due 1 s and 2 s in (one recorded, one skipped), the
# clinic's ranges (systolic above 160 and SpO2 below 93 are highlighted), a scale and a yes/no
# observation, the check look, and two hours of observation after the last dose.
UI_MONITOR_PRESET = """\
name: UI monitor
description: A preset for the tablet's tests with doses, vitals checks and the clinic's ranges.
monitoring:
  observe_after_last_dose: 2h
  check_look: {brightness: 40, color_temp: 2700K, music_volume: 20, transition: 1s}
  observations:
    - {id: sedation, label: "Sedation (0 none - 4 deep)", kind: scale, scale: [0, 4], flag_from: 3}
    - {id: nausea, label: Nausea, kind: yes_no, flag_from: 1}
  ranges:
    systolic: {low: 90, high: 160}
    spo2: {low: 93}
phases:
  - id: dosing
    kind: dosing
    title: Dosing
    advance: manual
    planned: 30m
    lights: {brightness: 30, color_temp: 2400K, transition: 1s}
    music: {playlist: dosing, volume: 35, fade_in: 2s}
    cues:
      - {at: 1s, text: Baseline vitals, check: vitals}
      - {at: 2s, text: Blood pressure after the dose, check: vitals}
  - id: journey
    kind: journey
    duration: 40m
    lights: {brightness: 12, color_temp: 2200K, transition: 5s}
    music: {playlist: journey, volume: 40, crossfade: 4s}
"""

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _roomctl() -> list[str]:
    script = Path(sys.executable).with_name("roomctl")
    if script.exists():
        return [str(script)]
    found = shutil.which("roomctl")
    return [found] if found else [sys.executable, "-m", "roomctl.cli"]


class UIServer:
    """`roomctl serve` on 127.0.0.1 with simulated lights and audio, one room "Room 1"."""

    def __init__(self, base: Path, presets: dict[str, str] | None = None, port: int | None = None,
                 *, tls: bool = True, extra_config: str = "", ca_from: Path | None = None) -> None:
        """``ca_from``: a folder with a certificate authority made earlier (`make_ca`), which
        this server uses instead of making its own: one browser trust store serves them all."""
        self.base = base
        self.tls = tls
        self.data = base / "data"
        self.clinic = self.data / "presets"
        self.config = base / "roomctl.toml"
        self.port = port or free_port()
        self.log_path = base / "serve.log"
        self.pairing_code: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.clinic.mkdir(parents=True, exist_ok=True)
        if ca_from is not None:
            (self.data / "tls").mkdir(parents=True, exist_ok=True)
            for name in ("ca.pem", "ca-key.pem"):
                shutil.copy(ca_from / name, self.data / "tls" / name)
        for preset_id, text in (presets or {}).items():
            (self.clinic / f"{preset_id}.yaml").write_text(text, encoding="utf-8")
        self.config.write_text(
            f'pin = "{PIN}"\n'
            'data_dir = "data"\n'
            f'listen = {{ tls = "{"on" if tls else "off"}" }}\n'
            f"{extra_config}"
            "[[rooms]]\n"
            'name = "Room 1"\n'
            "[rooms.lights]\n"
            'kind = "simulated"\n'
            "[rooms.audio]\n"
            'kind = "simulated"\n',
            encoding="utf-8",
        )

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The certificate authority roomctl made on its first start."""
        return self.data / "tls" / "ca.pem"

    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client trusts: only roomctl's own CA (plain HTTP: the default)."""
        if not self.tls:
            return True
        return ssl.create_default_context(cafile=str(self.ca_file))

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 20.0) -> None:
        assert self._proc is None, "already started"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [*_roomctl(), "serve", "--config", str(self.config),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while self.tls and not self.ca_file.exists():  # made before the server listens
            if self._proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        with httpx.Client(timeout=1.0, verify=self.verify() if self.ca_file.exists() or not self.tls else True) \
                as client:
            while True:
                if self._proc.poll() is not None:
                    log = self.log_path.read_text(encoding="utf-8", errors="replace")[offset:]
                    self.stop()
                    raise RuntimeError(f"roomctl serve exited early:\n{log}")
                try:
                    if client.get(f"{self.origin}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"roomctl serve did not answer on {self.origin}")
                time.sleep(0.05)
        text = self.log_path.read_text(encoding="utf-8", errors="replace")[offset:]
        m = re.search(r"#pair=(\S+)", text)
        self.pairing_code = m.group(1) if m else None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def token(self) -> str:
        """A fresh token for API checks beside the browser."""
        r = httpx.post(f"{self.origin}/api/pair", json={"pin": PIN, "label": "test"}, timeout=5,
                       verify=self.verify())
        r.raise_for_status()
        token: str = r.json()["token"]
        return token


def make_ca(folder: Path) -> Path:
    """A roomctl certificate authority (as `roomctl serve` makes it) in ``folder``; its ca.pem."""
    from roomctl.tls import local_tls

    tls = local_tls(folder, ["localhost", "127.0.0.1", "::1"])
    assert tls.ca_file is not None
    return tls.ca_file


def chromium_env(ca_file: Path, home: Path) -> dict[str, str | float | bool]:
    """The environment for a Chromium that trusts ``ca_file`` as a tablet does once the CA is
    installed: Chromium on Linux reads trust anchors from the NSS database in $HOME/.pki/nssdb.
    Playwright's own HTTP client (context.request) trusts it through NODE_EXTRA_CA_CERTS."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "roomctl local CA", "-t", "C,,", "-i", str(ca_file)],
                   check=True, capture_output=True)
    return {**os.environ, "HOME": str(home), "NODE_EXTRA_CA_CERTS": str(ca_file)}


def wait_until(page: Any, expression: str, timeout: float = 30000) -> None:
    """Playwright's Page.wait_for_function, without its in-page `new Function`: under the page's CSP (no
    'unsafe-eval') that is refused. page.evaluate runs outside the CSP, as a debugger would."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout / 1000:g} s: {expression}")
        time.sleep(0.03)
