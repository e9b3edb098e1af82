"""A private PulseAudio server with a null sink, and a recorder of what reaches it.

The real output path, measured: the test starts its own ``pulseaudio`` (installed by
scripts/install-system-deps) in user mode, on a private runtime directory and socket, with
one null sink; points the room at it (``PULSE_SERVER``); and records the sink's monitor with
``parec``: every sample that would have reached a speaker. `kill` and `start` again play
a sound server that dies and comes back. Works as root (as CI runs) and as a user.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np

from testkit.pcm import FloatArray, TimeArray, rms_windows

SINK = "room"
RATE = 48000


class PulseUnavailable(RuntimeError):
    pass


class PulseServer:
    """``with PulseServer() as pa:`` starts the server; ``pa.server`` is the PULSE_SERVER to use."""

    def __init__(self) -> None:
        missing = [tool for tool in ("pulseaudio", "parec", "pactl") if shutil.which(tool) is None]
        if missing:
            raise PulseUnavailable(f"{', '.join(missing)} not installed (run `make setup`)")
        self._dir = Path(tempfile.mkdtemp(prefix="roomctl-pulse-"))
        self.runtime = self._dir / "run"
        self.runtime.mkdir(mode=0o700)
        (self._dir / "home").mkdir()
        self.socket = self.runtime / "native"
        self.server = f"unix:{self.socket}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.recorder: Recorder | None = None

    def env(self) -> dict[str, str]:
        """The environment for the server and its clients: nothing of the user's session."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "XDG_RUNTIME"))}
        env.update(XDG_RUNTIME_DIR=str(self.runtime), HOME=str(self._dir / "home"), PULSE_SERVER=self.server)
        return env

    def start(self, timeout_s: float = 10.0) -> None:
        if self.socket.exists():
            self.socket.unlink()
        self._proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "--disable-shm=yes", "--log-target=stderr", "--log-level=error", "--realtime=no",
             "--high-priority=no",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "-L", f"module-null-sink sink_name={SINK} rate={RATE} channels=2",
             "-L", "module-always-sink"],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise PulseUnavailable(f"pulseaudio exited ({self._proc.returncode}): {err.strip()}")
            ok = subprocess.run(["pactl", "info"], env=self.env(), capture_output=True, timeout=5).returncode == 0
            if ok:
                return
            time.sleep(0.05)
        raise PulseUnavailable(f"pulseaudio did not answer within {timeout_s:g} s")

    def kill(self) -> None:
        """The sound server dies (SIGKILL): its clients' streams break."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGKILL)
                self._proc.wait(timeout=10)
            if self._proc.stderr is not None:
                self._proc.stderr.close()
        self._proc = None

    def record(self) -> Recorder:
        """Start recording the null sink's monitor (a new recorder after a restart)."""
        if self.recorder is not None:
            self.recorder.stop()
        self.recorder = Recorder(self.env())
        return self.recorder

    def cpu_s(self) -> float:
        """CPU seconds the sound server has used so far (user + system)."""
        if self._proc is None:
            return 0.0
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sink_inputs(self) -> int:
        """How many playback streams the server has now."""
        out = subprocess.run(["pactl", "list", "short", "sink-inputs"], env=self.env(), capture_output=True,
                             timeout=5, text=True).stdout
        return len([line for line in out.splitlines() if line.strip()])

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PulseServer:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Recorder:
    """``parec`` on the null sink's monitor; each chunk filed at the time it arrived (less
    the recording latency), mono. What reached the sink, sample by sample."""

    LATENCY_S = 0.02

    def __init__(self, env: dict[str, str]) -> None:
        self.rate = RATE
        self._proc = subprocess.Popen(
            ["parec", "-d", f"{SINK}.monitor", "--format=float32le", f"--rate={RATE}", "--channels=2",
             f"--latency-msec={int(self.LATENCY_S * 1000)}", "--raw"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()
        self._chunks: list[tuple[float, np.ndarray]] = []  # (arrival, stereo frames)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert isinstance(stdout, io.BufferedReader)
        frame = 8
        pending = b""
        while True:
            data = stdout.read1(65536)
            if not data:
                return
            now = time.monotonic()
            pending += data
            usable = len(pending) - len(pending) % frame
            frames = np.frombuffer(pending[:usable], dtype="<f4").reshape(-1, 2)
            pending = pending[usable:]
            with self._lock:
                self._chunks.append((now - len(frames) / self.rate - self.LATENCY_S, frames.copy()))

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
        self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def frames(self, start: float, end: float) -> FloatArray:
        """The stereo frames recorded from ``start`` to ``end`` (zeros where none arrived)."""
        n = max(0, round((end - start) * self.rate))
        out = np.zeros((n, 2), dtype=np.float32)
        with self._lock:
            chunks = list(self._chunks)
        for t, frames in chunks:
            i0 = round((t - start) * self.rate)
            i1 = i0 + len(frames)
            if i1 <= 0 or i0 >= n:
                continue
            s0, s1 = max(0, -i0), len(frames) - max(0, i1 - n)
            out[max(0, i0) : min(n, i1)] = frames[s0:s1]
        return out

    def signal(self, start: float, end: float) -> FloatArray:
        mono: FloatArray = self.frames(start, end).mean(axis=1, dtype=np.float32)
        return mono

    def rms(self, start: float, end: float, window_s: float = 0.05) -> tuple[TimeArray, FloatArray]:
        return rms_windows(self.signal(start, end), self.rate, start, window_s)

    def last_arrival(self) -> float | None:
        with self._lock:
            return self._chunks[-1][0] if self._chunks else None
