"""The tablet page in a real Chromium against a real `roomctl serve`, at two tablet sizes.

Each step leaves a screenshot in screenshots/ (git-ignored) to look at. Every request the
page makes is recorded; anything not aimed at the roomctl server is blocked and fails the test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Request, Route, sync_playwright
from ui_server import PIN, UI_CHECK_PRESET, UIServer, chromium_env, make_ca, wait_until

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
STATIC = ROOT / "api" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = [(1180, 820), (820, 1180)]
CONTROLS = "#controls button, #controls input, #controls select, #controls textarea"


@pytest.fixture(scope="module")
def ca_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One roomctl certificate authority for the module's servers, installed in the browser."""
    folder = tmp_path_factory.mktemp("ca")
    make_ca(folder)
    return folder


@pytest.fixture(scope="module")
def browser(ca_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    env = chromium_env(ca_folder / "ca.pem", tmp_path_factory.mktemp("home"))
    # Playwright's driver reads NODE_EXTRA_CA_CERTS when it starts: set it for that moment.
    saved = os.environ.get("NODE_EXTRA_CA_CERTS")
    os.environ["NODE_EXTRA_CA_CERTS"] = str(env["NODE_EXTRA_CA_CERTS"])
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
            try:
                yield b
            finally:
                b.close()
    finally:
        if saved is None:
            os.environ.pop("NODE_EXTRA_CA_CERTS", None)
        else:
            os.environ["NODE_EXTRA_CA_CERTS"] = saved


@pytest.fixture
def server(tmp_path: Path, ca_folder: Path) -> Iterator[UIServer]:
    srv = UIServer(tmp_path, presets={"ui-check": UI_CHECK_PRESET}, ca_from=ca_folder)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(params=VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def viewport(request: pytest.FixtureRequest) -> tuple[int, int]:
    size: tuple[int, int] = request.param
    return size


@dataclass
class Tablet:
    page: Page
    context: BrowserContext
    server: UIServer
    size: tuple[int, int]
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        w, h = self.size
        self.page.screenshot(path=str(SHOTS / f"{w}x{h}-{name}.png"))

    def wait_live(self) -> None:
        wait_until(self.page,
            "window.__roomctlReadyAt !== undefined && !document.getElementById('controls').disabled")

    def state(self) -> dict[str, Any]:
        r = httpx.get(f"{self.server.origin}/api/rooms/room-1/state",
                      headers={"Authorization": f"Bearer {self.token}"}, timeout=5, verify=self.server.verify())
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    @property
    def token(self) -> str:
        if not hasattr(self, "_token"):
            self._token = self.server.token()
        return self._token

    def assert_only_local(self) -> None:
        origin = self.server.origin
        assert origin.startswith("https://"), "the tablet page is served over HTTPS"
        ws_origin = origin.replace("https://", "wss://", 1)
        assert not self.blocked, f"the page tried to reach other hosts: {self.blocked}"
        strays = [u for u in self.requests
                  if not (u.startswith((origin + "/", ws_origin + "/")) or u.startswith(("data:", "blob:")))]
        assert not strays, strays
        assert any(u.startswith(ws_origin + "/api/rooms/") for u in self.requests), "no live WebSocket"

    def assert_no_script_errors(self) -> None:
        assert not self.errors, self.errors
        assert not self.csp_violations, f"the page broke its Content-Security-Policy: {self.csp_violations}"


@pytest.fixture
def tablet(browser: Browser, server: UIServer, viewport: tuple[int, int]) -> Iterator[Tablet]:
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  device_scale_factor=1, has_touch=True, service_workers="block")
    page = context.new_page()
    t = Tablet(page, context, server, viewport)
    origin = server.origin
    ws_origin = origin.replace("https://", "wss://", 1)

    def only_roomctl(route: Route) -> None:
        url = route.request.url
        if url.startswith((origin + "/", "data:", "blob:")):
            route.continue_()
        else:
            t.blocked.append(url)
            route.abort()

    # Every Content-Security-Policy violation the page causes, reported from inside the page.
    context.expose_binding("__roomctlCspViolation", lambda _source, text: t.csp_violations.append(text))
    context.add_init_script("""document.addEventListener("securitypolicyviolation", (e) =>
        window.__roomctlCspViolation(`${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));""")
    context.route("**/*", only_roomctl)
    context.on("request", lambda r: t.requests.append(r.url))
    page.on("websocket", lambda ws: t.requests.append(ws.url))
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    # HTTP answers like 401 or 422 and a refused WebSocket while the server is down are expected;
    # anything else on the console's error channel is a bug in the page.
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") and ws_origin not in m.text else None)
    try:
        yield t
    finally:
        context.close()


def pair_by_api(t: Tablet) -> None:
    r = t.context.request.post(f"{t.server.origin}/api/pair", data={"pin": PIN, "label": "test tablet"})
    assert r.ok, r.text()


def start_by_api(t: Tablet, preset: str = "ui-check") -> None:
    r = httpx.post(f"{t.server.origin}/api/rooms/room-1/session", json={"preset": preset},
                   headers={"Authorization": f"Bearer {t.token}"}, timeout=5, verify=t.server.verify())
    assert r.status_code == 201, r.text


def bulb_levels(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.eval_on_selector_all(".bulb", """els => els.map(e => ({
        brightness: Number(e.dataset.brightness), rgb: e.dataset.rgb, on: e.dataset.on === '1',
        opacity: Number(getComputedStyle(e.querySelector('.glow')).opacity),
        colour: getComputedStyle(e.querySelector('.glow')).backgroundColor}))""")
    return result


def controls_disabled(page: Page) -> list[bool]:
    """For every control on the page (the night-mode toggle aside): is it disabled?"""
    result: list[bool] = page.evaluate(
        f"[...document.querySelectorAll({json.dumps(CONTROLS)})].map(e => e.matches(':disabled'))")
    return result


# ── running a session ───────────────────────────────────────────────────────────


def test_pair_and_run_a_session(tablet: Tablet) -> None:
    t, page = tablet, tablet.page
    response = page.goto(t.server.origin + "/")
    # HTTPS, trusted through roomctl's certificate authority (installed in this browser).
    assert response is not None and page.evaluate("window.isSecureContext") is True
    details = response.security_details()
    assert details is not None and (details.get("issuer") or "").startswith("roomctl local CA"), details
    page.wait_for_selector("#pair-screen:not([hidden])")
    # The pairing screen offers the certificate for other tablets, with the fingerprint printed at start.
    page.wait_for_selector("#pair-ca:not([hidden])")
    printed = re.search(r"fingerprint \(compare on the tablet\): (\S+)", t.server.log_path.read_text())
    assert printed and page.inner_text("#pair-ca-fp") == printed.group(1)
    assert page.get_attribute("#pair-ca-link", "href") == "/roomctl-ca.crt"
    assert page.get_attribute("#pin", "inputmode") == "numeric"
    for digit in PIN:
        page.click(f"#keypad [data-key='{digit}']")
    assert page.input_value("#pin") == PIN
    t.shot("01-pair")
    page.click("#pair-btn")
    t.wait_live()
    assert page.is_hidden("#pair-screen")

    # The token survives a reload (the HttpOnly cookie), and the API answers with it.
    page.reload()
    t.wait_live()
    assert page.evaluate("fetch('/api/rooms').then(r => r.status)") == 200
    assert page.evaluate("document.cookie") == "", "the token cookie must be HttpOnly"

    page.click("#preset-pick [data-preset='ui-check']")
    page.wait_for_selector("#preflight li[data-ok='1']:has-text('arrival')")
    checks = page.inner_text("#preflight")
    assert "Lights: answer" in checks and "Audio: ready" in checks
    assert "Playlist “journey”: 3 tracks" in checks
    t.shot("02-start")

    page.click("#start-btn")
    page.wait_for_selector("#running:not([hidden])")
    assert page.inner_text("#phase-title") == "Settle in"
    wait_until(page, "window.roomctl.wakeLock && window.roomctl.wakeLock.type === 'screen'")
    assert "Journey" in page.inner_text("#next-phase")
    before = page.inner_text("#t-phase")
    wait_until(page, f"document.getElementById('t-phase').textContent !== {json.dumps(before)}",
                           timeout=2500)

    # The reminder at 2 s: gentle, on the tablet only, one tap (with a short note) to acknowledge.
    page.wait_for_selector(".cue[data-cue='settle/0']", timeout=5000)
    assert page.locator("audio, video").count() == 0
    t.shot("03-session-reminder")
    page.fill(".cue[data-cue='settle/0'] input", "BP 124/80")
    page.click(".cue[data-cue='settle/0'] button")
    page.wait_for_selector(".cue[data-cue='settle/0']", state="detached")
    acked = t.state()["session"]["cues_acknowledged"]
    assert [(c["id"], c["note"]) for c in acked] == [("settle/0", "BP 124/80")]

    # Brightness: a real drag; throttled updates while dragging, the final value on release.
    wait_until(page, "[...document.querySelectorAll('.bulb')]"
                           ".every(b => b.dataset.brightness === '60.0')")
    before_bulbs = bulb_levels(page)
    slider = page.locator("#bri")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None
    thumb = 38

    def x_at(value: float) -> float:
        assert box is not None
        return box["x"] + thumb / 2 + (box["width"] - thumb) * value / 100

    y = box["y"] + box["height"] / 2
    sent: list[tuple[Request, dict[str, Any]]] = []

    def note_light_change(r: Request) -> None:
        if r.method == "POST" and r.url.endswith("/lights"):
            sent.append((r, r.post_data_json or {}))

    page.on("request", note_light_change)
    page.mouse.move(x_at(60), y)
    page.mouse.down()
    moves = 16
    for i in range(1, moves + 1):
        page.mouse.move(x_at(60 - 40 * i / moves), y)
        page.wait_for_timeout(25)
    page.mouse.up()
    final = int(page.input_value("#bri"))
    assert 15 <= final <= 25, final
    wait_until(page,
        f"[...document.querySelectorAll('.bulb')].every(b => Math.abs(b.dataset.brightness - {final}) < 0.6)",
        timeout=5000)
    page.wait_for_timeout(1300)  # the swatches' glow eases over 1.2 s
    after_bulbs = bulb_levels(page)
    assert all(a["opacity"] < b["opacity"] - 0.2 for a, b in zip(after_bulbs, before_bulbs, strict=True))
    # Throttled: at most one update per 100 ms while dragging (and the final value on release),
    # however slowly the moves arrive. Counted on the browser's own clock: when Python hears
    # of each request drifts by tens of ms on a loaded machine.
    starts = [r.timing["startTime"] for r, _ in sent]
    span_ms = starts[-1] - starts[0]
    assert 2 <= len(sent) <= moves + 1, f"{len(sent)} updates for {moves} moves and a release"
    assert len(sent) <= span_ms / 100 + 2, f"{len(sent)} updates in {span_ms:.0f} ms: not throttled"
    assert sent[-1][1]["brightness"] == final
    assert t.state()["lights"]["overridden"] is True
    assert page.is_visible("#btn-back")
    t.shot("04-lights-dragged")

    # Lights up: a short tap only explains; a 1 s hold brings the lights up.
    lu = page.locator("#lightsup")
    lu.scroll_into_view_if_needed()
    lbox = lu.bounding_box()
    assert lbox is not None
    cx, cy = lbox["x"] + lbox["width"] / 2, lbox["y"] + lbox["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.wait_for_timeout(150)
    page.mouse.up()
    assert page.inner_text("#lightsup-hint") == "Hold to bring the lights up"
    page.wait_for_timeout(1200)
    assert t.state()["emergency"] is False
    assert page.is_hidden("#emergency")

    page.mouse.down()
    page.wait_for_timeout(550)
    assert "holding" in (lu.get_attribute("class") or "")
    t.shot("05-lights-up-holding")
    page.wait_for_timeout(650)
    page.mouse.up()
    page.wait_for_selector("#emergency:not([hidden])")
    st = t.state()
    assert st["emergency"] is True and st["session"]["emergency"] is True
    t.shot("06-lights-up")
    page.click("#lightsdown")
    page.wait_for_selector("#emergency", state="hidden")
    assert t.state()["emergency"] is False

    # Jump to the journey: night mode is suggested, taken with one tap.
    page.click("#btn-jump")
    page.click("#dlg-jump [data-phase='journey']")
    wait_until(page, "document.getElementById('phase-title').textContent === 'Journey'")
    page.wait_for_selector("#nudge:not([hidden])")
    page.click("#nudge-yes")
    assert page.evaluate("document.documentElement.classList.contains('night')")
    assert page.is_hidden("#nudge")
    page.wait_for_timeout(600)  # colours ease over 400 ms: no flash
    t.shot("07-night-journey")
    page.click("#night-btn")
    assert not page.evaluate("document.documentElement.classList.contains('night')")

    # End asks first.
    page.click("#btn-end")
    page.wait_for_selector("#dlg-end[open]")
    page.wait_for_timeout(500)
    t.shot("08-end-confirm")
    page.click("#dlg-end-no")
    assert t.state()["session"]["ended"] is False
    page.click("#btn-end")
    page.click("#dlg-end-yes")
    page.wait_for_selector("#idle:not([hidden])")
    assert t.state()["session"]["ended"] is True
    assert "Last session: UI check" in page.inner_text("#last-session")
    wait_until(page, "window.roomctl.wakeLock === null")
    t.shot("09-ended")

    t.assert_only_local()
    t.assert_no_script_errors()


# ── pairing link ────────────────────────────────────────────────────────────────


def test_pairing_link_pairs_once(tablet: Tablet, browser: Browser) -> None:
    t, page = tablet, tablet.page
    code = t.server.pairing_code
    assert code
    page.goto(f"{t.server.origin}/#pair={code}")
    t.wait_live()
    assert "#pair" not in page.url
    page.reload()
    t.wait_live()
    assert page.evaluate("fetch('/api/rooms').then(r => r.status)") == 200
    t.shot("10-paired-by-link")

    other = browser.new_context(viewport={"width": t.size[0], "height": t.size[1]})
    try:
        p2 = other.new_page()
        p2.goto(f"{t.server.origin}/#pair={code}")
        p2.wait_for_selector("#pair-screen:not([hidden])")
        assert "already used" in p2.inner_text("#pair-msg")
        p2.fill("#pin", "000000")
        p2.click("#pair-btn")
        wait_until(p2, "document.getElementById('pair-msg').textContent.includes('not right')")
    finally:
        other.close()
    t.assert_only_local()
    t.assert_no_script_errors()


# ── presets ─────────────────────────────────────────────────────────────────────


def test_preset_chart_editor_and_files(tablet: Tablet) -> None:
    t, page = tablet, tablet.page
    pair_by_api(t)
    page.goto(t.server.origin + "/")
    t.wait_live()
    page.click("#tab-presets")
    page.click("#list-clinic [data-preset='ui-check']")
    page.wait_for_selector("#preset-detail svg")
    assert page.locator("#preset-detail svg [data-phase]").count() == 3
    assert page.locator("#preset-detail svg [data-series='brightness']").count() == 1
    assert page.locator("#preset-detail svg [data-series='volume']").count() == 1
    assert page.locator("#preset-detail svg [data-series='colour'] rect").count() > 50
    assert page.locator("#preset-detail svg .ch-cue-mark").count() == 1
    t.shot("11-preset-chart")

    page.click("#preset-detail button:has-text('Edit')")
    page.wait_for_selector("#editor:not([hidden])")
    bri = page.locator(".ed-phase[data-index='1'] input[data-field='lights.brightness']")
    bri.fill("140")
    msg = page.locator(".ed-phase[data-index='1'] .fmsg[data-problem='lights.brightness']")
    msg.wait_for(timeout=3000)
    assert msg.inner_text() == "Phase 'journey' · lights.brightness: 140 is above 100"
    assert bri.get_attribute("aria-invalid") == "true"
    field_box, msg_box = bri.bounding_box(), msg.bounding_box()
    assert field_box and msg_box
    gap = msg_box["y"] - (field_box["y"] + field_box["height"])
    assert 0 <= gap < 40, "the message sits right under its field"
    assert "lights.brightness" in page.inner_text("#ed-problems")
    msg.scroll_into_view_if_needed()
    t.shot("12-editor-problem")

    bri.fill("25")
    wait_until(page, "document.querySelectorAll('#editor .fmsg:not(.phase-msg)').length === 0")
    assert page.inner_text("#ed-problems") == ""
    page.click("#ed-save")
    wait_until(page, "document.getElementById('ed-status').textContent === 'Saved as ui-check.yaml'")
    saved = yaml.safe_load((t.server.clinic / "ui-check.yaml").read_text(encoding="utf-8"))
    assert saved["phases"][1]["lights"]["brightness"] == 25
    page.wait_for_selector("#ed-chart svg [data-series='brightness']")
    t.shot("13-editor-saved")

    # A bundled preset is duplicated into the clinic's folder to be edited.
    page.click("#ed-cancel")
    page.click("#list-bundled [data-preset='tour']")
    page.click("#preset-detail button:has-text('Duplicate to edit')")
    page.wait_for_selector("#editor:not([hidden])")
    assert (t.server.clinic / "tour-copy.yaml").is_file()
    page.click("#ed-cancel")

    # Export is a plain download link; import takes a file.
    href = page.get_attribute("#preset-detail a[download]", "href")
    assert href == "/api/presets/tour-copy/yaml"
    # Fetched by the page itself: Playwright's own client may reuse a keep-alive connection the
    # server closed after its idle time (a reset), where a browser retries.
    exported = page.evaluate("href => fetch(href).then(async r => [r.status, await r.text()])", href)
    assert exported[0] == 200 and "phases:" in exported[1]
    page.set_input_files("#import-file", files=[FilePayload(
        name="evening.yaml", mimeType="application/yaml",
        buffer=UI_CHECK_PRESET.replace("name: UI check", "name: Evening").encode())])
    page.wait_for_selector("#list-clinic [data-preset='evening']")
    assert (t.server.clinic / "evening.yaml").is_file()
    page.set_input_files("#import-file", files=[FilePayload(
        name="broken.yaml", mimeType="application/yaml", buffer=b"name: Broken\nphases: []\n")])
    wait_until(page, "document.getElementById('import-msg').textContent.includes('broken.yaml')")
    assert not (t.server.clinic / "broken.yaml").exists()

    # A new preset: named, phases reordered and removed, a reminder added, saved under its id.
    page.click("#btn-new-preset")
    page.fill("#ed-name", "Evening calm")
    assert page.input_value("#ed-id") == "evening-calm"
    page.click(".ed-phase[data-index='1'] button[aria-label='Move phase 2 up']")
    page.click(".ed-phase[data-index='3'] button[aria-label='Remove phase 4']")
    page.click(".ed-phase[data-index='0'] button:has-text('Add reminder')")
    page.fill(".ed-phase[data-index='0'] input[data-field='cues[0].at']", "30m")
    page.locator(".ed-phase[data-index='0'] .fmsg[data-problem='cues[0].at']").wait_for(timeout=3000)
    page.fill(".ed-phase[data-index='0'] input[data-field='cues[0].at']", "2m")
    wait_until(page, "document.querySelectorAll('#editor .fmsg:not(.phase-msg)').length === 0")
    page.click("#ed-save")
    wait_until(page, "document.getElementById('ed-status').textContent"
                           " === 'Saved as evening-calm.yaml'")
    made = yaml.safe_load((t.server.clinic / "evening-calm.yaml").read_text(encoding="utf-8"))
    assert made["name"] == "Evening calm"
    assert [p["id"] for p in made["phases"]] == ["dosing", "preparation", "journey"]
    assert made["phases"][0]["cues"] == [{"at": "2m", "text": "Check in"}]

    t.assert_only_local()
    t.assert_no_script_errors()


# ── paired devices ──────────────────────────────────────────────────────────────


def test_devices_are_listed_renamed_and_revoked(tablet: Tablet, browser: Browser) -> None:
    t, page = tablet, tablet.page
    pair_by_api(t)  # the first device paired: the clinic's admin
    other = t.server.token()
    page.goto(t.server.origin + "/")
    t.wait_live()
    page.click("#tab-devices")
    page.wait_for_selector("#dev-list .dev[data-this='1']")
    page.wait_for_selector("#dev-list .dev[data-this='0']")
    mine = page.locator("#dev-list .dev[data-this='1']")
    assert "test tablet (this tablet)" in mine.inner_text()
    assert mine.locator(".role").get_attribute("data-role") == "admin"
    assert "Last seen just now · from 127.0.0.1" in mine.inner_text()
    assert page.is_visible("#dev-ca") and len(page.inner_text("#dev-ca-fp").split(":")) == 32
    t.shot("16-devices")

    theirs = page.locator("#dev-list .dev[data-this='0']")
    theirs.locator("[data-action='rename']").click()
    theirs.locator("input").fill("Hall tablet")
    theirs.locator("button[type='submit']").click()
    page.wait_for_selector("#dev-list .dev[data-this='0'] .dev-name:has-text('Hall tablet')")
    theirs.locator("[data-action='role']").click()
    page.wait_for_selector("#dev-list .dev[data-this='0'] .role[data-role='admin']")
    theirs.locator("[data-action='role']").click()
    page.wait_for_selector("#dev-list .dev[data-this='0'] .role[data-role='therapist']")

    theirs.locator("[data-action='revoke']").click()
    page.wait_for_selector("#dlg-revoke[open]")
    assert page.inner_text("#dlg-revoke-title") == "Revoke “Hall tablet”?"
    page.wait_for_timeout(400)
    t.shot("17-revoke-confirm")
    page.click("#dlg-revoke-yes")
    page.wait_for_selector("#dev-list .dev[data-this='0']", state="detached")
    r = httpx.get(f"{t.server.origin}/api/rooms", headers={"Authorization": f"Bearer {other}"},
                  verify=t.server.verify(), timeout=5)
    assert r.status_code == 401

    # A therapist's tablet sees the list but no admin actions on the others.
    therapist = browser.new_context(viewport={"width": t.size[0], "height": t.size[1]})
    try:
        p2 = therapist.new_page()
        p2.goto(t.server.origin + "/")
        p2.wait_for_selector("#pair-screen:not([hidden])")
        p2.fill("#pin", PIN)
        p2.click("#pair-btn")
        wait_until(p2, "!document.getElementById('controls').disabled")
        p2.click("#tab-devices")
        p2.wait_for_selector("#dev-list .dev[data-this='0']")
        assert "Only a clinic admin" in p2.inner_text("#dev-role-note")
        admin_row = p2.locator("#dev-list .dev[data-this='0']")
        assert admin_row.locator("button").count() == 0
        assert p2.locator("#dev-list .dev[data-this='1'] [data-action='revoke']").inner_text() == "Forget this tablet…"
        w, h = t.size
        p2.screenshot(path=str(SHOTS / f"{w}x{h}-18-devices-therapist.png"))
    finally:
        therapist.close()
    page.click("#tab-session")
    t.assert_only_local()
    t.assert_no_script_errors()


# ── connection lost ─────────────────────────────────────────────────────────────


def test_reconnects_after_a_restart(tablet: Tablet) -> None:
    t, page = tablet, tablet.page
    pair_by_api(t)
    start_by_api(t)
    page.goto(t.server.origin + "/")
    t.wait_live()
    page.wait_for_selector("#running:not([hidden])")
    assert not all(controls_disabled(page)) and page.locator("#btn-hold").is_enabled()

    t.server.stop()
    page.wait_for_selector("#offline:not([hidden])", timeout=10000)
    assert "reconnecting" in page.inner_text("#offline").lower()
    disabled = controls_disabled(page)
    assert disabled and all(disabled), "every control is disabled while the room is unreachable"
    assert page.locator("#lightsup").is_disabled() and page.locator("#btn-next").is_disabled()
    page.wait_for_timeout(400)
    t.shot("14-reconnecting")

    t.server.start()
    page.wait_for_selector("#offline", state="hidden", timeout=15000)
    t.wait_live()
    assert page.inner_text("#phase-title") == "Settle in"
    assert page.locator("#btn-hold").is_enabled()
    t.shot("15-reconnected")
    page.click("#btn-hold")
    wait_until(page, "document.getElementById('btn-hold').textContent === 'Resume'")
    assert t.state()["session"]["held"] is True

    t.assert_only_local()
    t.assert_no_script_errors()


# ── the static files themselves ─────────────────────────────────────────────────


def test_static_files_are_small_local_and_installable() -> None:
    files = [p for p in STATIC.iterdir() if p.is_file()]
    code = [p for p in files if p.suffix in (".js", ".css")]
    assert sum(p.stat().st_size for p in code) < 300 * 1024
    for p in files:
        text = p.read_text(encoding="utf-8")
        for scheme in ("http://", "https://", "//fonts.", "@import"):
            hits = [line for line in text.splitlines()
                    if scheme in line and "www.w3.org/2000/svg" not in line]
            assert not hits, f"{p.name} refers elsewhere: {hits}"
    manifest = json.loads((STATIC / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert manifest["display"] in ("fullscreen", "standalone")
    assert any(i["src"].endswith(".svg") for i in manifest["icons"])
    assert manifest["theme_color"].lower() in ("#0c0d10", "#000000")
