"""The `roomctl` command: serve, presets validate/show, simulate, hue pair/lights, store
check/backup/repair.

The one place that imports both the engine (roomctl) and the web layer (api): `serve`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from roomctl.cli import hue, presets, serve, simulate, store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roomctl", description="Room controller for "
                                     "psychedelic- and ketamine-assisted therapy.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (serve, presets, simulate, hue, store):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
