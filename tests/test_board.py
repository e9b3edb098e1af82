"""The clinic board in a real Chromium: every room at a glance, live, tappable into its room."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from roomctl.config import parse_config
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.images import mean_luminance
from testkit.servers import PIN, Running, running_app

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    cfg = parse_config({"rooms": [{"name": "Willow", "audio": {"kind": "simulated"}},
                                  {"name": "Cedar", "audio": {"kind": "simulated"}}],
                        "data_dir": str(tmp_path / "data"), "pin": PIN})
    with running_app(cfg) as srv:
        yield srv


@pytest.mark.parametrize(("width", "height"), [(1180, 820), (820, 1180)])
def test_the_board_shows_every_room(server: Running, width: int, height: int) -> None:
    with server.client(server.pair()) as api:
        assert api.post("/api/rooms/willow/session", json={"preset": "esketamine-monitored"}).status_code == 201
        assert api.post("/api/rooms/willow/session/next").status_code == 200
        assert api.post("/api/rooms/willow/doses", json={"route": "nasal", "amount": "28 mg"}).status_code == 200
        assert api.post("/api/rooms/willow/vitals",
                        json={"vitals": {"systolic": 171, "diastolic": 96, "spo2": 97}}).status_code == 200
        assert api.post("/api/rooms/cedar/session", json={"preset": "kap-sublingual"}).status_code == 201
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True)
            page = context.new_page()
            page.goto(server.url + "/board.html")
            assert page.locator("#board-empty").is_visible()  # not paired yet: it says so
            assert page.request.post(server.url + "/api/pair", data={"pin": PIN}).ok
            page.goto(server.url + "/board.html")
            willow = page.locator(".room[data-room='willow']")
            willow.wait_for()
            assert willow.locator(".phase").inner_text() == "Nasal spray"
            assert "Since dose" in willow.inner_text() and "Observation until" in willow.inner_text()
            assert "systolic 171" in willow.locator(".flag").all_inner_texts()[-1]
            cedar = page.locator(".room[data-room='cedar']")
            assert cedar.locator(".phase").inner_text() == "Arrival and intention"
            # live: Lights up in Cedar shows on the board without a reload
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.pair()}"}) as api:
                api.post("/api/rooms/cedar/emergency", json={"on": True})
            page.wait_for_selector(".room[data-room='cedar'] .badge.up", timeout=5000)
            box = cedar.bounding_box()
            assert box is not None and box["height"] >= 48 and box["width"] >= 48
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"board-{width}x{height}.png"))
            assert mean_luminance(page.screenshot()) < 60
            cedar.tap()
            page.wait_for_url(server.url + "/")
            assert page.evaluate("localStorage.getItem('roomctl.room')") == "cedar"
        finally:
            browser.close()
