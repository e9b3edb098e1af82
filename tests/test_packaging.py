"""roomctl as a clinic installs it: `pip install .` (not editable) into a fresh venv, then the
bundled presets are found and `roomctl serve` starts the demo room from the installed files.

Offline: the wheel is built without build isolation, and the fresh venv borrows this venv's
dependencies through a path entry (which does not load this venv's editable roomctl).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx

from testkit.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_a_plain_install_has_its_presets_and_serves_the_demo(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("roomctl", "api"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("roomctl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "roomctl/presets/kap-sublingual.yaml" in names
    assert "api/static/index.html" in names
    assert {"api/static/docs.html", "api/static/docs.js", "api/static/slider.js"} <= set(names)
    assert not [n for n in names if n.startswith("testkit/")], "the test kit is not part of the product"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True)

    work = tmp_path / "elsewhere"  # not the source tree: nothing may come from the checkout
    work.mkdir()
    env = {**os.environ, "ROOMCTL_DATA": str(tmp_path / "data"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run([str(python), "-c", "import roomctl, api; print(roomctl.__file__); print(api.__file__)"],
                           check=True, capture_output=True, text=True, cwd=work, env=env).stdout.split()
    assert all(Path(w).is_relative_to(venv) for w in where), where

    roomctl = str(venv / "bin" / "roomctl")
    validate = subprocess.run([roomctl, "presets", "validate"], capture_output=True, text=True, cwd=work, env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert validate.stdout.count(": ok") == len(list((ROOT / "roomctl" / "presets").glob("*.yaml"))) >= 5

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen([roomctl, "serve", "--port", str(port)], cwd=work, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "roomctl serve did not answer"
                time.sleep(0.2)
        assert health.status_code == 200
        assert list(health.json()["rooms"]) == ["room-1"]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
        # /docs from the installed files alone: the page, and Swagger UI from its package.
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
        assert "http" not in docs.text.replace("http-equiv", "")
        bundle = httpx.get(f"http://127.0.0.1:{port}/docs/assets/swagger-ui-bundle.js", timeout=5)
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, log.read_text()
    assert "open http://127.0.0.1" in log.read_text()
