"""Debian's Chromium for the browser tests (never a downloaded one), with the flags it needs to
run headless as root on a closed network."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
