"""How fast the tablet page is usable, and how much it weighs.

Starts `roomctl serve` on loopback over HTTPS (its own certificate authority, trusted by the
browser as an installed tablet trusts it) with a session running, pairs once (the HttpOnly cookie),
then opens the page several times, each in a fresh browser context (cold cache, cookie
only), and reads `window.__roomctlReadyAt`: the page's own performance.now() at the moment
the controls are enabled with the live state (navigation start = 0). Also sums the bytes of
every static file the page loaded (HTML, JS, CSS, icon, manifest) as served, and times a press
to the screen: Hold/Resume pressed in the page, until the button shows the room's answer and the
next frame is drawn (the command's round trip to roomctl included).

Run: .venv/bin/python bench/ui.py — the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Response, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from ui_server import PIN, UI_CHECK_PRESET, UIServer, chromium_env, make_ca, wait_until  # noqa: E402 - the shared test server helper

LOADS = 9
PRESSES = 12
PRESS_JS = """async (presses) => {
  const b = document.getElementById('btn-hold');
  const out = [];
  for (let i = 0; i < presses; i++) {
    const want = b.textContent === 'Hold' ? 'Resume' : 'Hold';
    const t0 = performance.now();
    const shown = new Promise((resolve) => {
      const watch = new MutationObserver(() => {
        if (b.textContent === want) { watch.disconnect(); resolve(); }
      });
      watch.observe(b, { childList: true, characterData: true, subtree: true });
    });
    b.click();
    await shown;
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    out.push(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  return out;
}"""
GOAL_MS = 1000.0
GOAL_KB = 300.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roomctl-bench-ui-") as tmp:
        ca = make_ca(Path(tmp) / "ca")
        server = UIServer(Path(tmp) / "served", presets={"ui-check": UI_CHECK_PRESET}, ca_from=ca.parent)
        server.start()
        try:
            return run(server, chromium_env(ca, Path(tmp) / "home"))
        finally:
            server.stop()


def run(server: UIServer, env: dict[str, str | float | bool]) -> int:
    origin = server.origin
    token = server.token()
    r = httpx.post(f"{origin}/api/rooms/room-1/session", json={"preset": "ui-check", "label": "bench"},
                   headers={"Authorization": f"Bearer {token}"}, timeout=5, verify=server.verify())
    r.raise_for_status()

    os.environ["NODE_EXTRA_CA_CERTS"] = str(env["NODE_EXTRA_CA_CERTS"])  # read when Playwright's driver starts
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, env=env)
        try:
            paired = browser.new_context()
            resp = paired.request.post(f"{origin}/api/pair", data={"pin": PIN, "label": "bench"})
            assert resp.ok, resp.text()
            cookies: Any = paired.storage_state()
            paired.close()

            times: list[float] = []
            presses: list[float] = []
            sizes: dict[str, int] = {}
            for n in range(LOADS):
                ctx = browser.new_context(storage_state=cookies, viewport={"width": 1180, "height": 820})
                page = ctx.new_page()
                loaded: dict[str, int] = {}

                def keep(resp: Response, loaded: dict[str, int] = loaded) -> None:
                    path = resp.url.removeprefix(origin)
                    if resp.ok and not path.startswith("/api/") and resp.request.resource_type != "websocket":
                        loaded[path] = len(resp.body())

                page.on("response", keep)
                page.goto(origin + "/")
                wait_until(page, "window.__roomctlReadyAt !== undefined", timeout=10000)
                assert page.is_visible("#running"), "the session screen is showing"
                times.append(float(page.evaluate("window.__roomctlReadyAt")))
                page.wait_for_load_state("load")
                sizes = dict(loaded)
                if n == LOADS - 1:
                    presses = list(page.evaluate(PRESS_JS, PRESSES))
                ctx.close()
        finally:
            browser.close()

    code_bytes = sum(n for path, n in sizes.items() if path.endswith((".js", ".css")))
    all_bytes = sum(sizes.values())
    first_render_ms = round(statistics.median(times), 1)
    static_kb = round(all_bytes / 1024, 1)
    print(f"loads: {LOADS}, navigation start -> controls live: min {min(times):.0f} ms, "
          f"median {first_render_ms:.0f} ms, max {max(times):.0f} ms (goal < {GOAL_MS:.0f})")
    for path, n in sorted(sizes.items()):
        print(f"  {path:28s} {n / 1024:7.1f} KB")
    print(f"static files served: {static_kb} KB in all, JS+CSS {code_bytes / 1024:.1f} KB "
          f"(goal < {GOAL_KB:.0f} KB)")
    press_ms = round(statistics.median(presses), 1)
    print(f"press -> screen ({PRESSES} presses of Hold/Resume): min {min(presses):.0f} ms, "
          f"median {press_ms:.0f} ms, max {max(presses):.0f} ms")
    ok = first_render_ms < GOAL_MS and static_kb < GOAL_KB
    print(json.dumps({"first_render_ms": first_render_ms, "static_kb": static_kb, "press_to_screen_ms": press_ms}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
